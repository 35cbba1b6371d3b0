package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the settings of a Dispatcher.
type Options struct {
	// Dir holds the queue (the data directory's hooks/).
	Dir string
	// RetryFor is how long after an event happened its deliveries are
	// retried before they are given up (dead-lettered). Zero: 24 hours.
	RetryFor time.Duration
	// MaxQueue bounds the deliveries waiting; an event past it is given
	// up at once. Zero: 100,000.
	MaxQueue int
	// Workers is how many deliveries run at once per hook. Zero: 4.
	Workers int
	// Backoff is a failing hook's first pause; each failure after doubles
	// it, up to 5 minutes. Zero: 1 second.
	Backoff time.Duration
	// Logger receives the given-up deliveries and the hooks that fail.
	// Nil: slog.Default().
	Logger *slog.Logger
	// Store, when set, keeps the deliveries instead of the queue in Dir:
	// a database that nodes share (when it is a Taker, a node takes over
	// the deliveries of nodes that stopped).
	Store Store
	// TakeEvery is how often a Taker store is asked for deliveries to
	// take over. Zero: 5 seconds.
	TakeEvery time.Duration
}

// Store keeps the deliveries until they end. Queue (on disk) is one.
type Store interface {
	// Add records d before it is attempted.
	Add(d *Delivery) error
	// End records that d ended: delivered (reason "") or given up.
	End(d *Delivery, reason string) error
	// Len is the number of deliveries not yet ended.
	Len() int
	Close() error
}

// Taker is a Store shared by nodes: Take returns the deliveries this node
// is to make now that it has taken them over (at start, and from nodes
// that stopped).
type Taker interface {
	Take(ctx context.Context) ([]*Delivery, error)
}

// maxBackoff is the longest pause of a failing hook.
const maxBackoff = 5 * time.Minute

// Dispatcher hands events to the hooks that hear them, through the
// queue. Publish never waits for a hook.
type Dispatcher struct {
	o      Options
	q      Store
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	runners map[string]*runner // by hook key
	// idPrefix and idSeq make newID's keys: 64 random bits drawn once,
	// and a count.
	idPrefix [16]byte
	idSeq    uint64
	// heard is what the hooks hear, asked at every transfer's end without
	// the lock; SetHooks replaces it.
	heard atomic.Pointer[hearing]
}

// hearing is what a set of hooks hears: the kinds of events, and whether
// a hook on upload wants the SHA-256.
type hearing struct {
	kinds []string
	hash  bool
}

func hearingOf(hooks []Hook) *hearing {
	h := &hearing{}
	for _, hk := range hooks {
		for _, k := range hk.On {
			if !slices.Contains(h.kinds, k) {
				h.kinds = append(h.kinds, k)
			}
		}
		h.hash = h.hash || hk.SHA256 && hk.Hears(Upload)
	}
	return h
}

// Open opens the queue in o.Dir and starts delivering to hooks, the
// deliveries a previous run left first. Those of hooks no longer
// configured are given up.
func Open(o Options, hooks []Hook) (*Dispatcher, error) {
	if o.RetryFor <= 0 {
		o.RetryFor = 24 * time.Hour
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 100000
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.TakeEvery <= 0 {
		o.TakeEvery = 5 * time.Second
	}
	var q Store = o.Store
	var pending []*Delivery
	var err error
	if q == nil {
		q, pending, err = OpenQueue(o.Dir)
	} else if t, ok := q.(Taker); ok {
		pending, err = t.Take(context.Background())
	}
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{o: o, q: q, runners: map[string]*runner{},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Workers}}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.SetHooks(hooks)
	d.resume(pending)
	if t, ok := q.(Taker); ok {
		d.wg.Add(1)
		go d.takeOver(t)
	}
	return d, nil
}

// resume hands deliveries left from before to their hooks' runners; those
// of hooks no longer configured are given up.
func (d *Dispatcher) resume(pending []*Delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	byHook := map[*runner][]*Delivery{}
	for _, dl := range pending {
		if r := d.runners[dl.Hook]; r != nil {
			byHook[r] = append(byHook[r], dl)
		} else {
			d.giveUp(dl, "the hook is no longer configured")
		}
	}
	for r, dls := range byHook {
		r.push(dls...) // together: they go in full batches
	}
}

// takeOver asks the shared store for the deliveries of nodes that stopped.
func (d *Dispatcher) takeOver(t Taker) {
	defer d.wg.Done()
	tick := time.NewTicker(d.o.TakeEvery)
	defer tick.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-tick.C:
		}
		taken, err := t.Take(d.ctx)
		if err != nil {
			if d.ctx.Err() == nil {
				d.o.Logger.Warn("hook deliveries of stopped nodes not taken", "err", err)
			}
			continue
		}
		if len(taken) > 0 {
			d.o.Logger.Info("took over the hook deliveries of a stopped node", "deliveries", len(taken))
			d.resume(taken)
		}
	}
}

// SetHooks replaces the hooks (a reloaded configuration). A hook that
// stays (same target) keeps its waiting deliveries; those of a hook
// removed are given up.
func (d *Dispatcher) SetHooks(hooks []Hook) {
	d.mu.Lock()
	defer d.mu.Unlock()
	keep := map[string]*runner{}
	for _, h := range hooks {
		k := h.Key()
		if r := d.runners[k]; r != nil {
			r.setHook(h)
			keep[k] = r
		} else if keep[k] == nil {
			keep[k] = d.start(h)
		}
	}
	for k, r := range d.runners {
		if keep[k] == nil {
			for _, dl := range r.stop() {
				d.giveUp(dl, "the hook was removed from the configuration")
			}
		}
	}
	d.runners = keep
	d.heard.Store(hearingOf(hooks))
}

// Hears says whether any hook hears kind (to skip building events no
// one hears).
func (d *Dispatcher) Hears(kind string) bool {
	if d == nil {
		return false
	}
	return slices.Contains(d.heard.Load().kinds, kind)
}

// HashUploads says whether a hook on upload wants the SHA-256.
func (d *Dispatcher) HashUploads() bool {
	if d == nil {
		return false
	}
	return d.heard.Load().hash
}

// Publish queues e for every hook that hears it (an ID and a time are
// given when it has none). It writes the queue and returns.
func (d *Dispatcher) Publish(e Event) {
	if d == nil {
		return
	}
	now := time.Now()
	if e.Time.IsZero() {
		e.Time = now.UTC()
	}
	var doc []byte // made once, for the records and deliveries of every hook
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.ID == "" {
		e.ID = d.newID()
	}
	for k, r := range d.runners {
		// r.hook changes only under d.mu (SetHooks), which is held.
		if !r.hook.Hears(e.Event) {
			continue
		}
		if doc == nil {
			doc = e.appendJSON(make([]byte, 0, 384))
		}
		dl := &Delivery{Hook: k, Event: e, queued: now, doc: doc}
		if d.q.Len() >= d.o.MaxQueue {
			d.o.Logger.Error("hook event given up", "hook", r.name(), "event", e.Event, "id", e.ID, "reason", "the queue is full")
			continue
		}
		if err := d.q.Add(dl); err != nil {
			d.o.Logger.Error("hook event not queued", "hook", r.name(), "event", e.Event, "id", e.ID, "err", err)
			continue
		}
		r.push(dl)
	}
}

// newID returns a new idempotency key, 32 hex digits as NewID's: 64
// random bits drawn once per dispatcher, then the count of its events.
// Unique as NewID's are (a prefix repeats among 2^32 starts of a server
// with even odds), without random bytes per event; d.mu is held.
func (d *Dispatcher) newID() string {
	if d.idSeq == 0 {
		var b [8]byte
		rand.Read(b[:])
		hex.Encode(d.idPrefix[:], b[:])
	}
	d.idSeq++
	var id [32]byte
	copy(id[:], d.idPrefix[:])
	for i, n := 31, d.idSeq; i >= 16; i, n = i-1, n>>4 {
		id[i] = hexDigits[n&15]
	}
	return string(id[:])
}

// Len is the number of deliveries waiting (ferry_hook_queue_length).
func (d *Dispatcher) Len() int {
	if d == nil {
		return 0
	}
	return d.q.Len()
}

// Close stops the deliveries; those not ended stay queued for the next
// start.
func (d *Dispatcher) Close() error {
	d.cancel()
	d.mu.Lock()
	for _, r := range d.runners {
		r.stop()
	}
	d.mu.Unlock()
	d.wg.Wait()
	return d.q.Close()
}

// giveUp ends dl as dead and logs why.
func (d *Dispatcher) giveUp(dl *Delivery, reason string) {
	d.o.Logger.Error("hook event given up", "hook", dl.Hook, "event", dl.Event.Event, "id", dl.Event.ID, "reason", reason)
	d.q.End(dl, reason)
}

// giveUpAll gives up each of dls for reason.
func (d *Dispatcher) giveUpAll(dls []*Delivery, reason string) {
	for _, dl := range dls {
		d.giveUp(dl, reason)
	}
}

// tooOld gives up the deliveries of dls whose event is older than
// RetryFor, and returns the others (to retry).
func (d *Dispatcher) tooOld(dls []*Delivery, h Hook, err error) []*Delivery {
	keep := dls[:0]
	for _, dl := range dls {
		if time.Since(dl.Event.Time) > d.o.RetryFor {
			d.giveUp(dl, h.Name()+": still failing after "+d.o.RetryFor.String()+": "+err.Error())
		} else {
			keep = append(keep, dl)
		}
	}
	return keep
}

// runner delivers to one hook: Workers at a time, first in first out.
// When a delivery fails, the delivery goes back to the front and the hook
// pauses (backoff), so a hook that is down is tried once per pause, not
// once per event.
type runner struct {
	d    *Dispatcher
	wake chan struct{} // a delivery may be ready
	quit chan struct{} // closed by stop

	mu      sync.Mutex
	hook    Hook
	fifo    []*Delivery
	paused  time.Time // no delivery starts before
	backoff time.Duration
	round   int // counts the pauses: the failures of one round pause once
	stopped bool
}

func (d *Dispatcher) start(h Hook) *runner {
	r := &runner{d: d, hook: h, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	for range d.o.Workers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			r.work()
		}()
	}
	return r
}

func (r *runner) setHook(h Hook) {
	r.mu.Lock()
	r.hook = h
	r.mu.Unlock()
}

func (r *runner) name() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hook.Name()
}

func (r *runner) push(dls ...*Delivery) {
	r.mu.Lock()
	r.fifo = append(r.fifo, dls...)
	// A batch short of its size waits for its first delivery's time: a
	// worker is woken when a batch begins and when it is full, not for
	// each delivery in between.
	n, size := len(r.fifo), r.hook.batch()
	wake := size == 1 || n == len(dls) || n >= size
	r.mu.Unlock()
	if wake {
		r.signal()
	}
}

func (r *runner) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// stop ends the workers and returns the deliveries still waiting.
func (r *runner) stop() []*Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil
	}
	r.stopped = true
	left := r.fifo
	r.fifo = nil
	close(r.quit)
	return left
}

// take waits for the next deliveries — one, or a hook's batch — and says
// in which round they start; nil once stopped.
func (r *runner) take() ([]*Delivery, Hook, int) {
	for {
		r.mu.Lock()
		if r.stopped {
			r.mu.Unlock()
			return nil, Hook{}, 0
		}
		n, wait := r.ready()
		if n > 0 {
			dls := slices.Clone(r.fifo[:n])
			clear(r.fifo[:n])
			r.fifo = r.fifo[n:]
			more := len(r.fifo) > 0
			h, round := r.hook, r.round
			r.mu.Unlock()
			if more {
				r.signal() // another worker may take the next
			}
			return dls, h, round
		}
		r.mu.Unlock()
		if !r.wait(wait) {
			return nil, Hook{}, 0
		}
	}
}

// ready says how many deliveries to take now; when none, how long until
// some may be (zero: until one comes). The hook may be paused, and a
// batch short of its size waits for the oldest's batch_wait; r.mu is
// held.
func (r *runner) ready() (int, time.Duration) {
	if wait := time.Until(r.paused); wait > 0 {
		return 0, wait
	}
	size := r.hook.batch()
	n := min(len(r.fifo), size)
	if n == 0 {
		return 0, 0
	}
	if n < size && !r.fifo[0].queued.IsZero() {
		if wait := time.Until(r.fifo[0].queued.Add(r.hook.batchWait())); wait > 0 {
			return 0, wait
		}
	}
	return n, 0
}

// wait waits for a wake-up, or d when positive (a pause ending); false
// once stopped.
func (r *runner) wait(d time.Duration) bool {
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-r.wake:
	case <-timer:
	case <-r.quit:
		return false
	}
	return true
}

func (r *runner) work() {
	for {
		dls, h, round := r.take()
		if dls == nil {
			return
		}
		err := deliver(r.d.ctx, r.d.client, h, dls)
		switch {
		case err == nil:
			for _, dl := range dls {
				r.d.q.End(dl, "")
			}
			r.ok()
		case r.d.ctx.Err() != nil:
			return // shutting down: they stay queued
		case errors.As(err, new(permanent)):
			r.d.giveUpAll(dls, h.Name()+": "+err.Error())
		default:
			if dls = r.d.tooOld(dls, h, err); len(dls) > 0 {
				r.retry(dls, h, round, err)
			}
		}
	}
}

func (r *runner) ok() {
	r.mu.Lock()
	r.backoff = 0
	r.mu.Unlock()
}

// retry puts dls back first in line, in their order, and pauses the
// hook, unless a delivery of the same round (begun before the pause)
// paused it already: the workers failing at once make one pause, not one
// each.
func (r *runner) retry(dls []*Delivery, h Hook, round int, err error) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return // stays queued on disk
	}
	r.fifo = append(dls, r.fifo...)
	if round != r.round {
		r.mu.Unlock()
		return
	}
	r.round++
	first := r.backoff == 0
	r.backoff = min(max(r.backoff*2, r.d.o.Backoff), maxBackoff)
	r.paused = time.Now().Add(r.backoff)
	backoff := r.backoff
	r.mu.Unlock()
	if first {
		r.d.o.Logger.Warn("hook failing, retrying", "hook", h.Name(), "event", dls[0].Event.Event, "id", dls[0].Event.ID, "events", len(dls), "err", err, "retry_in", backoff)
	}
	r.signal()
}
