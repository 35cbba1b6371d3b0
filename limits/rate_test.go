package limits

import (
	"bytes"
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/memfs"
)

// TestReaderRate: 3 MiB through a 1 MiB/s limiter takes 3 s less the
// first burst, in the fake time of a synctest bubble.
func TestReaderRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(1 << 20)
		start := time.Now()
		n, err := io.Copy(io.Discard, Reader(context.Background(), bytes.NewReader(make([]byte, 3<<20)), l))
		el := time.Since(start)
		if err != nil || n != 3<<20 {
			t.Fatal(n, err)
		}
		if el < 2900*time.Millisecond || el > 3*time.Second {
			t.Errorf("3 MiB at 1 MiB/s took %v", el)
		}
	})
}

// TestShared: two readers on one limiter share its rate; the tighter of
// two limiters wins.
func TestShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		user, server := NewLimiter(1<<20), NewLimiter(4<<20)
		start := time.Now()
		done := make(chan struct{})
		for range 2 {
			go func() {
				io.Copy(io.Discard, Reader(context.Background(), bytes.NewReader(make([]byte, 1<<20)), user, server))
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

func TestNoLimit(t *testing.T) {
	r := bytes.NewReader(nil)
	var nilLimiter *rate.Limiter
	if Reader(context.Background(), r, nil, nilLimiter) != io.Reader(r) {
		t.Error("a reader without limits was wrapped")
	}
	f := memfs.New()
	u, _ := f.Create(context.Background(), "x", storage.CreateOptions{})
	if Upload(context.Background(), u, nilLimiter) != u {
		t.Error("an upload without limits was wrapped")
	}
	if NewLimiter(0) != nil || NewLimiter(-1) != nil {
		t.Error("a limiter for no limit")
	}
}

// TestUploadRate: writes are paced, Commit still publishes.
func TestUploadRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := memfs.New()
		u, _ := f.Create(context.Background(), "x", storage.CreateOptions{})
		p := Upload(context.Background(), u, NewLimiter(512<<10))
		start := time.Now()
		if _, err := p.Write(make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < 1900*time.Millisecond || el > 2*time.Second {
			t.Errorf("1 MiB at 512 KiB/s took %v", el)
		}
		if err := p.Commit(); err != nil {
			t.Fatal(err)
		}
		if fi, err := f.Stat(context.Background(), "x"); err != nil || fi.Size() != 1<<20 {
			t.Fatalf("committed: %v %v", fi, err)
		}
	})
}
