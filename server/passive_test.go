package server_test

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
)

func epsvPort(t *testing.T, c *ftptest.Conn) string {
	t.Helper()
	p, err := ftp.ParseEPSV(c.Expect("EPSV", 229))
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(int(p))
}

// TestPassiveListenerReuse: a session hands out the same passive port for
// consecutive transfers, drops connections left queued on it before reuse,
// and gives the port back when it goes quiet.
func TestPassiveListenerReuse(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) { s.PassiveKeep = 200 * time.Millisecond }})
	c := srv.Dial(t).Login(ftptest.Writer)
	upload(t, c, modes[0], "STOR", "f", []byte("content"))
	port := epsvPort(t, c)
	// A stray connection left queued by a failed RETR…
	stray, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatal(err)
	}
	defer stray.Close()
	c.Expect("RETR missing", 550)
	// …is dropped when the port is handed out again, and the next transfer
	// gets the client's new connection.
	if again := epsvPort(t, c); again != port {
		t.Fatalf("port %s then %s: listener not reused", port, again)
	}
	stray.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := stray.Read(make([]byte, 1)); err == nil || n > 0 {
		t.Fatalf("stray connection got data")
	}
	d, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatal(err)
	}
	c.Expect("RETR f", 150)
	if got := string(ftptest.ReadAll(t, d)); got != "content" {
		t.Fatalf("got %q", got)
	}
	if code, _ := c.Read(); code != 226 {
		t.Fatal(code)
	}
	// Quiet for longer than PassiveKeep: the port is closed.
	waitFor(t, func() bool {
		conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
	if got := string(download(t, c, modes[0], "RETR f")); got != "content" {
		t.Fatalf("after release: %q", got)
	}
}

// TestPassiveRangeSearched: with a configured range whose other ports are
// taken, PASV/EPSV still finds the free one.
func TestPassiveRangeSearched(t *testing.T) {
	t.Parallel()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	// Below the ephemeral ports (32768 on Linux), which the suite's own
	// connections take by the thousand, and above the ranges bench/rounds
	// gives its servers.
	var lo int
	var other error // a failure other than a port in use
	for base := 27000 + int(time.Now().UnixNano()%2000); base < 32700 && lo == 0 && other == nil; base += 7 {
		var ls []net.Listener
		for p := base; p < base+5; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				if !errors.Is(err, syscall.EADDRINUSE) {
					other = err
				}
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == 5 {
			lo = base
			held = ls
		} else {
			for _, l := range ls {
				l.Close()
			}
		}
	}
	if other != nil {
		t.Fatalf("listen: %v", other)
	}
	if lo == 0 {
		ftptest.Missing(t, "no five free consecutive ports")
	}
	free := lo + 3
	held[3].Close()
	held = append(held[:3], held[4])
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) {
		s.PassivePorts = server.PortRange{Lo: uint16(lo), Hi: uint16(lo + 4)}
	}})
	for i := 0; i < 5; i++ {
		c := srv.Dial(t).Login(ftptest.Writer)
		if got := epsvPort(t, c); got != strconv.Itoa(free) {
			t.Fatalf("EPSV port %s, want the only free one %d", got, free)
		}
		c.Expect("QUIT", 221)
		waitFor(t, func() bool { return srv.Sessions() == 0 })
	}
}
