package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// treeCPU is the CPU time of pid and its live descendants, each with the
// time of the children it has reaped (a forking server's ended sessions).
func treeCPU(pid int) time.Duration {
	var sum time.Duration
	for _, p := range append(descendants(pid), pid) {
		if f := statFields(p); len(f) > 16 {
			for _, i := range []int{13, 14, 15, 16} { // utime stime cutime cstime
				v, _ := strconv.ParseInt(f[i], 10, 64)
				sum += time.Duration(v) * clockTick
			}
		}
	}
	return sum
}

// descendants lists the processes below pid.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(p); len(f) > 3 {
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

// statFields splits /proc/PID/stat, the command name (which may hold
// spaces) counted as one field.
func statFields(pid int) []string {
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
