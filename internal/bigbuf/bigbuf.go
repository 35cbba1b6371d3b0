// Package bigbuf lends large byte buffers (the parts of an upload to an
// object store, the copy buffer of a download from one) from memory
// outside the Go heap.
//
// An upload holds a few parts of part_size bytes (16 MiB by default). On
// the heap those buffers count as live data, and the collector lets the
// heap grow by as much again in garbage before it runs (GOGC=100): a
// server holding 80 MiB of parts reached 160 MiB, the small garbage of
// every request piling up for minutes between two collections. Outside
// the heap a part is just its size: the heap stays small and is collected
// often and cheaply, and the resident size is the parts in use plus a
// small heap.
//
// A buffer given back is lent again to the next borrower of its size,
// warm. One idle for ReleaseAfter gives its pages back to the system; its
// mapping stays, so a late reader (a transport still sending a failed
// request's body) finds zeros, never a fault. Where there is no such
// memory (outside Linux), buffers come from the heap, are lent again the
// same way, and an idle one is left to the collector.
package bigbuf

import (
	"sync"
	"time"
	"unsafe"
)

// ReleaseAfter is how long a buffer given back stays resident for the
// next borrower: a server taking an upload a minute keeps its parts warm
// (faulting 16 MiB in again costs a few per cent of a 1 GiB upload's
// CPU); an idle one gives them back, as Go's scavenger gives back its
// heap, within minutes.
const ReleaseAfter = time.Minute

// Lender lends buffers; its zero value is ready.
type Lender struct {
	mu    sync.Mutex
	made  map[*byte]*buffer // every buffer kept, by its first byte
	free  map[int][]*buffer // by size, the most recently given back last
	timer *time.Timer       // releases idle buffers; nil until the first Put
	due   bool              // the timer is set
}

// buffer is one buffer made: lent, or free since a time.
type buffer struct {
	b     []byte
	heap  bool // no mapping here: from the heap, forgotten when idle
	out   bool // lent now
	since time.Time
	cold  bool // free, its pages gone back to the system
}

var std Lender

// Get lends an empty buffer of capacity n from the process's lender.
func Get(n int) []byte { return std.Get(n) }

// Put gives back a buffer from Get; see Lender.Put.
func Put(b []byte) bool { return std.Put(b) }

// Get lends an empty buffer of capacity n: the one of that size given
// back last, else a new mapping, else (no mapping here) one from the heap.
func (l *Lender) Get(n int) []byte {
	if n <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.free[n]; len(f) > 0 {
		m := f[len(f)-1]
		l.free[n] = f[:len(f)-1]
		m.out, m.cold = true, false
		return m.b[:0]
	}
	m := &buffer{out: true}
	var err error
	if m.b, err = mapBuffer(n); err != nil {
		m.b, m.heap = make([]byte, n), true
	}
	if l.made == nil {
		l.made = make(map[*byte]*buffer)
	}
	l.made[unsafe.SliceData(m.b)] = m
	return m.b[:0]
}

// Put gives back b, which must no longer be used, and reports whether it
// was one of l's, lent; any other slice (a part of a buffer, a buffer
// given back already, one l never lent) is refused.
func (l *Lender) Put(b []byte) bool {
	if cap(b) == 0 {
		return false
	}
	b = b[:cap(b)]
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.made[unsafe.SliceData(b)]
	if m == nil || len(m.b) != len(b) || !m.out {
		return false
	}
	m.out, m.since = false, time.Now()
	if l.free == nil {
		l.free = make(map[int][]*buffer)
	}
	l.free[len(b)] = append(l.free[len(b)], m)
	if !l.due {
		l.due = true
		if l.timer == nil {
			l.timer = time.AfterFunc(ReleaseAfter, l.release)
		} else {
			l.timer.Reset(ReleaseAfter)
		}
	}
	return true
}

// release gives back to the system the pages of buffers idle for
// ReleaseAfter (a heap buffer is forgotten, for the collector), and sets
// the timer for the next one due.
func (l *Lender) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.due = false
	now := time.Now()
	var next time.Duration
	for n, f := range l.free {
		kept := f[:0]
		for _, m := range f {
			idle := now.Sub(m.since)
			switch {
			case m.cold:
			case idle < ReleaseAfter:
				if left := ReleaseAfter - idle; next == 0 || left < next {
					next = left
				}
			case m.heap:
				delete(l.made, unsafe.SliceData(m.b))
				continue
			default:
				releasePages(m.b)
				m.cold = true
			}
			kept = append(kept, m)
		}
		clear(f[len(kept):])
		l.free[n] = kept
	}
	if next > 0 {
		l.due = true
		l.timer.Reset(next)
	}
}

// Resident is the number of bytes of buffers given back whose pages are
// still resident (tests).
func (l *Lender) Resident() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, f := range l.free {
		for _, m := range f {
			if !m.cold {
				n += len(m.b)
			}
		}
	}
	return n
}
