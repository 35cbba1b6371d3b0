package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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

// localServer serves a temporary directory from local disk, as o says.
// With size > 0 the directory holds a file "big" of size random bytes
// (downloads of 1 MiB or more take the thread path on Linux). It returns
// the directory and the file's bytes.
func localServer(t *testing.T, size int, o ftptest.Options) (*ftptest.Server, string, []byte) {
	t.Helper()
	dir := t.TempDir()
	var data []byte
	if size > 0 {
		data = randBytes(size)
		if err := os.WriteFile(filepath.Join(dir, "big"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsys, err := localfs.New(dir, localfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o.FS = fsys
	return ftptest.NewServer(t, o), dir, data
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
			srv, _, data := localServer(t, 8<<20+123, ftptest.Options{Config: func(s *server.Server) { s.TransferThreads = threads }})
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
				wg.Go(func() {
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
				})
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

// blockedDownload starts a RETR of a 64 MiB file from local disk whose
// client reads 1000 bytes and no more: the socket buffers fill and the
// sender blocks in sendfile(2).
func blockedDownload(t *testing.T, o ftptest.Options) (*ftptest.Server, *ftptest.Conn, net.Conn, []byte) {
	t.Helper()
	srv, _, data := localServer(t, 64<<20, o)
	c := srv.Dial(t).Login(ftptest.Reader)
	d := c.Passive()
	c.Expect("RETR big", 150)
	if _, err := io.ReadFull(d, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	return srv, c, d, data
}

// TestSendfileABOR: a download blocked in sendfile(2) (the client reads no
// more) is counted by STAT and ended by ABOR: 426, then 226, and the data
// connection is shut, so the client sees its end instead of hanging.
func TestSendfileABOR(t *testing.T) {
	t.Parallel()
	_, c, d, _ := blockedDownload(t, ftptest.Options{})
	// The socket buffers fill and the sender blocks; STAT counts what
	// its first chunks moved.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, text := c.Cmd("STAT")
		if code != 211 || !strings.Contains(text, "Transfer in progress: RETR /big") {
			t.Fatalf("STAT: %d %q", code, text)
		}
		if !strings.Contains(text, " 0 bytes transferred") {
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
	_, c, d, data := blockedDownload(t, ftptest.Options{Config: func(s *server.Server) { s.DataStallTimeout = 300 * time.Millisecond }})
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
	srv, _, d, _ := blockedDownload(t, ftptest.Options{})
	defer d.Close() // kept open (and reachable) while Shutdown waits
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

// TestSpliceUploads: uploads to local disk arrive whole in every data
// mode, with STOR, APPE, STOU and a resume (REST+STOR) past the first MiB,
// in ASCII mode, and four at once with one thread (the others take the
// poller); with the thread path on, off and bounded.
func TestSpliceUploads(t *testing.T) {
	t.Parallel()
	for _, threads := range []int{0, -1, 1} {
		t.Run(fmt.Sprint("threads=", threads), func(t *testing.T) {
			t.Parallel()
			srv, dir, _ := localServer(t, 0, ftptest.Options{Config: func(s *server.Server) { s.TransferThreads = threads }})
			c := srv.Dial(t).Login(ftptest.Writer)
			onDisk := func(name string, want []byte) {
				t.Helper()
				if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, want) {
					t.Fatalf("%s: %d bytes on disk, want %d", name, len(got), len(want))
				}
			}
			data := randBytes(5<<20 + 77)
			for _, m := range modes {
				if code := upload(t, c, m, "STOR", m.name, data); code != 226 {
					t.Fatalf("STOR over %s: %d", m.name, code)
				}
				onDisk(m.name, data)
			}
			more := randBytes(3 << 20)
			if code := upload(t, c, modes[0], "APPE", "EPSV", more); code != 226 {
				t.Fatalf("APPE: %d", code)
			}
			onDisk("EPSV", append(append([]byte{}, data...), more...))
			c.Expect("REST 2000000", 350)
			if code := upload(t, c, modes[0], "STOR", "PASV", data[2000000:]); code != 226 {
				t.Fatalf("REST+STOR: %d", code)
			}
			onDisk("PASV", data)
			d := c.Passive()
			text := c.Expect("STOU", 150)
			d.Write(data)
			d.Close()
			if code, _ := c.Read(); code != 226 {
				t.Fatalf("STOU: %d", code)
			}
			onDisk(strings.TrimPrefix(text, "FILE: "), data)
			c.Expect("TYPE A", 200)
			if code := upload(t, c, modes[0], "STOR", "text", []byte(strings.Repeat("line\r\n", 1<<18))); code != 226 {
				t.Fatalf("ASCII STOR: %d", code)
			}
			onDisk("text", []byte(strings.Repeat("line\n", 1<<18)))
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() {
					c := srv.Dial(t).Login(ftptest.Writer)
					d := c.Passive()
					c.Expect(fmt.Sprintf("STOR par%d", i), 150)
					d.Write(data)
					d.Close()
					if code, text := c.Read(); code != 226 {
						t.Errorf("concurrent upload %d: %d %s", i, code, text)
					}
				})
			}
			wg.Wait()
			for i := range 4 {
				onDisk(fmt.Sprintf("par%d", i), data)
			}
		})
	}
}

// TestSpliceUploadAbortAndStall: an upload past its first MiB whose client
// stops sending ends with 426, by ABOR or after the stall timeout; the
// file it would have replaced stays as it was, and what arrived is kept
// for a resume that completes it.
func TestSpliceUploadAbortAndStall(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"ABOR", "stall"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			srv, dir, _ := localServer(t, 0, ftptest.Options{Config: func(s *server.Server) {
				if how == "stall" {
					// Long enough that a client starved by a loaded
					// machine (CI: -race, parallel tests) does not stall
					// before its 3 MiB are out (300 ms did, once).
					s.DataStallTimeout = 2 * time.Second
				}
			}})
			old := []byte("old content")
			os.WriteFile(filepath.Join(dir, "f"), old, 0o644)
			c := srv.Dial(t).Login(ftptest.Writer)
			data := randBytes(4 << 20)
			sent := 3 << 20
			d := c.Passive()
			c.Expect("STOR f", 150)
			if _, err := d.Write(data[:sent]); err != nil {
				t.Fatal(err)
			}
			// ABOR once the server has it all and blocks in splice (a
			// stall ends the upload by itself meanwhile).
			deadline := time.Now().Add(10 * time.Second)
			for how == "ABOR" {
				_, text := c.Cmd("STAT")
				if strings.Contains(text, fmt.Sprintf(" %d bytes transferred", sent)) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("STAT: %q", text)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if how == "ABOR" {
				c.Send("ABOR")
			}
			if code, text := c.Read(); code != 426 {
				t.Fatalf("%s: %d %s", how, code, text)
			}
			if how == "ABOR" {
				if code, _ := c.Read(); code != 226 {
					t.Fatalf("ABOR: %d", code)
				}
			}
			d.Close()
			if got, _ := os.ReadFile(filepath.Join(dir, "f")); !bytes.Equal(got, old) {
				t.Fatalf("the old file changed: %d bytes", len(got))
			}
			code, text := c.Cmd("SIZE f")
			if code != 213 {
				t.Fatalf("SIZE: %d %s", code, text)
			}
			c.Expect(fmt.Sprintf("REST %d", sent), 350)
			if code := upload(t, c, modes[0], "STOR", "f", data[sent:]); code != 226 {
				t.Fatalf("resume: %d", code)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "f")); !bytes.Equal(got, data) {
				t.Fatalf("after the resume: %d bytes", len(got))
			}
		})
	}
}

// TestBlockingIPv6: downloads and uploads on their own thread over ::1, in
// passive (EPSV) and active (EPRT) mode.
func TestBlockingIPv6(t *testing.T) {
	t.Parallel()
	srv, dir, data := localServer(t, 6<<20+5, ftptest.Options{Network: "tcp6"})
	c := srv.Dial(t).Login(ftptest.Writer)
	for _, m := range []dataMode{modes[0], modes[2]} {
		if got := download(t, c, m, "RETR big"); !bytes.Equal(got, data) {
			t.Fatalf("RETR over %s: %d bytes", m.name, len(got))
		}
		if code := upload(t, c, m, "STOR", m.name, data); code != 226 {
			t.Fatalf("STOR over %s: %d", m.name, code)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, m.name)); !bytes.Equal(got, data) {
			t.Fatalf("STOR over %s: %d bytes on disk", m.name, len(got))
		}
	}
}
