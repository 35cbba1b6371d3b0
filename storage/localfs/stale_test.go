package localfs

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryftp/ferry/storage"
)

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	old := time.Now().Add(-time.Hour)
	write := func(name string, mtime time.Time) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	write(Prefix+"tmp.0123456789abcdef", old)                    // crashed upload: goes
	write("a/b/"+Prefix+"tmp.fedcba9876543210", old)             // deep: goes
	write("a/"+Prefix+"part.file", old)                          // resumable, an hour old: stays
	write("a/"+Prefix+"part.ancient", old.Add(-30*24*time.Hour)) // a month old: goes
	write("a/"+Prefix+"tmp.new", time.Now())                     // an upload of this process: stays
	write("a/keep", old)                                         // a user's file: stays
	f, err := New(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// An upload running now is not touched either.
	up, err := f.Create(context.Background(), "a/live", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	up.Write([]byte("running"))
	n, err := f.RemoveStale(context.Background(), time.Now().Add(-time.Minute), time.Now().Add(-7*24*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("removed %d, %v; want 3", n, err)
	}
	for _, gone := range []string{Prefix + "tmp.0123456789abcdef", "a/b/" + Prefix + "tmp.fedcba9876543210", "a/" + Prefix + "part.ancient"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s stays: %v", gone, err)
		}
	}
	for _, stays := range []string{"a/" + Prefix + "part.file", "a/" + Prefix + "tmp.new", "a/keep"} {
		if _, err := os.Stat(filepath.Join(dir, stays)); err != nil {
			t.Errorf("%s was removed", stays)
		}
	}
	if err := up.Commit(); err != nil {
		t.Fatalf("the running upload broke: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a", "live")); string(b) != "running" {
		t.Fatalf("live: %q", b)
	}
	// Cancelled: it stops.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.RemoveStale(ctx, time.Now(), time.Time{}); err == nil {
		t.Fatal("a cancelled sweep reported success")
	}
}
