package limits

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

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
		return WithQuota(f, NewLedger(State{}, LedgerOptions{Quota: Quota{Bytes: 1 << 30}}))
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
	l := NewLedger(State{}, LedgerOptions{Quota: Quota{Bytes: 100, Files: 3}, Changed: func(st State) { saved = append(saved, st.Usage) }})
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
	l := NewLedger(State{}, LedgerOptions{Quota: Quota{Bytes: 1000}})
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

// TestQuotaOldestWaits: when two uploads together pass the quota, the
// younger is cut and the older, waiting for what it gives back, commits
// whole (not both cut); an upload alone is cut at once, and a wait ends
// after quotaWait.
func TestQuotaOldestWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLedger(State{}, LedgerOptions{Quota: Quota{Bytes: 100}})
		f := WithQuota(memfs.New(), l)
		create := func(name string, n int) storage.Upload {
			t.Helper()
			u, err := f.Create(ctx, name, storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := u.Write(make([]byte, n)); err != nil {
				t.Fatal(err)
			}
			return u
		}
		blocked := func(name string, u storage.Upload, n int) chan error {
			done := make(chan error, 1)
			go func() {
				_, err := u.Write(make([]byte, n))
				done <- err
			}()
			synctest.Wait()
			select {
			case err := <-done:
				t.Fatalf("%s did not wait for the younger upload: %v", name, err)
			default:
			}
			return done
		}
		older, younger := create("older", 60), create("younger", 40)
		done := blocked("older", older, 30)
		_, err := younger.Write(make([]byte, 1))
		if !errors.Is(err, storage.ErrQuota) {
			t.Fatalf("the younger upload past the quota: %v", err)
		}
		younger.Abort(err)
		if err := <-done; err != nil {
			t.Fatalf("the older upload after the younger was cut: %v", err)
		}
		if err := older.Commit(); err != nil {
			t.Fatal(err)
		}
		if u := l.Used(); u != (Usage{90, 1}) {
			t.Fatalf("usage %+v, want {90 1}", u)
		}
		alone := create("alone", 5)
		if _, err := alone.Write(make([]byte, 6)); !errors.Is(err, storage.ErrQuota) {
			t.Fatalf("alone past the quota: %v", err)
		}
		alone.Abort(err)
		// A younger upload that stalls holds its bytes: the wait ends.
		older, younger = create("older2", 5), create("younger2", 5)
		done = blocked("older2", older, 1)
		start := time.Now()
		if err := <-done; !errors.Is(err, storage.ErrQuota) || time.Since(start) != quotaWait {
			t.Fatalf("a wait for a stalled upload: %v after %v, want a quota error after %v", err, time.Since(start), quotaWait)
		}
		older.Abort(err)
		younger.Abort(err)
	})
}

// TestQuotaKeptParts: the kept part of an interrupted upload counts as
// stored until a resume takes it, a new upload of the name replaces it or
// it expires; an upload cut by the quota keeps nothing.
func TestQuotaKeptParts(t *testing.T) {
	backends := map[string]func(t *testing.T) storage.FS{
		"memfs": func(t *testing.T) storage.FS { return memfs.New() },
		"localfs": func(t *testing.T) storage.FS {
			f, err := localfs.New(t.TempDir(), localfs.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return f
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			inner := open(t)
			var last State
			l := NewLedger(State{}, LedgerOptions{Quota: Quota{Bytes: 100}, Changed: func(st State) { last = st }})
			f := WithQuota(inner, l)
			want := func(b, n int64, kept ...string) {
				t.Helper()
				if u := l.Used(); u != (Usage{b, n}) {
					t.Fatalf("usage %+v, want {%d %d}", u, b, n)
				}
				if last.Usage != l.Used() || len(last.Partials) != len(kept) {
					t.Fatalf("saved %+v, want %d kept parts %v", last, len(kept), kept)
				}
				for _, k := range kept {
					size, err := inner.(storage.PartialSizer).PartialSize(ctx, k)
					if err != nil || size != last.Partials[k].Bytes {
						t.Fatalf("kept part of %s: %d %v on the backend, %d counted", k, size, err, last.Partials[k].Bytes)
					}
				}
			}
			cut := func(name string, n int, opts storage.CreateOptions) error {
				t.Helper()
				u, err := f.Create(ctx, name, opts)
				if err != nil {
					return err
				}
				_, err = u.Write(make([]byte, n))
				u.Abort(cmp.Or(err, errors.New("connection lost")))
				return err
			}
			if err := cut("a", 30, storage.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			want(30, 0, "a")
			if err := put(t, f, "a", strings.Repeat("x", 20), storage.CreateOptions{Offset: 30}); err != nil {
				t.Fatal(err) // the resume takes the kept part
			}
			want(50, 1)
			if fi, err := f.Stat(ctx, "a"); err != nil || fi.Size() != 50 {
				t.Fatalf("resumed file: %v %v", fi, err)
			}
			cut("b", 25, storage.CreateOptions{})
			want(75, 1, "b")
			cut("b", 5, storage.CreateOptions{}) // replaces the older kept part
			want(55, 1, "b")
			if err := put(t, f, "b", "0123456789", storage.CreateOptions{}); err != nil {
				t.Fatal(err) // a new file: the kept part goes
			}
			want(60, 2)
			if _, err := inner.(storage.PartialSizer).PartialSize(ctx, "b"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("kept part of b after a new upload: %v", err)
			}
			if err := cut("c", 50, storage.CreateOptions{}); !errors.Is(err, storage.ErrQuota) {
				t.Fatalf("50 bytes with 40 left: %v", err)
			}
			want(60, 2) // a cut by the quota keeps nothing
			if _, err := inner.(storage.PartialSizer).PartialSize(ctx, "c"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("kept part of an upload cut by the quota: %v", err)
			}
			cut("d", 40, storage.CreateOptions{})
			want(100, 2, "d")
			if err := put(t, f, "e", "1", storage.CreateOptions{}); !errors.Is(err, storage.ErrQuota) {
				t.Fatalf("with the quota full of a kept part: %v", err)
			}
		})
	}
}

// TestQuotaKeptPartsExpire: a kept part older than the sweeper keeps it
// no longer counts.
func TestQuotaKeptPartsExpire(t *testing.T) {
	st := State{Usage: Usage{Bytes: 70, Files: 1}, Partials: map[string]Partial{
		"old": {Bytes: 30, Kept: time.Now().Add(-2 * time.Hour)},
		"new": {Bytes: 20, Kept: time.Now()},
	}}
	var last State
	l := NewLedger(st, LedgerOptions{Quota: Quota{Bytes: 100}, PartialMaxAge: time.Hour, Changed: func(s State) { last = s }})
	if u := l.Used(); u != (Usage{40, 1}) {
		t.Fatalf("usage %+v, want {40 1}", u)
	}
	if _, ok := last.Partials["new"]; !ok || len(last.Partials) != 1 || last.Bytes != 40 {
		t.Fatalf("saved %+v", last)
	}
	forever := NewLedger(st, LedgerOptions{Quota: Quota{Bytes: 100}})
	if u := forever.Used(); u != (Usage{70, 1}) {
		t.Fatalf("without partial_max_age: usage %+v, want {70 1}", u)
	}
}

// TestQuotaReadFrom: an upload into a file keeps its ReadFrom (the splice
// io.Copy uses); it fills the quota exactly, and a byte more is cut.
func TestQuotaReadFrom(t *testing.T) {
	inner, err := localfs.New(t.TempDir(), localfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := NewLedger(State{}, LedgerOptions{Quota: Quota{Bytes: 3 << 20}})
	f := WithQuota(inner, l)
	copyIn := func(name string, n int64, limit int64) error {
		u, err := f.Create(ctx, name, storage.CreateOptions{})
		if err != nil {
			return err
		}
		if _, ok := u.(io.ReaderFrom); !ok {
			t.Fatal("the upload into a file has no ReadFrom")
		}
		var src io.Reader = strings.NewReader(strings.Repeat("z", int(n)))
		if limit > 0 {
			src = io.LimitReader(src, limit)
		}
		if _, err := io.Copy(u, src); err != nil {
			u.Abort(err)
			return err
		}
		return u.Commit()
	}
	if err := copyIn("a", 1<<20+5, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := copyIn("b", 2<<20+1, 0); !errors.Is(err, storage.ErrQuota) {
		t.Fatalf("a byte past the quota: %v", err)
	}
	if err := copyIn("c", 2<<20, 0); err != nil {
		t.Fatalf("exactly the quota: %v", err)
	}
	if u := l.Used(); u != (Usage{3 << 20, 2}) {
		t.Fatalf("usage %+v", u)
	}
	if fi, err := inner.Stat(ctx, "a"); err != nil || fi.Size() != 1<<20 {
		t.Fatalf("a: %v %v", fi, err)
	}
}

// memBank is a Bank in memory, shared by ledgers standing for nodes.
type memBank struct {
	mu     sync.Mutex
	used   Usage
	leases map[*Ledger]Usage
	calls  int
}

type nodeBank struct {
	b    *memBank
	node *Ledger
}

func (n *nodeBank) Reserve(ctx context.Context, q Quota, want, atLeast Usage) (Usage, error) {
	b := n.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	var leased Usage
	for _, l := range b.leases {
		leased = leased.plus(l)
	}
	got := want
	if q.Bytes > 0 {
		got.Bytes = min(want.Bytes, q.Bytes-b.used.Bytes-leased.Bytes)
	}
	if q.Files > 0 {
		got.Files = min(want.Files, q.Files-b.used.Files-leased.Files)
	}
	if got.Bytes < atLeast.Bytes || got.Files < atLeast.Files {
		return Usage{}, errQuota("the quota is reached")
	}
	got = Usage{max(got.Bytes, 0), max(got.Files, 0)}
	b.leases[n.node] = b.leases[n.node].plus(got)
	return got, nil
}

func (n *nodeBank) Settle(ctx context.Context, reserved, delta Usage) error {
	b := n.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	b.leases[n.node] = b.leases[n.node].minus(reserved)
	b.used = b.used.plus(delta)
	return nil
}

func (n *nodeBank) Usage(ctx context.Context) (Usage, Usage, error) {
	b := n.b
	b.mu.Lock()
	defer b.mu.Unlock()
	var leased Usage
	for _, l := range b.leases {
		leased = leased.plus(l)
	}
	return b.used, leased, nil
}

// TestQuotaBank: three nodes' ledgers on one bank: 12 concurrent uploads
// of 3 MiB with a quota of 20 MiB store at most 20 MiB in all, the usage
// is exact everywhere, and every lease goes back once nothing is in
// flight; small uploads ask the bank once per chunk, not per write.
func TestQuotaBank(t *testing.T) {
	bank := &memBank{leases: map[*Ledger]Usage{}}
	q := Quota{Bytes: 20 << 20, Files: 100}
	var fss []storage.FS
	var ledgers []*Ledger
	for range 3 {
		nb := &nodeBank{b: bank}
		l := NewLedger(State{}, LedgerOptions{Quota: q, Bank: nb})
		nb.node = l
		ledgers = append(ledgers, l)
		fss = append(fss, WithQuota(memfs.New(), l))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := put(t, fss[i%3], fmt.Sprintf("f%d", i), strings.Repeat("x", 3<<20), storage.CreateOptions{})
			if err == nil {
				mu.Lock()
				stored++
				mu.Unlock()
			} else if !errors.Is(err, storage.ErrQuota) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if stored != 6 || bank.used != (Usage{18 << 20, 6}) {
		t.Fatalf("%d uploads stored, bank usage %+v; want 6 and 18 MiB", stored, bank.used)
	}
	for i, l := range ledgers {
		if u := l.Used(); u != bank.used {
			t.Errorf("node %d sees %+v", i, u)
		}
		if left, _ := l.left(); left != 2<<20 {
			t.Errorf("node %d: %d left, want 2 MiB", i, left)
		}
		if lease := bank.leases[l]; lease != (Usage{}) {
			t.Errorf("node %d keeps a lease of %+v with nothing in flight", i, lease)
		}
	}
	calls := bank.calls
	for i := range 20 {
		if err := put(t, fss[0], fmt.Sprintf("s%d", i), "", storage.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if per := float64(bank.calls-calls) / 20; per > 2 {
		t.Errorf("%.1f bank calls per small upload, want at most 2", per)
	}
}
