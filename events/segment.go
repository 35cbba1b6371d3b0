package events

import (
	"bytes"
	"errors"
	"io"
	"os"
)

// segWriter is the segment being written. Where it can, the queue maps
// the segment into memory and copies each record there: the record is
// in the page cache, as safe from a crash of the process as after a
// write(2), without a system call per event (which was most of what
// publishing an event cost). Elsewhere it appends with write(2).
type segWriter interface {
	io.Writer
	// Close ends the segment, trimmed to what was written.
	Close() error
}

// reusable is a segWriter whose file can be written again from its start
// (a mapped segment: its pages stay mapped).
type reusable interface {
	// reset clears what was written and starts again at offset 0.
	reset()
}

// errSegmentFull is a mapped segment's refusal of a record that does not
// fit; the queue starts a new segment.
var errSegmentFull = errors.New("events: segment full")

// segCap is the size of a mapped segment: segMax and room for the last
// write that crosses it.
const segCap = segMax + 1<<20

// openSegment creates the segment file path: mapped, or appended.
func openSegment(path string) (segWriter, error) {
	if w, err := mapSegment(path, segCap); err == nil {
		return w, nil
	}
	os.Remove(path) // a mapping refused: start again with write(2)
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}

// records cuts a segment's bytes at its first NUL: a mapped segment that
// was not closed (a crash) ends in zeros, which no record holds.
func records(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}
