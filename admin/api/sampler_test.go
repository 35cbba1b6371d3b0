package api

import (
	"testing"
	"time"

	"github.com/ferryftp/ferry/server"
)

// TestSamplerThroughput: a transfer's bytes count once in the throughput,
// whether the sampler saw it running or only heard of its end.
func TestSamplerThroughput(t *testing.T) {
	s := newSampler()
	start := time.Now()
	s.ended(1, &server.TransferInfo{Verb: "STOR", Start: start, Bytes: 1000})
	s.ended(2, &server.TransferInfo{Verb: "RETR", Start: start, Bytes: 300})
	s.tick(s.last.Add(time.Second), nil)
	// A transfer seen at 400 bytes, then ended at 1000: 600 more.
	s.xfers[xferKey{3, start}] = &seen{bytes: 400, tick: s.n}
	s.ended(3, &server.TransferInfo{Verb: "APPE", Start: start, Bytes: 1000})
	s.tick(s.last.Add(2*time.Second), nil)
	if len(s.points) != 2 || s.points[0].Up != 1000 || s.points[0].Down != 300 || s.points[1].Up != 300 || len(s.xfers) != 0 {
		t.Fatalf("points %+v, %d transfers left", s.points, len(s.xfers))
	}
	for range history + 10 {
		s.tick(s.last.Add(time.Second), nil)
	}
	if len(s.points) != history {
		t.Errorf("%d points kept, want %d", len(s.points), history)
	}
}

// BenchmarkTransferEnded: what the admin API adds to each transfer's end
// (its throughput counts the last bytes).
func BenchmarkTransferEnded(b *testing.B) {
	s := newSampler()
	t := &server.TransferInfo{Verb: "STOR", Start: time.Now(), Bytes: 4096}
	var id uint64
	for b.Loop() {
		id++
		s.ended(id, t)
	}
}
