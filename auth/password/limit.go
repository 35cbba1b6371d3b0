package password

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// MaxConcurrent bounds the hash computations (Hash, VerifyContext) that
// run at once in this process: the number of CPUs, at most 8. Each
// argon2id run holds Memory (19 MiB) while it runs, so a burst of logins
// from many addresses takes at most MaxConcurrent × 19 MiB — more runs at
// once would not finish sooner on the same cores. The others wait their
// turn, within their context (the server's login timeout).
var MaxConcurrent = min(runtime.NumCPU(), 8)

// releaseAfter is how long hashing must have been idle before the memory
// its runs left behind is given back to the operating system.
const releaseAfter = 500 * time.Millisecond

// limiter queues hash computations and gives their memory back once they
// stop: argon2 allocates its 19 MiB afresh for every run, and the Go
// runtime would otherwise keep the high-water mark of a burst for good.
var limiter struct {
	once    sync.Once
	slots   chan struct{} // one per computation running
	mu      sync.Mutex
	wanted  int // computations running or waiting for a slot
	peak    int // the most that ever ran at once (tests)
	release *time.Timer
}

func acquire(ctx context.Context) error {
	limiter.once.Do(func() {
		limiter.slots = make(chan struct{}, max(MaxConcurrent, 1))
		limiter.release = time.AfterFunc(time.Hour, debug.FreeOSMemory)
		limiter.release.Stop()
	})
	limiter.mu.Lock()
	limiter.wanted++
	limiter.release.Stop()
	limiter.mu.Unlock()
	select {
	case limiter.slots <- struct{}{}:
	case <-ctx.Done():
		leave()
		return ctx.Err()
	}
	limiter.mu.Lock()
	limiter.peak = max(limiter.peak, len(limiter.slots))
	limiter.mu.Unlock()
	return nil
}

// leave takes one computation off the count and reports whether others
// are running or waiting; after the last, the memory goes back to the
// system once hashing has been idle for releaseAfter.
func leave() (others bool) {
	limiter.mu.Lock()
	defer limiter.mu.Unlock()
	limiter.wanted--
	if limiter.wanted == 0 {
		limiter.release.Reset(releaseAfter)
	}
	return limiter.wanted > 0
}

// done ends a computation. In a burst (others running or waiting) it
// collects the garbage of its run before the next one allocates, so the
// heap holds about MaxConcurrent runs, not the pacer's twice as many.
func done() {
	if leave() {
		runtime.GC()
	}
	<-limiter.slots
}
