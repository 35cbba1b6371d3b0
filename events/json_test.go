package events

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzEventJSON: an event's document and its queue record are the bytes
// json.Marshal writes, whatever the strings and numbers.
func FuzzEventJSON(f *testing.F) {
	f.Add("0123abcd", "upload", int64(1764763200123456789), 60, "alice", "192.0.2.7", "/in/a b.bin", "", int64(4096), 0.0002, "ok", 226, "e3b0c442", uint64(7))
	f.Add("", "rename", int64(0), 0, "bob\x00\t\n\r\b\f\x1f", "<&>", "/caf\u00e9/\u2028\u2029", "/x\"y\\z", int64(-1), 1e-9, "err\xff\xfeor", 0, "", uint64(0))
	f.Add("id", "login_failed", int64(-1), -330, "\xed\xa0\x80", "[::1]:21", "", "\U0001F600", int64(1<<62), 1.5e21, "", -5, "", uint64(1<<63))
	f.Fuzz(func(t *testing.T, id, event string, nanos int64, zone int, user, remote, path, to string, size int64, duration float64, status string, code int, sum string, session uint64) {
		e := Event{ID: id, Event: event, Time: time.Unix(0, nanos).In(time.FixedZone("", zone%1440*60)), User: user, Remote: remote,
			Path: path, To: to, Size: size, Duration: duration, Status: status, Code: code, SHA256: sum, Session: session}
		want, err := json.Marshal(&e)
		if err != nil {
			return // NaN or infinite durations: json.Marshal refuses, events never have them
		}
		if got := e.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("document\n got %s\nwant %s", got, want)
		}
		d := &Delivery{Hook: user, Event: e}
		rec, _ := json.Marshal(record{Op: "add", Hook: d.Hook, Event: &d.Event})
		if got := appendAdd(nil, d); string(got) != string(rec)+"\n" {
			t.Fatalf("record\n got %s\nwant %s", got, rec)
		}
		d.doc = e.appendJSON(nil) // made once by Publish
		if got := appendAdd(nil, d); string(got) != string(rec)+"\n" {
			t.Fatalf("record of a made document\n got %s\nwant %s", got, rec)
		}
	})
}
