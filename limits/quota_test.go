package limits

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/localfs"
	"github.com/ferryftp/ferry/storage/memfs"
	"github.com/ferryftp/ferry/storage/storagetest"
)

var ctx = context.Background()

// TestQuotaConformance: the wrapper is a storage.FS like any other.
func TestQuotaConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.FS {
		f, err := localfs.New(t.TempDir(), localfs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return WithQuota(f, NewLedger(Quota{Bytes: 1 << 30}, Usage{}, nil))
	})
}

func put(t *testing.T, f storage.FS, name, data string, opts storage.CreateOptions) error {
	t.Helper()
	u, err := f.Create(ctx, name, opts)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(u, data); err != nil {
		u.Abort(err)
		return err
	}
	return u.Commit()
}

func TestQuotaCounts(t *testing.T) {
	var saved []Usage
	l := NewLedger(Quota{Bytes: 100, Files: 3}, Usage{}, func(u Usage) { saved = append(saved, u) })
	inner := memfs.New()
	f := WithQuota(inner, l)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	want := func(b, n int64) {
		t.Helper()
		if u := l.Used(); u != (Usage{b, n}) {
			t.Fatalf("usage %+v, want {%d %d}", u, b, n)
		}
	}
	must(put(t, f, "a", strings.Repeat("a", 40), storage.CreateOptions{}))
	want(40, 1)
	must(put(t, f, "a", strings.Repeat("a", 30), storage.CreateOptions{})) // replaces
	want(30, 1)
	must(put(t, f, "a", strings.Repeat("b", 10), storage.CreateOptions{Mode: storage.Append}))
	want(40, 1)
	// 61 more bytes pass 100: cut the moment it passes, nothing published.
	err := put(t, f, "b", strings.Repeat("c", 61), storage.CreateOptions{})
	if !errors.Is(err, storage.ErrQuota) {
		t.Fatalf("over the quota: %v", err)
	}
	if _, err := f.Stat(ctx, "b"); err == nil {
		t.Fatal("the cut upload was published")
	}
	want(40, 1)
	must(put(t, f, "b", strings.Repeat("c", 60), storage.CreateOptions{})) // exactly at 100
	want(100, 2)
	must(f.Remove(ctx, "b"))
	want(40, 1)
	must(put(t, f, "c", "1", storage.CreateOptions{}))
	must(put(t, f, "d", "1", storage.CreateOptions{}))
	if err := put(t, f, "e", "1", storage.CreateOptions{}); !errors.Is(err, storage.ErrQuota) {
		t.Fatalf("a fourth file: %v", err)
	}
	must(f.Rename(ctx, "c", "d")) // replaces d
	want(41, 2)
	if a, _ := f.(storage.SpaceReporter).Available(ctx, "."); a != 59 {
		t.Errorf("AVBL %d, want 59", a)
	}
	if err := f.(Allocator).Allocate(ctx, 60); !errors.Is(err, storage.ErrQuota) {
		t.Errorf("ALLO 60: %v", err)
	}
	// A resume from offset 70 (of a kept part written before the quota)
	// is known in advance to pass the 59 bytes left.
	u, _ := inner.Create(ctx, "big", storage.CreateOptions{})
	u.Write(make([]byte, 70))
	u.Abort(errors.New("cut"))
	if _, err := f.Create(ctx, "big", storage.CreateOptions{Offset: 70}); !errors.Is(err, storage.ErrQuota) {
		t.Errorf("REST 70 + STOR: %v", err)
	}
	if len(saved) == 0 || saved[len(saved)-1] != l.Used() {
		t.Errorf("saved %v, used %v", saved, l.Used())
	}
	if u, err := Scan(ctx, f); err != nil || u != l.Used() {
		t.Errorf("scan %+v %v, ledger %+v", u, err, l.Used())
	}
}

// TestQuotaConcurrent: uploads at once cannot together pass the quota.
func TestQuotaConcurrent(t *testing.T) {
	l := NewLedger(Quota{Bytes: 1000}, Usage{}, nil)
	f := WithQuota(memfs.New(), l)
	var wg sync.WaitGroup
	var ok, refused int
	var mu sync.Mutex
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := f.Create(ctx, string(rune('a'+i)), storage.CreateOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			var werr error
			for range 30 { // 300 bytes in pieces, interleaved
				if _, werr = u.Write(make([]byte, 10)); werr != nil {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if werr != nil {
				u.Abort(werr)
				refused++
				return
			}
			if err := u.Commit(); err != nil {
				t.Error(err)
			}
			ok++
		}()
	}
	wg.Wait()
	if used := l.Used(); used.Bytes > 1000 || used.Bytes != int64(ok)*300 {
		t.Fatalf("used %+v with %d uploads committed (%d refused)", used, ok, refused)
	}
}
