package password

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestVerificationsBounded: however many verifications are asked for at
// once, at most MaxConcurrent hashes run; one that cannot get a turn
// before its context ends returns the context's error.
func TestVerificationsBounded(t *testing.T) {
	h, err := Hash("right")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 * MaxConcurrent {
		wg.Go(func() {
			if err := Verify(h, "wrong"); !errors.Is(err, ErrMismatch) {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	limiter.mu.Lock()
	peak := limiter.peak
	limiter.mu.Unlock()
	if peak > MaxConcurrent || peak < 1 {
		t.Fatalf("%d hashes ran at once, bound %d", peak, MaxConcurrent)
	}

	// Every turn taken: a verification waits, then gives up with its context.
	for range MaxConcurrent {
		acquire(context.Background())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := VerifyContext(ctx, h, "right"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("VerifyContext with no turn free: %v", err)
	}
	for range MaxConcurrent {
		done()
	}
	if err := VerifyContext(context.Background(), h, "right"); err != nil {
		t.Errorf("VerifyContext after the turns came back: %v", err)
	}
}
