package server

import (
	"bufio"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/tlscert"
)

// TestWakeAfterAUTHTLS: AUTH TLS replaces the session's connection on the
// session goroutine; Shutdown's wake and Close's kill reach the session
// from another goroutine with nothing else in between. Under -race this
// fails when they read the replaced field instead of the connection that
// never changes.
func TestWakeAfterAUTHTLS(t *testing.T) {
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
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	expect := func(r *bufio.Reader, code string) {
		t.Helper()
		l, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, code) {
			t.Fatalf("got %q %v, want %s", l, err, code)
		}
	}
	expect(r, "220")
	var sess *session
	srv.mu.Lock()
	for s := range srv.sessions {
		sess = s
	}
	srv.mu.Unlock()
	nc.Write([]byte("AUTH TLS\r\n"))
	expect(r, "234")
	tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
	tc.Write([]byte("NOOP\r\n"))
	expect(bufio.NewReader(tc), "200")
	sess.wake()
	sess.kill()
}
