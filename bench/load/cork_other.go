//go:build !linux

package main

import "net"

// cork does nothing off Linux.
func cork(net.Conn) {}
