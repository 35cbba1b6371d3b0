package main

import (
	"os"
	"testing"
	"time"
)

// TestParseRate reads the rates and CPU figures out of bench/load's reports
// as the rounds read them.
func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		out  string
		want float64
		ok   bool
	}{
		{"small files up: 1000 transfers of 4096 B in 2.052s: 487 files/s (1 clients)\n", 487, true},
		{"RETR: 1073741824 bytes in 581ms: 1849 MB/s; server CPU 471ms: 2278 MB/CPU-s\n", 1849, true},
		{"load: EPSV: 425 EPSV: Address already in use\n", 0, false},
		{"files/s", 0, false},
	} {
		got, ok := parseRate(c.out)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRate(%q) = %v, %v; want %v, %v", c.out, got, ok, c.want, c.ok)
		}
	}
	if v, ok := parseUnit("RETR: 1 bytes in 1s: 1849 MB/s; server CPU 471ms: 2278 MB/CPU-s", "MB/CPU-s"); !ok || v != 2278 {
		t.Errorf("MB/CPU-s: %v, %v", v, ok)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), c.in...)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Fatalf("median reordered its argument: %v", c.in)
			}
		}
	}
}

// TestTreeCPU: this process's CPU time as /proc tells it grows with work
// done, in clock ticks.
func TestTreeCPU(t *testing.T) {
	self := os.Getpid()
	if statFields(self) == nil {
		t.Skip("no /proc/PID/stat on this system")
	}
	before := treeCPU(self)
	x := 1
	for deadline := time.Now().Add(5 * time.Second); treeCPU(self) < before+3*clockTick; {
		if time.Now().After(deadline) {
			t.Fatalf("CPU time did not grow from %v", before)
		}
		for i := 0; i < 1e6; i++ {
			x = x*31 + i
		}
	}
	if x == 0 {
		t.Log(x) // keeps the loop
	}
}
