package server

import (
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferryftp/ferry/storage"
)

// Large plain transfers between a local file and a data connection run on
// a thread of their own, with the socket in blocking mode: sendfile(2) for
// a download, splice(2) for an upload. Such a thread sleeps in the kernel
// until the socket can take or give more and goes on at once. Through Go's
// network poller, each full (or empty) socket buffer parks the goroutine,
// and the thread that wakes from epoll_wait resumes it: a hand-off between
// threads per buffer, which a server (whose other connections keep a
// thread in the poller) pays and a one-connection program does not
// (bench/README.md). The socket is taken out of the poller for the
// transfer, so its events wake no thread either.
//
// The stall timeout is the socket's SO_SNDTIMEO or SO_RCVTIMEO; an abort
// shuts the socket down, which ends a call blocked on it. At most
// Server.TransferThreads transfers run so; the others take the poller.

// sendFile sends the rest of src to c with sendfile(2), when src offers
// its file (storage.ZeroCopy) and c is a plain TCP connection and a
// thread is free; otherwise it reports false, having done nothing, and
// the caller copies through the poller.
func (s *session) sendFile(x *transfer, c net.Conn, src io.Reader) (bool, error) {
	f, ok := s.zeroCopy(src)
	if !ok {
		return false, nil
	}
	return s.onThread(x, c, f, unix.SO_SNDTIMEO, (*rawSocket).sendFrom)
}

// recvFile receives c into the file of dst with splice(2), as sendFile
// sends, when dst offers its file (storage.ZeroCopy); otherwise it reports
// false, having done nothing. Errors of the file's writes come back
// through storage.FileError.
func (s *session) recvFile(x *transfer, c net.Conn, dst io.Writer) (bool, error) {
	f, ok := s.zeroCopy(dst)
	if !ok {
		return false, nil
	}
	return s.onThread(x, c, f, unix.SO_RCVTIMEO, (*rawSocket).recvTo)
}

// onThread runs move between c's socket and the descriptor of f, with the
// socket out of the poller in blocking mode and the stall timeout as its
// option timeo. It reports false, having done nothing, when c is no plain
// TCP connection or no thread is free.
func (s *session) onThread(x *transfer, c net.Conn, f storage.ZeroCopy, timeo int, move func(*rawSocket, *transfer, int) error) (bool, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok || !s.srv.takeThread() {
		return false, nil
	}
	defer s.srv.releaseThread()
	sock, err := detach(x, tc)
	if sock == nil {
		return err != nil, err // c untouched, or the transfer aborted
	}
	defer sock.close()
	tv := unix.NsecToTimeval(s.srv.dataStallTimeout().Nanoseconds())
	if err := unix.SetsockoptTimeval(sock.fd, unix.SOL_SOCKET, timeo, &tv); err != nil {
		return true, netErr{os.NewSyscallError("setsockopt", err)}
	}
	if err := unix.SetNonblock(sock.fd, false); err != nil {
		return true, netErr{os.NewSyscallError("fcntl", err)}
	}
	return true, withFd(f, func(fd int) error { return move(sock, x, fd) })
}

// withFd runs fn with the descriptor of f.
func withFd(f storage.ZeroCopy, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
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
// its transfer closes the descriptor once done (under mu, so that a
// shutdown never hits a descriptor number already reused).
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

// sockErr is the error of a call on the socket: EAGAIN means its timeout
// passed with no byte moved.
func sockErr(call string, err error) error {
	if err == unix.EAGAIN {
		return netErr{os.ErrDeadlineExceeded}
	}
	return netErr{os.NewSyscallError(call, err)}
}

// sendFrom sends the file in from its current offset to its end, in
// chunks that grow while they go fast and shrink when they take long, so
// that the transfer's byte count (STAT) stays current.
func (r *rawSocket) sendFrom(x *transfer, in int) error {
	// Corked, the socket sends only full segments while the file streams
	// in (as ProFTPD's sendfile and nginx's tcp_nopush do); uncorking at
	// the end sends the rest. A paced transfer stays uncorked, so that its
	// pieces leave when they are let go.
	if x.pace == nil {
		unix.SetsockoptInt(r.fd, unix.IPPROTO_TCP, unix.TCP_CORK, 1)
		defer unix.SetsockoptInt(r.fd, unix.IPPROTO_TCP, unix.TCP_CORK, 0)
	}
	chunk := minChunk
	for {
		start := time.Now()
		n, err := unix.Sendfile(r.fd, in, nil, int(x.piece(int64(chunk))))
		if n > 0 {
			x.bytes.Add(int64(n))
			if err := x.paced(int64(n)); err != nil {
				return err
			}
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return sockErr("sendfile", err)
		case err != nil:
			// sendfile reports the socket's errors and the file's alike.
			return dataErr(os.NewSyscallError("sendfile", err))
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

// atEOF reports whether the client has ended its data: a peek waits for
// one byte or the end, and takes nothing.
func (r *rawSocket) atEOF() bool {
	var b [1]byte
	for {
		n, _, err := unix.Recvfrom(r.fd, b[:], unix.MSG_PEEK)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n == 0
	}
}

// pipeSize is the capacity of recvTo's pipe: each splice from the socket
// moves up to this much.
const pipeSize = 1 << 20

// recvTo receives the socket to its end into the file out at its current
// offset, through a pipe: socket to pipe, pipe to file.
func (r *rawSocket) recvTo(x *transfer, out int) error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return os.NewSyscallError("pipe2", err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, pipeSize) // 64 KiB if refused
	size := int(x.piece(pipeSize))
	for {
		move, took := size, int64(0)
		if x.meter != nil { // a quota: take what this move may fill first
			t, err := x.meter.Take(int64(size))
			if err != nil {
				if r.atEOF() {
					return nil // the quota is full, and so is the upload
				}
				return err
			}
			move, took = int(t), t
		}
		n, err := unix.Splice(r.fd, nil, p[1], nil, move, unix.SPLICE_F_MOVE)
		if x.meter != nil {
			x.meter.Done(max(n, 0), took)
		}
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return sockErr("splice", err)
		case n == 0:
			return nil // the client's end of the data
		}
		for n > 0 {
			m, err := unix.Splice(p[0], nil, out, nil, int(n), unix.SPLICE_F_MOVE)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return storage.FileError(os.NewSyscallError("splice", err))
			}
			if m == 0 { // the pipe holds n bytes: never, but no endless loop
				return io.ErrShortWrite
			}
			n -= m
			x.bytes.Add(m)
			if err := x.paced(m); err != nil {
				return err
			}
		}
	}
}
