//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package events

import "syscall"

// idlePeek cannot look without waiting here: a connection is not kept.
func idlePeek(syscall.RawConn) bool { return false }
