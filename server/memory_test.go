package server_test

import (
	"bufio"
	"context"
	"io/fs"
	"iter"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/memfs"
)

// hugeDirFS serves a directory "huge" of n generated entries that exist
// nowhere in memory, so any growth of the heap during a listing is the
// server's own.
type hugeDirFS struct {
	storage.FS
	n int
}

type genInfo struct{ i int }

func (g genInfo) Name() string       { return "entry-" + strconv.Itoa(g.i) + ".dat" }
func (g genInfo) Size() int64        { return int64(g.i) }
func (g genInfo) Mode() fs.FileMode  { return 0o644 }
func (g genInfo) ModTime() time.Time { return time.Unix(1700000000, 0) }
func (g genInfo) IsDir() bool        { return false }
func (g genInfo) Sys() any           { return nil }

type dirInfo struct{ genInfo }

func (dirInfo) Name() string      { return "huge" }
func (dirInfo) Mode() fs.FileMode { return fs.ModeDir | 0o755 }
func (dirInfo) IsDir() bool       { return true }

func (h hugeDirFS) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	if name == "huge" {
		return dirInfo{}, nil
	}
	return h.FS.Stat(ctx, name)
}

func (h hugeDirFS) ReadDir(ctx context.Context, name string) iter.Seq2[fs.FileInfo, error] {
	if name != "huge" {
		return h.FS.ReadDir(ctx, name)
	}
	return func(yield func(fs.FileInfo, error) bool) {
		for i := 0; i < h.n; i++ {
			if !yield(genInfo{i}, nil) {
				return
			}
		}
	}
}

// TestListingConstantMemory lists a million entries with LIST and MLSD and
// checks that the heap stays flat: listings stream.
func TestListingConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("lists a million entries")
	}
	const n = 1_000_000
	srv := ftptest.NewServer(t, ftptest.Options{FS: hugeDirFS{memfs.New(), n}})
	c := srv.Dial(t).Login(ftptest.Writer)
	for _, verb := range []string{"LIST", "MLSD"} {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		var peak atomic.Uint64
		stop := make(chan struct{})
		go func() {
			var m runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}()
		d := c.Passive()
		c.Expect(verb+" huge", 150)
		sc := bufio.NewScanner(d)
		lines, bytes := 0, 0
		for sc.Scan() {
			lines++
			bytes += len(sc.Bytes())
		}
		close(stop)
		if code, _ := c.Read(); code != 226 {
			t.Fatalf("%s: %d", verb, code)
		}
		want := n
		if verb == "MLSD" {
			want++ // the cdir line
		}
		if lines != want {
			t.Fatalf("%s: %d lines, want %d", verb, lines, want)
		}
		growth := int64(peak.Load()) - int64(base)
		t.Logf("%s: %d lines, %d MB sent, heap grew at most %d KiB", verb, lines, bytes>>20, growth>>10)
		if growth > 16<<20 {
			t.Errorf("%s of %d entries grew the heap by %d MiB: not streaming", verb, n, growth>>20)
		}
	}
}
