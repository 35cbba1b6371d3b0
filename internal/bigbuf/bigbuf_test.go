package bigbuf

import (
	"errors"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"
)

const size = 4 << 20

// fill writes v over the whole of b, in place.
func fill(b []byte, v byte) []byte {
	b = b[:cap(b)]
	for i := range b {
		b[i] = v
	}
	return b
}

// TestOffHeap: a lent buffer is outside the Go heap (on Linux): lending
// eight of them leaves the heap as it was.
func TestOffHeap(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("buffers come from the heap here")
	}
	var l Lender
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var bs [][]byte
	for range 8 {
		b := l.Get(size)
		if len(b) != 0 || cap(b) != size {
			t.Fatalf("len %d cap %d, want 0 and %d", len(b), cap(b), size)
		}
		bs = append(bs, fill(b, 7))
	}
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > size {
		t.Fatalf("the heap grew by %d bytes for %d bytes lent", grew, 8*size)
	}
	for _, b := range bs {
		if cap(b) != size || !l.Put(b) {
			t.Fatal("a lent buffer was refused, or append copied it")
		}
	}
}

// TestReuse: the buffer given back last is lent again; slices that are
// not lent buffers are refused.
func TestReuse(t *testing.T) {
	var l Lender
	a, b := l.Get(size), l.Get(size)
	if unsafe.SliceData(a[:1]) == unsafe.SliceData(b[:1]) {
		t.Fatal("two loans share memory")
	}
	if !l.Put(a) || !l.Put(b[:10]) {
		t.Fatal("lent buffers refused")
	}
	if c := l.Get(size); unsafe.SliceData(c[:1]) != unsafe.SliceData(b[:1]) || len(c) != 0 {
		t.Fatal("not the buffer given back last, or not empty")
	}
	if l.Put(b[1:size]) {
		t.Fatal("a part of a buffer taken back")
	}
	if l.Put(a) {
		t.Fatal("a buffer taken back twice")
	}
	if d := l.Get(size); unsafe.SliceData(d[:1]) != unsafe.SliceData(a[:1]) {
		t.Fatal("the buffer given back first not lent after the last")
	}
	if l.Get(size); len(l.free[size]) != 0 {
		t.Fatal("a buffer lent twice")
	}
	if l.Put(make([]byte, size)) || l.Put(nil) {
		t.Fatal("a slice never lent taken back")
	}
	if l.Get(0) != nil {
		t.Fatal("a buffer of no size")
	}
}

// TestRelease: a buffer idle for ReleaseAfter gives its pages back (its
// bytes read as zeros, the mapping stays); one given back later waits
// its own time; one lent again is warm.
func TestRelease(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("buffers come from the heap here")
	}
	synctest.Test(t, func(t *testing.T) {
		var l Lender
		a, b := l.Get(size), l.Get(size)
		a, b = fill(a, 1), fill(b, 2)
		l.Put(a)
		time.Sleep(ReleaseAfter / 2)
		l.Put(b)
		if got := l.Resident(); got != 2*size {
			t.Fatalf("resident %d, want %d", got, 2*size)
		}
		time.Sleep(ReleaseAfter/2 + time.Millisecond)
		synctest.Wait()
		if got := l.Resident(); got != size {
			t.Fatalf("resident %d after the first's time, want %d", got, size)
		}
		if a[0] != 0 || a[size-1] != 0 || b[0] != 2 {
			t.Fatalf("released %d %d, kept %d: want 0 0 2", a[0], a[size-1], b[0])
		}
		time.Sleep(ReleaseAfter / 2)
		synctest.Wait()
		if got := l.Resident(); got != 0 {
			t.Fatalf("resident %d after both times, want 0", got)
		}
		c := l.Get(size)
		c = append(c, 3)
		l.Put(c)
		if got := l.Resident(); got != size {
			t.Fatalf("resident %d after a loan, want %d", got, size)
		}
		time.Sleep(ReleaseAfter + time.Millisecond)
		synctest.Wait()
		if got := l.Resident(); got != 0 {
			t.Fatalf("resident %d at the end, want 0", got)
		}
	})
}

// TestHeapFallback: without a mapping, buffers come from the heap, are
// lent again, and one idle for ReleaseAfter is forgotten (the next loan is
// a new buffer).
func TestHeapFallback(t *testing.T) {
	mapped := mapBuffer
	mapBuffer = func(int) ([]byte, error) { return nil, errors.ErrUnsupported }
	defer func() { mapBuffer = mapped }()
	synctest.Test(t, func(t *testing.T) {
		var l Lender
		a := l.Get(size)
		if cap(a) != size || !l.Put(a) || l.Put(a) {
			t.Fatal("a heap buffer not lent and taken back once")
		}
		if b := l.Get(size); unsafe.SliceData(b[:1]) != unsafe.SliceData(a[:1]) {
			t.Fatal("a heap buffer not lent again")
		}
		l.Put(a)
		time.Sleep(ReleaseAfter + time.Millisecond)
		synctest.Wait()
		if len(l.made) != 0 || l.Resident() != 0 {
			t.Fatalf("an idle heap buffer kept: %d made, %d resident", len(l.made), l.Resident())
		}
		if c := l.Get(size); unsafe.SliceData(c[:1]) == unsafe.SliceData(a[:1]) {
			t.Fatal("a forgotten buffer lent again")
		}
	})
}
