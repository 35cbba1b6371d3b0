package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage/memfs"
)

// pipeListener hands out net.Pipe connections, so that a server runs
// inside a synctest bubble and its timeouts run on the fake clock.
type pipeListener struct {
	ch     chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 21}
}

func (l *pipeListener) dial() net.Conn {
	return l.dialFrom(netip.MustParseAddrPort("127.0.0.1:40000"))
}

// dialFrom connects as a client at the address from.
func (l *pipeListener) dialFrom(from netip.AddrPort) net.Conn {
	a, b := net.Pipe()
	l.ch <- &tcpish{b, from}
	return a
}

// tcpish gives a pipe end TCP addresses, as the server expects.
type tcpish struct {
	net.Conn
	remote netip.AddrPort
}

func (t *tcpish) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(t.remote) }
func (t *tcpish) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 21} }

func pipeServer(t *testing.T, config func(*server.Server)) (*server.Server, *pipeListener) {
	fsys := memfs.New()
	srv := &server.Server{
		Logger: slog.New(slog.DiscardHandler),
		Auth: auth.Func(func(ctx context.Context, c auth.ConnInfo, user, pass string) (*auth.Account, error) {
			if user == "alice" && pass == "secret" {
				return &auth.Account{User: user, FS: fsys, Perms: auth.Permissions{Write: true}}, nil
			}
			return nil, auth.ErrBadCredentials
		}),
	}
	if config != nil {
		config(srv)
	}
	ln := newPipeListener()
	go srv.Serve(ln)
	return srv, ln
}

// login connects as alice, reading the greeting and the replies to USER
// and PASS.
func (l *pipeListener) login(t *testing.T) (net.Conn, *bufio.Reader) {
	c := l.dial()
	r := bufio.NewReader(c)
	readLine(t, r)
	io.WriteString(c, "USER alice\r\nPASS secret\r\n")
	readLine(t, r)
	readLine(t, r)
	return c, r
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

func TestIdleTimeoutFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, ln := pipeServer(t, nil)
		defer srv.Close()
		_, r := ln.login(t)
		start := time.Now()
		if l := readLine(t, r); !strings.HasPrefix(l, "421 ") {
			t.Fatalf("got %q", l)
		}
		if d := time.Since(start); d != 15*time.Minute {
			t.Fatalf("idle timeout after %v, want the default 15m", d)
		}
		if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("not closed: %v", err)
		}
	})
}

// TestLoginAndCommandTimeoutsFakeClock: a connection that does not log in
// within the login timeout is closed, however it trickles bytes; a command
// line must arrive whole within the command timeout of its first byte.
func TestLoginAndCommandTimeoutsFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, ln := pipeServer(t, nil)
		defer srv.Close()
		expect421 := func(r *bufio.Reader, start time.Time, want time.Duration, what string) {
			t.Helper()
			l := readLine(t, r)
			if !strings.HasPrefix(l, "421 ") || !strings.Contains(l, what) {
				t.Fatalf("got %q, want 421 … %s", l, what)
			}
			if d := time.Since(start); d != want {
				t.Fatalf("%s after %v, want %v", what, d, want)
			}
			if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
				t.Fatalf("not closed: %v", err)
			}
		}

		// Whole commands every 25 s, never logging in: cut at 1 minute.
		c := ln.dial()
		r := bufio.NewReader(c)
		readLine(t, r)
		start := time.Now()
		var writers sync.WaitGroup
		defer writers.Wait()
		writers.Go(func() {
			for i := 0; i < 3; i++ {
				if _, err := io.WriteString(c, "NOOP\r\n"); err != nil {
					return
				}
				time.Sleep(25 * time.Second)
			}
		})
		for i := 0; i < 3; i++ {
			if l := readLine(t, r); !strings.HasPrefix(l, "200") {
				t.Fatalf("NOOP: %q", l)
			}
		}
		expect421(r, start, time.Minute, "Login timeout")

		// One byte every 5 s: the line is cut 30 s after its first byte,
		// though bytes keep coming.
		c2, r2 := ln.login(t)
		time.Sleep(time.Minute) // logged in: the login timeout is over
		start = time.Now()
		writers.Go(func() {
			for _, b := range []byte("NOOP NOOP NOOP NOOP\r\n") {
				if _, err := c2.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(5 * time.Second)
			}
		})
		expect421(r2, start, 30*time.Second, "not completed in time")
	})
}

func TestLoginFailDelayFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, ln := pipeServer(t, func(s *server.Server) { s.LoginFailDelay = 2 * time.Second })
		defer srv.Close()
		c := ln.dial()
		r := bufio.NewReader(c)
		readLine(t, r)
		io.WriteString(c, "USER alice\r\n")
		readLine(t, r)
		start := time.Now()
		io.WriteString(c, "PASS wrong\r\n")
		if l := readLine(t, r); !strings.HasPrefix(l, "530 ") {
			t.Fatal(l)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Fatalf("failed PASS answered after %v", d)
		}
		// A right password is answered at once.
		io.WriteString(c, "USER alice\r\n")
		readLine(t, r)
		start = time.Now()
		io.WriteString(c, "PASS secret\r\n")
		if l := readLine(t, r); !strings.HasPrefix(l, "230 ") {
			t.Fatal(l)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("login took %v", d)
		}
		c.Close()
	})
}

// TestShutdownIdleFakeClock: Shutdown tells an idle session 421 at once,
// without waiting for its idle timeout or for Shutdown's deadline.
func TestShutdownIdleFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, ln := pipeServer(t, nil)
		c := ln.dial()
		r := bufio.NewReader(c)
		readLine(t, r)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// The idle session is told at once.
		go func() {
			if l := readLine(t, r); !strings.HasPrefix(l, "421 ") {
				t.Errorf("got %q", l)
			}
		}()
		start := time.Now()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("Shutdown took %v of fake time", d)
		}
		if srv.Sessions() != 0 {
			t.Fatal("sessions left")
		}
	})
}
