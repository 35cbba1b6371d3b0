package server

import (
	"bufio"
	"container/heap"
	"errors"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// An idle session parks: once it has waited parkAfter for its next command
// with nothing buffered, no transfer, no passive listener and no TLS, it
// gives up its goroutine (whose stack would be most of its memory) and its
// read buffer. The poller (park_linux.go; other systems do not park) hands
// it a new goroutine when the client sends a command or hangs up, when the
// wait's deadline passes, or when Shutdown or Close wake it; the session
// then reads on as if it had never stopped. A TLS session never parks: its
// connection may hold decrypted bytes that no socket event announces.
//
// Many sessions parking leave garbage behind (their logins, commands and
// goroutines), which the Go runtime would keep until its next collection —
// on an idle server, minutes away. Once sweepChurn sessions have parked and
// then none for sweepAfter, the memory goes back to the system
// (debug.FreeOSMemory: one collection, on a server that has gone quiet).
//
// The poller's mu guards its parked sessions (by id, and by deadline in a
// heap with one timer for all of them) and their pstate, pwoken and pidx.

const (
	running = iota
	parking // registering: a wake-up now is kept in pwoken
	parked
)

var (
	errParked = errors.New("parked")
	errNoPark = errors.New("parking is not supported here")
)

const (
	sweepChurn = 256
	sweepAfter = time.Second
)

// parkKeys name sessions in the poller, which serves every Server of the
// process (session ids count per Server).
var parkKeys atomic.Uint64

// readers are the read buffers of sessions, given back while they park.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 512) }}

// mayPark reports whether the session may give up its goroutine now.
func (s *session) mayPark() bool {
	return s.parkable && !s.closing && s.lr.Idle() &&
		s.pasv == nil && s.keep == nil && s.transfer() == nil
}

// park ends the session's goroutine until deadline at the latest, and
// reports whether it did; if so the caller returns at once and touches
// the session no more: another goroutine may already run it.
func (s *session) park(deadline time.Time) bool {
	rc, err := rawConn(s.raw)
	if err != nil || thePoller.start() != nil {
		return false
	}
	p := &thePoller
	p.mu.Lock()
	if s.srv.inShutdown.Load() {
		p.mu.Unlock() // Shutdown's wake may have come before the entry
		return false
	}
	p.add(s, deadline)
	p.mu.Unlock()
	readers.Put(s.lr.R)
	s.lr.R = nil
	err = p.register(rc, s.pkey)
	p.mu.Lock()
	if err == nil && !s.pwoken {
		s.pstate = parked
		p.mu.Unlock()
		if f := s.srv.parkHook; f != nil {
			f(true)
		}
		return true
	}
	if !s.pwoken {
		p.take(s)
	}
	s.pstate, s.pwoken = running, false
	p.mu.Unlock()
	if err == nil {
		p.deregister(rc)
	}
	s.unparked()
	return false
}

// unparked gives the session a read buffer again.
func (s *session) unparked() {
	if s.lr.R == nil {
		r := readers.Get().(*bufio.Reader)
		r.Reset(s.conn)
		s.lr.R = r
	}
}

// resume runs a session that was parked.
func (s *session) resume() {
	if f := s.srv.parkHook; f != nil {
		f(false)
	}
	s.unparked()
	s.run(false)
}

// add parks s until deadline (p.mu held).
func (p *poller) add(s *session, deadline time.Time) {
	p.parked[s.pkey] = s
	s.pstate = parking
	heap.Push(&p.deadlines, parkEntry{deadline, s})
	if s.pidx == 0 {
		p.timer.Reset(time.Until(deadline))
	}
	if p.churn++; p.churn >= sweepChurn {
		p.sweep.Reset(sweepAfter)
	}
}

// sweepIdle gives memory back after many sessions parked (the sweep
// timer's function).
func (p *poller) sweepIdle() {
	p.mu.Lock()
	churn := p.churn
	p.churn = 0
	p.mu.Unlock()
	if churn >= sweepChurn {
		debug.FreeOSMemory()
	}
}

// take removes s from the parked sessions and reports whether the caller
// is to resume it; one still parking sees pwoken instead (p.mu held).
func (p *poller) take(s *session) bool {
	delete(p.parked, s.pkey)
	heap.Remove(&p.deadlines, int(s.pidx))
	if s.pstate == parking {
		s.pwoken = true
		return false
	}
	s.pstate = running
	return true
}

// unpark starts a goroutine for the session parked as key, if it is.
func (p *poller) unpark(key uint64) {
	p.mu.Lock()
	s := p.parked[key]
	ok := s != nil && p.take(s)
	p.mu.Unlock()
	if ok {
		p.resume(s)
	}
}

// expire resumes the sessions whose deadline has passed (the timer's
// function).
func (p *poller) expire() {
	var due []*session
	p.mu.Lock()
	now := time.Now()
	for len(p.deadlines) > 0 && !p.deadlines[0].at.After(now) {
		if s := p.deadlines[0].s; p.take(s) {
			due = append(due, s)
		}
	}
	if len(p.deadlines) > 0 {
		p.timer.Reset(p.deadlines[0].at.Sub(now))
	}
	p.mu.Unlock()
	for _, s := range due {
		p.resume(s)
	}
}

func (p *poller) resume(s *session) {
	if rc, err := rawConn(s.raw); err == nil {
		p.deregister(rc)
	}
	go s.resume()
}

// rawConn is the socket under c, for the poller.
func rawConn(c net.Conn) (syscall.RawConn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, errNoPark
	}
	return sc.SyscallConn()
}

// parkEntry is a parked session and the end of its wait.
type parkEntry struct {
	at time.Time
	s  *session
}

// parkHeap orders parked sessions by deadline (container/heap); each knows
// its index in pidx.
type parkHeap []parkEntry

func (h parkHeap) Len() int           { return len(h) }
func (h parkHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h parkHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].s.pidx, h[j].s.pidx = int32(i), int32(j)
}
func (h *parkHeap) Push(x any) {
	e := x.(parkEntry)
	e.s.pidx = int32(len(*h))
	*h = append(*h, e)
}
func (h *parkHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = parkEntry{}
	*h = old[:len(old)-1]
	return e
}
