package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/storage/localfs"
)

// TestDefaultTypeASCII: RFC 959 (3.1.1.1, 5.1) makes ASCII the default
// representation type, so a client that sends no TYPE — lftp's `put -a`,
// ncftp's `ascii` — has its CRLF line ends stored as the server's LF,
// and the 150 reply says which type is in force. REIN returns to ASCII.
func TestDefaultTypeASCII(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fsys, _ := localfs.New(dir, localfs.Options{})
	srv := ftptest.NewServer(t, ftptest.Options{FS: fsys})
	c := srv.Dial(t).LoginASCII(ftptest.Writer)
	if got := c.Expect("STAT", 211); !strings.Contains(got, "TYPE: ASCII") {
		t.Errorf("STAT of a new session: %q", got)
	}
	d := c.Passive()
	code, msg := c.Cmd("STOR first.txt")
	if code != 150 || !strings.Contains(msg, "ASCII mode") {
		t.Fatalf("STOR in a new session: %d %q, want 150 naming ASCII mode", code, msg)
	}
	d.Write([]byte("one\r\ntwo\r\n"))
	d.Close()
	if code, msg := c.Read(); code != 226 {
		t.Fatalf("STOR: %d %s", code, msg)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "first.txt")); string(b) != "one\ntwo\n" {
		t.Errorf("stored %q, want LF line ends", b)
	}
	// TYPE I stores bytes as sent; after REIN the default is ASCII again.
	c.Expect("TYPE I", 200)
	c.Expect("REIN", 220)
	c.LoginASCII(ftptest.Writer)
	if got := c.Expect("STAT", 211); !strings.Contains(got, "TYPE: ASCII") {
		t.Errorf("STAT after REIN: %q", got)
	}
}
