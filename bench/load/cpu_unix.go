//go:build unix

package main

import (
	"syscall"
	"time"
)

// selfCPU is this process's CPU time so far, as a child reports it.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
