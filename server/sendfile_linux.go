package server

import (
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// sendFile sends the rest of src to c with sendfile(2) on a blocking
// socket, when src is a file, c a plain TCP connection and one of the
// server's SendfileThreads is free; it reports false, having done nothing,
// otherwise, and the caller copies through Go's network poller instead.
//
// A blocking sendfile sleeps in the kernel until the socket takes more and
// goes on at once. Through the poller, each full socket buffer parks the
// goroutine, and the thread that wakes from epoll_wait resumes it: a
// hand-off between threads per buffer, which a server (whose other
// connections keep a thread in the poller) pays and a one-connection
// program does not (bench/README.md). The socket is taken out of the
// poller for the transfer, so its write-space events wake no thread.
//
// The stall timeout is the socket's SO_SNDTIMEO; an abort shuts the
// socket down, which ends a sendfile blocked on it.
func (s *session) sendFile(x *transfer, c net.Conn, src io.Reader) (bool, error) {
	f, ok := src.(*os.File)
	tc, ok2 := c.(*net.TCPConn)
	if !ok || !ok2 || !s.srv.takeSendThread() {
		return false, nil
	}
	defer s.srv.releaseSendThread()
	sock, err := detach(x, tc)
	if sock == nil {
		return err != nil, err
	}
	defer sock.close()
	stall := s.srv.dataStallTimeout()
	tv := unix.NsecToTimeval(stall.Nanoseconds())
	if err := unix.SetsockoptTimeval(sock.fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return true, netErr{err}
	}
	if err := unix.SetNonblock(sock.fd, false); err != nil {
		return true, netErr{err}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return true, err
	}
	var serr error
	err = rc.Control(func(in uintptr) { serr = sock.sendFrom(x, int(in), stall) })
	if err != nil {
		return true, err
	}
	return true, serr
}

// detach moves c's socket out of Go's network poller: a duplicate of its
// descriptor becomes the transfer's, and c is closed (which deregisters
// it; the connection lives on in the duplicate). It returns nil and no
// error when c is left as it was, nil and an error when the transfer was
// aborted meanwhile.
func detach(x *transfer, c *net.TCPConn) (*rawSocket, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.aborted.Load() {
		return nil, netErr{net.ErrClosed}
	}
	fd := -1
	rc.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) })
	if fd < 0 {
		return nil, nil
	}
	sock := &rawSocket{fd: fd}
	x.conn = sock
	c.Close()
	return sock, nil
}

// rawSocket is a connected socket outside the network poller, in blocking
// mode. Close, called by an abort from another goroutine, shuts it down;
// its sender closes the descriptor once done (under mu, so that a shutdown
// never hits a descriptor number already reused).
type rawSocket struct {
	mu sync.Mutex
	fd int
}

func (r *rawSocket) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd >= 0 {
		unix.Shutdown(r.fd, unix.SHUT_RDWR)
	}
	return nil
}

func (r *rawSocket) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	unix.Close(r.fd)
	r.fd = -1
}

// sendFrom sends the file in from its current offset to its end, in
// chunks that grow while they go fast and shrink when they take long, so
// the transfer's byte count (STAT) stays current.
func (r *rawSocket) sendFrom(x *transfer, in int, stall time.Duration) error {
	chunk := minChunk
	for {
		start := time.Now()
		n, err := unix.Sendfile(r.fd, in, nil, chunk)
		if n > 0 {
			x.bytes.Add(int64(n))
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN: // SO_SNDTIMEO passed with no byte taken
			return netErr{os.ErrDeadlineExceeded}
		case err != nil:
			err = &os.SyscallError{Syscall: "sendfile", Err: err}
			if isNetErr(err) {
				return netErr{err}
			}
			return err
		case n == 0:
			return nil // the end of the file
		}
		switch took := time.Since(start); {
		case took < 50*time.Millisecond && chunk < maxChunk:
			chunk *= 2
		case took > time.Second && chunk > minChunk:
			chunk /= 2
		}
	}
}
