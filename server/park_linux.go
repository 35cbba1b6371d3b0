package server

import (
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// On Linux an idle session parks: its goroutine ends, and a readiness
// registration in an epoll instance of its own (EPOLLONESHOT, the session's
// key as the event's data) starts a new one when the client sends its next
// command, hangs up, or the wait's deadline passes (park.go). One thread
// waits in epoll_wait for every parked session of the process.

const canPark = true

// poller is the process's epoll instance and the sessions parked on it.
type poller struct {
	once      sync.Once
	epfd      int
	err       error
	timer     *time.Timer // at the first deadline: expire
	sweep     *time.Timer // sweepAfter the last of many parks: sweepIdle
	mu        sync.Mutex
	parked    map[uint64]*session // guarded by mu
	deadlines parkHeap            // guarded by mu
	churn     int                 // parks since the last sweep (mu)
}

var thePoller poller

func (p *poller) start() error {
	p.once.Do(func() {
		p.epfd, p.err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if p.err != nil {
			return
		}
		p.parked = map[uint64]*session{}
		p.timer = time.AfterFunc(time.Hour, p.expire)
		p.sweep = time.AfterFunc(time.Hour, p.sweepIdle)
		p.sweep.Stop()
		go p.wait()
	})
	return p.err
}

// wait hands each ready session back to a goroutine. It runs for the life
// of the process, on a thread blocked in epoll_wait.
func (p *poller) wait() {
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			continue // EINTR
		}
		for _, ev := range events[:n] {
			p.unpark(uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32)
		}
	}
}

// register asks for one event when the session's connection is readable
// or hung up. It fails when the connection is closed.
func (p *poller) register(rc syscall.RawConn, id uint64) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
			Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// deregister removes the connection from the epoll instance. Control
// holds the descriptor open meanwhile, so the number never names another
// connection's socket; a closed connection left the instance by itself.
func (p *poller) deregister(rc syscall.RawConn) {
	rc.Control(func(fd uintptr) {
		unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}
