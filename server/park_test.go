package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
)

// parkWatch hears a server's sessions park and resume, and end.
type parkWatch struct {
	parked, resumed, closed chan struct{}
}

// parkServer starts a server whose parks, resumes and session ends the
// test can wait for.
func parkServer(t *testing.T, config func(*server.Server)) (*ftptest.Server, *parkWatch) {
	t.Helper()
	if !server.CanPark {
		t.Skip("sessions park on Linux only")
	}
	w := &parkWatch{make(chan struct{}, 10000), make(chan struct{}, 10000), make(chan struct{}, 10000)}
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) {
		server.SetParkHook(s, func(parked bool) {
			if parked {
				w.parked <- struct{}{}
			} else {
				w.resumed <- struct{}{}
			}
		})
		s.Hooks.ConnState = func(c *server.Conn, st server.ConnState) {
			if st == server.StateClosed {
				w.closed <- struct{}{}
			}
		}
		if config != nil {
			config(s)
		}
	}})
	return srv, w
}

// wait receives n events from ch, or fails the test after 10 s.
func wait(t *testing.T, ch chan struct{}, n int, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: %d of %d", what, i, n)
		}
	}
}

// TestIdleSessionParks: a logged-in session that waits for a command
// parks, and a command wakes it as if it had never stopped, again and
// again.
func TestIdleSessionParks(t *testing.T) {
	t.Parallel()
	srv, w := parkServer(t, nil)
	c := srv.Dial(t).Login(ftptest.Writer)
	c.Expect("CWD /", 250)
	for i := 0; i < 3; i++ {
		wait(t, w.parked, 1, "parked")
		c.Expect("MKD d"+fmt.Sprint(i), 257)
		wait(t, w.resumed, 1, "resumed")
	}
	// Two commands in one segment: the second is read from the buffer
	// the first left, without parking in between.
	wait(t, w.parked, 1, "parked")
	c.Send("NOOP\r\nPWD")
	if code, _ := c.Read(); code != 200 {
		t.Fatal(code)
	}
	if code, msg := c.Read(); code != 257 || !strings.Contains(msg, `"/"`) {
		t.Fatal(code, msg)
	}
	if n := srv.Sessions(); n != 1 {
		t.Fatalf("%d sessions", n)
	}
}

// TestParkedTimeouts: a parked session still ends at its idle timeout, and
// one not logged in at its login timeout, neither before it.
func TestParkedTimeouts(t *testing.T) {
	t.Parallel()
	const timeout = 3 * server.ParkAfter
	for _, tc := range []struct {
		name, user, msg string
	}{{"idle", ftptest.Writer, "Idle timeout"}, {"login", "", "Login timeout"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, w := parkServer(t, func(s *server.Server) {
				s.Options.IdleTimeout = timeout
				s.Options.LoginTimeout = timeout
			})
			start := time.Now()
			c := srv.Dial(t)
			if tc.user != "" {
				start = time.Now()
				c.Login(tc.user)
			}
			wait(t, w.parked, 1, "parked")
			code, msg := c.Read()
			if code != 421 || !strings.Contains(msg, tc.msg) {
				t.Fatalf("%d %s", code, msg)
			}
			if d := time.Since(start); d < timeout {
				t.Fatalf("ended after %v, before its timeout %v", d, timeout)
			}
			wait(t, w.closed, 1, "closed")
		})
	}
}

// TestParkedShutdownAndClose: Shutdown ends parked sessions with 421 and
// returns; Close ends them at once; a client hanging up ends its parked
// session. Each time the server forgets the sessions.
func TestParkedShutdownAndClose(t *testing.T) {
	t.Parallel()
	const n = 20
	for _, how := range []string{"shutdown", "close", "hang up"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			srv, w := parkServer(t, nil)
			var cs []*ftptest.Conn
			for i := 0; i < n; i++ {
				cs = append(cs, srv.Dial(t).Login(ftptest.Reader))
			}
			wait(t, w.parked, n, "parked")
			switch how {
			case "shutdown":
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := srv.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
				for _, c := range cs {
					if code, msg := c.Read(); code != 421 || !strings.Contains(msg, "shutting down") {
						t.Fatalf("%d %s", code, msg)
					}
				}
			case "close":
				srv.Close()
				for _, c := range cs {
					c.C.SetReadDeadline(time.Now().Add(10 * time.Second))
					if _, err := c.R.ReadByte(); err == nil {
						t.Fatal("a closed session answered")
					}
				}
			case "hang up":
				for _, c := range cs {
					c.C.Close()
				}
			}
			wait(t, w.closed, n, "closed")
			if got := srv.Sessions(); got != 0 {
				t.Fatalf("%d sessions left", got)
			}
		})
	}
}

// TestTLSSessionNeverParks: a session over TLS keeps its goroutine (its
// connection may hold decrypted bytes no socket event announces), while
// a plain session beside it, idle for less time, parks.
func TestTLSSessionNeverParks(t *testing.T) {
	cfg, pool := ftptest.TLS(t)
	srv, w := parkServer(t, func(s *server.Server) { s.TLS = cfg })
	c := srv.Dial(t)
	c.Expect("AUTH TLS", 234)
	conn := tls.Client(c.C, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := conn.Handshake(); err != nil {
		t.Fatal(err)
	}
	tc := (&ftptest.Conn{C: conn, R: bufio.NewReader(conn)}).WithT(t)
	tc.Login(ftptest.Writer)
	before := server.Parked()
	plain := srv.Dial(t).Login(ftptest.Writer)
	wait(t, w.parked, 1, "plain session parked")
	if got := server.Parked() - before; got != 1 {
		t.Fatalf("%d sessions parked, want the plain one only", got)
	}
	tc.Expect("NOOP", 200)
	plain.Expect("NOOP", 200)
}

// TestIdleSessionsCost: many idle sessions hold no goroutine and little
// memory. The figure the issue asks for (10,000 sessions, the whole
// process's RSS) is measured by bench/load idle; this keeps its cause from
// coming back: a goroutine's stack, a read buffer, a context map per
// session.
func TestIdleSessionsCost(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 500 sessions")
	}
	const n = 500
	srv, w := parkServer(t, nil)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Warm up: the poller, the pools and the server's maps exist before.
	for i := 0; i < 20; i++ {
		c := rawLogin(t, srv.Addr)
		wait(t, w.parked, 1, "parked")
		c.Close()
		wait(t, w.closed, 1, "closed")
	}
	gc := func() { runtime.GC(); runtime.GC() } // and the pools' victim caches
	gc()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	for i := 0; i < n; i++ {
		conns = append(conns, rawLogin(t, srv.Addr))
	}
	wait(t, w.parked, n, "parked")
	gc()
	runtime.ReadMemStats(&after)
	if g := runtime.NumGoroutine() - goroutines; g > n/10 {
		t.Errorf("%d idle sessions hold %d goroutines", n, g)
	}
	// Both ends of each connection are in this process; the client's
	// end holds about 300 bytes. (Before parking: 500 goroutines, each
	// with its stack, and a read buffer and a context map per session.)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d B of heap per idle session (both ends)", per)
	if per > 2500 {
		t.Errorf("an idle session costs %d B of heap", per)
	}
	// All of them wake at once and answer.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReaderSize(c, 64)
			if _, err := c.Write([]byte("NOOP\r\n")); err != nil {
				errs <- err
				return
			}
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "200 ") {
				errs <- fmt.Errorf("NOOP: %q %v", line, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// rawLogin logs in over a bare connection that keeps no read buffer.
func rawLogin(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReaderSize(c, 16)
	expect := func(code string) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(line, code+" ") {
				return
			}
			if !strings.HasPrefix(line, code+"-") && !strings.HasPrefix(line, " ") {
				t.Fatalf("want %s: %q", code, line)
			}
		}
	}
	expect("220")
	fmt.Fprintf(c, "USER %s\r\n", ftptest.Reader)
	expect("331")
	fmt.Fprintf(c, "PASS %s\r\n", ftptest.Password)
	expect("230")
	c.SetDeadline(time.Time{})
	return c
}
