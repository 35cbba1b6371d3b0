package events

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Hook is a [[hook]] table: which events it hears and where they go.
type Hook struct {
	// On are the kinds of events delivered: upload, upload_failed,
	// download, delete, rename, mkdir, rmdir, login, login_failed, ban.
	On []string `toml:"on"`
	// Command runs for each event: the program and its arguments, in
	// which {event}, {user}, {path} and {size} are replaced (no shell is
	// involved); the event's JSON is its standard input. Exit status 0 is
	// delivered.
	Command []string `toml:"command"`
	// URL receives each event as an HTTP POST of its JSON (http or
	// https), with the header Idempotency-Key (see batch for arrays). A 2xx answer is delivered;
	// a 4xx other than 408, 425 and 429 is given up at once.
	URL string `toml:"url"`
	// SHA256 adds the SHA-256 of an upload's bytes to its event, computed
	// while receiving: such uploads leave the zero-copy path.
	SHA256 bool `toml:"sha256"`
	// Batch, for a url hook, makes each POST a JSON array of up to this
	// many events' documents: the events waiting, sent when there are
	// that many or when the oldest has waited batch_wait. A batch is
	// delivered, retried or given up whole; each document's id is its
	// idempotency key, and the Idempotency-Key header is left out. Zero
	// or one: a POST per event, its document alone, sent at once.
	Batch int `toml:"batch"`
	// BatchWait is how long an event may wait for others to share its
	// POST, with batch. Zero: 100 milliseconds.
	BatchWait time.Duration `toml:"batch_wait"`
	// Timeout bounds one delivery. Zero: 30 seconds.
	Timeout time.Duration `toml:"timeout"`
}

// maxBatch bounds Batch.
const maxBatch = 1000

// Validate checks h; the error names what is wrong.
func (h Hook) Validate() error {
	if len(h.On) == 0 {
		return errors.New("hook: on names no event")
	}
	for _, k := range h.On {
		if !slices.Contains(Kinds, k) {
			return fmt.Errorf("hook: on %q: want one of %s", k, strings.Join(Kinds, ", "))
		}
	}
	switch {
	case len(h.Command) > 0 && h.URL != "":
		return errors.New("hook: command and url: set one")
	case len(h.Command) == 0 && h.URL == "":
		return errors.New("hook: set command or url")
	case len(h.Command) > 0 && h.Command[0] == "":
		return errors.New("hook: command: the program is empty")
	}
	if h.URL != "" {
		u, err := url.Parse(h.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("hook: url %q: want an http:// or https:// URL", redact(h.URL))
		}
	}
	switch {
	case h.Batch < 0 || h.Batch > maxBatch:
		return fmt.Errorf("hook: batch %d: want 0 to %d", h.Batch, maxBatch)
	case h.Batch > 1 && h.URL == "":
		return errors.New("hook: batch is for a url hook (a command gets one event at a time)")
	case h.BatchWait < 0:
		return errors.New("hook: batch_wait is negative")
	case h.BatchWait > 0 && h.Batch <= 1:
		return errors.New("hook: batch_wait needs batch (more than 1)")
	}
	if h.Timeout < 0 {
		return errors.New("hook: timeout is negative")
	}
	return nil
}

// Hears says whether h delivers events of kind.
func (h Hook) Hears(kind string) bool { return slices.Contains(h.On, kind) }

// Key names h in the queue: the same hook keeps its key across restarts
// and reloads (its target and kinds, not its place in the file).
func (h Hook) Key() string {
	s := sha256.New()
	for _, a := range h.Command {
		s.Write([]byte(a))
		s.Write([]byte{0})
	}
	s.Write([]byte{1})
	s.Write([]byte(h.URL))
	return hex.EncodeToString(s.Sum(nil)[:8])
}

// Name is how h appears in log lines: the program, or the URL without
// its credentials and query.
func (h Hook) Name() string {
	if len(h.Command) > 0 {
		return h.Command[0]
	}
	return redact(h.URL)
}

// batch is how many deliveries one attempt may carry.
func (h Hook) batch() int { return max(h.Batch, 1) }

// batchWait is how long a delivery may wait for others to share its
// attempt.
func (h Hook) batchWait() time.Duration {
	switch {
	case h.Batch <= 1:
		return 0
	case h.BatchWait > 0:
		return h.BatchWait
	}
	return 100 * time.Millisecond
}

func (h Hook) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return 30 * time.Second
}

// redact drops the user information and query of a URL (tokens).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// args are the command's arguments with e's placeholders replaced.
func (h Hook) args(e *Event) []string {
	r := strings.NewReplacer("{event}", e.Event, "{user}", e.User, "{path}", e.Path, "{size}", strconv.FormatInt(e.Size, 10))
	out := make([]string, len(h.Command))
	for i, a := range h.Command {
		out[i] = r.Replace(a)
	}
	return out
}
