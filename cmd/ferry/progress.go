package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// output is where a client command reports. On a terminal it draws
// progress bars (mpb) for transfers; otherwise it prints one summary line
// per transfer, "op=get bytes=N seconds=S from=… to=…", for scripts.
type output struct {
	w   io.Writer
	tty bool
	mu  sync.Mutex
	p   *mpb.Progress
}

// barMin is the size below which a transfer gets no bar: it would be gone
// before it could be seen.
const barMin = 1 << 20

func newOutput(w io.Writer) *output {
	o := &output{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		// A terminal of unknown width gets no bars (they would not show).
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			o.tty = true
		}
	}
	return o
}

// data is where file contents go (cat, get -): never mixed with bars.
func (o *output) data() io.Writer {
	o.tty = false
	return o.w
}

func (o *output) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.p != nil {
		// Above the bars.
		o.p.Write([]byte(fmt.Sprintf(format, args...)))
		return
	}
	fmt.Fprintf(o.w, format, args...)
}

// note is for people: shown on a terminal, left out of the summary lines.
func (o *output) note(format string, args ...any) {
	if o.tty {
		o.printf(format, args...)
	}
}

// summary reports one finished transfer.
func (o *output) summary(op string, n int64, d time.Duration, from, to string) {
	if o.tty {
		return
	}
	o.printf("op=%s bytes=%d seconds=%.3f from=%s to=%s\n", op, n, d.Seconds(), quoteField(from), quoteField(to))
}

func quoteField(s string) string {
	if strings.ContainsAny(s, " \t\"") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func (o *output) wait() {
	o.mu.Lock()
	p := o.p
	o.mu.Unlock()
	if p != nil {
		p.Wait()
	}
}

// bar is one transfer's progress bar; a nil *bar does nothing.
type bar struct{ b *mpb.Bar }

func (o *output) bar(name string, total, start int64) *bar {
	if !o.tty || total >= 0 && total < barMin {
		return nil
	}
	o.mu.Lock()
	if o.p == nil {
		o.p = mpb.New(mpb.WithOutput(o.w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond))
	}
	p := o.p
	o.mu.Unlock()
	if len(name) > 40 {
		name = "…" + name[len(name)-39:]
	}
	if total < 0 {
		total = 0
	}
	b := p.AddBar(total,
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR), decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30), "done"), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")),
	)
	b.SetCurrent(start)
	return &bar{b: b}
}

// progress returns a client progress callback moving the bar; offset is
// where the transfer started.
func (b *bar) progress(offset int64) func(int64) {
	if b == nil {
		return nil
	}
	last := time.Now()
	return func(n int64) {
		now := time.Now()
		b.b.EwmaSetCurrent(offset+n, now.Sub(last))
		last = now
	}
}

func (b *bar) done() {
	if b != nil {
		b.b.SetTotal(-1, true)
	}
}

func (b *bar) abort() {
	if b != nil {
		b.b.Abort(false)
	}
}
