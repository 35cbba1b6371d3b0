//go:build !unix

package server

import "net"

// canPoll is false where a listener cannot be polled without blocking:
// every PASV/EPSV then opens a listener of its own (as PassiveKeep < 0
// does everywhere), so no stray connection can be taken for a transfer.
const canPoll = false

// readable cannot tell here; the data connection is taken by openData's
// Accept instead.
func readable(tl *net.TCPListener) bool { return false }
