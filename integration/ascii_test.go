package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestASCIIUploads: lftp's `put -a` and ncftp's `ascii` then `put` rely
// on RFC 959's default type (ASCII) and send no TYPE A; their text
// uploads are stored with the server's LF line ends, as ProFTPD, pure-ftpd
// and vsftpd store them, not with the CRLF of the wire.
func TestASCIIUploads(t *testing.T) {
	lftp := need(t, "lftp")
	ncftp := need(t, "ncftp")
	f := startFerry(t, "127.0.0.1:0")
	local := t.TempDir()
	text := "first line\nsecond line\n\nlast line\n"
	src := filepath.Join(local, "notes.txt")
	if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	run(t, lftp, "-c", lftpScript(f, "set ftp:passive-mode on", "put -a "+src+" -o by-lftp.txt"))
	sameFile(t, filepath.Join(f.Root, "by-lftp.txt"), []byte(text))

	host, port, _ := strings.Cut(f.Addr, ":")
	cmd := exec.Command(ncftp, "-u", f.User, "-p", f.Password, "-P", port, host)
	cmd.Dir = local
	cmd.Stdin = strings.NewReader("ascii\nput notes.txt\nquit\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ncftp: %v\n%s", err, out)
	}
	sameFile(t, filepath.Join(f.Root, "notes.txt"), []byte(text))
}
