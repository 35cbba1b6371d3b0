package console

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/admin/accounts"
	"github.com/ferryftp/ferry/admin/api"
	"github.com/ferryftp/ferry/auth/users"
)

// TestPages: without a session every page leads to the login; with one,
// every page renders with its security headers; a form refused is shown
// again with the reason and what was typed; a form without the CSRF token
// is refused.
func TestPages(t *testing.T) {
	dir := t.TempDir()
	admins := filepath.Join(dir, "admins.toml")
	f := &accounts.File{}
	f.SetPassword("root", "root-pw")
	f.Save(admins)
	usersFile := filepath.Join(dir, "users.toml")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := api.New(api.Node{Name: "n1", Started: time.Now(), Users: users.File(usersFile), HomeBase: dir}, accounts.NewManager(accounts.Options{Path: admins}), logger)
	defer a.Close()
	mux := http.NewServeMux()
	a.Register(mux)
	Register(mux, a, logger)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := hc.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := get("/console/users"); !strings.Contains(body, `id="login"`) || resp.Request.URL.Path != "/console/login" {
		t.Fatalf("without a session: %s %s", resp.Request.URL, body)
	}
	resp, err := hc.PostForm(srv.URL+"/console/login", url.Values{"name": {"root"}, "password": {"root-pw"}, "next": {"/console/users"}})
	if err != nil || resp.Request.URL.Path != "/console/users" {
		t.Fatalf("login: %v %v", err, resp.Request.URL)
	}
	resp.Body.Close()
	var csrf string
	for _, p := range []string{"/", "/console/", "/console/sessions", "/console/users", "/console/users/new", "/console/bans"} {
		resp, body := get(p)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") || !strings.Contains(body, "Log out root") {
			t.Errorf("%s: %d %q", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
		if i := strings.Index(body, `name="csrf" value="`); i >= 0 {
			csrf = strings.SplitN(body[i+len(`name="csrf" value="`):], `"`, 2)[0]
		}
	}
	form := url.Values{"csrf": {csrf}, "name": {"zoe"}, "password": {"pw"}, "home": {"zoe"}, "quota_bytes": {"lots"}, "permission": {"read-write"}}
	resp, err = hc.PostForm(srv.URL+"/console/users/new", form)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "quota_bytes") || !strings.Contains(string(b), `value="zoe"`) {
		t.Errorf("a bad quota: %d %s", resp.StatusCode, b)
	}
	form.Set("quota_bytes", "1MiB")
	form.Set("dirs", "/in=upload,list\n/pub=download")
	resp, _ = hc.PostForm(srv.URL+"/console/users/new", form)
	resp.Body.Close()
	u, err := a.GetUser(t.Context(), "zoe")
	if err != nil || u.QuotaBytes != 1<<20 || len(u.Dirs) != 2 || u.Permission != "read-write" {
		t.Fatalf("zoe: %+v %v", u, err)
	}
	form.Del("csrf")
	resp, _ = hc.PostForm(srv.URL+"/console/users/zoe/delete", form)
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("a form without the CSRF token: %d", resp.StatusCode)
	}
	if _, err := a.GetUser(t.Context(), "zoe"); err != nil {
		t.Error("zoe deleted without the CSRF token")
	}
}
