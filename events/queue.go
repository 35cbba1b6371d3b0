package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// segMax is the size at which the queue starts a new segment file; a
// segment goes once every delivery written in it has ended.
const segMax = 4 << 20

// Delivery is one event on its way to one hook.
type Delivery struct {
	Hook  string // the hook's Key
	Event Event
	// Ref is a shared Store's reference to the delivery (a row).
	Ref int64
	seg int64 // the segment holding its add record (Queue)
	// queued is when it joined its hook's line (zero: left from before,
	// it goes at once).
	queued time.Time
	// doc is the event's JSON document when it was made once for the
	// queue's record and every hook's delivery (nil: made when needed).
	doc []byte
}

// document is the event's JSON document.
func (d *Delivery) document() []byte {
	if d.doc != nil {
		return d.doc
	}
	return d.Event.appendJSON(nil)
}

func (d *Delivery) key() string { return d.Event.ID + "." + d.Hook }

// record is a line of a segment: a delivery added, or ended (done: the
// hook took it; dead: given up).
type record struct {
	Op     string `json:"op"`
	Hook   string `json:"hook"`
	Event  *Event `json:"event,omitempty"` // add
	ID     string `json:"id,omitempty"`    // done, dead: the event's ID
	Reason string `json:"reason,omitempty"`
}

// Queue is the durable log of deliveries, JSON lines in segment files
// under its directory: each delivery is written before it is attempted
// and marked when it ends, so a restart — kill -9 included — resumes
// every delivery not yet ended. It is safe for concurrent use.
type Queue struct {
	dir  string
	mu   sync.Mutex
	f    segWriter // the segment being written
	seg  int64
	size int64
	// prev is the segment written before f, kept mapped while deliveries
	// added in it run, so that it can become the spare when they end.
	prev    segWriter
	prevSeg int64
	// spare is a segment whose deliveries all ended, cleared and named
	// spareName: the next segment reuses its mapping (pages already
	// faulted in cost a few ns a record to write; fresh ones, a trap per
	// page, most of all in a VM).
	spare segWriter
	live  map[int64]int // deliveries not yet ended, per segment
	n     int           // in all
	// ends are done records not yet written: they go in one write within
	// endDelay (losing them to a crash only means a delivery made again,
	// with its idempotency key). Adds are written at once.
	ends    []byte
	flusher *time.Timer
	armed   bool // flusher will run
}

// endDelay bounds how long a done record waits to be written with others.
const endDelay = 100 * time.Millisecond

// OpenQueue opens (making it) the queue in dir and returns the deliveries
// that had not ended, oldest first.
func OpenQueue(dir string) (*Queue, []*Delivery, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	segs, err := segments(dir)
	if err != nil {
		return nil, nil, err
	}
	os.Remove(filepath.Join(dir, spareName)) // a crash's: not a segment
	q := &Queue{dir: dir, live: map[int64]int{}}
	open := map[string]*Delivery{}
	var order []*Delivery
	for _, seg := range segs {
		if err := q.replay(seg, open, &order); err != nil {
			return nil, nil, err
		}
	}
	var pending []*Delivery
	for _, d := range order {
		if open[d.key()] == d {
			pending = append(pending, d)
			q.live[d.seg]++
			q.n++
		}
	}
	last := int64(0)
	for _, seg := range segs {
		if q.live[seg] == 0 {
			os.Remove(q.segPath(seg))
		}
		last = seg
	}
	if err := q.rotate(last + 1); err != nil {
		return nil, nil, err
	}
	return q, pending, nil
}

// segments lists the segment numbers in dir, in order.
func segments(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, e := range ents {
		num, ok := strings.CutPrefix(e.Name(), "seg-")
		num, ok2 := strings.CutSuffix(num, ".jsonl")
		if n, err := strconv.ParseInt(num, 10, 64); ok && ok2 && err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (q *Queue) segPath(seg int64) string { return segPath(q.dir, seg) }

// segPath is the file of segment seg in dir.
func segPath(dir string, seg int64) string {
	return filepath.Join(dir, fmt.Sprintf("seg-%016d.jsonl", seg))
}

// replay reads a segment: adds open deliveries, ends close them. A line
// cut short by a crash is skipped.
func (q *Queue) replay(seg int64, open map[string]*Delivery, order *[]*Delivery) error {
	b, err := os.ReadFile(q.segPath(seg))
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(records(b)))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		switch r.Op {
		case "add":
			if r.Event != nil {
				d := &Delivery{Hook: r.Hook, Event: *r.Event, seg: seg}
				open[d.key()] = d
				*order = append(*order, d)
			}
		case "done", "dead":
			delete(open, r.ID+"."+r.Hook)
		}
	}
	return sc.Err()
}

// rotate starts segment seg; q.mu is held (or q is new).
func (q *Queue) rotate(seg int64) error {
	f, err := q.nextSegment(seg)
	if err != nil {
		return err
	}
	if q.f != nil {
		q.retire(q.f, q.seg)
	}
	q.f, q.seg, q.size = f, seg, 0
	return nil
}

// spareName is the file of the spare segment (not a segment: never
// replayed, removed at open).
const spareName = "spare"

// nextSegment opens segment seg: the spare renamed, or a new file; q.mu
// is held.
func (q *Queue) nextSegment(seg int64) (segWriter, error) {
	if w := q.spare; w != nil {
		q.spare = nil
		if os.Rename(filepath.Join(q.dir, spareName), q.segPath(seg)) == nil {
			return w, nil
		}
		w.Close()
		os.Remove(filepath.Join(q.dir, spareName))
	}
	return openSegment(q.segPath(seg))
}

// retire takes w, segment seg, when a newer segment replaces it: it stays
// open while deliveries added in it run (only the last such: an older one
// is closed, its file kept until they end); q.mu is held.
func (q *Queue) retire(w segWriter, seg int64) {
	if q.live[seg] == 0 {
		q.recycle(w, seg)
		return
	}
	if q.prev != nil {
		q.prev.Close()
	}
	q.prev, q.prevSeg = w, seg
}

// recycle ends segment seg, written by w, whose deliveries all ended: it
// becomes the spare — renamed first, so that a crash never replays it,
// then cleared — or, when it cannot, it goes; q.mu is held.
func (q *Queue) recycle(w segWriter, seg int64) {
	if r, ok := w.(reusable); ok && q.spare == nil {
		if os.Rename(q.segPath(seg), filepath.Join(q.dir, spareName)) == nil {
			r.reset()
			q.spare = w
			return
		}
	}
	w.Close()
	os.Remove(q.segPath(seg))
}

// write appends one record, after the done records waiting; q.mu is
// held.
func (q *Queue) write(r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	q.ends = append(append(q.ends, b...), '\n')
	return q.flushLocked()
}

// flushLocked writes the records waiting; q.mu is held.
func (q *Queue) flushLocked() error {
	_, err := q.flushIn()
	return err
}

// flushIn writes the records waiting and says in which segment; q.mu is
// held.
func (q *Queue) flushIn() (int64, error) {
	if len(q.ends) == 0 || q.f == nil {
		return q.seg, nil
	}
	if q.size >= segMax {
		// A new segment before the write, not after it: an add record's
		// delivery counts in its segment before that can go.
		if err := q.rotate(q.seg + 1); err != nil {
			return q.seg, err
		}
	}
	n, err := q.f.Write(q.ends)
	if err == errSegmentFull && q.size > 0 {
		if err = q.rotate(q.seg + 1); err == nil {
			n, err = q.f.Write(q.ends)
		}
	}
	seg := q.seg
	q.size += int64(n)
	q.ends = q.ends[:0]
	return seg, err
}

func (q *Queue) flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.armed = false
	q.flushLocked()
}

// Add writes d before it is attempted.
func (q *Queue) Add(d *Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.f == nil {
		return errors.New("events: queue closed")
	}
	q.ends = appendAdd(q.ends, d)
	seg, err := q.flushIn()
	if err != nil {
		return err
	}
	d.seg = seg // the segment that holds its add record
	q.live[d.seg]++
	q.n++
	return nil
}

// End marks d ended: delivered (reason empty) or given up (dead, with
// the reason). A segment whose deliveries have all ended goes.
func (q *Queue) End(d *Delivery, reason string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.f == nil {
		return errors.New("events: queue closed")
	}
	var err error
	if reason == "" {
		// {"op":"done","hook":…,"id":…}, without the encoder: both are hex.
		q.ends = append(q.ends, `{"op":"done","hook":"`...)
		q.ends = append(q.ends, d.Hook...)
		q.ends = append(q.ends, `","id":"`...)
		q.ends = append(q.ends, d.Event.ID...)
		q.ends = append(q.ends, "\"}\n"...)
		switch {
		case len(q.ends) >= 64<<10:
			err = q.flushLocked()
		case q.armed:
		case q.flusher == nil:
			q.flusher, q.armed = time.AfterFunc(endDelay, q.flush), true
		default:
			q.flusher.Reset(endDelay)
			q.armed = true
		}
	} else {
		err = q.write(record{Op: "dead", Hook: d.Hook, ID: d.Event.ID, Reason: reason})
	}
	q.live[d.seg]--
	q.n--
	if q.live[d.seg] <= 0 && d.seg != q.seg {
		delete(q.live, d.seg)
		if q.prev != nil && d.seg == q.prevSeg {
			q.recycle(q.prev, d.seg)
			q.prev = nil
		} else {
			os.Remove(q.segPath(d.seg))
		}
	}
	if reason != "" {
		q.deadLetter(d, reason)
	}
	return err
}

// deadLetter keeps a given-up event in dead.jsonl, for the operator;
// q.mu is held.
func (q *Queue) deadLetter(d *Delivery, reason string) {
	f, err := os.OpenFile(filepath.Join(q.dir, "dead.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	b, _ := json.Marshal(struct {
		Time   time.Time `json:"time"`
		Hook   string    `json:"hook"`
		Reason string    `json:"reason"`
		Event  Event     `json:"event"`
	}{time.Now().UTC(), d.Hook, reason, d.Event})
	f.Write(append(b, '\n'))
}

// Len is the number of deliveries not yet ended.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Close closes the segment being written.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.f == nil {
		return nil
	}
	if q.flusher != nil {
		q.flusher.Stop()
	}
	q.flushLocked()
	err := q.f.Close()
	q.f = nil
	if q.prev != nil {
		q.prev.Close()
		q.prev = nil
	}
	if q.spare != nil {
		q.spare.Close()
		q.spare = nil
		os.Remove(filepath.Join(q.dir, spareName))
	}
	return err
}

// Waiting says whether the queue in dir holds records (of deliveries that
// may not have ended): a server without hooks opens it then, to give
// them up with a reason rather than forget them.
func Waiting(dir string) bool {
	segs, err := segments(dir)
	if err != nil {
		return false
	}
	for _, s := range segs {
		if fi, err := os.Stat(segPath(dir, s)); err == nil && fi.Size() > 0 {
			return true
		}
	}
	return false
}

var _ Store = (*Queue)(nil)
