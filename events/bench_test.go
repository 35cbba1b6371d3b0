package events

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/procstat"
)

// BenchmarkPublish: what an event costs the transfer that publishes it
// (ns/op: the queue's record), with its delivery to an HTTP hook in this
// process running beside it, one POST per event or batches of up to 100;
// cpu-µs/event is all the process's CPU per event, the delivery and the
// hook endpoint's included, the queue drained (Linux).
func BenchmarkPublish(b *testing.B) {
	for _, batch := range []int{0, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchPublish(b, batch) })
	}
}

func benchPublish(b *testing.B, batch int) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer sink.Close()
	d, err := Open(Options{Dir: b.TempDir(), Logger: quiet()}, []Hook{{On: []string{Upload}, URL: sink.URL, Batch: batch}})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	e := Event{Event: Upload, User: "alice", Remote: "192.0.2.7", Path: "/in/some/file.bin", Size: 4096, Duration: 0.0002, Status: "ok", Code: 226}
	cpu := procstat.TreeCPU(os.Getpid())
	for b.Loop() {
		d.Publish(e)
	}
	for d.Len() > 0 {
		time.Sleep(time.Millisecond)
	}
	if cpu := procstat.TreeCPU(os.Getpid()) - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
	}
}

// BenchmarkEventJSON: the document Publish makes for a transfer's event.
func BenchmarkEventJSON(b *testing.B) {
	e := Event{ID: "0123456789abcdef0123456789abcdef", Event: Upload, Time: time.Now().UTC(), User: "alice", Remote: "192.0.2.7",
		Path: "/in/some/file.bin", Size: 4096, Duration: (213457 * time.Nanosecond).Seconds(), Status: "ok", Code: 226, Session: 12345}
	buf := make([]byte, 0, 512)
	for b.Loop() {
		buf = e.appendJSON(buf[:0])
	}
}
