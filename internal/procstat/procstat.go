// Package procstat reads processes' CPU time and memory from Linux's
// /proc, for the benchmark tools.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const ClockTick = 10 * time.Millisecond

// TreeCPU is the CPU time of pid and its live descendants, each with the
// time of the children it has reaped (a forking server's ended sessions).
func TreeCPU(pid int) time.Duration {
	user, sys := TreeTimes(pid)
	return user + sys
}

// TreeTimes is TreeCPU split into the time in user space and in the
// kernel.
func TreeTimes(pid int) (user, sys time.Duration) {
	for _, p := range append(Descendants(pid), pid) {
		if f := StatFields(p); len(f) > 16 {
			for _, i := range []int{13, 14, 15, 16} { // utime stime cutime cstime
				v, _ := strconv.ParseInt(f[i], 10, 64)
				if i == 13 || i == 15 {
					user += time.Duration(v) * ClockTick
				} else {
					sys += time.Duration(v) * ClockTick
				}
			}
		}
	}
	return user, sys
}

// Descendants lists the processes below pid.
func Descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := StatFields(p); len(f) > 3 {
			pp, _ := strconv.Atoi(f[3])
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// StatFields splits /proc/PID/stat, the command name (which may hold
// spaces) counted as one field.
func StatFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i {
		return nil
	}
	return append([]string{s[:i-1], s[i+1 : j]}, strings.Fields(s[j+1:])...)
}

// PeakRSS is the peak resident memory of pid (VmHWM) since it started or
// since ResetPeak.
func PeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// ResetPeak starts a new peak for PeakRSS (clear_refs 5).
func ResetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// MachineTimes is the whole machine's CPU time and context switches
// since it started, summed over its cores (/proc/stat).
type MachineTimes struct {
	// Busy is every state but idle and iowait; steal, time the host ran
	// something else, counts as busy.
	Busy, All time.Duration
	Switches  uint64 // the ctxt line
}

// Machine reads MachineTimes in one read of /proc/stat; zero where there
// is none.
func Machine() MachineTimes {
	var m MachineTimes
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 6 && f[0] == "cpu":
			for i, s := range f[1:min(len(f), 9)] { // guest and guest_nice are in user and nice
				v, _ := strconv.ParseInt(s, 10, 64)
				d := time.Duration(v) * ClockTick
				m.All += d
				if i != 3 && i != 4 { // idle, iowait
					m.Busy += d
				}
			}
		case len(f) == 2 && f[0] == "ctxt":
			m.Switches, _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	return m
}
