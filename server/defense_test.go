package server_test

import (
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
)

func expectClosed(t *testing.T, c *ftptest.Conn) {
	t.Helper()
	c.C.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c.R); err != nil || len(b) > 0 {
		t.Fatalf("connection not closed: %q %v", b, err)
	}
}

// TestDefenderBans: failed logins from one address lead to a ban (421 at
// connect, one fail2ban line), which the allow-list and other addresses
// escape.
func TestDefenderBans(t *testing.T) {
	t.Parallel()
	var logs ftptest.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	def := defender.New(defender.Config{Threshold: 4, BanTime: time.Hour, Logger: logger,
		AllowList: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}})
	srv := ftptest.NewServer(t, ftptest.Options{Logger: logger, Config: func(s *server.Server) {
		s.Defender = def
		s.MaxLoginAttempts = 10
	}})
	dial := func(from string) *ftptest.Conn {
		c := ftptest.DialFrom(t, srv.Addr, from)
		if code, msg := c.Read(); code != 220 {
			t.Fatalf("greeting from %s: %d %s", from, code, msg)
		}
		return c
	}
	// 127.0.0.2: three failures, then the fourth bans: 421 and closed.
	c := dial("127.0.0.2")
	for i := 0; i < 3; i++ {
		c.Expect("USER alice", 331)
		c.Expect("PASS wrong", 530)
	}
	c.Expect("USER alice", 331)
	c.Expect("PASS wrong", 421)
	expectClosed(t, c)
	// Banned at connect, even with the right password in hand.
	b := ftptest.DialFrom(t, srv.Addr, "127.0.0.2")
	if code, msg := b.Read(); code != 421 || !strings.Contains(msg, "Too many errors") {
		t.Fatalf("banned address greeted with %d %s", code, msg)
	}
	expectClosed(t, b)
	// Another address is served; the allow-listed one is never banned.
	dial("127.0.0.1").Login(ftptest.Writer)
	a := dial("127.0.0.3")
	for i := 0; i < 8; i++ {
		a.Expect("USER alice", 331)
		a.Expect("PASS wrong", 530)
	}
	dial("127.0.0.3").Login(ftptest.Writer)
	if n := strings.Count(logs.String(), `msg="defender ban" ip=127.0.0.2 `); n != 1 {
		t.Fatalf("%d ban lines for 127.0.0.2, want 1:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "PASS wrong") || strings.Contains(logs.String(), "wrong") {
		t.Fatal("a password reached the log")
	}
}

// TestCrossProtocol: an HTTP request on the control port ends the session
// at its first line; nothing after it runs.
func TestCrossProtocol(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{})
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\nUSER alice\r\nPASS secret\r\nDELE keep\r\n",
		"CONNECT example.com:21 HTTP/1.1\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	} {
		c := srv.Dial(t)
		c.C.Write([]byte(req))
		if code, msg := c.Read(); code != 421 || !strings.Contains(msg, "not HTTP") {
			t.Fatalf("%q: %d %s", req[:10], code, msg)
		}
		expectClosed(t, c)
	}
	srv.Dial(t).Login(ftptest.Writer).Expect("NOOP", 200)
}

// TestBadCommandsBeforeLogin: five unknown or out-of-order commands are
// answered; the sixth ends the session. After login, probing is free.
func TestBadCommandsBeforeLogin(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{})
	c := srv.Dial(t)
	c.Expect("XYZZY", 500)
	c.Expect("LIST", 530)
	c.Expect("XSITE 1", 500)
	c.Expect("RETR x", 530)
	c.Send("Host: example.com") // header lines do not parse as commands
	if code, _ := c.Read(); code != 500 {
		t.Fatal(code)
	}
	c.Send("FOO")
	if code, _ := c.Read(); code != 500 {
		t.Fatal(code)
	}
	if code, msg := c.Read(); code != 421 || !strings.Contains(msg, "bad commands") {
		t.Fatalf("sixth bad command: %d %s", code, msg)
	}
	expectClosed(t, c)
	d := srv.Dial(t).Login(ftptest.Writer)
	for i := 0; i < 20; i++ {
		d.Expect("XYZZY", 500)
	}
	d.Expect("NOOP", 200)
}

// TestUnauthenticatedAndUserLimits: unauthenticated connections are capped
// per address and in all; logging in frees the slot; a user's sessions are
// capped too.
func TestUnauthenticatedAndUserLimits(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) {
		s.MaxUnauthenticatedPerIP = 2
		s.MaxUnauthenticated = 3
		s.MaxSessionsPerUser = 2
	}})
	a := ftptest.DialFrom(t, srv.Addr, "127.0.0.1")
	a.Read()
	b := ftptest.DialFrom(t, srv.Addr, "127.0.0.1")
	b.Read()
	if code, _ := ftptest.DialFrom(t, srv.Addr, "127.0.0.1").Read(); code != 421 {
		t.Fatalf("third unauthenticated from one address: %d", code)
	}
	c := ftptest.DialFrom(t, srv.Addr, "127.0.0.2")
	c.Read()
	if code, _ := ftptest.DialFrom(t, srv.Addr, "127.0.0.4").Read(); code != 421 {
		t.Fatalf("fourth unauthenticated in all: %d", code)
	}
	a.Login(ftptest.Writer) // a slot is free again
	d := ftptest.DialFrom(t, srv.Addr, "127.0.0.1")
	if code, _ := d.Read(); code != 220 {
		t.Fatalf("after a login: %d", code)
	}
	b.Login(ftptest.Writer)
	// alice has two sessions: a third login is refused and closed.
	d.Expect("USER "+ftptest.Writer, 331)
	d.Expect("PASS "+ftptest.Password, 421)
	expectClosed(t, d)
	// REIN gives the user slot back (and counts as unauthenticated again).
	a.Expect("REIN", 220)
	c.Login(ftptest.Writer)
	c.Expect("NOOP", 200)
	// d's session ends right after its connection closes.
	waitFor(t, func() bool { return srv.Sessions() == 3 })
}

// listDefender is a Defender of the test's own: it bans the addresses
// listed and records every event it is told.
type listDefender struct {
	mu     sync.Mutex
	banned map[netip.Addr]bool
	events []defender.Event
}

func (d *listDefender) Banned(ip netip.Addr) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Now().Add(time.Hour), d.banned[ip]
}

func (d *listDefender) Record(ip netip.Addr, ev defender.Event) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, ev)
	return d.banned[ip]
}

func (d *listDefender) Unban(ip netip.Addr) {}

// TestDefenderInterface: the server asks any Defender, not only the
// in-memory one: a listed address is refused at connect, another is
// served and its failed login is recorded.
func TestDefenderInterface(t *testing.T) {
	t.Parallel()
	d := &listDefender{banned: map[netip.Addr]bool{netip.MustParseAddr("127.0.0.5"): true}}
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) { s.Defender = d }})
	banned := ftptest.DialFrom(t, srv.Addr, "127.0.0.5")
	if code, _ := banned.Read(); code != 421 {
		t.Errorf("a banned address got %d, want 421", code)
	}
	c := ftptest.DialFrom(t, srv.Addr, "127.0.0.6")
	if code, _ := c.Read(); code != 220 {
		t.Fatalf("greeting %d", code)
	}
	c.Expect("USER alice", 331)
	c.Expect("PASS wrong", 530)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.events) != 1 || d.events[0] != defender.LoginFailed {
		t.Errorf("events %v, want one failed login", d.events)
	}
}
