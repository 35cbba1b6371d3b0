package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSessionCtx: contexts derived from a session's context end with it,
// a derived context that ended first is forgotten, AfterFunc after the end
// still runs, and the parent's end ends it.
func TestSessionCtx(t *testing.T) {
	c := newSessionCtx(context.Background())
	cmd, cancelCmd := context.WithCancel(c)
	cancelCmd()
	if len(c.fns) != 0 {
		t.Fatalf("%d callbacks left after the derived context ended", len(c.fns))
	}
	xfer, cancelXfer := context.WithTimeout(c, time.Hour)
	defer cancelXfer()
	ran := make(chan struct{})
	context.AfterFunc(c, func() { close(ran) })
	if c.Err() != nil || xfer.Err() != nil {
		t.Fatal("ended early")
	}
	c.cancel()
	c.cancel() // twice does nothing
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(xfer.Err(), context.Canceled) || cmd.Err() == nil {
		t.Fatalf("after cancel: %v %v", c.Err(), xfer.Err())
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed")
	}
	<-ran
	late := make(chan struct{})
	context.AfterFunc(c, func() { close(late) })
	<-late
	if _, cancel := context.WithCancel(c); cancel != nil {
		cancel()
	}

	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	c = newSessionCtx(parent)
	child, cancelChild := context.WithCancel(c)
	defer cancelChild()
	if child.Value(ctxKey{}) != "v" {
		t.Fatal("value of the parent lost")
	}
	cancelParent()
	<-child.Done()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatal(c.Err())
	}
}

type ctxKey struct{}
