package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage/localfs"
)

// sink discards what it is given, with no ReadFrom, so copies into it go
// through the caller's buffer.
type sink struct{}

func (sink) Write(p []byte) (int, error) { return len(p), nil }

// Buffer sizes of Ferry's client, used by the baseline's client too, so
// that the two runs differ only on the server side.
const (
	downBuf = 256 << 10
	upBuf   = 128 << 10
)

func tlsSetup(b *testing.B, dir string) (*ftptest.Server, *client.Client, *tls.Config, *x509.CertPool) {
	conf, pool := ftptest.TLS(b)
	fsys, err := localfs.New(dir, localfs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv := ftptest.NewServer(b, ftptest.Options{FS: fsys, Config: func(s *server.Server) { s.TLS = conf }})
	c, err := client.Dial(context.Background(), srv.Addr, &client.Config{User: ftptest.Writer, Password: ftptest.Password,
		TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return srv, c, conf, pool
}

// rawTLS runs one minimal crypto/tls transfer: serve runs on the server's
// connection, take on the client's.
func rawTLS(b *testing.B, conf *tls.Config, pool *x509.CertPool, serve func(*tls.Conn), take func(*tls.Conn)) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := ln.Accept()
		if err != nil {
			return
		}
		tc := tls.Server(s, conf)
		serve(tc)
		tc.Close()
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	tc := tls.Client(d, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	take(tc)
	tc.Close()
	<-done
}

// BenchmarkTLSRETR: a PROT P download from Ferry beside a minimal
// crypto/tls server copying the same file (io.Copy) to the same client
// code, alternating in one run.
func BenchmarkTLSRETR(b *testing.B) {
	size := benchSize()
	dir := benchDir(b)
	big := filepath.Join(dir, "big")
	makeFile(b, big, size)
	_, c, conf, pool := tlsSetup(b, dir)
	sideBySide(b, size, func(b *testing.B) {
		var n int64
		rawTLS(b, conf, pool, func(tc *tls.Conn) {
			f, _ := os.Open(big)
			io.Copy(tc, f)
			f.Close()
		}, func(tc *tls.Conn) {
			n, _ = io.CopyBuffer(sink{}, tc, make([]byte, downBuf))
		})
		if n != size {
			b.Fatalf("baseline got %d", n)
		}
	}, func(b *testing.B) {
		d, err := c.Retrieve(context.Background(), "big", nil)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(sink{}, d)
		d.Close()
		if err != nil || n != size {
			b.Fatalf("RETR %d bytes, %v", n, err)
		}
	})
}

// BenchmarkTLSSTOR: a PROT P upload to Ferry (atomic, into a new file)
// beside a minimal crypto/tls server copying the connection into a new
// file (io.Copy), the same client code sending.
func BenchmarkTLSSTOR(b *testing.B) {
	size := benchSize()
	dir := benchDir(b)
	src := filepath.Join(b.TempDir(), "src")
	if os.Getenv("FERRY_BENCH_DIR") != "" {
		src = filepath.Join(dir, "..", filepath.Base(dir)+"-src")
		b.Cleanup(func() { os.Remove(src) })
	}
	makeFile(b, src, size)
	_, c, conf, pool := tlsSetup(b, dir)
	// Before each run of either side, both sides' earlier files go, so each
	// writes into the same empty directory.
	clean := func(b *testing.B) {
		os.Remove(filepath.Join(dir, "base"))
		c.Delete(context.Background(), "up")
	}
	sideBySidePrep(b, size, clean, func(b *testing.B) {
		var n int64
		rawTLS(b, conf, pool, func(tc *tls.Conn) {
			f, _ := os.Create(filepath.Join(dir, "base"))
			n, _ = io.Copy(f, tc)
			f.Close()
		}, func(tc *tls.Conn) {
			f, _ := os.Open(src)
			io.CopyBuffer(tc, struct{ io.Reader }{f}, make([]byte, upBuf))
			f.Close()
			tc.CloseWrite()
			io.Copy(io.Discard, tc)
		})
		if n != size {
			b.Fatalf("baseline stored %d", n)
		}
	}, clean, func(b *testing.B) {
		f, _ := os.Open(src)
		n, err := c.Store(context.Background(), "up", f, nil)
		f.Close()
		if err != nil || n != size {
			b.Fatalf("STOR %d bytes, %v", n, err)
		}
	})
}
