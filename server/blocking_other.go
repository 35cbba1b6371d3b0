//go:build !linux

package server

import (
	"io"
	"net"
)

// sendFile and recvFile are the blocking sendfile(2) and splice(2) paths
// of Linux; elsewhere every transfer goes through Go's network poller.
func (s *session) sendFile(x *transfer, c net.Conn, src io.Reader) (bool, error) {
	return false, nil
}

func (s *session) recvFile(x *transfer, c net.Conn, dst io.Writer) (bool, error) {
	return false, nil
}
