package users

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/auth/password"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/memfs"
)

func TestStore(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users.toml")
	h, _ := password.Hash("pw1")
	os.MkdirAll(filepath.Join(dir, "alice"), 0o755)
	if err := Save(file, []User{{Name: "alice", Password: h, Home: "alice", Permission: ReadWrite, FXP: []string{"192.0.2.0/24", "198.51.100.7"}}}); err != nil {
		t.Fatal(err)
	}
	s := &Store{Path: file, Anonymous: memfs.New()}
	ctx := context.Background()
	a, err := s.Authenticate(ctx, auth.ConnInfo{}, "alice", "pw1")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Perms.Write || !a.Perms.AllowsFXP(netip.MustParseAddr("192.0.2.9")) || !a.Perms.AllowsFXP(netip.MustParseAddr("198.51.100.7")) || a.Perms.AllowsFXP(netip.MustParseAddr("198.51.100.8")) {
		t.Fatalf("perms %+v", a.Perms)
	}
	// The cached credential still needs the right password.
	if _, err := s.Authenticate(ctx, auth.ConnInfo{}, "alice", "pw1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, auth.ConnInfo{}, "alice", "pw2"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := s.Authenticate(ctx, auth.ConnInfo{}, "mallory", "pw1"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	if a, err := s.Authenticate(ctx, auth.ConnInfo{}, "anonymous", "x@y"); err != nil || a.Perms.Write {
		t.Fatalf("anonymous: %v %+v", err, a)
	}
	// A changed file is reread: the new password works, the cached old one not.
	h2, _ := password.Hash("pw2")
	time.Sleep(10 * time.Millisecond) // a distinct mtime on coarse file systems
	Save(file, []User{{Name: "alice", Password: h2, Home: "alice"}})
	if _, err := s.Authenticate(ctx, auth.ConnInfo{}, "alice", "pw1"); err == nil {
		t.Fatal("old password after change")
	}
	if a, err := s.Authenticate(ctx, auth.ConnInfo{}, "alice", "pw2"); err != nil || a.Perms.Write {
		t.Fatalf("new password: %v; read-only by default: %+v", err, a)
	}
}

func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	h, _ := password.Hash("x")
	for name, body := range map[string]string{
		"plain password": "[[user]]\nname='a'\npassword='x'\nhome='h'\n",
		"bad name":       "[[user]]\nname='a b'\npassword='" + h + "'\nhome='h'\n",
		"no home":        "[[user]]\nname='a'\npassword='" + h + "'\n",
		"bad perm":       "[[user]]\nname='a'\npassword='" + h + "'\nhome='h'\npermission='all'\n",
		"bad fxp":        "[[user]]\nname='a'\npassword='" + h + "'\nhome='h'\nfxp=['nowhere']\n",
		"bad tls":        "[[user]]\nname='a'\npassword='" + h + "'\nhome='h'\ntls='sometimes'\n",
		"bad cert":       "[[user]]\nname='a'\npassword='" + h + "'\nhome='h'\nclient_cert='maybe'\n",
		"unknown key":    "[[user]]\nname='a'\npassword='" + h + "'\nhome='h'\nadmin=true\n",
		"twice":          "[[user]]\nname='a'\npassword='" + h + "'\nhome='h'\n[[user]]\nname='a'\npassword='" + h + "'\nhome='h'\n",
	} {
		f := filepath.Join(dir, "u.toml")
		os.WriteFile(f, []byte(body), 0o600)
		if _, err := Load(f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestTLSKeys: tls = "required" and tls_session_reuse = false reach the
// account.
func TestTLSKeys(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users.toml")
	h, _ := password.Hash("pw")
	os.MkdirAll(filepath.Join(dir, "h"), 0o755)
	body := "[[user]]\nname='a'\npassword='" + h + "'\nhome='h'\ntls='required'\n" +
		"[[user]]\nname='b'\npassword='" + h + "'\nhome='h'\ntls_session_reuse=false\n" +
		"[[user]]\nname='c'\npassword='" + h + "'\nhome='h'\nclient_cert='login'\n"
	os.WriteFile(file, []byte(body), 0o600)
	s := &Store{Path: file}
	a, err := s.Authenticate(context.Background(), auth.ConnInfo{}, "a", "pw")
	if err != nil || !a.Perms.TLSRequired || a.Perms.NoTLSSessionReuse {
		t.Fatalf("a: %+v, %v", a, err)
	}
	b, err := s.Authenticate(context.Background(), auth.ConnInfo{}, "b", "pw")
	if err != nil || b.Perms.TLSRequired || !b.Perms.NoTLSSessionReuse {
		t.Fatalf("b: %+v, %v", b, err)
	}
	// Login by certificate alone: c only, and never an unknown user.
	if cc, err := s.AuthenticateCert(context.Background(), auth.ConnInfo{}, "c"); err != nil || !cc.Perms.TLSRequired || cc.Perms.ClientCert != auth.CertLogin {
		t.Fatalf("c by certificate: %+v, %v", cc, err)
	}
	for _, u := range []string{"a", "b", "nobody"} {
		if _, err := s.AuthenticateCert(context.Background(), auth.ConnInfo{}, u); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("%s by certificate: %v", u, err)
		}
	}
}

// TestUnknownUserTiming: rejecting an unknown user costs what a wrong
// password costs (one full hash), so timing does not tell which names exist.
func TestUnknownUserTiming(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users.toml")
	h, _ := password.Hash("right")
	os.MkdirAll(filepath.Join(dir, "alice"), 0o755)
	if err := Save(file, []User{{Name: "alice", Password: h, Home: "alice"}}); err != nil {
		t.Fatal(err)
	}
	s := &Store{Path: file}
	ctx := context.Background()
	s.Authenticate(ctx, auth.ConnInfo{}, "alice", "right") // load the file
	// The two are timed in turns, so that a busy spell of the machine
	// slows both alike; the medians of nine each are compared.
	timeOne := func(user string) time.Duration {
		start := time.Now()
		if _, err := s.Authenticate(ctx, auth.ConnInfo{}, user, "wrong"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	var ks, us []time.Duration
	for range 9 {
		ks = append(ks, timeOne("alice"))
		us = append(us, timeOne("mallory"))
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	known, unknown := median(ks), median(us)
	t.Logf("wrong password %v, unknown user %v", known, unknown)
	if r := float64(unknown) / float64(known); r < 0.4 || r > 2.5 {
		t.Fatalf("unknown user %v against wrong password %v: ratio %.2f", unknown, known, r)
	}
}

func TestAdmits(t *testing.T) {
	day := time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC)
	e := &entry{User: User{Expires: "2027-03-31"}}
	e.expires, _ = ParseExpires(e.Expires)
	from := func(s string) auth.ConnInfo { return auth.ConnInfo{Remote: netip.MustParseAddrPort(s)} }
	if err := e.admits(from("192.0.2.1:1"), day.Add(23*time.Hour+59*time.Minute)); err != nil {
		t.Errorf("on its last day: %v", err)
	}
	if err := e.admits(from("192.0.2.1:1"), day.AddDate(0, 0, 1)); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("the day after: %v", err)
	}
	e = &entry{allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}}
	for addr, ok := range map[string]bool{"192.0.2.9:1": true, "[::ffff:192.0.2.9]:1": true, "[2001:db8::1]:1": true, "198.51.100.1:1": false, "[::1]:1": false} {
		if err := e.admits(from(addr), day); (err == nil) != ok {
			t.Errorf("from %s: %v", addr, err)
		}
	}
	e = &entry{User: User{Disabled: true}}
	if err := e.admits(from("192.0.2.1:1"), day); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("disabled: %v", err)
	}
	for _, bad := range []string{"31/03/2027", "2027-02-30", "tomorrow"} {
		if _, err := ParseExpires(bad); err == nil {
			t.Errorf("ParseExpires(%q) accepted", bad)
		}
	}
	if at, err := ParseExpires("2027-03-31T12:00:00+02:00"); err != nil || !at.Equal(time.Date(2027, 3, 31, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("RFC 3339: %v %v", at, err)
	}
}

// TestQuotaRemovedThenSet: usage is not kept while a user has no quota,
// so a quota set again counts the files anew instead of an old figure.
func TestQuotaRemovedThenSet(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users.toml")
	h, _ := password.Hash("pw")
	os.MkdirAll(filepath.Join(dir, "alice"), 0o755)
	with := User{Name: "alice", Password: h, Home: "alice", Permission: ReadWrite, QuotaBytes: 1000}
	without := with
	without.QuotaBytes = 0
	s := &Store{Path: file}
	ctx := context.Background()
	login := func(u User) storage.FS {
		t.Helper()
		if err := Save(file, []User{u}); err != nil {
			t.Fatal(err)
		}
		a, err := s.Authenticate(ctx, auth.ConnInfo{}, "alice", "pw")
		if err != nil {
			t.Fatal(err)
		}
		return a.FS
	}
	put := func(f storage.FS, name string, n int) {
		t.Helper()
		u, err := f.Create(ctx, name, storage.CreateOptions{})
		if err == nil {
			_, err = u.Write(make([]byte, n))
		}
		if err == nil {
			err = u.Commit()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	put(login(with), "a", 100)
	put(login(without), "b", 200) // not counted: no quota
	f := login(with)
	if left, err := f.(storage.SpaceReporter).Available(ctx, "."); err != nil || left != 700 {
		t.Fatalf("AVBL %d %v, want 700 (1000 less the 300 stored)", left, err)
	}
}

// TestQuotaUse: the metrics' view of quotas: users with a quota only,
// with the running ledger's usage once they logged in.
func TestQuotaUse(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users.toml")
	h, _ := password.Hash("pw")
	os.MkdirAll(filepath.Join(dir, "alice"), 0o755)
	os.WriteFile(filepath.Join(dir, "alice", "a"), make([]byte, 300), 0o644)
	Save(file, []User{
		{Name: "alice", Password: h, Home: "alice", Permission: ReadWrite, QuotaBytes: 1000},
		{Name: "bob", Password: h, Home: "alice"},
	})
	s := &Store{Path: file}
	use := func() map[string][2]int64 {
		m := map[string][2]int64{}
		s.QuotaUse(func(u string, used, limit int64) { m[u] = [2]int64{used, limit} })
		return m
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if m := use(); len(m) != 0 {
		t.Fatalf("before a login (usage not counted yet): %v", m)
	}
	if _, err := s.Authenticate(context.Background(), auth.ConnInfo{}, "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if m := use(); len(m) != 1 || m["alice"] != [2]int64{300, 1000} {
		t.Fatalf("after alice's login: %v", m)
	}
}
