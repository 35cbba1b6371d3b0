package events

import (
	"testing"
	"time"
)

// BenchmarkEventJSON: the document Publish makes for a transfer's event.
func BenchmarkEventJSON(b *testing.B) {
	e := Event{ID: "0123456789abcdef0123456789abcdef", Event: Upload, Time: time.Now().UTC(), User: "alice", Remote: "192.0.2.7",
		Path: "/in/some/file.bin", Size: 4096, Duration: (213457 * time.Nanosecond).Seconds(), Status: "ok", Code: 226, Session: 12345}
	buf := make([]byte, 0, 512)
	for b.Loop() {
		buf = e.appendJSON(buf[:0])
	}
}
