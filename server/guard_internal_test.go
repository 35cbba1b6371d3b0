//go:build unix

package server

import (
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/tlscert"
)

// tlsClient is Python's ftplib as the client: it connects, says so, waits
// for a line on its standard input, secures the control connection, sends
// NOOP (so the session has replaced its connection before the 200), says
// so, and waits for its standard input to close.
const tlsClient = `
import ftplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
f = ftplib.FTP_TLS(context=ctx)
f.connect("127.0.0.1", int(sys.argv[1]), timeout=10)
print("connected", flush=True)
sys.stdin.readline()
f.auth()
f.voidcmd("NOOP")
print("secured", flush=True)
sys.stdin.read()
`

// TestWakeAfterAUTHTLS: AUTH TLS replaces the session's connection on the
// session goroutine; Shutdown's wake and Close's kill reach the session
// from another goroutine with nothing else in between. Under -race this
// fails when they read the replaced field instead of the connection that
// never changes.
//
// The race detector counts every socket write followed by any socket read
// in the process as synchronization (syscall's ioSync), so a client in this
// process would hide the race. The client is a separate process, and the
// test learns that the session is secured by reading the client's output
// through x/sys/unix, which the detector does not tie to the session's
// writes.
func TestWakeAfterAUTHTLS(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("FERRY_INTEROP") == "1" {
			t.Fatal("required (FERRY_INTEROP=1): python3")
		}
		t.Skip("no python3")
	}
	dir := t.TempDir()
	cert, _, err := tlscert.LoadOrCreate(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{TLS: &tls.Config{GetCertificate: cert.GetCertificate}, Auth: auth.Func(nil)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.CommandContext(t.Context(), python, "-c", tlsClient, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer cmd.Wait()
	defer in.Close()
	fd := int(out.Fd())
	awaitLine(t, fd, "connected")

	var sess *session
	srv.mu.Lock()
	for s := range srv.sessions {
		sess = s
	}
	srv.mu.Unlock()
	in.Write([]byte("go\n"))
	awaitLine(t, fd, "secured")
	sess.wake()
	sess.kill()
}

// awaitLine reads fd with unix.Read until a line equal to want.
func awaitLine(t *testing.T, fd int, want string) {
	t.Helper()
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := unix.Read(fd, b)
		if n == 0 || err != nil {
			t.Fatalf("client ended before %q: %v (%q so far)", want, err, line)
		}
		if b[0] != '\n' {
			line = append(line, b[0])
			continue
		}
		if strings.TrimSpace(string(line)) == want {
			return
		}
		line = line[:0]
	}
}
