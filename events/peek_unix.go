//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package events

import "syscall"

// idlePeek looks, without waiting or consuming, whether an idle socket
// is still open with nothing to read: a peek that would block.
func idlePeek(rc syscall.RawConn) bool {
	var b [1]byte
	alive := false
	rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // done: never wait for readiness
	})
	return alive
}
