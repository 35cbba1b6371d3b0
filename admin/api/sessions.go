package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferryftp/ferry/server"
)

// Session is a session as the API shows it.
type Session struct {
	ID       uint64    `json:"id"`
	User     string    `json:"user"`
	Remote   string    `json:"remote"`
	Node     string    `json:"node"`
	Since    time.Time `json:"since"`
	TLS      bool      `json:"tls"`
	Command  string    `json:"command"`
	Transfer *Transfer `json:"transfer,omitempty"`
}

// Transfer is a session's running transfer.
type Transfer struct {
	Verb      string    `json:"verb"`
	Path      string    `json:"path"`
	Direction string    `json:"direction"` // upload, download or listing
	Start     time.Time `json:"start"`
	Bytes     int64     `json:"bytes"`
	Size      int64     `json:"size,omitempty"` // of a download: the bytes it will send
	Rate      float64   `json:"rate"`           // bytes a second over the last second
}

// session describes c.
func (a *API) session(c *server.Conn) Session {
	s := Session{ID: c.ID(), User: c.User(), Remote: c.RemoteAddr().String(), Node: a.node.Name,
		Since: c.Since().UTC(), TLS: c.TLS(), Command: c.Command()}
	if t := c.Running(); t != nil {
		s.Transfer = &Transfer{Verb: t.Verb, Path: t.Path, Direction: t.Direction(), Start: t.Start.UTC(), Bytes: t.Bytes,
			Size: t.Size, Rate: a.sampler.rate(c.ID(), t)}
	}
	return s
}

// ListSessions returns the sessions whose user or client address
// contains q (all with q empty), oldest first.
func (a *API) ListSessions(q string) []Session {
	out := []Session{}
	if a.node.Sessions == nil {
		return out
	}
	for _, c := range a.node.Sessions.Conns() {
		s := a.session(c)
		if q == "" || strings.Contains(s.User, q) || strings.Contains(s.Remote, q) {
			out = append(out, s)
		}
	}
	return out
}

// Page is one page of a list.
type Page[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

// paginate cuts the page of offset and limit (default 100, at most
// 1000) out of items.
func paginate[T any](items []T, offset, limit int) Page[T] {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	offset = min(max(offset, 0), len(items))
	return Page[T]{Items: items[offset:min(offset+limit, len(items))], Total: len(items), Offset: offset, Limit: limit}
}

// pageArgs reads the offset and limit of a list request.
func pageArgs(r *http.Request) (offset, limit int, err error) {
	for _, p := range []struct {
		name string
		v    *int
	}{{"offset", &offset}, {"limit", &limit}} {
		if s := r.URL.Query().Get(p.name); s != "" {
			if *p.v, err = strconv.Atoi(s); err != nil || *p.v < 0 {
				return 0, 0, badRequest(p.name + ": want a number of 0 or more")
			}
		}
	}
	return offset, limit, nil
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request) error {
	offset, limit, err := pageArgs(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, paginate(a.ListSessions(r.URL.Query().Get("q")), offset, limit))
}

// conn finds the session of the request's {id}.
func (a *API) conn(r *http.Request) (*server.Conn, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return nil, badRequest("a session id is a number")
	}
	return a.lookup(id)
}

// lookup finds the open session numbered id on this node.
func (a *API) lookup(id uint64) (*server.Conn, error) {
	var c *server.Conn
	if a.node.Sessions != nil {
		c = a.node.Sessions.Conn(id)
	}
	if c == nil {
		return nil, notFound("no session " + strconv.FormatUint(id, 10) + " on this node")
	}
	return c, nil
}

func (a *API) getSession(w http.ResponseWriter, r *http.Request) error {
	c, err := a.conn(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.session(c))
}

// EndSession ends session c: its client gets 421, its transfer is
// aborted (an upload is not published).
func (a *API) EndSession(ctx context.Context, c *server.Conn) {
	c.End("Session ended by the administrator.")
	a.changed(ctx, "session end", "session", c.ID(), "user", c.User(), "client", c.RemoteAddr().String())
}

// EndSessionID ends the session numbered id.
func (a *API) EndSessionID(ctx context.Context, id uint64) error {
	c, err := a.lookup(id)
	if err != nil {
		return err
	}
	a.EndSession(ctx, c)
	return nil
}

func (a *API) endSession(w http.ResponseWriter, r *http.Request) error {
	c, err := a.conn(r)
	if err != nil {
		return err
	}
	a.EndSession(r.Context(), c)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// TransferEnded tells the sampler of a transfer's end (cmd/ferry calls it
// from the server's StateTransferEnd), so that the throughput counts its
// last bytes.
func (a *API) TransferEnded(c *server.Conn, t *server.TransferInfo) { a.sampler.ended(c.ID(), t) }

// sample samples the running transfers once a second.
func (a *API) sample() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-a.stop:
			return
		case now := <-tick.C:
			var conns []*server.Conn
			if a.node.Sessions != nil {
				conns = a.node.Sessions.Conns()
			}
			a.sampler.tick(now, conns)
		}
	}
}

// Point is the throughput of one second.
type Point struct {
	T    time.Time `json:"t"`
	Up   float64   `json:"up"`   // bytes a second received
	Down float64   `json:"down"` // bytes a second sent (downloads and listings)
}

// history is how many points the sampler keeps: five minutes.
const history = 300

type xferKey struct {
	id    uint64
	start time.Time
}

type seen struct {
	bytes int64
	rate  float64
	tick  uint64 // the last tick that saw it running
}

// sampler measures the transfers' rates and the server's throughput
// from their byte counts, once a second.
type sampler struct {
	mu       sync.Mutex
	n        uint64
	last     time.Time
	xfers    map[xferKey]*seen
	up, down int64 // moved since the last tick
	points   []Point
}

func newSampler() *sampler { return &sampler{xfers: map[xferKey]*seen{}, last: time.Now()} }

func (s *sampler) add(t *server.TransferInfo, n int64) {
	if t.Upload() {
		s.up += n
	} else {
		s.down += n
	}
}

func (s *sampler) ended(id uint64, t *server.TransferInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := xferKey{id, t.Start}
	var before int64
	if x := s.xfers[k]; x != nil {
		before = x.bytes
		delete(s.xfers, k)
	}
	s.add(t, max(t.Bytes-before, 0))
}

func (s *sampler) tick(now time.Time, conns []*server.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	dt := now.Sub(s.last).Seconds()
	s.last = now
	if dt <= 0 {
		dt = 1
	}
	for _, c := range conns {
		t := c.Running()
		if t == nil {
			continue
		}
		k := xferKey{c.ID(), t.Start}
		x := s.xfers[k]
		if x == nil {
			x = &seen{}
			s.xfers[k] = x
		}
		d := max(t.Bytes-x.bytes, 0)
		x.bytes, x.rate, x.tick = t.Bytes, float64(d)/dt, s.n
		s.add(t, d)
	}
	for k, x := range s.xfers {
		if s.n-x.tick > 2 { // ended without a word (no hook)
			delete(s.xfers, k)
		}
	}
	s.points = append(s.points, Point{T: now.UTC(), Up: float64(s.up) / dt, Down: float64(s.down) / dt})
	if len(s.points) > history {
		s.points = s.points[len(s.points)-history:]
	}
	s.up, s.down = 0, 0
}

// rate is the transfer's rate over the last second, or its average
// before it was sampled.
func (s *sampler) rate(id uint64, t *server.TransferInfo) float64 {
	s.mu.Lock()
	x := s.xfers[xferKey{id, t.Start}]
	s.mu.Unlock()
	if x != nil {
		return x.rate
	}
	if d := time.Since(t.Start).Seconds(); d > 0 {
		return float64(t.Bytes) / d
	}
	return 0
}

// Throughput is the last minutes' throughput, a point a second.
func (a *API) Throughput() []Point {
	a.sampler.mu.Lock()
	defer a.sampler.mu.Unlock()
	return append([]Point{}, a.sampler.points...)
}
