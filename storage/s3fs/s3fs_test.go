package s3fs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

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
	live, _ := f.Create(ctx, "live", storage.CreateOptions{})
	live.Write(random(t, s3fs.MinPartSize+1)) // one part sent, running
	if n, err := f.Sweep(ctx, time.Now().Add(time.Minute)); n != 1 || err != nil {
		t.Fatalf("sweep: %d %v (the running upload must stay)", n, err)
	}
	if err := live.Commit(); err != nil {
		t.Fatalf("the running upload after a sweep: %v", err)
	}
	if _, err := f.PartialSize(ctx, "cut"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("partial after sweep: %v", err)
	}
}

// TestChecksum: an object uploaded in one piece carries its SHA-256,
// kept through Chtimes and Rename; a multipart one has none.
func TestChecksum(t *testing.T) {
	gw := s3test.Start(t)
	f, _ := newFS(t, gw, "")
	small := random(t, 100000)
	u, _ := f.Create(ctx, "small", storage.CreateOptions{})
	u.Write(small)
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(small)
	check := func(name string, wantOK bool) {
		t.Helper()
		sum, ok, err := f.Checksum(ctx, name, "SHA-256")
		if err != nil || ok != wantOK || (ok && sum != hex.EncodeToString(want[:])) {
			t.Fatalf("checksum of %s: %q %v %v", name, sum, ok, err)
		}
	}
	check("small", true)
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := f.Chtimes(ctx, "small", when); err != nil {
		t.Fatal(err)
	}
	check("small", true)
	if err := f.Rename(ctx, "small", "moved"); err != nil {
		t.Fatal(err)
	}
	check("moved", true)
	if fi, _ := f.Stat(ctx, "moved"); !fi.ModTime().Equal(when) {
		t.Errorf("mtime after rename: %v", fi.ModTime())
	}
	if _, ok, _ := f.Checksum(ctx, "moved", "MD5"); ok {
		t.Error("an MD5 where none is stored")
	}
	u, _ = f.Create(ctx, "big", storage.CreateOptions{})
	u.Write(random(t, s3fs.MinPartSize+1))
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	check("big", false)
}

// counting counts the requests of an HTTP client.
type counting struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// TestListStreams: a directory of 100,000 objects is listed page by
// page: the first entry comes after one request, before the last page is
// fetched, and the heap does not grow with the listing.
func TestListStreams(t *testing.T) {
	gw := s3test.Start(t)
	bucket := gw.Bucket(t)
	n := 100000
	if testing.Short() {
		n = 5000
	}
	// The posix backend serves the files of its bucket directory as
	// objects: made on disk, they take seconds instead of 100,000 PUTs.
	dir := filepath.Join(gw.Dir, bucket, "many")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cnt := &counting{rt: http.DefaultTransport}
	client := gw.Client(func(o *s3.Options) { o.HTTPClient = &http.Client{Transport: cnt} })
	f, err := s3fs.New(ctx, client, s3fs.Config{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	cnt.n.Store(0)
	var ms runtime.MemStats
	var base, peak uint64
	got := 0
	for fi, err := range f.ReadDir(ctx, "many") {
		if err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			if r := cnt.n.Load(); r != 1 {
				t.Fatalf("first entry after %d requests, want 1", r)
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			base = ms.HeapAlloc
		}
		if got%10000 == 9999 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		if fi.Size() != 1 || fi.IsDir() {
			t.Fatalf("entry %s: %d bytes", fi.Name(), fi.Size())
		}
		got++
	}
	if got != n {
		t.Fatalf("listed %d of %d", got, n)
	}
	pages := (n + 999) / 1000
	if r := cnt.n.Load(); r != int64(pages) {
		t.Errorf("%d requests for %d pages", r, pages)
	}
	// A page of 1,000 entries is a few MiB of XML and structs at most;
	// holding the whole listing would be tens of MiB.
	if n == 100000 && peak > base+32<<20 {
		t.Errorf("heap grew from %d to %d MiB while listing", base>>20, peak>>20)
	}
	t.Logf("%d entries in %d requests; heap %d → at most %d MiB", got, cnt.n.Load(), base>>20, peak>>20)
}

// TestResumeBeforeFirstPart: an upload still in its first part has no
// multipart upload to claim; a resume of its name meanwhile is busy all
// the same, rather than built on the old object's first bytes.
func TestResumeBeforeFirstPart(t *testing.T) {
	gw := s3test.Start(t)
	f, _ := newFS(t, gw, "")
	old := []byte("old contents")
	w, _ := f.Create(ctx, "f", storage.CreateOptions{})
	w.Write(old)
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	u, _ := f.Create(ctx, "f", storage.CreateOptions{})
	u.Write([]byte("new "))
	if _, err := f.Create(ctx, "f", storage.CreateOptions{Offset: 4}); !errors.Is(err, storage.ErrBusy) {
		t.Fatalf("resume while an upload runs: %v, want busy", err)
	}
	u.Write([]byte("contents"))
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := f.Create(ctx, "f", storage.CreateOptions{Offset: 4})
	if err != nil {
		t.Fatalf("resume once the upload ended: %v", err)
	}
	r.Write([]byte("contents"))
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, f, "f", 0); string(got) != "new contents" {
		t.Fatalf("object holds %q", got)
	}
}

// TestResumeClaimed: two resumes of one cut upload cannot run at once;
// the second may once the first has ended.
func TestResumeClaimed(t *testing.T) {
	gw := s3test.Start(t)
	f, _ := newFS(t, gw, "")
	data := random(t, 2*s3fs.MinPartSize)
	u, _ := f.Create(ctx, "f", storage.CreateOptions{})
	u.Write(data[:s3fs.MinPartSize+10])
	u.Abort(errors.New("cut"))
	a, err := f.Create(ctx, "f", storage.CreateOptions{Offset: s3fs.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Create(ctx, "f", storage.CreateOptions{Offset: s3fs.MinPartSize}); !errors.Is(err, storage.ErrBusy) {
		t.Fatalf("second resume at once: %v", err)
	}
	if _, err := f.Create(ctx, "f", storage.CreateOptions{Offset: 10}); !errors.Is(err, storage.ErrBusy) {
		t.Fatalf("resume at another offset while one runs: %v, want busy", err)
	}
	a.Abort(errors.New("cut again"))
	if _, err := f.Create(ctx, "f", storage.CreateOptions{Offset: 10}); !errors.Is(err, storage.ErrBadOffset) {
		t.Fatalf("resume where no part ends: %v", err)
	}
	b, err := f.Create(ctx, "f", storage.CreateOptions{Offset: s3fs.MinPartSize})
	if err != nil {
		t.Fatalf("resume after the first ended: %v", err)
	}
	b.Write(data[s3fs.MinPartSize:])
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, f, "f", 0), data) {
		t.Fatal("content differs")
	}
}

// TestRenameMultipartCopy: an object above the single-copy limit (5 GiB on
// S3, lowered here) is renamed by a multipart copy, whole parts copied on
// the store's side and the rest read.
func TestRenameMultipartCopy(t *testing.T) {
	gw := s3test.Start(t)
	f, _ := newFS(t, gw, "")
	defer s3fs.SetSingleCopy(s3fs.MinPartSize)()
	data := random(t, 3*s3fs.MinPartSize+12345)
	u, _ := f.Create(ctx, "big", storage.CreateOptions{})
	u.Write(data)
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Rename(ctx, "big", "moved"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, f, "moved", 0), data) {
		t.Fatal("renamed content differs")
	}
	if _, err := f.Stat(ctx, "big"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the source is still there: %v", err)
	}
}

// TestKeptParts: a cut upload keeps its stored parts in place of an older
// kept upload of the name and says how many bytes (storage.Keeper); one
// cut by the quota keeps nothing; DropPartial removes what is kept.
func TestKeptParts(t *testing.T) {
	gw := s3test.Start(t)
	f, bucket := newFS(t, gw, "")
	data := random(t, 3*s3fs.MinPartSize)
	cut := func(n int, cause error) int64 {
		t.Helper()
		u, err := f.Create(ctx, "k", storage.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u.Write(data[:n])
		u.Abort(cause)
		return u.(storage.Keeper).Kept()
	}
	pending := func() int {
		t.Helper()
		out, err := gw.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Uploads)
	}
	if k := cut(5*s3fs.MinPartSize/2, errors.New("connection lost")); k != 2*s3fs.MinPartSize {
		t.Fatalf("kept %d, want two parts", k)
	}
	if k := cut(3*s3fs.MinPartSize/2, errors.New("connection lost")); k != s3fs.MinPartSize {
		t.Fatalf("kept %d, want one part", k)
	}
	if n, err := f.PartialSize(ctx, "k"); err != nil || n != s3fs.MinPartSize || pending() != 1 {
		t.Fatalf("after a second cut: partial %d %v, %d multipart uploads; want the newer alone", n, err, pending())
	}
	if k := cut(5*s3fs.MinPartSize/2, fmt.Errorf("%w: full", storage.ErrQuota)); k != 0 || pending() != 1 {
		t.Fatalf("cut by the quota: kept %d, %d multipart uploads; want 0 and the older one", k, pending())
	}
	if err := f.DropPartial(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.PartialSize(ctx, "k"); !errors.Is(err, fs.ErrNotExist) || pending() != 0 {
		t.Fatalf("after DropPartial: %v, %d multipart uploads", err, pending())
	}
}

// TestPartsOffHeap: an upload's part buffers are outside the Go heap (on
// Linux), so that the parts a server holds do not let the collector's
// garbage grow by as much again: the heap grows by less than one part
// while three are filled and sent.
func TestPartsOffHeap(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("part buffers come from the heap here")
	}
	gw := s3test.Start(t)
	f, _ := newFS(t, gw, "")
	data := random(t, 3*s3fs.MinPartSize+1)
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	u, err := f.Create(ctx, "parts", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(data); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&during) // two parts sent, one in flight, one begun
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	if grew := int64(during.HeapInuse) - int64(before.HeapInuse); grew >= s3fs.MinPartSize {
		t.Fatalf("the heap grew by %d bytes during the upload, a part is %d", grew, s3fs.MinPartSize)
	}
	if !bytes.Equal(read(t, f, "parts", 0), data) {
		t.Fatal("content differs")
	}
}
