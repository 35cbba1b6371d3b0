package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// timerSlack is the timer slack `ferry serve` runs with unless
// FERRY_TIMER_SLACK says otherwise (nanoseconds; 0 keeps the system's).
//
// The Go runtime's monitor thread (sysmon) sleeps 20 µs at a time while
// the server is busy; with Linux's default slack of 50 µs that is about
// fifteen thousand wake-ups a second, each a pair of context switches —
// 9 % of the server's CPU on a 2-core VM moving 4 KiB files. With 1 ms
// of slack it wakes about a thousand times a second. Nothing in an FTP
// server needs timers finer than a millisecond (its timeouts are
// seconds; rate limits pace in tens of milliseconds).
const timerSlack = 1000000

// slackTimers makes the process run with timerSlack: the monitor thread
// starts before any code of ours runs and keeps the slack it started
// with, so the process sets the slack and executes itself again (same
// PID, arguments, environment and open descriptors). It returns when the
// slack is already set, is turned off, or cannot be set.
func slackTimers() {
	want := int64(timerSlack)
	if s, ok := os.LookupEnv("FERRY_TIMER_SLACK"); ok {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return
		}
		want = n
	}
	b, err := os.ReadFile("/proc/self/timerslack_ns")
	if err != nil {
		return
	}
	if cur, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil || cur >= want {
		return
	}
	const prSetTimerSlack = 29 // linux/prctl.h
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, uintptr(want), 0); e != 0 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	syscall.Exec(exe, os.Args, os.Environ()) // returns only on failure: run as we are
}
