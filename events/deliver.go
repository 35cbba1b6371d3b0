package events

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// permanent is a delivery's failure that a retry cannot mend.
type permanent struct{ error }

// deliver sends e to h once, a URL hook's POST through p.
func deliver(ctx context.Context, p *poster, h Hook, e *Event) error {
	doc, err := json.Marshal(e)
	if err != nil {
		return permanent{err}
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout())
	defer cancel()
	if h.URL != "" {
		return p.post(ctx, h.URL, e.ID, doc) // its errors never hold the URL (it may hold a token)
	}
	return run(ctx, h.args(e), doc)
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
