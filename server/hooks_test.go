package server_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
)

type ctxKey struct{}

// TestHooks: a session's contexts come from BaseContext and ConnContext,
// and ConnState sees it accepted, logged in, transferring (with the bytes
// moved and the result) and closed, in that order.
func TestHooks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	closed := make(chan struct{})
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) {
		s.Hooks.BaseContext = func(ln net.Listener) context.Context {
			return context.WithValue(context.Background(), ctxKey{}, "base:"+ln.Addr().Network())
		}
		s.Hooks.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, ctxKey{}, ctx.Value(ctxKey{}).(string)+"+conn")
		}
		s.Hooks.ConnState = func(c *server.Conn, st server.ConnState) {
			line := fmt.Sprintf("%s user=%q ctx=%v", st, c.User(), c.Context().Value(ctxKey{}))
			if x := c.Transfer(); x != nil && st == server.StateTransferEnd {
				line += fmt.Sprintf(" %s %s %d %s", x.Verb, x.Path, x.Bytes, x.Result)
			}
			if c.RemoteAddr().Addr().String() != "127.0.0.1" || c.RemoteHost() != "127.0.0.1" || c.ID() == 0 {
				line += " bad identity"
			}
			mu.Lock()
			seen = append(seen, line)
			mu.Unlock()
			if st == server.StateClosed {
				close(closed)
			}
		}
	}})
	c := srv.Dial(t).Login(ftptest.Writer)
	d := c.Passive()
	c.Expect("STOR f.txt", 150)
	d.Write([]byte("hello"))
	d.Close()
	if code, _ := c.Read(); code != 226 {
		t.Fatalf("STOR: %d", code)
	}
	c.Expect("QUIT", 221)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("no StateClosed")
	}
	want := []string{
		`new user="" ctx=base:tcp+conn`,
		`logged in user="alice" ctx=base:tcp+conn`,
		`transfer start user="alice" ctx=base:tcp+conn`,
		`transfer end user="alice" ctx=base:tcp+conn STOR /f.txt 5 ok`,
		`closed user="alice" ctx=base:tcp+conn`,
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("states:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

// TestServeValidatesOptions: Serve refuses options out of their bounds,
// naming the setting, instead of serving with them.
func TestServeValidatesOptions(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{Auth: auth.Func(nil), Options: server.Options{MaxLoginAttempts: -1}}
	if err := srv.Serve(ln); err == nil || !strings.Contains(err.Error(), "max_login_attempts") {
		t.Fatalf("Serve with max_login_attempts -1: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener was left open")
	}
}

// TestActionHook: Action reports logins, failed logins and the file
// operations that succeeded (not those refused); HashUploads gives a STOR
// the SHA-256 of its bytes, and the transfer its final reply code.
func TestActionHook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) {
		s.Hooks.Action = func(c *server.Conn, a server.Action) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, fmt.Sprintf("%s user=%q path=%q to=%q reason=%q", a.Kind, a.User, a.Path, a.To, a.Reason))
		}
		s.Hooks.HashUploads = func(c *server.Conn) bool { return c.User() == ftptest.Writer }
		s.Hooks.ConnState = func(c *server.Conn, st server.ConnState) {
			if x := c.Transfer(); x != nil && st == server.StateTransferEnd {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, fmt.Sprintf("%s %s %d upload=%v sha256=%s", x.Verb, x.Path, x.Code, x.Upload(), x.SHA256))
			}
		}
	}})
	c := srv.Dial(t)
	c.Expect("USER mallory", 331)
	c.Expect("PASS guess", 530)
	c.Login(ftptest.Writer)
	d := c.Passive()
	c.Expect("STOR f.txt", 150)
	d.Write([]byte("hello"))
	d.Close()
	c.Expect("", 226)
	c.Expect("MKD d", 257)
	c.Expect("RNFR f.txt", 350)
	c.Expect("RNTO d/g.txt", 250)
	c.Expect("DELE nothing", 550) // refused: not reported
	c.Expect("DELE d/g.txt", 250)
	c.Expect("RMD d", 250)
	d = c.Passive()
	c.Expect("RETR nothing", 550)
	d.Close()
	c.Expect("QUIT", 221)
	want := []string{
		`login_failed user="mallory" path="" to="" reason="bad credentials"`,
		`login user="alice" path="" to="" reason=""`,
		`STOR /f.txt 226 upload=true sha256=2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824`,
		`mkdir user="alice" path="/d" to="" reason=""`,
		`rename user="alice" path="/f.txt" to="/d/g.txt" reason=""`,
		`delete user="alice" path="/d/g.txt" to="" reason=""`,
		`rmdir user="alice" path="/d" to="" reason=""`,
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("actions:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

// TestReload: reloaded options apply to the next session (its greeting),
// invalid ones change nothing, and a TLS policy reloaded to required
// refuses a clear-text login of a new session.
func TestReload(t *testing.T) {
	t.Parallel()
	cfg, _ := ftptest.TLS(t)
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) { s.TLS = cfg }})
	c := srv.Dial(t) // greeted with the first welcome
	o := srv.Server.Options
	o.Welcome = "Reloaded."
	if err := srv.Server.Reload(o, server.TLSRequired, false); err != nil {
		t.Fatal(err)
	}
	bad := o
	bad.MaxLoginAttempts = -1 // min 0
	if err := srv.Server.Reload(bad, server.TLSOptional, false); err == nil {
		t.Fatal("invalid options reloaded")
	}
	c.Login(ftptest.Writer) // the running session keeps its start's TLS policy
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	line := make([]byte, 64)
	n, _ := conn.Read(line)
	if got := string(line[:n]); !strings.HasPrefix(got, "220 Reloaded.") {
		t.Fatalf("greeting after reload: %q", got)
	}
	fmt.Fprintf(conn, "USER alice\r\n")
	n, _ = conn.Read(line)
	if got := string(line[:n]); !strings.HasPrefix(got, "530") {
		t.Fatalf("USER in clear text with tls required: %q", got)
	}
}
