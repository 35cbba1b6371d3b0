package integration

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/internal/bytesize"
)

// TestQuotaKeptPart: the kept part of an interrupted upload counts in a
// quota's usage (AVBL, ferry user list, across a restart) until a resume
// takes it or a new upload of the name replaces it, on disk and on S3.
func TestQuotaKeptPart(t *testing.T) {
	for _, backend := range []string{"disk", "s3"} {
		t.Run(backend, func(t *testing.T) {
			wd := t.TempDir()
			files := newAliceFiles(t, backend, wd)
			leftover := files.kept
			const quota = 30 << 20
			s := files.serve("--quota-bytes", "30MiB")
			defer s.stop()
			usersFile := files.users
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			dial := func() *client.Client { return files.dial(ctx, s) }
			c := dial()
			defer c.Close()
			avbl := func() int64 {
				r, err := c.Quote(ctx, "AVBL")
				n, perr := strconv.ParseInt(strings.TrimSpace(r.Text), 10, 64)
				if err != nil || r.Code != 213 || perr != nil {
					t.Fatalf("AVBL: %d %q %v", r.Code, r.Text, err)
				}
				return n
			}
			// eventually waits until AVBL says used bytes are stored: an
			// ended upload settles on the server after the client's error.
			eventually := func(what string, used func() int64) {
				t.Helper()
				deadline := time.Now().Add(20 * time.Second)
				for {
					want := used()
					got := avbl()
					if got == quota-want {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: AVBL %d, want %d (%d stored)", what, got, quota-want, want)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			data := seeded(40, 12<<20)
			// cutAt sends name until the server holds n bytes of it, less a
			// MiB in flight, then cuts the upload; it returns the bytes the
			// server kept (SIZE answers them for a name without a file).
			cutAt := func(name string, n int, stored int64) int64 {
				t.Helper()
				up := dial()
				defer up.Close()
				r := &cutReader{data: data, cut: n, release: make(chan struct{})}
				done := make(chan error, 1)
				go func() {
					_, err := up.Store(ctx, name, r, nil)
					done <- err
				}()
				deadline := time.Now().Add(time.Minute)
				for avbl() > quota-stored-int64(n-1<<20) { // reserved as received
					if time.Now().After(deadline) {
						t.Fatalf("%s: the server received less than %d bytes in a minute", name, n-1<<20)
					}
					time.Sleep(10 * time.Millisecond)
				}
				close(r.release)
				if err := <-done; err == nil {
					t.Fatalf("%s: the cut upload succeeded", name)
				}
				var kept int64
				eventually(name+" cut", func() int64 {
					kept = leftover(name)
					return stored + kept
				})
				if size, err := c.Size(ctx, name); err != nil || size != kept || kept == 0 {
					t.Fatalf("%s: SIZE %d %v, kept %d: want the kept bytes", name, size, err, kept)
				}
				return kept
			}

			kept := cutAt("big.bin", 12<<20, 0)
			if _, err := c.Store(ctx, "big.bin", bytes.NewReader(data[kept:]), &client.TransferOptions{Offset: kept}); err != nil {
				t.Fatalf("resume at %d: %v", kept, err)
			}
			eventually("resumed", func() int64 { return 12 << 20 })
			if got := fetch(t, c, "big.bin"); !bytes.Equal(got, data) {
				t.Fatal("the resumed file differs")
			}

			cutAt("again.bin", 8<<20, 12<<20)
			if _, err := c.Store(ctx, "again.bin", bytes.NewReader(data[:1<<20]), nil); err != nil {
				t.Fatal(err)
			}
			eventually("a new upload over a kept part", func() int64 { return 13 << 20 })
			if n := leftover("again.bin"); n != 0 {
				t.Fatalf("%d bytes of the kept part of again.bin left after a new upload", n)
			}

			kept = cutAt("third.bin", 6<<20, 13<<20)
			s.stop() // writes the usage
			out, err := exec.Command(ferryBin, "user", "list", "--users", usersFile).CombinedOutput()
			want := "quota " + bytesize.Size(13<<20+kept).String() + " of 30MiB, 2 of no limit files (" + bytesize.Size(kept).String() + " of it in 1 interrupted upload kept for a resume)"
			if err != nil || !strings.Contains(string(out), want) {
				t.Fatalf("user list: %v %s\nwant %s", err, out, want)
			}
			s.start("--users", usersFile)
			c = dial()
			defer c.Close()
			eventually("after a restart", func() int64 { return 13<<20 + kept })
		})
	}
}
