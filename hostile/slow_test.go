package hostile

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
)

// TestSlowClientsHeldOff: while 1,000 connections trickle bytes and never
// finish a line, a legitimate client logs in and transfers in about the
// time it takes alone; the slow ones are cut at the command timeout.
func TestSlowClientsHeldOff(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	w := newWorld(t, func(s *server.Server) { s.CommandTimeout = 2 * time.Second })
	payload := bytes.Repeat([]byte("x"), 1<<20)
	session := func() time.Duration {
		start := time.Now()
		c := w.Dial(t).Login(ftptest.Writer)
		if code := store(t, c, "f", payload); code != 226 {
			t.Fatalf("STOR beside the slow connections: %d", code)
		}
		c.Expect("QUIT", 221)
		return time.Since(start)
	}
	alone := session()
	for i := 0; i < 3; i++ {
		alone = min(alone, session())
	}

	const slow = 1000
	conns := make([]net.Conn, 0, slow)
	for i := 0; i < slow; i++ {
		// Spread over 127.0.0.0/8 as a botnet would be.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 1, byte(i/250), byte(1+i%250))}}
		nc, err := d.Dial("tcp", w.Addr)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		defer nc.Close()
		nc.Write([]byte("U")) // the start of a line that never ends
		conns = append(conns, nc)
	}
	// Every slow connection is held: a line started, not finished.
	var loaded time.Duration = time.Hour
	for i := 0; i < 3; i++ {
		loaded = min(loaded, session())
	}
	t.Logf("login + 1 MiB STOR + QUIT: %v alone, %v beside %d slow connections", alone, loaded, slow)
	if loaded > 10*alone+100*time.Millisecond {
		t.Fatalf("with %d slow connections a session took %v, alone %v", slow, loaded, alone)
	}
	// Each slow connection gets 421 once its line is older than the
	// command timeout, and is closed.
	for i, nc := range conns {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(nc)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("slow connection %d still open after the command timeout: %q", i, b)
		}
		if !bytes.Contains(b, []byte("421 Command line not completed in time")) {
			t.Fatalf("slow connection %d: %q %v", i, b, err)
		}
	}
	w.check(t)
}

// TestLoginTimeout: over a real socket, a connection that never logs in is
// closed at the login timeout however it keeps sending whole commands.
func TestLoginTimeout(t *testing.T) {
	w := newWorld(t, func(s *server.Server) { s.LoginTimeout = time.Second })
	c := w.Dial(t)
	start := time.Now()
	for i := 0; i < 4; i++ { // 400 ms of the second: room for a loaded machine
		c.Expect("NOOP", 200)
		time.Sleep(100 * time.Millisecond) // whole commands, never a login
	}
	code, text := c.Read()
	if code != 421 || text != "Login timeout, closing control connection." {
		t.Fatalf("got %d %q", code, text)
	}
	if el := time.Since(start); el < 900*time.Millisecond || el > 5*time.Second {
		t.Fatalf("closed after %v, want about 1s", el)
	}
	expectClosed(t, c)
	w.check(t)
}
