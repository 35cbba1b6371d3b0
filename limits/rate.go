// Package limits holds what caps a user: the pacing of transfers by
// token buckets (golang.org/x/time/rate).
package limits

import (
	"context"
	"io"

	"golang.org/x/time/rate"

	"github.com/ferryftp/ferry/storage"
)

// Limiter paces bytes; *rate.Limiter is one.
type Limiter interface {
	WaitN(ctx context.Context, n int) error
	Burst() int
}

// NewLimiter is a token bucket of bps bytes a second, or nil for bps <= 0
// (no limit). Its burst is a sixteenth of a second's bytes (16 KiB to
// 256 KiB), so a transfer keeps within a few per cent of the rate from its
// first second on.
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
	return int(min(max(bps/16, 16<<10), 256<<10))
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

// Reader paces r by every limiter in ls; with none it is r itself, so a
// download without a limit keeps its zero-copy path.
func Reader(ctx context.Context, r io.Reader, ls ...Limiter) io.Reader {
	if ls = active(ls); len(ls) == 0 {
		return r
	}
	return &reader{ctx: ctx, r: r, ls: ls, chunk: chunk(ls)}
}

type reader struct {
	ctx   context.Context
	r     io.Reader
	ls    []Limiter
	chunk int
}

func (p *reader) Read(b []byte) (int, error) {
	if len(b) > p.chunk {
		b = b[:p.chunk]
	}
	n, err := p.r.Read(b)
	if n > 0 {
		if werr := wait(p.ctx, p.ls, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// Upload paces the writes of u by every limiter in ls; with none it is u
// itself, keeping its zero-copy path.
func Upload(ctx context.Context, u storage.Upload, ls ...Limiter) storage.Upload {
	if ls = active(ls); len(ls) == 0 {
		return u
	}
	return &upload{Upload: u, ctx: ctx, ls: ls, chunk: chunk(ls)}
}

// upload forwards Commit and Abort; it has no SyscallConn, so the server
// copies through Write.
type upload struct {
	storage.Upload
	ctx   context.Context
	ls    []Limiter
	chunk int
}

func (p *upload) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		n := min(len(b), p.chunk)
		if err := wait(p.ctx, p.ls, n); err != nil {
			return written, err
		}
		m, err := p.Upload.Write(b[:n])
		written += m
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}
