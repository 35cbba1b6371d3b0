package main

import (
	"io"
	"testing"
)

// TestDiscardReadSize: a download is read 1 MiB at a time, not in
// io.Discard's own 8 KiB reads.
func TestDiscardReadSize(t *testing.T) {
	r := &sizeReader{left: 3 << 20}
	n, err := discard(r)
	if err != nil || n != 3<<20 {
		t.Fatalf("discard: %d bytes, %v", n, err)
	}
	if r.most != 1<<20 {
		t.Fatalf("largest read asked for %d bytes, want 1 MiB", r.most)
	}
}

// sizeReader gives left zero bytes and keeps the largest read asked for.
type sizeReader struct {
	left int
	most int
}

func (r *sizeReader) Read(p []byte) (int, error) {
	r.most = max(r.most, len(p))
	if r.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.left)
	clear(p[:n])
	r.left -= n
	return n, nil
}
