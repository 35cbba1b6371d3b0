package limits

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// move paces n bytes through pace in pieces of at most most.
func move(t *testing.T, pace func(int) error, most, n int) {
	for n > 0 {
		k := min(n, most)
		if err := pace(k); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
}

// TestPacerRate: 3 MiB through a 1 MiB/s limiter takes 3 s less the
// first burst, in the fake time of a synctest bubble.
func TestPacerRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pace, most := Pacer(context.Background(), NewLimiter(1<<20))
		if most != 64<<10 {
			t.Errorf("most %d, want a sixteenth of the rate", most)
		}
		start := time.Now()
		move(t, pace, most, 3<<20)
		if el := time.Since(start); el < 2900*time.Millisecond || el > 3*time.Second {
			t.Errorf("3 MiB at 1 MiB/s took %v", el)
		}
	})
}

// TestShared: two transfers on one limiter share its rate; the tighter of
// two limiters wins.
func TestShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		user, server := NewLimiter(1<<20), NewLimiter(4<<20)
		start := time.Now()
		done := make(chan struct{})
		for range 2 {
			go func() {
				pace, most := Pacer(context.Background(), user, server)
				move(t, pace, most, 1<<20)
				done <- struct{}{}
			}()
		}
		<-done
		<-done
		if el := time.Since(start); el < 1900*time.Millisecond || el > 2*time.Second {
			t.Errorf("2 × 1 MiB sharing 1 MiB/s took %v", el)
		}
	})
}

// TestBurstLowered: a wait larger than a burst lowered meanwhile (ferry
// user set) is split, not refused.
func TestBurstLowered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(4 << 20)
		pace, most := Pacer(context.Background(), l)
		SetRate(l, 256<<10)
		if err := pace(most); err != nil {
			t.Fatalf("a piece of the old burst: %v", err)
		}
	})
}

func TestNoLimit(t *testing.T) {
	var nilLimiter *rate.Limiter
	if pace, most := Pacer(context.Background(), nil, nilLimiter); pace != nil || most != 0 {
		t.Error("a pacer without limits")
	}
	if NewLimiter(0) != nil || NewLimiter(-1) != nil {
		t.Error("a limiter for no limit")
	}
}

// TestCancel: a pacer waiting for tokens ends with its context.
func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		pace, most := Pacer(ctx, NewLimiter(16<<10))
		pace(most)
		go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		if err := pace(most); err == nil {
			t.Error("no error after cancel")
		}
	})
}
