// Package xferlog writes the transfer log of wu-ftpd, ProFTPD and vsftpd
// (xferlog(5)): one line per transfer, in the fields log analysers
// (webalizer, AWStats, xferstats) read.
package xferlog

import (
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Direction of a transfer, the log's eighth field.
const (
	Outgoing = 'o' // a download
	Incoming = 'i' // an upload
	Deleted  = 'd' // a file deleted
)

// Record is one line.
type Record struct {
	Time      time.Time     // when the transfer ended
	Took      time.Duration // how long it took
	Remote    netip.Addr
	Size      int64
	Path      string // the virtual path
	ASCII     bool   // TYPE A; else binary
	Direction byte   // Outgoing, Incoming or Deleted
	Anonymous bool
	User      string
	Complete  bool
}

// Format is r as a line, without its newline:
//
//	Thu Dec  3 14:50:01 2026 1 192.0.2.7 4096 /in/a_b.txt b _ i r alice ftp 0 * c
//
// Fields are separated by single spaces, so white space and control
// characters of the path and user are written as "_", as ProFTPD does.
func Format(r Record) string {
	return string(appendLine(nil, r, nil))
}

// stampLayout is the time field's layout (ctime(3), local time).
const stampLayout = "Mon Jan _2 15:04:05 2006"

// appendLine appends r's line, without its newline, to b; stamp, when
// not nil, is r.Time already formatted.
func appendLine(b []byte, r Record, stamp []byte) []byte {
	if stamp != nil {
		b = append(b, stamp...)
	} else {
		b = r.Time.Local().AppendFormat(b, stampLayout)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(max(r.Took.Round(time.Second)/time.Second, 0)), 10)
	b = append(b, ' ')
	b = r.Remote.Unmap().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.Size, 10)
	b = append(b, ' ')
	b = appendField(b, r.Path)
	b = append(b, ' ')
	b = append(b, pick(r.ASCII, 'a', 'b'), ' ', '_', ' ', r.Direction, ' ', pick(r.Anonymous, 'a', 'r'), ' ')
	b = appendField(b, r.User)
	b = append(b, " ftp 0 * "...)
	return append(b, pick(r.Complete, 'c', 'i'))
}

func pick(c bool, yes, no byte) byte {
	if c {
		return yes
	}
	return no
}

// appendField appends s as one field: white space and control characters
// become "_", and an empty s is "_".
func appendField(b []byte, s string) []byte {
	if s == "" {
		return append(b, '_')
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == 0x85 || r == 0xa0 || r == 0x2028 || r == 0x2029 {
			b = append(b, '_')
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// window is how long lines wait, after a write, to go in the next write
// together: a server moving thousands of small files a second makes one
// write(2) per window rather than one per line, and an idle one still
// writes each line at once. A crash (kill -9) loses at most the lines of
// the last window; Close and Reopen write what waits.
const window = 10 * time.Millisecond

// maxWaiting is how many bytes of lines may wait before they are written
// without waiting for the window to end.
const maxWaiting = 64 << 10

// Writer appends records to a file. It is safe for concurrent use.
type Writer struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	waiting []byte // lines not yet written
	err     error  // a failed write of waiting lines, for the next Write
	timer   *time.Timer
	armed   bool // a write happened in this window: lines wait for it to end
	// sec and stamp are the last time field formatted, and its second.
	sec   int64
	stamp []byte
}

// Open opens path for appending, making it (mode 0640) if needed.
func Open(path string) (*Writer, error) {
	w := &Writer{path: path}
	return w, w.Reopen()
}

// Reopen writes the lines waiting, closes the file and opens path again
// (after logrotate moved it; SIGHUP).
func (w *Writer) Reopen() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.flushLocked()
	old := w.f
	w.f = f
	w.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Write appends r as one line. Lines are written whole (never
// interleaved), at once when none was written in the last window, else
// with the others of the window when it ends.
func (w *Writer) Write(r Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return os.ErrClosed
	}
	if sec := r.Time.Unix(); sec != w.sec || w.stamp == nil {
		w.sec, w.stamp = sec, r.Time.Local().AppendFormat(w.stamp[:0], stampLayout)
	}
	w.waiting = append(appendLine(w.waiting, r, w.stamp), '\n')
	err := w.err
	w.err = nil
	if !w.armed || len(w.waiting) >= maxWaiting {
		if ferr := w.flushLocked(); err == nil {
			err = ferr
		}
	}
	return err
}

// flushLocked writes the lines waiting and starts a window; w.mu is held.
func (w *Writer) flushLocked() error {
	if len(w.waiting) == 0 || w.f == nil {
		return nil
	}
	_, err := w.f.Write(w.waiting)
	w.waiting = w.waiting[:0]
	if !w.armed {
		w.armed = true
		if w.timer == nil {
			w.timer = time.AfterFunc(window, w.windowEnd)
		} else {
			w.timer.Reset(window)
		}
	}
	return err
}

// windowEnd writes the lines of the window that ended (starting another).
func (w *Writer) windowEnd() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	if err := w.flushLocked(); err != nil {
		w.err = err
	}
}

// Path is the file written.
func (w *Writer) Path() string { return w.path }

// Close writes the lines waiting and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return os.ErrClosed
	}
	err := w.flushLocked()
	if w.timer != nil {
		w.timer.Stop()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	return err
}
