package server_test

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/storage/memfs"
)

// dialFrom opens a control connection from a chosen local address, so the
// client's address differs from the servers' (127.0.0.1).
func dialFrom(t *testing.T, local, addr string) *ftptest.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		ftptest.Missing(t, "cannot dial from %s: %v", local, err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &ftptest.Conn{C: nc, R: bufio.NewReader(nc)}
	return c
}

// TestFXP copies a file from server A to server B directly (a third-party
// transfer), driven by a client at 127.0.0.2: refused by default, done when
// both accounts allow the other server's network.
func TestFXP(t *testing.T) {
	t.Parallel()
	srcFS, dstFS := memfs.New(), memfs.New()
	a := ftptest.NewServer(t, ftptest.Options{FS: srcFS})
	b := ftptest.NewServer(t, ftptest.Options{FS: dstFS})
	data := randBytes(2<<20 + 5)
	// Put the file on A.
	ca := a.Dial(t).Login(ftptest.Writer)
	upload(t, ca, modes[0], "STOR", "src.bin", data)

	run := func() (int, int) {
		ca := dialFrom(t, "127.0.0.2", a.Addr).WithT(t)
		ca.Read()
		ca.Login(ftptest.Writer)
		cb := dialFrom(t, "127.0.0.2", b.Addr).WithT(t)
		cb.Read()
		cb.Login(ftptest.Writer)
		// B listens, A connects to it.
		text := cb.Expect("PASV", 227)
		ap, err := ftp.ParsePASV(text)
		if err != nil {
			t.Fatal(err)
		}
		arg, _ := ftp.FormatPORT(ap)
		if code, _ := ca.Cmd("PORT " + arg); code != 200 {
			return code, 0
		}
		cb.Send("STOR copy.bin")
		ca.Send("RETR src.bin")
		if code, text := ca.Read(); code != 150 {
			t.Fatalf("RETR: %d %s", code, text)
		}
		codeB, _ := cb.Read()
		if codeB != 150 {
			return 200, codeB
		}
		if code, _ := ca.Read(); code != 226 {
			t.Fatalf("A end: %d", code)
		}
		codeB, _ = cb.Read()
		return 200, codeB
	}
	// Default: A refuses to connect anywhere but its client.
	if code, _ := run(); code != 501 {
		t.Fatalf("PORT to a third host: %d, want 501", code)
	}
	// Allowed on both sides: A may connect to 127.0.0.1, B may accept from it.
	a.FXP = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	b.FXP = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	if portCode, code := run(); portCode != 200 || code != 226 {
		t.Fatalf("FXP: PORT %d, STOR end %d", portCode, code)
	}
	c := b.Dial(t).Login(ftptest.Writer)
	if got := download(t, c, modes[0], "RETR copy.bin"); !bytes.Equal(got, data) {
		t.Fatalf("copied %d bytes, want %d", len(got), len(data))
	}
	if !strings.Contains(c.Expect("SIZE copy.bin", 213), "2097157") {
		t.Fatal("size")
	}
}
