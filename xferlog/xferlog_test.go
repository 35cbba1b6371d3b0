package xferlog

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Parse reads a line by the field definitions of xferlog(5): the test's
// own reading of the format, as an analyser reads it.
func Parse(line string) (Record, error) {
	// The time is the first five fields (day name, month, day, time, year).
	f := strings.Fields(line)
	if len(f) != 18 {
		return Record{}, fmt.Errorf("%d fields, want 18", len(f))
	}
	at, err := time.ParseInLocation("Mon Jan 2 15:04:05 2006", strings.Join(f[:5], " "), time.Local)
	if err != nil {
		return Record{}, err
	}
	var r Record
	r.Time = at
	secs, err := strconv.Atoi(f[5])
	if err != nil {
		return r, fmt.Errorf("transfer-time %q", f[5])
	}
	r.Took = time.Duration(secs) * time.Second
	if r.Remote, err = netip.ParseAddr(f[6]); err != nil {
		return r, err
	}
	if r.Size, err = strconv.ParseInt(f[7], 10, 64); err != nil {
		return r, err
	}
	r.Path = f[8]
	checks := []struct {
		v, allowed string
	}{{f[9], "ab"}, {f[10], "CUT_"}, {f[11], "oid"}, {f[12], "agr"}, {f[14], ""}, {f[15], "01"}, {f[17], "ci"}}
	for _, c := range checks {
		if c.allowed == "" {
			if c.v != "ftp" {
				return r, fmt.Errorf("service-name %q", c.v)
			}
			continue
		}
		if len(c.v) != 1 || !strings.Contains(c.allowed, c.v) {
			return r, fmt.Errorf("field %q not one of %q", c.v, c.allowed)
		}
	}
	r.ASCII, r.Direction, r.Anonymous, r.User, r.Complete = f[9] == "a", f[11][0], f[12] == "a", f[13], f[17] == "c"
	return r, nil
}

func TestFormat(t *testing.T) {
	at := time.Date(2026, 12, 3, 14, 5, 1, 0, time.Local)
	r := Record{Time: at, Took: 1600 * time.Millisecond, Remote: netip.MustParseAddr("::ffff:192.0.2.7"), Size: 4096,
		Path: "/in/a b\tc.txt", Direction: Incoming, User: "alice", Complete: true}
	line := Format(r)
	if want := "Thu Dec  3 14:05:01 2026 2 192.0.2.7 4096 /in/a_b_c.txt b _ i r alice ftp 0 * c"; line != want {
		t.Fatalf("got  %q\nwant %q", line, want)
	}
	got, err := Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(at) || got.Size != 4096 || got.Path != "/in/a_b_c.txt" || got.Direction != Incoming || !got.Complete || got.User != "alice" {
		t.Fatalf("parsed %+v", got)
	}
	r.ASCII, r.Direction, r.Anonymous, r.Complete, r.User = true, Outgoing, true, false, ""
	if got, err := Parse(Format(r)); err != nil || !got.ASCII || got.Direction != Outgoing || !got.Anonymous || got.Complete || got.User != "_" {
		t.Fatalf("%q: %+v %v", Format(r), got, err)
	}
}

func TestWriterReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "xferlog")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{Time: time.Now(), Remote: netip.MustParseAddr("127.0.0.1"), Size: 1, Path: "/a", Direction: Deleted, User: "u", Complete: true}
	w.Write(rec)
	os.Rename(path, path+".1") // logrotate
	w.Write(rec)               // still the old file
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	w.Write(rec)
	if err := w.Close(); err != nil { // writes what waits
		t.Fatal(err)
	}
	for name, want := range map[string]int{path + ".1": 2, path: 1} {
		f, _ := os.Open(name)
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			if _, err := Parse(sc.Text()); err != nil {
				t.Errorf("%s: %v", sc.Text(), err)
			}
			n++
		}
		f.Close()
		if n != want {
			t.Errorf("%s: %d lines, want %d", name, n, want)
		}
	}
	if !regexp.MustCompile(`^[A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3][0-9] `).MatchString(Format(rec)) {
		t.Errorf("time field: %q", Format(rec))
	}
}

// TestWriterWindow: a line after a quiet spell is written at once; the
// lines that follow within the window wait for its end and go in one
// write; a burst past maxWaiting goes without waiting; Close writes what
// waits. Each line keeps its own time.
func TestWriterWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "xferlog")
		w, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := func() []string {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		}
		at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.Local)
		rec := func(i int) Record {
			return Record{Time: at.Add(time.Duration(i) * 700 * time.Millisecond), Remote: netip.MustParseAddr("127.0.0.1"),
				Size: int64(i), Path: "/f", Direction: Incoming, User: "u", Complete: true}
		}
		w.Write(rec(0))
		if n := len(lines()); n != 1 {
			t.Fatalf("first line: %d lines in the file", n)
		}
		w.Write(rec(1))
		w.Write(rec(2))
		if n := len(lines()); n != 1 {
			t.Fatalf("within the window: %d lines in the file, want 1", n)
		}
		time.Sleep(window)
		synctest.Wait()
		got := lines()
		if len(got) != 3 {
			t.Fatalf("after the window: %d lines, want 3", len(got))
		}
		for i, line := range got {
			r, err := Parse(line)
			if err != nil || r.Size != int64(i) || !r.Time.Equal(rec(i).Time.Truncate(time.Second)) {
				t.Errorf("line %d %q: %+v %v", i, line, r, err)
			}
		}
		time.Sleep(2 * window) // a window with no line: the next goes at once
		synctest.Wait()
		w.Write(rec(3))
		if n := len(lines()); n != 4 {
			t.Fatalf("after a quiet window: %d lines, want 4", n)
		}
		n := 4
		for len(lines()) == 4 { // a burst: written once maxWaiting bytes wait
			w.Write(rec(n))
			if n++; n > 2*maxWaiting/50 {
				t.Fatalf("%d lines and none written", n-4)
			}
		}
		w.Write(rec(n))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := len(lines()); got != n+1 {
			t.Fatalf("after Close: %d lines, want %d", got, n+1)
		}
		if err := w.Write(rec(0)); err == nil {
			t.Fatal("Write after Close: no error")
		}
	})
}
