//go:build !linux

package server

import (
	"io"
	"net"
)

// sendFile is the blocking sendfile(2) path of Linux; elsewhere every
// download goes through Go's network poller.
func (s *session) sendFile(x *transfer, c net.Conn, src io.Reader) (bool, error) {
	return false, nil
}
