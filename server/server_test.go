package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/localfs"
	"github.com/ferryftp/ferry/storage/memfs"
)

// dataMode opens the data connection of one transfer: setup runs before
// the transfer command, conn after it.
type dataMode struct {
	name  string
	setup func(t testing.TB, c *ftptest.Conn) func() net.Conn
}

var modes = []dataMode{
	{"EPSV", func(t testing.TB, c *ftptest.Conn) func() net.Conn {
		d := c.Passive()
		return func() net.Conn { return d }
	}},
	{"PASV", func(t testing.TB, c *ftptest.Conn) func() net.Conn {
		d := c.PASV()
		return func() net.Conn { return d }
	}},
	{"EPRT", func(t testing.TB, c *ftptest.Conn) func() net.Conn {
		ln := c.Active(false)
		return func() net.Conn { return acceptUnprivileged(t, ln) }
	}},
	{"PORT", func(t testing.TB, c *ftptest.Conn) func() net.Conn {
		ln := c.Active(true)
		return func() net.Conn { return acceptUnprivileged(t, ln) }
	}},
}

// acceptUnprivileged accepts the server's active data connection and checks
// it comes from an unprivileged port.
func acceptUnprivileged(t testing.TB, ln net.Listener) net.Conn {
	d := ftptest.Accept(t, ln)
	if p := netip.MustParseAddrPort(d.RemoteAddr().String()).Port(); p < 1024 {
		t.Errorf("active connection from privileged port %d", p)
	}
	return d
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// upload runs STOR name over mode and returns the final reply code.
func upload(t *testing.T, c *ftptest.Conn, m dataMode, verb, name string, data []byte) int {
	t.Helper()
	conn := m.setup(t, c)
	c.Send(verb + " " + name)
	code, text := c.Read()
	if code != 150 {
		t.Fatalf("%s: got %d %s", verb, code, text)
	}
	d := conn()
	d.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := d.Write(data); err != nil {
		t.Fatal(err)
	}
	d.Close()
	code, _ = c.Read()
	return code
}

// download runs cmd over mode and returns the data.
func download(t *testing.T, c *ftptest.Conn, m dataMode, cmd string) []byte {
	t.Helper()
	conn := m.setup(t, c)
	c.Send(cmd)
	if code, text := c.Read(); code != 150 {
		t.Fatalf("%s: got %d %s", cmd, code, text)
	}
	data := ftptest.ReadAll(t, conn())
	if code, text := c.Read(); code != 226 {
		t.Fatalf("%s: end %d %s", cmd, code, text)
	}
	return data
}

// TestDataModes uploads, downloads and lists in every data mode over IPv4
// and IPv6, on both storage backends.
func TestDataModes(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		for _, backend := range []string{"memfs", "localfs"} {
			for _, m := range modes {
				if network == "tcp6" && m.name == "PASV" || network == "tcp6" && m.name == "PORT" {
					continue // IPv4-only commands
				}
				t.Run(network+"/"+backend+"/"+m.name, func(t *testing.T) {
					t.Parallel()
					var fsys storage.FS = memfs.New()
					if backend == "localfs" {
						l, err := localfs.New(t.TempDir(), localfs.Options{})
						if err != nil {
							t.Fatal(err)
						}
						fsys = l
					}
					srv := ftptest.NewServer(t, ftptest.Options{FS: fsys, Network: network})
					c := srv.Dial(t).Login(ftptest.Writer)
					data := randBytes(3<<20 + 17)
					if code := upload(t, c, m, "STOR", "f.bin", data); code != 226 {
						t.Fatalf("STOR: %d", code)
					}
					got := download(t, c, m, "RETR f.bin")
					if !bytes.Equal(got, data) {
						t.Fatalf("RETR: %d bytes, want %d", len(got), len(data))
					}
					got = download(t, c, m, "RETR f.bin") // the setup is per transfer
					if !bytes.Equal(got, data) {
						t.Fatal("second RETR differs")
					}
					list := string(download(t, c, m, "LIST"))
					if !strings.Contains(list, fmt.Sprintf(" %d ", len(data))) || !strings.HasSuffix(list, " f.bin\r\n") {
						t.Errorf("LIST: %q", list)
					}
					if nl := string(download(t, c, m, "NLST")); nl != "f.bin\r\n" {
						t.Errorf("NLST: %q", nl)
					}
					mlsd := string(download(t, c, m, "MLSD"))
					if !strings.Contains(mlsd, fmt.Sprintf("type=file;size=%d;", len(data))) || !strings.Contains(mlsd, "type=cdir;") {
						t.Errorf("MLSD: %q", mlsd)
					}
					c.Expect("RETR f.bin", 425) // no data setup left
				})
			}
		}
	}
}

func TestRestAndAppend(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{})
	c := srv.Dial(t).Login(ftptest.Writer)
	m := modes[0]
	data := randBytes(100000)
	upload(t, c, m, "STOR", "f", data[:40000])
	c.Expect("REST 40000", 350)
	if code := upload(t, c, m, "STOR", "f", data[40000:]); code != 226 {
		t.Fatal(code)
	}
	c.Expect("REST 1000", 350)
	if got := download(t, c, m, "RETR f"); !bytes.Equal(got, data[1000:]) {
		t.Fatalf("REST RETR: %d bytes", len(got))
	}
	c.Expect("REST 200000", 350)
	c.Passive()
	c.Expect("RETR f", 554)
	if code := upload(t, c, m, "APPE", "f", []byte("tail")); code != 226 {
		t.Fatal(code)
	}
	if got := download(t, c, m, "RETR f"); !bytes.Equal(got, append(data, "tail"...)) {
		t.Fatalf("APPE: %d bytes", len(got))
	}
	// STOU names the file in its 150 reply (RFC 1123).
	d := c.Passive()
	c.Send("STOU")
	code, text := c.Read()
	if code != 150 || !strings.HasPrefix(text, "FILE: ") {
		t.Fatalf("STOU: %d %q", code, text)
	}
	d.Write([]byte("unique"))
	d.Close()
	if code, _ := c.Read(); code != 226 {
		t.Fatal(code)
	}
	c.Expect("SIZE "+strings.TrimPrefix(text, "FILE: "), 213)
}

func TestASCIIMode(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{})
	c := srv.Dial(t).Login(ftptest.Writer)
	c.Expect("TYPE A", 200)
	upload(t, c, modes[0], "STOR", "t.txt", []byte("one\r\ntwo\r\nthree"))
	c.Expect("TYPE I", 200)
	if got := download(t, c, modes[0], "RETR t.txt"); string(got) != "one\ntwo\nthree" {
		t.Fatalf("stored %q", got)
	}
	c.Expect("TYPE A", 200)
	if got := download(t, c, modes[0], "RETR t.txt"); string(got) != "one\r\ntwo\r\nthree" {
		t.Fatalf("ASCII RETR %q", got)
	}
}

// TestAtomicUpload interrupts uploads in three ways and checks that the old
// file survives each, then resumes the partial upload with REST+STOR.
func TestAtomicUpload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fsys, _ := localfs.New(dir, localfs.Options{})
	srv := ftptest.NewServer(t, ftptest.Options{FS: fsys})
	old := []byte("old content\n")
	os.WriteFile(filepath.Join(dir, "f"), old, 0o644)
	newData := randBytes(1 << 20)

	check := func() {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(dir, "f"))
		if err != nil || !bytes.Equal(got, old) {
			t.Fatalf("old file changed: %d bytes, %v", len(got), err)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".ferry-tmp") {
				t.Fatalf("temporary file left: %s", e.Name())
			}
		}
	}
	// 1. ABOR in the middle.
	c := srv.Dial(t).Login(ftptest.Writer)
	d := c.Passive()
	c.Expect("STOR f", 150)
	d.Write(newData[:300000])
	c.Send("ABOR")
	if code, _ := c.Read(); code != 426 {
		t.Fatalf("ABOR: transfer reply %d", code)
	}
	if code, _ := c.Read(); code != 226 {
		t.Fatalf("ABOR reply %d", code)
	}
	check()
	// 2. Data connection reset.
	d = c.Passive()
	c.Expect("STOR f", 150)
	d.Write(newData[:300000])
	d.(*net.TCPConn).SetLinger(0)
	d.Close()
	if code, _ := c.Read(); code != 426 {
		t.Fatalf("reset: %d", code)
	}
	check()
	// 3. Control connection dropped.
	c2 := srv.Dial(t).Login(ftptest.Writer)
	d = c2.Passive()
	c2.Expect("STOR f", 150)
	d.Write(newData[:300000])
	// The server has written them all before the hang-up.
	waitFor(t, func() bool {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && strings.HasPrefix(e.Name(), localfs.Prefix+"tmp.") && fi.Size() == 300000 {
				return true
			}
		}
		return false
	})
	c2.C.Close()
	waitFor(t, func() bool { return srv.Sessions() == 1 })
	check()
	// The received bytes are resumable: REST 300000 + STOR the rest.
	c.Expect("REST 300000", 350)
	if code := upload(t, c, modes[0], "STOR", "f", newData[300000:]); code != 226 {
		t.Fatal(code)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "f"))
	if !bytes.Equal(got, newData) {
		t.Fatalf("resumed file: %d bytes", len(got))
	}
}

// waitFor polls cond for up to 10 s (for effects in other goroutines that
// have no event to wait on).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached")
}

// TestDuringTransfer checks that STAT, NOOP and ABOR are answered while a
// download runs, and that ABOR gives 426 then 226.
func TestDuringTransfer(t *testing.T) {
	t.Parallel()
	fsys := memfs.New()
	srv := ftptest.NewServer(t, ftptest.Options{FS: fsys})
	c := srv.Dial(t).Login(ftptest.Writer)
	upload(t, c, modes[0], "STOR", "big", randBytes(32<<20))
	d := c.Passive()
	c.Expect("RETR big", 150)
	buf := make([]byte, 1000)
	io.ReadFull(d, buf) // the transfer is running, the client reads no more
	code, text := c.Cmd("STAT")
	if code != 211 || !strings.Contains(text, "Transfer in progress: RETR /big") {
		t.Fatalf("STAT: %d %q", code, text)
	}
	c.Expect("NOOP", 200)
	c.Send("ABOR")
	if code, _ := c.Read(); code != 426 {
		t.Fatalf("transfer: %d", code)
	}
	if code, _ := c.Read(); code != 226 {
		t.Fatalf("ABOR: %d", code)
	}
	c.Expect("ABOR", 225)
	c.Expect("NOOP", 200)
}

// TestABORBehindWaitingCommand: an ABOR pipelined behind a command that
// waits for the running download aborts that download (426) instead of
// waiting for its end; the waiting command then runs (425: it has no data
// connection) and the ABOR is answered last (225: nothing left to abort).
func TestABORBehindWaitingCommand(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"pipelined", "sent later"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			watching := make(chan struct{}, 1)
			srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) {
				server.SetWatchHook(s, func() {
					select {
					case watching <- struct{}{}:
					default:
					}
				})
			}})
			c := srv.Dial(t).Login(ftptest.Writer)
			upload(t, c, modes[0], "STOR", "big", randBytes(32<<20))
			d := c.Passive()
			c.Expect("RETR big", 150)
			io.ReadFull(d, make([]byte, 1000)) // running; the client reads no more
			if name == "pipelined" {
				c.Send("NLST\r\nABOR")
			} else {
				for len(watching) > 0 { // watchers of earlier commands
					<-watching
				}
				c.Send("NLST")
				select { // the watcher waits for input: the ABOR comes later
				case <-watching:
				case <-time.After(10 * time.Second):
					t.Fatal("NLST behind the transfer is not watched")
				}
				c.Send("ABOR")
			}
			for _, want := range []int{426, 425, 225} {
				if code, text := c.Read(); code != want {
					t.Fatalf("got %d %q, want %d", code, text, want)
				}
			}
			c.Expect("NOOP", 200)
			d.Close()
		})
	}
}

// retrPastThief: a thief from the address thief connects to the passive
// data address first and reads nothing; c's RETR of name then reaches the
// client, which gets want.
func retrPastThief(t *testing.T, c *ftptest.Conn, data, thief, name, want string) {
	t.Helper()
	tc, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(thief)}}).Dial("tcp", data)
	if err != nil {
		ftptest.Missing(t, "cannot connect from %s: %v", thief, err)
	}
	defer tc.Close()
	c.Send("RETR " + name)
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := tc.Read(make([]byte, 10)); err == nil || n > 0 {
		t.Fatalf("thief read %d bytes", n)
	}
	d, err := net.Dial("tcp", data)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.Read(); code != 150 {
		t.Fatal(code)
	}
	if got := ftptest.ReadAll(t, d); string(got) != want {
		t.Fatalf("got %q", got)
	}
	if code, _ := c.Read(); code != 226 {
		t.Fatal(code)
	}
}

// TestBounceAndTheft checks the defaults that stop the FTP bounce attack and
// data-connection theft, and that FXP opens them per account.
func TestBounceAndTheft(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{})
	c := srv.Dial(t).Login(ftptest.Writer)
	upload(t, c, modes[0], "STOR", "f", []byte("payload"))
	c.Expect("PORT 127,0,0,1,0,80", 501)
	c.Expect("EPRT |1|127.0.0.1|22|", 501)
	c.Expect("PORT 127,0,0,2,40,0", 501)
	c.Expect("EPRT |1|127.0.0.2|10240|", 501)

	// A thief from 127.0.0.2 connects first; it is dropped and the real
	// client still gets the data.
	ap, _ := ftpParsePASV(c.Expect("PASV", 227))
	retrPastThief(t, c, ap.String(), "127.0.0.2", "f", "payload")

	// With FXP allowed for 127.0.0.0/8, PORT to 127.0.0.2 works: the
	// server sends to a third host.
	srv.FXP = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	c2 := srv.Dial(t).Login(ftptest.Writer)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		ftptest.Missing(t, "cannot listen on 127.0.0.2: %v", err)
	}
	defer ln.Close()
	p := netip.MustParseAddrPort(ln.Addr().String())
	c2.Expect(fmt.Sprintf("PORT 127,0,0,2,%d,%d", p.Port()>>8, p.Port()&255), 200)
	c2.Expect("RETR f", 150)
	if got := ftptest.ReadAll(t, ftptest.Accept(t, ln)); string(got) != "payload" {
		t.Fatalf("FXP got %q", got)
	}
	if code, _ := c2.Read(); code != 226 {
		t.Fatal(code)
	}
	c2.Expect("PORT 127,0,0,2,0,25", 501) // privileged ports stay refused
}

func TestLimitsAndLines(t *testing.T) {
	t.Parallel()
	global := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) { s.MaxSessions = 1 }})
	global.Dial(t)
	if code, _ := ftptest.Dial(t, global.Addr).Read(); code != 421 {
		t.Fatalf("beyond MaxSessions: %d", code)
	}
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) {
		s.MaxSessionsPerIP = 2
		s.MaxLoginAttempts = 3
	}})
	a := srv.Dial(t)
	srv.Dial(t)
	c := ftptest.Dial(t, srv.Addr)
	if code, _ := c.Read(); code != 421 {
		t.Fatalf("third session: %d", code)
	}
	// A 5 KiB line is refused; the session goes on.
	a.Send(strings.Repeat("A", 5000))
	if code, _ := a.Read(); code != 500 {
		t.Fatal(code)
	}
	a.Expect("NOOP", 200)
	// Telnet: IAC IP and IAC DM before a command are dropped, IAC WILL is
	// refused with IAC DONT.
	a.Send("\xff\xf4\xff\xf2NOOP")
	if code, _ := a.Read(); code != 200 {
		t.Fatal(code)
	}
	a.C.Write([]byte("\xff\xfb\x01NOOP\r\n"))
	b := make([]byte, 3)
	io.ReadFull(a.R, b)
	if string(b) != "\xff\xfe\x01" {
		t.Fatalf("telnet refusal %q", b)
	}
	if code, _ := a.Read(); code != 200 {
		t.Fatal(code)
	}
	// Failed logins: 530, 530, then 421 and the end.
	for i := 0; i < 2; i++ {
		a.Expect("USER alice", 331)
		a.Expect("PASS nope", 530)
	}
	a.Expect("USER nobody", 331) // same answer for an unknown user
	a.Expect("PASS nope", 421)
	a.C.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.R.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed: %v", err)
	}
}

// TestIdleTimeoutSparesTransfers: the idle timeout ends a quiet session but
// not one whose transfer is still running.
func TestIdleTimeoutSparesTransfers(t *testing.T) {
	t.Parallel()
	// The timeout must be long beside the gap between two commands of a
	// test client under -race on a loaded machine (150 ms was not).
	const idle = time.Second
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) { s.IdleTimeout = idle }})
	c := srv.Dial(t).Login(ftptest.Writer)
	data := randBytes(8 << 20)
	upload(t, c, modes[0], "STOR", "f", data)
	d := c.Passive()
	c.Expect("RETR f", 150)
	// Read slowly for longer than the idle timeout.
	var got []byte
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(idle * 3 / 2); time.Now().Before(deadline); {
		n, _ := d.Read(buf[:4096])
		got = append(got, buf[:n]...)
		time.Sleep(20 * time.Millisecond)
	}
	got = append(got, ftptest.ReadAll(t, d)...)
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes", len(got))
	}
	if code, _ := c.Read(); code != 226 {
		t.Fatal(code)
	}
	// Now quiet: 421 arrives without a command.
	if code, text := c.Read(); code != 421 || !strings.Contains(text, "Idle") {
		t.Fatalf("%d %q", code, text)
	}
}

func TestShutdownLetsTransfersFinish(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{})
	c := srv.Dial(t).Login(ftptest.Writer)
	idle := srv.Dial(t).Login(ftptest.Writer)
	data := randBytes(16 << 20)
	upload(t, c, modes[0], "STOR", "f", data)
	d := c.Passive()
	c.Expect("RETR f", 150)
	first := make([]byte, 1000)
	io.ReadFull(d, first)
	done := make(chan error)
	go func() { done <- srv.Shutdown(context.Background()) }()
	if code, _ := idle.Read(); code != 421 {
		t.Fatalf("idle session: %d", code)
	}
	rest := ftptest.ReadAll(t, d)
	if !bytes.Equal(append(first, rest...), data) {
		t.Fatal("transfer cut by shutdown")
	}
	if code, _ := c.Read(); code != 226 {
		t.Fatal(code)
	}
	if code, _ := c.Read(); code != 421 {
		t.Fatal(code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", srv.Addr); err == nil {
		t.Fatal("still accepting")
	}
}

func ftpParsePASV(text string) (netip.AddrPort, error) {
	i := strings.IndexByte(text, '(')
	var h [6]int
	_, err := fmt.Sscanf(text[i:], "(%d,%d,%d,%d,%d,%d)", &h[0], &h[1], &h[2], &h[3], &h[4], &h[5])
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(h[0]), byte(h[1]), byte(h[2]), byte(h[3])}), uint16(h[4]<<8|h[5])), err
}

// TestDataTimeouts: a data connection that never comes gets 425 after the
// connect timeout; one that stalls gets 426 after the stall timeout, and
// the old file survives.
func TestDataTimeouts(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) {
		s.DataConnectTimeout = 100 * time.Millisecond
		s.DataStallTimeout = 200 * time.Millisecond
	}})
	c := srv.Dial(t).Login(ftptest.Writer)
	upload(t, c, modes[0], "STOR", "f", []byte("old"))
	c.Expect("EPSV", 229)
	c.Expect("RETR f", 425)
	// Active mode to a port nobody listens on.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	p := netip.MustParseAddrPort(ln.Addr().String()).Port()
	ln.Close()
	c.Expect(fmt.Sprintf("EPRT |1|127.0.0.1|%d|", p), 200)
	c.Expect("RETR f", 425)
	d := c.Passive()
	c.Expect("STOR f", 150)
	d.Write([]byte("new but stalled"))
	if code, _ := c.Read(); code != 426 {
		t.Fatalf("stalled upload: %d", code)
	}
	if got := download(t, c, modes[0], "RETR f"); string(got) != "old" {
		t.Fatalf("old file changed: %q", got)
	}
}
