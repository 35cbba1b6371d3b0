package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryftp/ferry/client"
)

// hookEvent is the part of a hook's JSON document the tests check.
type hookEvent struct {
	ID     string `json:"id"`
	Event  string `json:"event"`
	User   string `json:"user"`
	Remote string `json:"remote"`
	Path   string `json:"path"`
	To     string `json:"to"`
	Size   int64  `json:"size"`
	Status string `json:"status"`
	Code   int    `json:"code"`
	SHA256 string `json:"sha256"`
}

// hookEndpoint is an HTTP hook in the test: it keeps every delivery, and
// answers 503 while down.
type hookEndpoint struct {
	*httptest.Server
	down     atomic.Bool
	refused  atomic.Int32
	mu       sync.Mutex
	received []hookEvent
	posts    int
}

func newHookEndpoint(t *testing.T) *hookEndpoint {
	e := &hookEndpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.down.Load() {
			e.refused.Add(1)
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var evs []hookEvent
		if bytes.HasPrefix(body, []byte("[")) { // a batch: ids in the documents
			if err := json.Unmarshal(body, &evs); err != nil || len(evs) == 0 || r.Header.Get("Idempotency-Key") != "" {
				t.Errorf("batch delivery: %v, %d events, key %q", err, len(evs), r.Header.Get("Idempotency-Key"))
			}
		} else {
			var ev hookEvent
			if err := json.Unmarshal(body, &ev); err != nil || r.Header.Get("Idempotency-Key") != ev.ID {
				t.Errorf("delivery: %v, key %q for id %q", err, r.Header.Get("Idempotency-Key"), ev.ID)
			}
			evs = append(evs, ev)
		}
		e.mu.Lock()
		e.received = append(e.received, evs...)
		e.posts++
		e.mu.Unlock()
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *hookEndpoint) events() []hookEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]hookEvent(nil), e.received...)
}

// waitEvents waits until have() returns n distinct event IDs.
func waitEvents(t *testing.T, what string, n int, have func() []hookEvent) []hookEvent {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		evs := have()
		ids := map[string]bool{}
		for _, e := range evs {
			ids[e.ID] = true
		}
		if len(ids) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d distinct events after a minute, want %d", what, len(ids), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// commandEvents reads the events the command hook wrote, a file each.
func commandEvents(t *testing.T, dir string) func() []hookEvent {
	return func() []hookEvent {
		ents, _ := os.ReadDir(dir)
		var out []hookEvent
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".json") {
				continue // being written
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			var ev hookEvent
			if err != nil || json.Unmarshal(b, &ev) != nil {
				t.Errorf("%s: %v %q", e.Name(), err, b)
				continue
			}
			out = append(out, ev)
		}
		return out
	}
}

// commandHook writes a script that keeps each event's JSON in a file of
// dir, and checks that its arguments are the placeholders' values.
func commandHook(t *testing.T, dir string) string {
	script := filepath.Join(dir, "hook.sh")
	out := filepath.Join(dir, "cmd")
	os.Mkdir(out, 0o755)
	os.WriteFile(script, []byte(`#!/bin/sh
f="`+out+`/$$-$(date +%s%N)"
cat > "$f.tmp"
grep -q "\"event\":\"$1\"" "$f.tmp" && grep -q "\"path\":\"$2\"" "$f.tmp" || { echo "arguments $1 $2 differ from the document" >&2; exit 1; }
mv "$f.tmp" "$f.json"
`), 0o755)
	return script
}

// TestHooksExactlyOnce: 200 uploads from four sessions, 20 of them cut
// mid-transfer: a command hook and an HTTP hook each receive exactly one
// upload event per committed upload (with its SHA-256) and one
// upload_failed per cut one, never for a partial file, never twice.
func TestHooksExactlyOnce(t *testing.T) {
	wd := t.TempDir()
	ep, batched := newHookEndpoint(t), newHookEndpoint(t)
	script := commandHook(t, wd)
	conf := filepath.Join(wd, "ferry.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`
[[hook]]
on = ["upload", "upload_failed"]
command = [%q, "{event}", "{path}"]

[[hook]]
on = ["upload", "upload_failed"]
url = %q
sha256 = true

[[hook]]
on = ["upload", "upload_failed"]
url = %q
batch = 25
batch_wait = "50ms"
`, script, ep.URL+"/events?token=secret", batched.URL)), 0o644)
	s := &server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1"))), root: filepath.Join(wd, "root"), wd: wd}
	os.Mkdir(s.root, 0o755)
	s.start("--config", conf)
	defer s.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sums := map[string]string{} // committed path -> SHA-256
	cut := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(ctx, s.addr, &client.Config{User: "crash", Password: "crash-pw", Retries: -1})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := range 50 {
				name := fmt.Sprintf("/w%d-%02d.bin", w, i)
				data := seeded(uint64(w*100+i), 48<<10)
				if i%10 == 3 { // cut after 16 KiB
					r := &cutReader{data: data, cut: 16 << 10, release: make(chan struct{})}
					close(r.release)
					if _, err := c.Store(ctx, name, r, nil); err == nil {
						t.Errorf("%s: the cut upload succeeded", name)
					}
					mu.Lock()
					cut[name] = true
					mu.Unlock()
					continue
				}
				if _, err := c.Store(ctx, name, bytes.NewReader(data), nil); err != nil {
					t.Error(err)
					return
				}
				sum := sha256.Sum256(data)
				mu.Lock()
				sums[name] = hex.EncodeToString(sum[:])
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(sums) != 180 || len(cut) != 20 {
		t.Fatalf("%d uploads committed, %d cut; want 180 and 20", len(sums), len(cut))
	}
	for hook, have := range map[string]func() []hookEvent{"HTTP": ep.events, "batched HTTP": batched.events, "command": commandEvents(t, filepath.Join(wd, "cmd"))} {
		evs := waitEvents(t, hook, 200, have)
		seen := map[string]int{}
		for _, e := range evs {
			seen[e.ID]++
			switch {
			case seen[e.ID] > 1:
				t.Errorf("%s: event %s delivered twice", hook, e.ID)
			case e.Event == "upload" && sums[e.Path] == "":
				t.Errorf("%s: upload event for %s, which was not committed", hook, e.Path)
			case e.Event == "upload" && e.Size != 48<<10:
				t.Errorf("%s: upload of %s with size %d", hook, e.Path, e.Size)
			case e.Event == "upload" && hook == "HTTP" && e.SHA256 != sums[e.Path]:
				t.Errorf("%s: %s sha256 %q, want %s", hook, e.Path, e.SHA256, sums[e.Path])
			case e.Event == "upload_failed" && !cut[e.Path]:
				t.Errorf("%s: upload_failed for %s", hook, e.Path)
			case e.Event != "upload" && e.Event != "upload_failed":
				t.Errorf("%s: event %q", hook, e.Event)
			case e.User != "crash" || e.Remote != "127.0.0.1":
				t.Errorf("%s: user %q remote %q", hook, e.User, e.Remote)
			}
		}
		byPath := map[string]string{}
		for _, e := range evs {
			if prev, ok := byPath[e.Path]; ok && prev != e.ID {
				t.Errorf("%s: two events for %s", hook, e.Path)
			}
			byPath[e.Path] = e.ID
		}
		if len(byPath) != 200 {
			t.Errorf("%s: events for %d paths, want 200", hook, len(byPath))
		}
	}
	if strings.Contains(s.logs.String(), "secret") {
		t.Error("the hook URL's token is in the log")
	}
	batched.mu.Lock()
	defer batched.mu.Unlock()
	if batched.posts > 200/2 {
		t.Errorf("the batched hook took %d POSTs for 200 events", batched.posts)
	}
}

// TestHooksSurviveDownAndKill: an HTTP hook that is down for ten seconds,
// across a SIGKILL of the server and a restart, still receives every
// event once it is back; an event heard twice has the same idempotency
// key, and none is lost.
func TestHooksSurviveDownAndKill(t *testing.T) {
	wd := t.TempDir()
	ep := newHookEndpoint(t)
	ep.down.Store(true)
	downAt := time.Now()
	admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	conf := filepath.Join(wd, "ferry.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`
admin_listen = %q
[[hook]]
on = ["upload", "mkdir", "login"]
url = %q
`, admin, ep.URL)), 0o644)
	s := &server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1"))), root: filepath.Join(wd, "root"), wd: wd}
	os.Mkdir(s.root, 0o755)
	s.start("--config", conf)
	defer s.stop()
	ctx := context.Background()
	c, err := client.Dial(ctx, s.addr, &client.Config{User: "crash", Password: "crash-pw", Retries: -1, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := c.Store(ctx, fmt.Sprintf("/f%02d", i), bytes.NewReader([]byte("x")), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Mkdir(ctx, "/d"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// 32 events queued (a login, 30 uploads, a mkdir) and the hook tried:
	// then SIGKILL.
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, admin, "ferry_hook_queue_length") != 32 || ep.refused.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue %v, %d refused deliveries", metric(t, admin, "ferry_hook_queue_length"), ep.refused.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.kill()
	s.start("--config", conf)
	for time.Since(downAt) < 10*time.Second { // the endpoint stays down ten seconds
		time.Sleep(time.Until(downAt.Add(10 * time.Second)))
	}
	ep.down.Store(false)
	defer func() {
		if t.Failed() {
			t.Logf("ferry log:\n%s", s.logs.String())
		}
	}()
	evs := waitEvents(t, "after the restart", 32, ep.events)
	paths := map[string]string{}
	for _, e := range evs {
		key := e.Event + " " + e.Path
		if id, ok := paths[key]; ok && id != e.ID {
			t.Errorf("%s delivered twice with different keys", key)
		}
		paths[key] = e.ID
	}
	if len(paths) != 32 {
		t.Fatalf("%d distinct events, want 32: %v", len(paths), paths)
	}
	deadline = time.Now().Add(10 * time.Second)
	for metric(t, admin, "ferry_hook_queue_length") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the queue did not empty")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHookKinds: each kind of event reaches a hook that hears it, with
// its fields: a failed login, a login, mkdir, an upload, a download, a
// rename, a delete, rmdir and a ban by the defender.
func TestHookKinds(t *testing.T) {
	wd := t.TempDir()
	ep := newHookEndpoint(t)
	conf := filepath.Join(wd, "ferry.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`
login_fail_delay = "-1s"
[defender]
allow = []
threshold = 3
[[hook]]
on = ["upload", "upload_failed", "download", "delete", "rename", "mkdir", "rmdir", "login", "login_failed", "ban"]
url = %q
`, ep.URL)), 0o644)
	s := &server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1"))), root: filepath.Join(wd, "root"), wd: wd}
	os.Mkdir(s.root, 0o755)
	s.start("--config", conf)
	defer s.stop()
	ctx := context.Background()
	if _, err := client.Dial(ctx, s.addr, &client.Config{User: "mallory", Password: "guess", Retries: -1}); err == nil {
		t.Fatal("a wrong password logged in")
	}
	c, err := client.Dial(ctx, s.addr, &client.Config{User: "crash", Password: "crash-pw", Retries: -1, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return c.Mkdir(ctx, "/d") },
		func() error { _, err := c.Store(ctx, "/d/a.txt", strings.NewReader("hello"), nil); return err },
		func() error { fetch(t, c, "/d/a.txt"); return nil },
		func() error { return c.Rename(ctx, "/d/a.txt", "/d/b.txt") },
		func() error { return c.Delete(ctx, "/d/b.txt") },
		func() error { return c.Rmdir(ctx, "/d") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	for range 2 { // two more failures: the third bans 127.0.0.1
		client.Dial(ctx, s.addr, &client.Config{User: "mallory", Password: "guess", Retries: -1})
	}
	evs := waitEvents(t, "every kind", 11, ep.events)
	got := map[string]hookEvent{}
	for _, e := range evs {
		if _, dup := got[e.Event]; !dup || e.Event != "login_failed" {
			got[e.Event] = e
		}
	}
	for kind, want := range map[string]string{
		"login_failed": "mallory  bad credentials", "login": "crash  ok", "mkdir": "crash /d ok",
		"upload": "crash /d/a.txt ok", "download": "crash /d/a.txt ok", "rename": "crash /d/a.txt ok",
		"delete": "crash /d/b.txt ok", "rmdir": "crash /d ok",
	} {
		e := got[kind]
		if have := e.User + " " + e.Path + " " + e.Status; have != want || e.Remote != "127.0.0.1" {
			t.Errorf("%s: %q from %q, want %q", kind, have, e.Remote, want)
		}
	}
	if got["rename"].To != "/d/b.txt" || got["upload"].Size != 5 || got["download"].Size != 5 || got["upload"].Code != 226 {
		t.Errorf("rename to %q, sizes %d %d, code %d", got["rename"].To, got["upload"].Size, got["download"].Size, got["upload"].Code)
	}
	if b := got["ban"]; b.Remote != "127.0.0.1/32" || !strings.Contains(b.Status, "banned until") {
		t.Errorf("ban: %+v", b)
	}
}
