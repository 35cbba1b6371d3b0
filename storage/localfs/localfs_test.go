package localfs_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/localfs"
	"github.com/ferryftp/ferry/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.FS {
		f, err := localfs.New(t.TempDir(), localfs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	})
}

// TestConfinement: no name reaches outside the root, whatever its form,
// through openat2 and through the os.Root fallback.
func TestConfinement(t *testing.T) {
	t.Run("openat2", func(t *testing.T) { testConfinement(t, false) })
	t.Run("os.Root", func(t *testing.T) { testConfinement(t, true) })
}

func testConfinement(t *testing.T, fallback bool) {
	ctx := context.Background()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "pub"), 0o755)
	os.WriteFile(filepath.Join(root, "pub", "ok"), []byte("ok"), 0o644)
	os.Symlink(outside, filepath.Join(root, "out"))                        // dir link out
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "s")) // file link out
	os.Symlink("pub/ok", filepath.Join(root, "in"))                        // link inside
	os.WriteFile(filepath.Join(root, `a\..\..\x`), []byte("literal"), 0o644)
	f, err := localfs.New(root, localfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fallback {
		localfs.DisableFastPath(f)
	}
	defer func() {
		// The subtest ran the path it names.
		if n := localfs.FastPathCalls(f); fallback && n != 0 {
			t.Errorf("the os.Root subtest made %d openat2 calls", n)
		} else if !fallback && n == 0 && runtime.GOOS == "linux" {
			t.Error("the openat2 subtest made no openat2 call")
		}
	}()
	if _, err := f.Stat(ctx, "out/secret"); !errors.Is(err, storage.ErrOutOfRoot) && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat through link: %v", err)
	}
	// Links leading out are not listed; a link inside is, as its target.
	var names []string
	for fi, err := range f.ReadDir(ctx, ".") {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, fi.Name())
		if fi.Name() == "in" && (fi.Size() != 2 || !fi.Mode().IsRegular()) {
			t.Errorf("inner link listed as %v %d", fi.Mode(), fi.Size())
		}
	}
	got := strings.Join(names, ",")
	if strings.Contains(got, "out") || strings.Contains(got, ",s,") || !strings.Contains(got, "in") {
		t.Errorf("listing %s", got)
	}
	for _, n := range []string{"out/secret", "s", "../" + filepath.Base(outside) + "/secret", outside + "/secret"} {
		if r, err := f.Open(ctx, n, 0); err == nil {
			b, _ := io.ReadAll(r)
			t.Errorf("Open(%q) escaped: %q", n, b)
		}
		if u, err := f.Create(ctx, n, storage.CreateOptions{}); err == nil {
			io.WriteString(u, "pwned")
			u.Commit() // at most replaces the link itself, inside the root
		}
	}
	// A backslash is an ordinary character on Linux: the file of that name.
	r, err := f.Open(ctx, `a\..\..\x`, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "literal" {
		t.Fatal(string(b))
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "secret" {
		t.Fatal("outside file changed")
	}
	// Hidden files of the backend are not reachable by name.
	if _, err := f.Stat(ctx, ".ferry-part.x"); !errors.Is(err, storage.ErrBadName) {
		t.Errorf("hidden name: %v", err)
	}
}

// TestUploadUsesReadFrom: uploads expose io.ReaderFrom so that io.Copy from
// a TCP connection reaches (*os.File).ReadFrom and splice(2).
func TestUploadUsesReadFrom(t *testing.T) {
	f, _ := localfs.New(t.TempDir(), localfs.Options{Sync: true})
	u, err := f.Create(context.Background(), "x", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := u.(io.ReaderFrom); !ok {
		t.Fatal("upload is not an io.ReaderFrom")
	}
	u.Abort(nil)
	r, err := f.Open(context.Background(), ".", 0)
	if err == nil {
		r.Close()
		t.Fatal("opened a directory")
	}
	os.WriteFile(filepath.Join(f.Dir(), "y"), []byte("y"), 0o644)
	r, _ = f.Open(context.Background(), "y", 0)
	if _, ok := r.(*os.File); !ok {
		t.Fatalf("Open returns %T, not *os.File (sendfile needs it)", r)
	}
	r.Close()
}

// TestResumeWhileRunning: a resume (an offset) of a file that another
// upload still writes is busy: that upload's bytes are in a temporary
// file, not yet a partial one, and the file's first bytes on disk are
// the old ones. Once it ends, the resume goes on from what it kept.
func TestResumeWhileRunning(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f, _ := localfs.New(dir, localfs.Options{})
	other, _ := localfs.New(dir, localfs.Options{}) // another session's
	os.WriteFile(filepath.Join(dir, "f"), []byte("old contents"), 0o644)
	u, err := f.Create(ctx, "f", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("new "))
	if _, err := other.Create(ctx, "f", storage.CreateOptions{Offset: 4}); !errors.Is(err, storage.ErrBusy) {
		t.Fatalf("resume while an upload runs: %v, want busy", err)
	}
	u2, err := other.Create(ctx, "f", storage.CreateOptions{}) // a whole new upload is not
	if err != nil {
		t.Fatal(err)
	}
	u2.Abort(errors.New("cut"))
	u.Abort(errors.New("cut"))
	r, err := other.Create(ctx, "f", storage.CreateOptions{Offset: 4})
	if err != nil {
		t.Fatalf("resume once the upload ended: %v", err)
	}
	if _, err := f.Create(ctx, "f", storage.CreateOptions{Offset: 4}); !errors.Is(err, storage.ErrBusy) {
		t.Fatalf("second resume while the first runs: %v, want busy", err)
	}
	r.Write([]byte("contents"))
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "new contents" {
		t.Fatalf("file holds %q", b)
	}
	if r, err := f.Create(ctx, "f", storage.CreateOptions{Offset: 3}); err != nil {
		t.Fatalf("resume after the commit: %v", err)
	} else {
		r.Abort(nil)
	}
}
