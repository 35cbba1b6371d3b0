package accounts

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func newFile(t *testing.T) (string, *File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admins.toml")
	f := &File{}
	if err := f.SetPassword("root", "root-pw"); err != nil {
		t.Fatal(err)
	}
	return path, f
}

// TestTokens: a token is shown once and kept as a hash; a wrong secret,
// an unknown id, a revoked token and the token of a deleted admin are
// refused; the file is its owner's only.
func TestTokens(t *testing.T) {
	path, f := newFile(t)
	tok, err := f.NewToken("root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.NewToken("nobody"); err == nil {
		t.Error("a token for no admin")
	}
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	_, secret, _ := splitToken(tok)
	if strings.Contains(string(b), secret) || strings.Contains(string(b), "root-pw") {
		t.Fatal("a secret in the admins file")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("admins file mode %v", fi.Mode().Perm())
	}
	f, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if who, ok := f.token(tok); !ok || who.Admin != "root" {
		t.Fatalf("the token: %v %v", who, ok)
	}
	id, _, _ := splitToken(tok)
	for _, bad := range []string{tok + "0", tokenPrefix + "000000000000_" + secret, strings.TrimPrefix(tok, tokenPrefix), "", tokenPrefix + id} {
		if _, ok := f.token(bad); ok {
			t.Errorf("token %q accepted", bad)
		}
	}
	f.Revoke(id)
	if _, ok := f.token(tok); ok {
		t.Error("a revoked token accepted")
	}
	tok2, _ := f.NewToken("root")
	f.Admin = nil // deleted by hand, its token left behind
	if _, ok := f.token(tok2); ok {
		t.Error("the token of a deleted admin accepted")
	}
	if err := os.WriteFile(path, []byte("[[admin]]\nname = \"x\"\npassword = \"plain\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil {
		t.Error("a clear-text password loaded")
	}
}

// TestSessions: a login's cookie (HttpOnly, SameSite=Strict, Secure with
// TLS) identifies the admin with a CSRF token until it expires or the
// admin is deleted; wrong passwords are reported, banned addresses refused
// before any check.
func TestSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path, f := newFile(t)
		f.Save(path)
		var failed []netip.Addr
		banned := netip.MustParseAddr("192.0.2.9")
		m := NewManager(Options{Path: path, Secure: true, SessionTTL: time.Hour,
			Failed: func(a netip.Addr) { failed = append(failed, a) },
			Banned: func(a netip.Addr) bool { return a == banned }})
		ctx := context.Background()
		from := netip.MustParseAddr("192.0.2.1")
		if _, _, err := m.Login(ctx, from, "root", "wrong"); err != ErrBadLogin {
			t.Fatalf("wrong password: %v", err)
		}
		if _, _, err := m.Login(ctx, from, "nobody", "root-pw"); err != ErrBadLogin {
			t.Fatalf("unknown admin: %v", err)
		}
		if len(failed) != 2 {
			t.Errorf("failed logins reported: %v", failed)
		}
		if _, _, err := m.Login(ctx, banned, "root", "root-pw"); err != ErrBanned {
			t.Fatalf("banned address: %v", err)
		}
		c, csrf, err := m.Login(ctx, from, "root", "root-pw")
		if err != nil {
			t.Fatal(err)
		}
		if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Name != CookieName || len(csrf) != 64 {
			t.Errorf("cookie %+v, csrf %q", c, csrf)
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(c)
		if who, ok := m.Identify(req); !ok || who.Admin != "root" || who.CSRF != csrf {
			t.Fatalf("with the cookie: %+v %v", who, ok)
		}
		time.Sleep(time.Hour + time.Second)
		if _, ok := m.Identify(req); ok {
			t.Error("an expired session accepted")
		}
		c, _, _ = m.Login(ctx, from, "root", "root-pw")
		req = httptest.NewRequest("GET", "/", nil)
		req.AddCookie(c)
		f.Delete("root")
		f.SetPassword("other", "x-pw")
		time.Sleep(time.Second) // a later modification time
		f.Save(path)
		if _, ok := m.Identify(req); ok {
			t.Error("the session of a deleted admin accepted")
		}
	})
}

// TestRequire: without credentials, denied; a change with the cookie
// needs the CSRF token (header or form field), one with a token does not;
// a banned address gets 429.
func TestRequire(t *testing.T) {
	path, f := newFile(t)
	tok, _ := f.NewToken("root")
	f.Save(path)
	bannedAddr := netip.MustParseAddr("192.0.2.66")
	m := NewManager(Options{Path: path, Banned: func(a netip.Addr) bool { return a == bannedAddr }})
	c, csrf, err := m.Login(context.Background(), netip.MustParseAddr("192.0.2.1"), "root", "root-pw")
	if err != nil {
		t.Fatal(err)
	}
	h := m.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(From(r.Context()).Admin))
	}), func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) })
	for _, tc := range []struct {
		name, method, body, remote string
		cookie                     bool
		header                     map[string]string
		want                       int
	}{
		{"nothing", "GET", "", "", false, nil, 401},
		{"cookie read", "GET", "", "", true, nil, 200},
		{"cookie change without CSRF", "POST", "", "", true, nil, 403},
		{"cookie change, wrong CSRF", "POST", "", "", true, map[string]string{CSRFHeader: "x"}, 403},
		{"cookie change, CSRF header", "DELETE", "", "", true, map[string]string{CSRFHeader: csrf}, 200},
		{"cookie change, CSRF field", "POST", "csrf=" + csrf, "", true, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 200},
		{"token change", "POST", "", "", false, map[string]string{"Authorization": "Bearer " + tok}, 200},
		{"bad token", "GET", "", "", false, map[string]string{"Authorization": "Bearer " + tok + "x"}, 401},
		{"banned", "GET", "", "192.0.2.66:1234", false, map[string]string{"Authorization": "Bearer " + tok}, 429},
	} {
		req := httptest.NewRequest(tc.method, "/", strings.NewReader(tc.body))
		if tc.remote != "" {
			req.RemoteAddr = tc.remote
		}
		if tc.cookie {
			req.AddCookie(c)
		}
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want || (tc.want == 200 && rec.Body.String() != "root") {
			t.Errorf("%s: %d %q, want %d", tc.name, rec.Code, rec.Body.String(), tc.want)
		}
	}
}
