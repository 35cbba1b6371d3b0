// Package limits holds what caps a user: the pacing of transfers by
// token buckets (golang.org/x/time/rate).
package limits

import (
	"context"

	"golang.org/x/time/rate"
)

// Limiter paces bytes; *rate.Limiter is one.
type Limiter interface {
	WaitN(ctx context.Context, n int) error
	Burst() int
}

// NewLimiter is a token bucket of bps bytes a second, or nil for bps <= 0
// (no limit). Its burst is a sixteenth of a second's bytes (16 KiB to 64
// MiB), so a transfer keeps within a few per cent of the rate from its
// first second on, and a limit far above the link moves the large pieces
// an unlimited transfer moves.
func NewLimiter(bps int64) *rate.Limiter {
	if bps <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bps), burst(bps))
}

// SetRate changes l to bps (bps > 0) keeping its tokens.
func SetRate(l *rate.Limiter, bps int64) {
	l.SetLimit(rate.Limit(bps))
	l.SetBurst(burst(bps))
}

func burst(bps int64) int {
	return int(min(max(bps/16, 16<<10), 64<<20))
}

// active drops the nil limiters (a nil *rate.Limiter in the interface too).
func active(ls []Limiter) []Limiter {
	var out []Limiter
	for _, l := range ls {
		if l == nil {
			continue
		}
		if rl, ok := l.(*rate.Limiter); ok && rl == nil {
			continue
		}
		out = append(out, l)
	}
	return out
}

// chunk is the most one wait covers: the smallest burst.
func chunk(ls []Limiter) int {
	c := ls[0].Burst()
	for _, l := range ls[1:] {
		c = min(c, l.Burst())
	}
	return max(c, 1)
}

// wait takes n tokens from each limiter, in pieces of its burst (which
// `ferry user set` may have lowered since the transfer began).
func wait(ctx context.Context, ls []Limiter, n int) error {
	for _, l := range ls {
		for left := n; left > 0; {
			k := min(left, max(l.Burst(), 1))
			if err := l.WaitN(ctx, k); err != nil {
				return err
			}
			left -= k
		}
	}
	return nil
}

// Pacer returns a function that waits until n more bytes may pass every
// limiter in ls, and the most one call should cover (the smallest burst),
// so that a transfer loop moves bytes in pieces of at most that and waits
// after each: the zero-copy paths stay (sendfile, splice), paced. It
// returns nil and 0 when ls holds no limiter.
func Pacer(ctx context.Context, ls ...Limiter) (pace func(n int) error, most int) {
	if ls = active(ls); len(ls) == 0 {
		return nil, 0
	}
	return func(n int) error { return wait(ctx, ls, n) }, chunk(ls)
}
