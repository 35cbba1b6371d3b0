package main

import (
	"net"

	"golang.org/x/sys/unix"
)

// cork sets TCP_CORK on c, as Ferry's sendfile thread (and ProFTPD) do:
// full segments only, until the connection is closed.
func cork(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	if rc, err := tc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, 1) })
	}
}
