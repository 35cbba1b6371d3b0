package events

import (
	"encoding/json"
	"math"
	"math/rand/v2"
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
		// In UTC, as Publish stamps events: twice, the second time from
		// the second formatted the first.
		u := e
		u.Time = e.Time.UTC()
		if want, err := json.Marshal(&u); err == nil {
			for range 2 {
				if got := u.appendJSON(nil); string(got) != string(want) {
					t.Fatalf("document in UTC\n got %s\nwant %s", got, want)
				}
			}
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

// TestDurationJSON: a transfer's duration (whole nanoseconds, in seconds)
// is written as json.Marshal writes the float64, on appendFloat's fast
// path and around its edges.
func TestDurationJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var ns []int64
	for range 200000 {
		ns = append(ns, r.Int64N(1<<uint(r.IntN(53))))
	}
	ns = append(ns, 0, 1, 999, 1000, 1001, 1e9, 1e15-1, 1e15, 1e15+1, 1<<53-1, 123456789012345)
	for _, n := range ns {
		for _, f := range []float64{time.Duration(n).Seconds(), -time.Duration(n).Seconds(), float64(n) / 1e9, math.Nextafter(float64(n)/1e9, 1)} {
			want, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendFloat(nil, f); string(got) != string(want) {
				t.Fatalf("%v (%d ns): got %s, want %s", f, n, got, want)
			}
		}
	}
}
