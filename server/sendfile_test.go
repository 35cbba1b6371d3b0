package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage/localfs"
)

// localServer serves a temporary directory holding one file "big" of size
// random bytes, from local disk (downloads of 1 MiB or more from it take
// the blocking sendfile path on Linux).
func localServer(t *testing.T, size int, config func(*server.Server)) (*ftptest.Server, []byte) {
	t.Helper()
	dir := t.TempDir()
	data := randBytes(size)
	if err := os.WriteFile(filepath.Join(dir, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	fsys, err := localfs.New(dir, localfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ftptest.NewServer(t, ftptest.Options{FS: fsys, Config: config}), data
}

// TestSendfileDownloads: downloads from local disk arrive whole in every
// data mode, from an offset after REST, and in ASCII mode; with the
// blocking path on, off, and bounded to one thread while four downloads
// run at once (the others take the poller).
func TestSendfileDownloads(t *testing.T) {
	t.Parallel()
	for _, threads := range []int{0, -1, 1} {
		t.Run(fmt.Sprint("threads=", threads), func(t *testing.T) {
			t.Parallel()
			srv, data := localServer(t, 8<<20+123, func(s *server.Server) { s.SendfileThreads = threads })
			c := srv.Dial(t).Login(ftptest.Reader)
			for _, m := range modes {
				if got := download(t, c, m, "RETR big"); !bytes.Equal(got, data) {
					t.Fatalf("%s: got %d bytes, want %d", m.name, len(got), len(data))
				}
			}
			c.Expect("REST 3000007", 350)
			if got := download(t, c, modes[0], "RETR big"); !bytes.Equal(got, data[3000007:]) {
				t.Fatalf("after REST: got %d bytes, want %d", len(got), len(data)-3000007)
			}
			c.Expect("TYPE A", 200)
			if got, want := download(t, c, modes[0], "RETR big"), toCRLF(data); !bytes.Equal(got, want) {
				t.Fatalf("ASCII: got %d bytes, want %d", len(got), len(want))
			}
			c.Expect("TYPE I", 200)
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := srv.Dial(t).Login(ftptest.Reader)
					d := c.Passive()
					c.Expect("RETR big", 150)
					got, err := io.ReadAll(d)
					if err != nil || !bytes.Equal(got, data) {
						t.Errorf("concurrent download %d: %d bytes, %v", i, len(got), err)
					}
					if code, text := c.Read(); code != 226 {
						t.Errorf("concurrent download %d: %d %s", i, code, text)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// toCRLF is TYPE A's conversion: every LF not after a CR gets one.
func toCRLF(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// TestSendfileABOR: a download blocked in sendfile(2) (the client reads no
// more) is counted by STAT and ended by ABOR: 426, then 226, and the data
// connection is shut, so the client sees its end instead of hanging.
func TestSendfileABOR(t *testing.T) {
	t.Parallel()
	srv, _ := localServer(t, 64<<20, nil)
	c := srv.Dial(t).Login(ftptest.Reader)
	d := c.Passive()
	c.Expect("RETR big", 150)
	if _, err := io.ReadFull(d, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	// The socket buffers fill and the sender blocks; STAT counts what
	// its first chunks moved.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, text := c.Cmd("STAT")
		if code != 211 || !strings.Contains(text, "Transfer in progress: RETR /big") {
			t.Fatalf("STAT: %d %q", code, text)
		}
		if !strings.Contains(text, "\n0 bytes transferred") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("STAT counts no byte: %q", text)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Send("ABOR")
	if code, _ := c.Read(); code != 426 {
		t.Fatalf("transfer: %d", code)
	}
	if code, _ := c.Read(); code != 226 {
		t.Fatalf("ABOR: %d", code)
	}
	d.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, d); err != nil && strings.Contains(err.Error(), "timeout") {
		t.Fatalf("data connection still open after ABOR: %v", err)
	}
	c.Expect("NOOP", 200)
}

// TestSendfileStall: a download whose client stops reading ends with 426
// after the stall timeout (SO_SNDTIMEO on the blocking socket), and the
// session goes on.
func TestSendfileStall(t *testing.T) {
	t.Parallel()
	srv, data := localServer(t, 64<<20, func(s *server.Server) { s.DataStallTimeout = 300 * time.Millisecond })
	c := srv.Dial(t).Login(ftptest.Reader)
	d := c.Passive()
	c.Expect("RETR big", 150)
	io.ReadFull(d, make([]byte, 1000))
	start := time.Now()
	if code, text := c.Read(); code != 426 {
		t.Fatalf("stalled download: %d %s", code, text)
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("426 after %v, before the stall timeout", el)
	}
	d.Close()
	c.Expect("REST 60000000", 350)
	if got := download(t, c, modes[0], "RETR big"); !bytes.Equal(got, data[60000000:]) {
		t.Fatalf("next download: %d bytes", len(got))
	}
}

// TestSendfileShutdownDeadline: Shutdown's deadline ends a download
// blocked in sendfile(2) (the client reads no more) instead of waiting on
// it.
func TestSendfileShutdownDeadline(t *testing.T) {
	t.Parallel()
	srv, _ := localServer(t, 64<<20, nil)
	c := srv.Dial(t).Login(ftptest.Reader)
	d := c.Passive()
	c.Expect("RETR big", 150)
	io.ReadFull(d, make([]byte, 1000))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown still waits for the blocked download")
	}
}
