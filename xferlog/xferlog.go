// Package xferlog writes the transfer log of wu-ftpd, ProFTPD and vsftpd
// (xferlog(5)): one line per transfer, in the fields log analysers
// (webalizer, AWStats, xferstats) read.
package xferlog

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
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
	b := make([]byte, 0, 128)
	b = r.Time.Local().AppendFormat(b, "Mon Jan _2 15:04:05 2006")
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(max(r.Took.Round(time.Second)/time.Second, 0)), 10)
	b = append(b, ' ')
	b = append(b, r.Remote.Unmap().String()...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.Size, 10)
	b = append(b, ' ')
	b = append(b, field(r.Path)...)
	b = append(b, ' ')
	b = append(b, pick(r.ASCII, 'a', 'b'), ' ', '_', ' ', r.Direction, ' ', pick(r.Anonymous, 'a', 'r'), ' ')
	b = append(b, field(r.User)...)
	b = append(b, " ftp 0 * "...)
	b = append(b, pick(r.Complete, 'c', 'i'))
	return string(b)
}

func pick(c bool, yes, no byte) byte {
	if c {
		return yes
	}
	return no
}

// field makes s one field: white space and control characters become
// "_", and an empty s is "_".
func field(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || r == 0x85 || r == 0xa0 || r == 0x2028 || r == 0x2029 {
			return '_'
		}
		return r
	}, s)
}

// Writer appends records to a file. It is safe for concurrent use.
type Writer struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// Open opens path for appending, making it (mode 0640) if needed.
func Open(path string) (*Writer, error) {
	w := &Writer{path: path}
	return w, w.Reopen()
}

// Reopen closes the file and opens path again (after logrotate moved
// it; SIGHUP).
func (w *Writer) Reopen() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	w.mu.Lock()
	old := w.f
	w.f = f
	w.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Write appends r as one line (one write, so lines never interleave).
func (w *Writer) Write(r Record) error {
	line := Format(r) + "\n"
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.f.WriteString(line)
	return err
}

// Path is the file written.
func (w *Writer) Path() string { return w.path }

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}
