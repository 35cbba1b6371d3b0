package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The steps of a small transfer, as the client sees them.
const (
	stepEPSV    = iota // EPSV sent, 229 read
	stepConnect        // the data connection made
	step150            // STOR or RETR sent, 150 read
	stepData           // the bytes written or read, the data connection closed
	step226            // the 226 read
	numSteps
)

var stepNames = [numSteps]string{"EPSV→229", "connect", "STOR/RETR→150", "data+close", "→226"}

// stepTimes holds one session's step durations.
type stepTimes struct {
	last time.Time
	took [numSteps][]time.Duration
}

// mark ends step (or, for -1, starts the first); nil: not timed.
func (s *stepTimes) mark(step int) {
	if s == nil {
		return
	}
	now := time.Now()
	if step >= 0 {
		s.took[step] = append(s.took[step], now.Sub(s.last))
	}
	s.last = now
}

// reportSteps prints each step's median and 90th percentile over every
// session's transfers.
func reportSteps(sessions []*conn) {
	var all [numSteps][]time.Duration
	for _, c := range sessions {
		if c.steps != nil {
			for i := range all {
				all[i] = append(all[i], c.steps.took[i]...)
			}
		}
	}
	var b strings.Builder
	b.WriteString("steps, median/p90 µs:")
	var sum float64
	for i, d := range all {
		if len(d) == 0 {
			return
		}
		slices.Sort(d)
		p50, p90 := d[len(d)/2], d[len(d)*9/10]
		sum += float64(p50.Nanoseconds()) / 1e3
		fmt.Fprintf(&b, " %s %.0f/%.0f", stepNames[i], float64(p50.Nanoseconds())/1e3, float64(p90.Nanoseconds())/1e3)
	}
	fmt.Fprintf(&b, "; medians summed %.0f", sum)
	fmt.Println(b.String())
}
