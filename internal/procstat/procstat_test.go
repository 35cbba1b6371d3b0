package procstat

import (
	"os"
	"testing"
	"time"
)

// TestTreeCPU: this process's CPU time as /proc tells it grows with work
// done, in clock ticks.
func TestTreeCPU(t *testing.T) {
	self := os.Getpid()
	if StatFields(self) == nil {
		t.Skip("no /proc/PID/stat on this system")
	}
	before := TreeCPU(self)
	x := 1
	for deadline := time.Now().Add(5 * time.Second); TreeCPU(self) < before+3*ClockTick; {
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

// TestPeakRSS: the peak grows when memory is touched, and ResetPeak
// starts it again from what is resident now.
func TestPeakRSS(t *testing.T) {
	self := os.Getpid()
	if PeakRSS(self) == 0 {
		t.Skip("no /proc/PID/status on this system")
	}
	b := make([]byte, 64<<20)
	for i := range b {
		b[i] = 1
	}
	peak := PeakRSS(self)
	if peak < 64<<20 {
		t.Fatalf("peak %d after touching 64 MiB", peak)
	}
	if err := ResetPeak(self); err != nil {
		t.Skipf("clear_refs: %v", err)
	}
	b[len(b)-1] = 2 // keeps b alive past the reset
	if after := PeakRSS(self); after <= 0 {
		t.Fatalf("peak after reset: %d", after)
	}
}

// TestMachine: the machine's busy time grows while this process works,
// never passes all of its time, and sleeping and waking makes context
// switches.
func TestMachine(t *testing.T) {
	start := Machine()
	if start.All == 0 {
		t.Skip("no /proc/stat on this system")
	}
	x := 1
	for deadline := time.Now().Add(5 * time.Second); ; {
		m := Machine()
		if m.Busy > m.All || m.All < start.All {
			t.Fatalf("busy %v of %v, after %v of %v", m.Busy, m.All, start.Busy, start.All)
		}
		if m.Busy >= start.Busy+3*ClockTick {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("busy time did not grow from %v", start.Busy)
		}
		for i := 0; i < 1e6; i++ {
			x = x*31 + i
		}
	}
	if x == 0 {
		t.Log(x)
	}
	before := Machine().Switches
	for range 10 {
		time.Sleep(time.Millisecond)
	}
	if after := Machine().Switches; after < before+10 {
		t.Fatalf("%d context switches after 10 sleeps, from %d", after, before)
	}
}
