//go:build unix

package server

import (
	"net"

	"golang.org/x/sys/unix"
)

// canPoll says that readable works here: a kept passive listener can be
// drained of stray connections before its port is handed out again.
const canPoll = true

// readable reports whether a listener has a connection waiting, by a
// poll(2) that does not block.
func readable(tl *net.TCPListener) bool {
	rc, err := tl.SyscallConn()
	if err != nil {
		return false
	}
	ready := false
	rc.Control(func(fd uintptr) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 0)
		ready = err == nil && n == 1 && pfd[0].Revents&unix.POLLIN != 0
	})
	return ready
}
