package events

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// endpoint is a test HTTP hook: it counts the events by idempotency key
// and answers with status (200 when zero). A POST is one event, with its
// Idempotency-Key, or a batch: an array of events, without the header.
type endpoint struct {
	*httptest.Server
	mu      sync.Mutex
	got     map[string]int
	kinds   map[string]int
	batches [][]string // the paths of each batch
	status  atomic.Int32
	calls   atomic.Int32
}

func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{got: map[string]int{}, kinds: map[string]int{}}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.calls.Add(1)
		if s := e.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		evs, batch, err := decodeDelivery(r)
		if err != nil {
			t.Errorf("bad delivery: %v", err)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		var paths []string
		for _, ev := range evs {
			if _, err := hex.DecodeString(ev.ID); err != nil || len(ev.ID) != 32 {
				t.Errorf("event ID %q: not 128 bits in hex", ev.ID)
			}
			e.got[ev.ID]++
			e.kinds[ev.Event]++
			paths = append(paths, ev.Path)
		}
		if batch {
			e.batches = append(e.batches, paths)
		}
	}))
	t.Cleanup(e.Close)
	return e
}

// decodeDelivery reads a POST of one event or of a batch.
func decodeDelivery(r *http.Request) (evs []Event, batch bool, err error) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		return nil, false, fmt.Errorf("%s %q: %v", r.Method, r.Header.Get("Content-Type"), err)
	}
	key := r.Header.Get("Idempotency-Key")
	if strings.HasPrefix(string(body), "[") {
		if err := json.Unmarshal(body, &evs); err != nil || key != "" || len(evs) == 0 {
			return nil, true, fmt.Errorf("batch of %d, key %q: %v", len(evs), key, err)
		}
		return evs, true, nil
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != key {
		return nil, false, fmt.Errorf("event %q, key %q: %v", ev.ID, key, err)
	}
	return []Event{ev}, false, nil
}

// wait waits until n events were received, each once.
func (e *endpoint) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		e.mu.Lock()
		have := len(e.got)
		twice := 0
		for _, c := range e.got {
			if c > 1 {
				twice++
			}
		}
		e.mu.Unlock()
		if twice > 0 {
			t.Fatalf("%d events delivered more than once", twice)
		}
		if have == n {
			return
		}
		if have > n || time.Now().After(deadline) {
			t.Fatalf("%d events delivered, want %d", have, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t *testing.T, dir string, hooks ...Hook) *Dispatcher {
	t.Helper()
	d, err := Open(Options{Dir: dir, Backoff: 20 * time.Millisecond, Logger: quiet()}, hooks)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestHTTPHook: every event a hook hears arrives once, with its
// idempotency key; events it does not hear are not queued; an endpoint
// that fails for a while gets every event once it is back, and the queue
// empties.
func TestHTTPHook(t *testing.T) {
	ep := newEndpoint(t)
	dir := t.TempDir()
	d := open(t, dir, Hook{On: []string{Upload, UploadFailed}, URL: ep.URL + "/hook?token=secret"})
	defer d.Close()
	if !d.Hears(Upload) || d.Hears(Delete) || d.HashUploads() {
		t.Fatal("Hears or HashUploads")
	}
	for i := range 50 {
		d.Publish(Event{Event: Upload, User: "alice", Path: fmt.Sprintf("/f%d", i), Size: int64(i)})
	}
	d.Publish(Event{Event: Delete, Path: "/x"}) // heard by no one
	ep.wait(t, 50)
	ep.status.Store(503) // down
	for i := range 30 {
		d.Publish(Event{Event: UploadFailed, Path: fmt.Sprintf("/g%d", i)})
	}
	for ep.calls.Load() < 54 { // failing, retried with backoff
		time.Sleep(5 * time.Millisecond)
	}
	if n := d.Len(); n != 30 {
		t.Fatalf("queue %d while the hook is down, want 30", n)
	}
	ep.status.Store(0)
	ep.wait(t, 80)
	waitLen(t, d, 0)
	if ep.kinds[UploadFailed] != 30 || ep.kinds[Upload] != 50 {
		t.Fatalf("kinds %v", ep.kinds)
	}
	d.Close() // writes the done records waiting
	q, pending, err := OpenQueue(dir)
	if err != nil || len(pending) != 0 {
		t.Fatalf("after a close: %d deliveries pending, %v", len(pending), err)
	}
	q.Close()
}

func waitLen(t *testing.T, d *Dispatcher, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for d.Len() != n {
		if time.Now().After(deadline) {
			t.Fatalf("queue length %d, want %d", d.Len(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRestart: deliveries not made when the dispatcher closes are made
// after it opens again, with the same IDs; a hook no longer configured
// has its deliveries given up, in dead.jsonl with the reason.
func TestRestart(t *testing.T) {
	ep := newEndpoint(t)
	ep.status.Store(500)
	dir := t.TempDir()
	hook := Hook{On: []string{Upload}, URL: ep.URL}
	other := Hook{On: []string{Upload}, Command: []string{"false"}}
	d := open(t, dir, hook, other)
	var ids []string
	for i := range 20 {
		e := Event{ID: NewID(), Event: Upload, Path: fmt.Sprint(i)}
		ids = append(ids, e.ID)
		d.Publish(e)
	}
	waitCalls(t, ep, 1)
	d.Close()
	ep.status.Store(0)
	d = open(t, dir, hook) // other is gone
	defer d.Close()
	ep.wait(t, 20)
	for _, id := range ids {
		if ep.got[id] != 1 {
			t.Fatalf("event %s delivered %d times", id, ep.got[id])
		}
	}
	waitLen(t, d, 0)
	dead := readDead(t, dir)
	if len(dead) != 20 || !strings.Contains(dead[0], "no longer configured") {
		t.Fatalf("dead letters: %d %v", len(dead), dead[:min(len(dead), 1)])
	}
	segs, _ := segments(dir)
	if len(segs) != 1 {
		t.Errorf("%d segments left with nothing waiting, want the current one", len(segs))
	}
}

func waitCalls(t *testing.T, ep *endpoint, n int32) {
	deadline := time.Now().Add(10 * time.Second)
	for ep.calls.Load() < n {
		if time.Now().After(deadline) {
			t.Fatal("no call")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readDead(t *testing.T, dir string) []string {
	f, err := os.Open(filepath.Join(dir, "dead.jsonl"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// TestGiveUp: a 4xx answer is given up at once; a hook still failing
// after RetryFor is given up; neither holds the queue.
func TestGiveUp(t *testing.T) {
	ep := newEndpoint(t)
	ep.status.Store(400)
	dir := t.TempDir()
	d := open(t, dir, Hook{On: []string{Login}, URL: ep.URL})
	d.Publish(Event{Event: Login, User: "a"})
	waitLen(t, d, 0)
	if ep.calls.Load() != 1 {
		t.Fatalf("a 400 was tried %d times", ep.calls.Load())
	}
	d.Close()
	ep.status.Store(503)
	d, err := Open(Options{Dir: dir, Backoff: 10 * time.Millisecond, RetryFor: 100 * time.Millisecond, Logger: quiet()}, []Hook{{On: []string{Login}, URL: ep.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.Publish(Event{Event: Login, User: "b"})
	waitLen(t, d, 0)
	dead := readDead(t, dir)
	if len(dead) != 2 || !strings.Contains(dead[0], "400") || !strings.Contains(dead[1], "still failing") || strings.Contains(strings.Join(dead, ""), "token") {
		t.Fatalf("dead letters %v", dead)
	}
}

// TestCommandHook: the command gets the placeholders as arguments and
// the JSON on standard input; a non-zero exit is retried.
func TestCommandHook(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	script := filepath.Join(dir, "hook.sh")
	// Fails the first time for each event (no marker yet), then records.
	os.WriteFile(script, []byte(`#!/bin/sh
m="$OUT/$1-$(basename "$3").try"
[ -e "$m" ] || { touch "$m"; echo "not yet" >&2; exit 3; }
cat > "$OUT/$1-$2-$(basename "$3")-$4.json"
`), 0o755)
	t.Setenv("OUT", out)
	d := open(t, filepath.Join(dir, "q"), Hook{On: []string{Upload, Rename}, Command: []string{script, "{event}", "{user}", "{path}", "{size}"}})
	defer d.Close()
	d.Publish(Event{Event: Upload, User: "alice", Path: "/in/a b.txt", Size: 42})
	d.Publish(Event{Event: Rename, User: "alice", Path: "/in/c", To: "/d"})
	waitLen(t, d, 0)
	b, err := os.ReadFile(filepath.Join(out, "upload-alice-a b.txt-42.json"))
	var e Event
	if err != nil || json.Unmarshal(b, &e) != nil || e.Path != "/in/a b.txt" || e.Size != 42 {
		t.Fatalf("upload: %v %s", err, b)
	}
	if _, err := os.Stat(filepath.Join(out, "rename-alice-c-0.json")); err != nil {
		t.Fatal(err)
	}
}

// TestQueueTornLine: a record cut short by a crash is skipped, the
// records before it kept.
func TestQueueTornLine(t *testing.T) {
	dir := t.TempDir()
	q, _, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		q.Add(&Delivery{Hook: "h", Event: Event{ID: fmt.Sprint(i), Event: Upload}})
	}
	seg := q.segPath(q.seg)
	q.Close()
	f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"op":"done","hook":"h","id":"1"}` + "\n" + `{"op":"add","hook":"h","eve`)
	f.Close()
	q, pending, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if len(pending) != 2 || pending[0].Event.ID != "0" || pending[1].Event.ID != "2" || q.Len() != 2 {
		t.Fatalf("pending %+v", pending)
	}
}

// TestHookValidate: the checks name what is wrong.
func TestHookValidate(t *testing.T) {
	for _, c := range []struct {
		h    Hook
		want string
	}{
		{Hook{URL: "http://x"}, "on names no event"},
		{Hook{On: []string{"uplaod"}, URL: "http://x"}, `on "uplaod"`},
		{Hook{On: []string{Upload}}, "set command or url"},
		{Hook{On: []string{Upload}, URL: "http://x", Command: []string{"a"}}, "set one"},
		{Hook{On: []string{Upload}, URL: "ftp://user:pw@x/"}, "want an http"},
		{Hook{On: []string{Upload}, URL: "http://x", Batch: -1}, "batch -1"},
		{Hook{On: []string{Upload}, URL: "http://x", Batch: 1001}, "batch 1001"},
		{Hook{On: []string{Upload}, Command: []string{"a"}, Batch: 10}, "batch is for a url hook"},
		{Hook{On: []string{Upload}, URL: "http://x", BatchWait: time.Second}, "batch_wait needs batch"},
		{Hook{On: []string{Upload}, URL: "http://x", Batch: 10, BatchWait: -time.Second}, "batch_wait is negative"},
	} {
		err := c.h.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "pw") {
			t.Errorf("%+v: %v, want %q", c.h, err, c.want)
		}
	}
	for _, h := range []Hook{{On: []string{Upload}, URL: "https://x/h"}, {On: []string{Upload}, URL: "https://x/h", Batch: 1000, BatchWait: time.Second}} {
		if err := h.Validate(); err != nil {
			t.Error(err)
		}
	}
}

// TestBackoffOnePausePerRound: the workers failing at once pause the
// hook once: after a round of four failures the pause is the first one,
// not doubled four times.
func TestBackoffOnePausePerRound(t *testing.T) {
	ep := newEndpoint(t)
	ep.status.Store(503)
	d, err := Open(Options{Dir: t.TempDir(), Backoff: time.Minute, Logger: quiet()}, []Hook{{On: []string{Upload}, URL: ep.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for range 4 {
		d.Publish(Event{Event: Upload})
	}
	d.mu.Lock()
	var r *runner
	for _, r = range d.runners {
	}
	d.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		back, waiting, round := r.backoff, len(r.fifo), r.round
		r.mu.Unlock()
		if waiting == 4 && ep.calls.Load() >= 1 {
			if back != time.Minute || round != 1 {
				t.Fatalf("after one round: backoff %v, %d pauses; want 1m and 1", back, round)
			}
			if n := ep.calls.Load(); n > 4 {
				t.Fatalf("%d calls in the first round", n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiting, %d calls", waiting, ep.calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHTTPHookBatch: a hook with batch gets the events in arrays of at
// most batch, each once, each array in order: full batches at once, a
// short one after batch_wait, those left at a close at once after the
// next open. (Batches in flight at once may arrive in either order.)
func TestHTTPHookBatch(t *testing.T) {
	ep := newEndpoint(t)
	dir := t.TempDir()
	hook := Hook{On: []string{Upload}, URL: ep.URL, Batch: 100, BatchWait: time.Hour}
	d := open(t, dir, hook)
	var want []string
	for i := range 250 {
		want = append(want, fmt.Sprintf("/f%d", i))
		d.Publish(Event{Event: Upload, Path: want[i]})
	}
	ep.wait(t, 200) // two full batches; the 50 left wait for more
	waitLen(t, d, 50)
	d.Close()
	d = open(t, dir, hook) // those left from before go at once
	ep.wait(t, 250)
	waitLen(t, d, 0) // their ends recorded: the endpoint answered before the worker heard it
	d.Close()
	hook.BatchWait = 300 * time.Millisecond
	d = open(t, dir, hook)
	defer d.Close()
	start := time.Now()
	for i := range 3 {
		want = append(want, fmt.Sprintf("/g%d", i))
		d.Publish(Event{Event: Upload, Path: want[250+i]})
	}
	ep.wait(t, 253)
	if waited := time.Since(start); waited < hook.BatchWait {
		t.Errorf("a short batch went after %v, before batch_wait", waited)
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	var sizes []int
	for _, b := range ep.batches {
		sizes = append(sizes, len(b))
	}
	slices.SortFunc(ep.batches, func(a, b []string) int { return slices.Index(want, a[0]) - slices.Index(want, b[0]) })
	if got := slices.Concat(ep.batches...); !slices.Equal(got, want) || !slices.Equal(sizes, []int{100, 100, 50, 3}) {
		t.Fatalf("batches of %v: %v", sizes, ep.batches)
	}
}

// TestHTTPHookBatchFails: a batch that fails is retried whole, in order,
// and delivered once; a batch answered 4xx is given up whole.
func TestHTTPHookBatchFails(t *testing.T) {
	ep := newEndpoint(t)
	ep.status.Store(503)
	dir := t.TempDir()
	d := open(t, dir, Hook{On: []string{Upload, Delete}, URL: ep.URL, Batch: 10, BatchWait: 200 * time.Millisecond})
	defer d.Close()
	for i := range 10 {
		d.Publish(Event{Event: Upload, Path: fmt.Sprintf("/f%d", i)})
	}
	waitCalls(t, ep, 2) // failed, paused, failed again
	ep.status.Store(0)
	ep.wait(t, 10)
	waitLen(t, d, 0)
	ep.status.Store(422)
	calls := ep.calls.Load()
	for i := range 10 {
		d.Publish(Event{Event: Delete, Path: fmt.Sprintf("/d%d", i)})
	}
	waitLen(t, d, 0)
	dead := readDead(t, dir)
	if len(dead) != 10 || !strings.Contains(dead[9], "422") || ep.calls.Load() != calls+1 {
		t.Fatalf("%d dead letters after %d calls; %v", len(dead), ep.calls.Load()-calls, dead)
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if len(ep.batches) != 1 || len(ep.batches[0]) != 10 || ep.kinds[Delete] != 0 {
		t.Fatalf("batches %v, kinds %v", ep.batches, ep.kinds)
	}
}

// TestQueueSegments: deliveries spread over several segments come back
// after a close, exactly those not ended; a segment whose deliveries all
// ended is removed; a segment left unclosed (the process killed) is read
// up to its last record.
func TestQueueSegments(t *testing.T) {
	dir := t.TempDir()
	q, _, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30000 // about 11 MiB of records: three segments
	long := strings.Repeat("p", 300)
	dls := make([]*Delivery, n)
	for i := range dls {
		dls[i] = &Delivery{Hook: "h", Event: Event{ID: fmt.Sprint(i), Event: Upload, Path: "/" + long}}
		if err := q.Add(dls[i]); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := segments(dir)
	keep := map[string]bool{"5": true, "29999": true}
	for _, dl := range dls {
		if !keep[dl.Event.ID] {
			q.End(dl, "")
		}
	}
	q.Close()
	q, pending, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 || len(pending) != 2 || pending[0].Event.ID != "5" || pending[1].Event.ID != "29999" || pending[0].Event.Path != "/"+long {
		t.Fatalf("%d segments; pending %d: %+v", len(segs), len(pending), pending)
	}
	if after, _ := segments(dir); len(after) != 3 { // the first, the last, a new one
		t.Fatalf("segments after reopening: %v (before: %v)", after, segs)
	}
	// Not closed: as after kill -9.
	q.Add(&Delivery{Hook: "h", Event: Event{ID: "new", Event: Upload}})
	q.End(pending[0], "")
	q.flush()
	_, pending, err = OpenQueue(dir)
	if err != nil || len(pending) != 2 || pending[0].Event.ID != "29999" || pending[1].Event.ID != "new" {
		t.Fatalf("after a crash: %v, %+v", err, pending)
	}
}

// TestQueueReusesSegment: a segment whose deliveries all ended becomes a
// later one (its file renamed and cleared, its mapping kept): the same
// file, holding only the records written since; a crash then brings back
// exactly the deliveries not ended.
func TestQueueReusesSegment(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("segments are mapped on Linux only")
	}
	dir := t.TempDir()
	q, _, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	first, err := os.Open(q.segPath(q.seg)) // held open: its inode is not reused
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	firstInfo, _ := first.Stat()
	long := strings.Repeat("p", 300)
	n := 0
	add := func() *Delivery {
		dl := &Delivery{Hook: "h", Event: Event{ID: fmt.Sprint(n), Event: Upload, Path: "/" + long}}
		n++
		if err := q.Add(dl); err != nil {
			t.Fatal(err)
		}
		return dl
	}
	// The hook keeps up: each delivery ends once the next is added.
	startSeg := q.seg
	var last *Delivery
	for q.seg < startSeg+2 {
		dl := add()
		if last != nil {
			q.End(last, "")
		}
		last = dl
	}
	reusedFrom := n - 1 // the first delivery added in the reused segment
	kept := add()
	for range 100 {
		q.End(last, "")
		last = add()
	}
	q.flush()
	fi, err := os.Stat(q.segPath(q.seg))
	if err != nil || !os.SameFile(fi, firstInfo) {
		t.Fatalf("segment %d is not the first segment's file reused: %v", q.seg, err)
	}
	b, _ := os.ReadFile(q.segPath(q.seg))
	for line := range strings.Lines(string(records(b))) {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		id := r.ID
		if r.Event != nil {
			id = r.Event.ID
		}
		// The first write in it holds the done record of the delivery
		// two before its first add.
		if v, _ := strconv.Atoi(id); v < reusedFrom-2 {
			t.Fatalf("the reused segment holds a record of its earlier life: %.80s", line)
		}
	}
	// Not closed: as after kill -9.
	q2, pending, err := OpenQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if len(pending) != 2 || pending[0] == nil || pending[0].Event.ID != kept.Event.ID || pending[1].Event.ID != last.Event.ID {
		t.Fatalf("after a crash: %d pending, want %s and %s: %+v", len(pending), kept.Event.ID, last.Event.ID, pending)
	}
}

// TestHearsFollowsSetHooks: what the dispatcher says it hears (asked
// without its lock at every transfer) follows each SetHooks.
func TestHearsFollowsSetHooks(t *testing.T) {
	d := open(t, t.TempDir(), Hook{On: []string{Upload}, Command: []string{"true"}})
	defer d.Close()
	if !d.Hears(Upload) || d.Hears(Delete) || d.HashUploads() {
		t.Fatal("first hooks")
	}
	d.SetHooks([]Hook{{On: []string{Delete}, Command: []string{"true"}}, {On: []string{Download, Upload}, URL: "http://127.0.0.1:9/", SHA256: true}})
	if !d.Hears(Delete) || !d.Hears(Download) || !d.Hears(Upload) || d.Hears(Login) || !d.HashUploads() {
		t.Fatal("after the reload")
	}
	d.SetHooks([]Hook{{On: []string{Download}, URL: "http://127.0.0.1:9/", SHA256: true}}) // sha256 without upload
	if d.Hears(Upload) || !d.Hears(Download) || d.HashUploads() {
		t.Fatal("after the second reload")
	}
	d.SetHooks(nil)
	if d.Hears(Download) || d.HashUploads() {
		t.Fatal("with no hooks")
	}
	var none *Dispatcher
	if none.Hears(Upload) || none.HashUploads() {
		t.Fatal("nil dispatcher")
	}
}
