package server

import (
	"context"
	"slices"
	"sync"
)

// sessionCtx is a session's context: it ends with the session (or with
// its parent). It is what context.WithCancel makes, but it keeps the
// contexts derived from it (one per command, one per transfer) in a short
// slice, through the AfterFunc method the context package looks for,
// rather than in the map that context.WithCancel keeps for good once one
// was derived: an idle session costs a few hundred bytes less.
type sessionCtx struct {
	context.Context // the parent: values and deadline

	mu         sync.Mutex
	done       chan struct{} // made by the first Done
	err        error
	fns        []*func() // run when the context ends
	stopParent func() bool
}

func newSessionCtx(parent context.Context) *sessionCtx {
	c := &sessionCtx{Context: parent}
	if parent.Done() != nil {
		c.stopParent = context.AfterFunc(parent, c.cancel)
	}
	return c
}

func (c *sessionCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *sessionCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc arranges for f to run once the context ends, as
// context.AfterFunc does (the context package uses it for the contexts
// derived from this one).
func (c *sessionCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	p := &f
	c.fns = append(c.fns, p)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.fns, p)
		if i < 0 {
			return false
		}
		c.fns = slices.Delete(c.fns, i, i+1)
		return true
	}
}

// cancel ends the context and those derived from it; later calls do
// nothing.
func (c *sessionCtx) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = c.Context.Err()
	if c.err == nil {
		c.err = context.Canceled
	}
	if c.done != nil {
		close(c.done)
	}
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	if c.stopParent != nil {
		c.stopParent()
	}
	for _, f := range fns {
		(*f)() // the context package's: they cancel a context, no more
	}
}
