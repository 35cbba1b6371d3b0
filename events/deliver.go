package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
)

// permanent is a delivery's failure that a retry cannot mend.
type permanent struct{ error }

// deliver sends the events of dls to h once: one document, or (a hook
// with batch) a JSON array of them.
func deliver(ctx context.Context, client *http.Client, h Hook, dls []*Delivery) error {
	e := &dls[0].Event
	batch := h.batch() > 1
	var doc []byte
	if batch {
		doc = batchDoc(dls)
	} else {
		doc = dls[0].document()
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout())
	defer cancel()
	switch {
	case h.URL != "" && batch:
		return post(ctx, client, h.URL, "", doc)
	case h.URL != "":
		return post(ctx, client, h.URL, e.ID, doc)
	}
	return run(ctx, h.args(e), doc)
}

// batchDoc is the JSON array of the events of dls.
func batchDoc(dls []*Delivery) []byte {
	size := 2 + len(dls)
	for _, dl := range dls {
		size += max(len(dl.doc), 256) // made once by Publish, or an estimate
	}
	doc := append(make([]byte, 0, size), '[')
	for i, dl := range dls {
		if i > 0 {
			doc = append(doc, ',')
		}
		if dl.doc != nil {
			doc = append(doc, dl.doc...)
		} else {
			doc = dl.Event.appendJSON(doc)
		}
	}
	return append(doc, ']')
}

// post sends doc to url, with the Idempotency-Key id unless it is empty
// (a batch); a 2xx answer is delivered.
func post(ctx context.Context, client *http.Client, url, id string, doc []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(doc))
	if err != nil {
		return permanent{err}
	}
	// No silent replay by the transport (it replays a request that carries
	// an Idempotency-Key): a delivery is sent once per attempt, and the
	// dispatcher alone decides to try again.
	req.GetBody = nil
	req.Header.Set("Content-Type", "application/json")
	if id != "" {
		req.Header.Set("Idempotency-Key", id)
	}
	req.Header.Set("User-Agent", "ferry-hook")
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap() // the cause, without the URL (it may hold a token)
		}
		return fmt.Errorf("POST: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // the connection is reused
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 400 && c < 500 && c != 408 && c != 425 && c != 429:
		return permanent{fmt.Errorf("POST: HTTP %s", resp.Status)}
	default:
		return fmt.Errorf("POST: HTTP %s", resp.Status)
	}
}

// run runs args with doc on standard input; exit status 0 is delivered.
func run(ctx context.Context, args []string, doc []byte) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = bytes.NewReader(doc)
	var out limited
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if msg := strings.TrimSpace(out.String()); msg != "" {
		return fmt.Errorf("%s: %v: %s", args[0], err, msg)
	}
	return fmt.Errorf("%s: %v", args[0], err)
}

// limited keeps the first 1 KiB written to it (a failing command's
// output, for the log).
type limited struct{ bytes.Buffer }

func (l *limited) Write(p []byte) (int, error) {
	if room := 1024 - l.Len(); room > 0 {
		l.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
