package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/admin/api"
	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftptest"
)

// adminEnv is a `ferry serve` with an admin listener, a users file and an
// admins file holding root (password root-pw) and a token of root.
type adminEnv struct {
	t                  *testing.T
	s                  *server
	wd, base, token    string
	users, admins, ftp string
	hc                 *http.Client // the API's client when a call names none (default: http.DefaultClient)
}

// startAdmin starts the server, listening on 0.0.0.0 (reachable from
// 127.0.0.2 and .3), with the configuration text conf.
func startAdmin(t *testing.T, conf string) *adminEnv {
	return startAdminWith(t, conf, func(usersFile string) { ferryUser(t, usersFile, "alice-pw", "add", "alice", "--home", "alice") })
}

// startAdminWith is startAdmin with the users file made by users.
func startAdminWith(t *testing.T, conf string, users func(usersFile string)) *adminEnv {
	wd := t.TempDir()
	e := &adminEnv{t: t, wd: wd, users: filepath.Join(wd, "users.toml"), admins: filepath.Join(wd, "admins.toml")}
	users(e.users)
	e.ferryAdmin("root-pw", "add", "root")
	e.token = strings.TrimSpace(strings.SplitN(e.ferryAdmin("", "token", "create", "root"), "\n", 2)[0])
	adminAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	e.base = "http://" + adminAddr
	cfgFile := filepath.Join(wd, "ferry.toml")
	os.WriteFile(cfgFile, []byte(conf), 0o644)
	e.s = &server{t: t, addr: net.JoinHostPort("0.0.0.0", strconv.Itoa(freePort(t, "0.0.0.0"))), root: filepath.Join(wd, "root"), wd: wd}
	os.Mkdir(e.s.root, 0o755)
	e.s.start("--config", cfgFile, "--users", e.users, "--admin-listen", adminAddr, "--admins", e.admins, "--login-fail-delay", "-1s")
	e.ftp = strings.Replace(e.s.addr, "0.0.0.0", "127.0.0.1", 1)
	t.Cleanup(func() {
		e.s.stop()
		if t.Failed() {
			t.Logf("ferry logs:\n%s", e.s.logs.String())
		}
	})
	return e
}

// ferryAdmin runs `ferry admin ARGS --admins FILE` (the password from
// FERRY_PASSWORD) and returns its output.
func (e *adminEnv) ferryAdmin(pass string, args ...string) string {
	e.t.Helper()
	cmd := exec.Command(ferryBin, append(append([]string{"admin"}, args...), "--admins", e.admins)...)
	cmd.Env = append(os.Environ(), "FERRY_PASSWORD="+pass)
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("ferry admin %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// call is one API request: with the bearer token tok (none when empty),
// a JSON body when body is not nil, through hc (a cookie jar, another
// source address) when set.
type call struct {
	method, path, tok string
	body              any
	hc                *http.Client
	header            map[string]string
}

func (e *adminEnv) do(c call) (int, []byte) {
	e.t.Helper()
	var r io.Reader
	if c.body != nil {
		b, _ := json.Marshal(c.body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(c.method, e.base+c.path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if c.tok != "" {
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	hc := c.hc
	if hc == nil {
		hc = e.hc
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// want checks a call's status, and returns its body.
func (e *adminEnv) want(status int, c call) []byte {
	e.t.Helper()
	got, b := e.do(c)
	if got != status {
		e.t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, got, b, status)
	}
	return b
}

// errorOf is the error message of a reply.
func errorOf(b []byte) string {
	var e struct{ Error string }
	json.Unmarshal(b, &e)
	return e.Error
}

// httpFrom is an HTTP client with a cookie jar whose connections come
// from the local address from.
func httpFrom(from string) *http.Client {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return &http.Client{Jar: jar, Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestAdminAPIAuth: nothing is answered without authentication (every
// documented operation), a wrong, revoked or deleted admin's token is
// refused, a cookie session needs its CSRF token for a change, and failed
// admin logins are banned by the defender.
func TestAdminAPIAuth(t *testing.T) {
	e := startAdmin(t, "[defender]\nthreshold = 3\nallow = []\n")
	var doc struct {
		Paths map[string]map[string]struct {
			Security []any `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	args := strings.NewReplacer("{id}", "1", "{name}", "alice", "{network}", "192.0.2.1")
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if op.Security != nil { // public: login
				continue
			}
			if got, b := e.do(call{method: strings.ToUpper(method), path: args.Replace(path)}); got != 401 || errorOf(b) == "" {
				t.Errorf("%s %s without authentication: %d %s, want 401", method, path, got, b)
			}
		}
	}
	e.want(401, call{method: "GET", path: "/api/v1/nothing"})
	e.want(404, call{method: "GET", path: "/api/v1/nothing", tok: e.token})
	e.want(200, call{method: "GET", path: "/api/v1/users", tok: e.token})
	// Refused tokens are scored like failed logins: from 127.0.0.4, a
	// wrong one, a malformed one and a revoked one ban the address.
	from4 := httpFrom("127.0.0.4")
	e.want(401, call{method: "GET", path: "/api/v1/users", tok: e.token + "x", hc: from4})
	e.want(401, call{method: "GET", path: "/api/v1/users", tok: "not-a-token", hc: from4})
	id := strings.Split(e.token, "_")[1]
	e.ferryAdmin("", "token", "revoke", id)
	e.want(401, call{method: "GET", path: "/api/v1/users", tok: e.token, hc: from4})
	e.ferryAdmin("ops-pw", "add", "ops")
	ops := strings.TrimSpace(strings.SplitN(e.ferryAdmin("", "token", "create", "ops"), "\n", 2)[0])
	e.want(429, call{method: "GET", path: "/api/v1/server", tok: ops, hc: from4})
	// The token of a deleted admin.
	e.want(200, call{method: "GET", path: "/api/v1/server", tok: ops})
	e.ferryAdmin("", "del", "ops")
	e.want(401, call{method: "GET", path: "/api/v1/server", tok: ops, hc: httpFrom("127.0.0.5")})

	// A console session: its cookie reads; a change needs the CSRF token.
	hc := httpFrom("127.0.0.1")
	e.want(401, call{method: "POST", path: "/api/v1/login", body: map[string]string{"name": "root", "password": "wrong"}, hc: hc})
	e.want(400, call{method: "POST", path: "/api/v1/login", body: map[string]any{"name": "root", "pass": 1}, hc: hc})
	var login struct{ Admin, CSRF string }
	json.Unmarshal(e.want(200, call{method: "POST", path: "/api/v1/login", body: map[string]string{"name": "root", "password": "root-pw"}, hc: hc}), &login)
	if login.Admin != "root" || len(login.CSRF) < 32 {
		t.Fatalf("login: %+v", login)
	}
	u, _ := http.NewRequest("GET", e.base, nil)
	cookies := hc.Jar.Cookies(u.URL)
	if len(cookies) != 1 {
		t.Fatalf("cookies after login: %v", cookies)
	}
	e.want(200, call{method: "GET", path: "/api/v1/server", hc: hc})
	change := map[string]any{"quota_files": 10}
	e.want(403, call{method: "PATCH", path: "/api/v1/users/alice", body: change, hc: hc})
	e.want(403, call{method: "PATCH", path: "/api/v1/users/alice", body: change, hc: hc, header: map[string]string{"X-CSRF-Token": "forged"}})
	e.want(200, call{method: "PATCH", path: "/api/v1/users/alice", body: change, hc: hc, header: map[string]string{"X-CSRF-Token": login.CSRF}})
	e.want(204, call{method: "POST", path: "/api/v1/logout", hc: hc, header: map[string]string{"X-CSRF-Token": login.CSRF}})
	e.want(401, call{method: "GET", path: "/api/v1/server", hc: hc})

	// Wrong passwords from 127.0.0.3 are scored: the third bans it, and
	// then even the right one is refused (429), from there only.
	guesser := httpFrom("127.0.0.3")
	for range 3 {
		e.want(401, call{method: "POST", path: "/api/v1/login", body: map[string]string{"name": "root", "password": "guess"}, hc: guesser})
	}
	b := e.want(429, call{method: "POST", path: "/api/v1/login", body: map[string]string{"name": "root", "password": "root-pw"}, hc: guesser})
	if !strings.Contains(errorOf(b), "try again later") {
		t.Errorf("banned login: %s", b)
	}
	e.want(200, call{method: "POST", path: "/api/v1/login", body: map[string]string{"name": "root", "password": "root-pw"}, hc: httpFrom("127.0.0.2")})
	if !strings.Contains(e.s.logs.String(), `admin login failed`) {
		t.Error("no log line of the failed admin logins")
	}

	// ferry admin passwd changes the password for the running server;
	// list names the admins and their tokens' ids; add refuses a name
	// that exists.
	e.ferryAdmin("root-pw2", "passwd", "root")
	from6 := httpFrom("127.0.0.6")
	e.want(401, call{method: "POST", path: "/api/v1/login", body: map[string]string{"name": "root", "password": "root-pw"}, hc: from6})
	e.want(200, call{method: "POST", path: "/api/v1/login", body: map[string]string{"name": "root", "password": "root-pw2"}, hc: from6})
	tok := strings.TrimSpace(strings.SplitN(e.ferryAdmin("", "token", "create", "root"), "\n", 2)[0])
	if list := e.ferryAdmin("", "list"); !strings.Contains(list, "root\n  token "+strings.Split(tok, "_")[1]) || strings.Contains(list, "ops") {
		t.Errorf("ferry admin list:\n%s", list)
	}
	cmd := exec.Command(ferryBin, "admin", "add", "root", "--admins", e.admins)
	cmd.Env = append(os.Environ(), "FERRY_PASSWORD=x")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "exists") {
		t.Errorf("ferry admin add of an existing admin: %v %s", err, out)
	}
}

// TestAdminAPIUsers: users are created, read, listed, changed and deleted
// through the API with the validation of ferry user; the FTP server sees
// each change at the next login; every change is logged with the admin.
func TestAdminAPIUsers(t *testing.T) {
	e := startAdmin(t, "")
	tok := e.token
	ctx := context.Background()
	newCarol := map[string]any{"name": "carol", "password": "carol-pw", "home": "carol", "quota_bytes": "8KiB", "dirs": []map[string]string{{"path": "/in", "perms": "upload,list"}}}
	b := e.want(201, call{method: "POST", path: "/api/v1/users", tok: tok, body: newCarol})
	var carol api.User
	json.Unmarshal(b, &carol)
	if carol.Name != "carol" || carol.QuotaBytes != 8<<10 || carol.Permission != "read-write" || len(carol.Dirs) != 1 || strings.Contains(string(b), "argon2") {
		t.Fatalf("created: %s", b)
	}
	c, err := client.Dial(ctx, e.ftp, &client.Config{User: "carol", Password: "carol-pw", Retries: -1})
	if err != nil {
		t.Fatalf("carol over FTP right after her creation: %v", err)
	}
	c.Close()
	for _, bad := range []struct {
		body   map[string]any
		status int
		msg    string
	}{
		{newCarol, 409, "exists"},
		{map[string]any{"name": "dave", "home": "dave"}, 400, "password"},
		{map[string]any{"name": "dave", "password": "x"}, 400, "home or storage"},
		{map[string]any{"name": "dave/..", "password": "x", "home": "d"}, 400, "name"},
		{map[string]any{"name": "dave", "password": "x", "home": "d", "allow_from": []string{"not-a-net"}}, 400, "allow_from"},
		{map[string]any{"name": "dave", "password": "x", "home": "d", "quota_bytes": "lots"}, 400, "bad JSON"},
		{map[string]any{"name": "dave", "password": "x", "home": "d", "color": "red"}, 400, "unknown field"},
		{map[string]any{"name": "dave", "password": "x", "storage": "ftp://elsewhere"}, 400, "storage"},
		{map[string]any{"name": "dave", "password": "x", "home": "d", "permission": "all"}, 400, "permission"},
	} {
		got, b := e.do(call{method: "POST", path: "/api/v1/users", tok: tok, body: bad.body})
		if got != bad.status || !strings.Contains(errorOf(b), bad.msg) {
			t.Errorf("POST %v: %d %s, want %d with %q", bad.body, got, b, bad.status, bad.msg)
		}
	}
	var page api.Page[api.User]
	json.Unmarshal(e.want(200, call{method: "GET", path: "/api/v1/users?q=aro", tok: tok}), &page)
	if page.Total != 1 || page.Items[0].Name != "carol" {
		t.Errorf("search aro: %+v", page)
	}
	json.Unmarshal(e.want(200, call{method: "GET", path: "/api/v1/users?offset=1&limit=1", tok: tok}), &page)
	if page.Total != 2 || len(page.Items) != 1 || page.Items[0].Name != "carol" {
		t.Errorf("page 2 of 1: %+v", page)
	}
	e.want(400, call{method: "GET", path: "/api/v1/users?limit=x", tok: tok})
	e.want(404, call{method: "GET", path: "/api/v1/users/nobody", tok: tok})
	e.want(404, call{method: "PATCH", path: "/api/v1/users/nobody", tok: tok, body: map[string]any{"disabled": true}})
	e.want(400, call{method: "PATCH", path: "/api/v1/users/carol", tok: tok, body: map[string]any{}})
	e.want(400, call{method: "PATCH", path: "/api/v1/users/carol", tok: tok, body: map[string]any{"expires": "someday"}})
	// Over her 8 KiB quota: 552; her quota shows in /quotas.
	if err := storeAs(ctx, e.ftp, "carol", "carol-pw", 16<<10); err == nil || !strings.Contains(err.Error(), "552") {
		t.Fatalf("16 KiB over 8 KiB: %v", err)
	}
	var quotas []api.Quota
	json.Unmarshal(e.want(200, call{method: "GET", path: "/api/v1/quotas", tok: tok}), &quotas)
	if len(quotas) != 1 || quotas[0].User != "carol" || quotas[0].LimitBytes != 8<<10 {
		t.Errorf("quotas: %+v", quotas)
	}
	// A larger quota and a new password take effect at the next login.
	json.Unmarshal(e.want(200, call{method: "PATCH", path: "/api/v1/users/carol", tok: tok, body: map[string]any{"quota_bytes": 1 << 20, "password": "carol-pw2"}}), &carol)
	if carol.QuotaBytes != 1<<20 {
		t.Errorf("changed: %+v", carol)
	}
	if _, err := client.Dial(ctx, e.ftp, &client.Config{User: "carol", Password: "carol-pw", Retries: -1}); err == nil {
		t.Error("the old password still logs in")
	}
	if err := storeAs(ctx, e.ftp, "carol", "carol-pw2", 16<<10); err != nil {
		t.Fatalf("16 KiB under 1 MiB: %v", err)
	}
	e.want(204, call{method: "DELETE", path: "/api/v1/users/carol", tok: tok})
	e.want(404, call{method: "DELETE", path: "/api/v1/users/carol", tok: tok})
	if _, err := client.Dial(ctx, e.ftp, &client.Config{User: "carol", Password: "carol-pw2", Retries: -1}); err == nil {
		t.Error("a deleted user logs in")
	}
	out, _ := exec.Command(ferryBin, "user", "list", "--users", e.users).CombinedOutput()
	if strings.Contains(string(out), "carol") || !strings.Contains(string(out), "alice") {
		t.Errorf("ferry user list after the API's changes:\n%s", out)
	}
	for _, change := range []string{"user create", "user change", "user delete"} {
		if !strings.Contains(e.s.logs.String(), `msg="admin change" admin=root change="`+change+`"`) {
			t.Errorf("no log line of %q by root", change)
		}
	}
	if strings.Contains(e.s.logs.String(), "carol-pw") {
		t.Error("a password in the log")
	}
}

// TestAdminAPIServer: the server's description, its configuration
// without secrets, and reload (a broken configuration is refused and the
// running one kept).
func TestAdminAPIServer(t *testing.T) {
	conf := "[[hook]]\non = [\"rmdir\"]\nurl = \"http://hook:s3cr3t@127.0.0.1:9/x?token=s3cr3t\"\n"
	e := startAdmin(t, conf)
	var info api.ServerInfo
	json.Unmarshal(e.want(200, call{method: "GET", path: "/api/v1/server", tok: e.token}), &info)
	if info.Admin != "root" || info.Node == "" || len(info.Listeners) != 1 || !strings.HasSuffix(info.Listeners[0], e.s.addr[strings.LastIndex(e.s.addr, ":"):]) || info.Uptime <= 0 {
		t.Errorf("server: %+v", info)
	}
	b := e.want(200, call{method: "GET", path: "/api/v1/config", tok: e.token})
	if strings.Contains(string(b), "s3cr3t") || !strings.Contains(string(b), `"admin_listen"`) || !strings.Contains(string(b), "127.0.0.1:9") {
		t.Errorf("config:\n%s", b)
	}
	json.Unmarshal(e.want(200, call{method: "GET", path: "/api/v1/openapi.json", tok: e.token}), &map[string]any{})
	e.want(200, call{method: "POST", path: "/api/v1/reload", tok: e.token})
	os.WriteFile(filepath.Join(e.wd, "ferry.toml"), []byte("idle_timeout = \"soon\"\n"), 0o644)
	if b := e.want(422, call{method: "POST", path: "/api/v1/reload", tok: e.token}); !strings.Contains(errorOf(b), "idle_timeout") {
		t.Errorf("broken reload: %s", b)
	}
	e.want(200, call{method: "GET", path: "/api/v1/server", tok: e.token})
}

// TestAdminAPISessionsBans: sessions are listed with their user, command
// and running transfer; ending one mid-upload gives its client 421 and
// publishes nothing; bans are listed and lifted.
func TestAdminAPISessionsBans(t *testing.T) {
	e := startAdmin(t, "[defender]\nthreshold = 2\nallow = []\n")
	old, done := e.slowOverwrite("keep.bin", 100<<10)
	var s api.Session
	for deadline := time.Now().Add(10 * time.Second); s.Transfer == nil || s.Transfer.Bytes <= int64(len(old)); { // past the bytes of the first upload, listed a moment after its end
		if time.Now().After(deadline) {
			t.Fatalf("the running upload is not listed: %+v", s)
		}
		var page api.Page[api.Session]
		json.Unmarshal(e.want(200, call{method: "GET", path: "/api/v1/sessions?q=alice", tok: e.token}), &page)
		if page.Total == 1 {
			s = page.Items[0]
		}
		time.Sleep(20 * time.Millisecond) // the upload's bytes arrive over a socket
	}
	if s.User != "alice" || s.Command != "STOR" || s.Transfer.Direction != "upload" || s.Transfer.Path != "/keep.bin" || s.TLS || s.Node == "" {
		t.Errorf("session: %+v %+v", s, s.Transfer)
	}
	e.want(200, call{method: "GET", path: fmt.Sprintf("/api/v1/sessions/%d", s.ID), tok: e.token})
	e.want(400, call{method: "GET", path: "/api/v1/sessions/x", tok: e.token})
	e.want(404, call{method: "DELETE", path: "/api/v1/sessions/999999", tok: e.token})
	e.want(204, call{method: "DELETE", path: fmt.Sprintf("/api/v1/sessions/%d", s.ID), tok: e.token})
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "421") {
			t.Errorf("the ended session's upload: %v, want 421", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the ended session's upload goes on")
	}
	e.want(404, call{method: "GET", path: fmt.Sprintf("/api/v1/sessions/%d", s.ID), tok: e.token})
	if got, err := os.ReadFile(filepath.Join(e.wd, "alice", "keep.bin")); err != nil || !bytes.Equal(got, old) {
		t.Errorf("keep.bin after its overwrite was ended: %d bytes, %v", len(got), err)
	}
	if !strings.Contains(e.s.logs.String(), `reason="ended by an administrator"`) {
		t.Error("no session end line saying why")
	}

	// Bans: two wrong passwords from 127.0.0.2 ban it.
	guess(t, e.ftp, "127.0.0.2", "alice", 2)
	var bans []api.Ban
	json.Unmarshal(e.want(200, call{method: "GET", path: "/api/v1/bans", tok: e.token}), &bans)
	if len(bans) != 1 || bans[0].Network != "127.0.0.2/32" || !bans[0].Banned || bans[0].Until == nil {
		t.Fatalf("bans: %+v", bans)
	}
	if f := ftptest.DialFrom(t, e.ftp, "127.0.0.2"); func() int { code, _ := f.Read(); return code }() == 220 {
		t.Fatal("the banned address is greeted")
	}
	e.want(400, call{method: "DELETE", path: "/api/v1/bans/not-an-address", tok: e.token})
	e.want(404, call{method: "DELETE", path: "/api/v1/bans/198.51.100.7", tok: e.token})
	e.want(204, call{method: "DELETE", path: "/api/v1/bans/127.0.0.2", tok: e.token})
	f := ftptest.DialFrom(t, e.ftp, "127.0.0.2")
	if code, _ := f.Read(); code != 220 {
		t.Fatalf("after the ban was lifted: %d", code)
	}
	json.Unmarshal(e.want(200, call{method: "GET", path: "/api/v1/bans", tok: e.token}), &bans)
	if len(bans) != 0 {
		t.Errorf("bans after the lift: %+v", bans)
	}
}

// slowOverwrite has alice store name (size bytes, returned), then
// overwrite it with 200 MiB sent slowly; done gives that upload's end.
func (e *adminEnv) slowOverwrite(name string, size int) (old []byte, done chan error) {
	e.t.Helper()
	ctx := context.Background()
	c, err := client.Dial(ctx, e.ftp, &client.Config{User: "alice", Password: "alice-pw", Retries: -1, MaxConns: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	old = seeded(uint64(size), size)
	if _, err := c.Store(ctx, name, bytes.NewReader(old), nil); err != nil {
		e.t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() {
		_, err := c.Store(ctx, name, &slowReader{left: 200 << 20}, nil)
		done <- err
	}()
	return old, done
}

// guess tries n wrong passwords of user from the address from, a
// connection each.
func guess(t *testing.T, addr, from, user string, n int) {
	t.Helper()
	for range n {
		f := ftptest.DialFrom(t, addr, from)
		f.Read()
		f.Expect("USER "+user, 331)
		f.Cmd("PASS wrong")
	}
}

// slowReader is an upload of left bytes that a client sends slowly: 64 KiB
// every 5 ms (about 12 MiB/s), so that it is still running when a test
// looks at it and ends it.
type slowReader struct{ left int64 }

func (r *slowReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	time.Sleep(5 * time.Millisecond) // the pace of a slow client
	n := int(min(int64(len(p)), 64<<10, r.left))
	clear(p[:n])
	r.left -= int64(n)
	return n, nil
}

// storeAs logs in to addr as user and uploads size bytes to big.bin: the
// upload's error, or the login's.
func storeAs(ctx context.Context, addr, user, pass string, size int) error {
	c, err := client.Dial(ctx, addr, &client.Config{User: user, Password: pass, Retries: -1})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Store(ctx, "big.bin", bytes.NewReader(make([]byte, size)), nil)
	return err
}
