package s3fs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/s3test"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/s3fs"
	"github.com/ferryftp/ferry/storage/storagetest"
)

var ctx = context.Background()

func newFS(t *testing.T, gw *s3test.Server, prefix string) (*s3fs.FS, string) {
	t.Helper()
	bucket := gw.Bucket(t)
	f, err := s3fs.New(ctx, gw.Client(), s3fs.Config{Bucket: bucket, Prefix: prefix, PartSize: s3fs.MinPartSize, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	return f, bucket
}

func TestConformance(t *testing.T) {
	gw := s3test.Start(t)
	storagetest.RunCaps(t, func(t *testing.T) storage.FS {
		f, _ := newFS(t, gw, "home/user")
		return f
	}, storagetest.Caps{ResumeUnit: s3fs.MinPartSize})
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func read(t *testing.T, f storage.FS, name string, off int64) []byte {
	t.Helper()
	r, err := f.Open(ctx, name, off)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMultipart: an upload of several parts, an aborted overwrite that
// leaves the old object byte for byte, and a resume from the stored parts.
func TestMultipart(t *testing.T) {
	gw := s3test.Start(t)
	f, _ := newFS(t, gw, "")
	old := random(t, 3*s3fs.MinPartSize+12345)
	u, err := f.Create(ctx, "big", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for b := old; len(b) > 0; b = b[min(len(b), 100000):] { // odd write sizes
		if _, err := u.Write(b[:min(len(b), 100000)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, f, "big", 0), old) {
		t.Fatal("multipart content differs")
	}
	if got := read(t, f, "big", 7<<20); !bytes.Equal(got, old[7<<20:]) {
		t.Fatal("ranged read differs")
	}
	if got := read(t, f, "big", int64(len(old))); len(got) != 0 {
		t.Fatalf("read at the end: %d bytes", len(got))
	}
	if _, err := f.Open(ctx, "big", int64(len(old))+1); !errors.Is(err, storage.ErrBadOffset) {
		t.Fatalf("read past the end: %v", err)
	}

	// Overwrite, cut after 2.5 parts.
	fresh := random(t, 4*s3fs.MinPartSize)
	u, _ = f.Create(ctx, "big", storage.CreateOptions{})
	u.Write(fresh[:5*s3fs.MinPartSize/2])
	u.Abort(errors.New("connection lost"))
	if !bytes.Equal(read(t, f, "big", 0), old) {
		t.Fatal("aborted overwrite changed the object")
	}
	n, err := f.PartialSize(ctx, "big")
	if err != nil || n != 2*s3fs.MinPartSize {
		t.Fatalf("partial size %d %v, want two parts", n, err)
	}
	// An offset inside a stored part cannot resume.
	if _, err := f.Create(ctx, "big", storage.CreateOptions{Offset: n - 1}); err == nil {
		t.Fatal("resume inside a part: no error")
	}
	u, err = f.Create(ctx, "big", storage.CreateOptions{Offset: n})
	if err != nil {
		t.Fatal(err)
	}
	u.Write(fresh[n:])
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, f, "big", 0), fresh) {
		t.Fatal("resumed content differs")
	}
	if _, err := f.PartialSize(ctx, "big"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("partial after commit: %v", err)
	}

	// Append to a large object: parts copied on the store's side.
	u, err = f.Create(ctx, "big", storage.CreateOptions{Mode: storage.Append})
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("tail"))
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, f, "big", 0), append(slices.Clip(fresh), "tail"...)) {
		t.Fatal("append differs")
	}
	// REST + STOR with no stored parts takes the object's first bytes.
	u, err = f.Create(ctx, "big", storage.CreateOptions{Offset: s3fs.MinPartSize + 7})
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("!"))
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, f, "big", 0), append(slices.Clip(fresh[:s3fs.MinPartSize+7]), '!')) {
		t.Fatal("offset upload differs")
	}
}

// TestConfined: whatever the name, no key outside the prefix is touched.
func TestConfined(t *testing.T) {
	gw := s3test.Start(t)
	bucket := gw.Bucket(t)
	outside, _ := s3fs.New(ctx, gw.Client(), s3fs.Config{Bucket: bucket})
	outside.Mkdir(ctx, "home")
	outside.Mkdir(ctx, "home/bob")
	for _, k := range []string{"secret", "home/bob/secret"} {
		u, _ := outside.Create(ctx, k, storage.CreateOptions{})
		u.Write([]byte("secret"))
		if err := u.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	f, err := s3fs.New(ctx, gw.Client(), s3fs.Config{Bucket: bucket, Prefix: "home/alice"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../bob/secret", "a/../../bob/secret", "/secret", "..", "a//b", "./x", "a/.."} {
		if _, err := f.Stat(ctx, name); !errors.Is(err, storage.ErrBadName) {
			t.Errorf("stat %q: %v", name, err)
		}
		if _, err := f.Create(ctx, name, storage.CreateOptions{}); !errors.Is(err, storage.ErrBadName) {
			t.Errorf("create %q: %v", name, err)
		}
		if err := f.Rename(ctx, "x", name); !errors.Is(err, storage.ErrBadName) {
			t.Errorf("rename to %q: %v", name, err)
		}
	}
	// Names that are odd but legal stay below the prefix.
	for _, name := range []string{`a\..\..\b`, "%2F..%2Fsecret", "..x", "a b"} {
		u, err := f.Create(ctx, name, storage.CreateOptions{})
		if err != nil {
			t.Fatalf("create %q: %v", name, err)
		}
		u.Write([]byte("x"))
		if err := u.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	var mine int
	for _, k := range gw.Keys(t, bucket) {
		switch {
		case strings.HasPrefix(k, "home/alice/"):
			mine++
		case k != "secret" && k != "home/bob/secret" && k != "home/" && k != "home/bob/":
			t.Errorf("key outside the prefix: %q", k)
		}
	}
	if mine != 4 {
		t.Errorf("%d keys in the prefix, want 4", mine)
	}
	for _, k := range []string{"secret", "home/bob/secret"} {
		if got := read(t, outside, k, 0); string(got) != "secret" {
			t.Errorf("%s changed: %q", k, got)
		}
	}
}

// TestExclusiveAndSweep: STOU's conditional write, and the sweeper.
func TestExclusiveAndSweep(t *testing.T) {
	gw := s3test.Start(t)
	f, _ := newFS(t, gw, "p")
	a, err := f.Create(ctx, "once", storage.CreateOptions{Mode: storage.Exclusive})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Create(ctx, "once", storage.CreateOptions{Mode: storage.Exclusive})
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("a"))
	b.Write([]byte("b"))
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second exclusive commit: %v", err)
	}
	if got := read(t, f, "once", 0); string(got) != "a" {
		t.Fatalf("exclusive: %q", got)
	}

	u, _ := f.Create(ctx, "cut", storage.CreateOptions{})
	u.Write(random(t, s3fs.MinPartSize+1))
	u.Abort(errors.New("cut"))
	if n, err := f.Sweep(ctx, time.Now().Add(-time.Hour)); n != 0 || err != nil {
		t.Fatalf("sweep of recent: %d %v", n, err)
	}
	if n, err := f.Sweep(ctx, time.Now().Add(time.Minute)); n != 1 || err != nil {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if _, err := f.PartialSize(ctx, "cut"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("partial after sweep: %v", err)
	}
}
