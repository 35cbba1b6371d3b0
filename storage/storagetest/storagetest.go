// Package storagetest is the conformance suite every storage backend runs
// (the model is testing/fstest.TestFS): the same calls against each backend
// must give the same results and errors.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"sort"
	"testing"
	"time"

	"github.com/ferryftp/ferry/storage"
)

// Caps says what a backend cannot do as local disk does, so the suite
// checks what it does instead. The zero value is local disk.
type Caps struct {
	// ResumeUnit: an aborted upload keeps its bytes only in whole units of
	// this size (S3 keeps the parts it stored, not the one being filled).
	// 0 means every byte is kept.
	ResumeUnit int64
}

// Run runs the suite. newFS returns an empty backend for each subtest.
func Run(t *testing.T, newFS func(t *testing.T) storage.FS) {
	RunCaps(t, newFS, Caps{})
}

// RunCaps runs the suite on a backend with the limits caps describes.
func RunCaps(t *testing.T, newFS func(t *testing.T) storage.FS, caps Caps) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, func(*testing.T) storage.FS)
	}{
		{"CreateReadStat", testCreateReadStat},
		{"AtomicReplace", func(t *testing.T, newFS func(*testing.T) storage.FS) { testAtomicReplace(t, newFS, caps) }},
		{"AppendExclusive", testAppendExclusive},
		{"Directories", testDirectories},
		{"Rename", testRename},
		{"BadNames", testBadNames},
		{"Optional", testOptional},
		{"LargeFile", testLargeFile},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newFS) })
	}
}

// ctx is the context of every call of the suite.
var ctx = context.Background()

func put(t *testing.T, f storage.FS, name, data string) {
	t.Helper()
	u, err := f.Create(ctx, name, storage.CreateOptions{})
	if err != nil {
		t.Fatalf("Create %s: %v", name, err)
	}
	if _, err := io.WriteString(u, data); err != nil {
		t.Fatal(err)
	}
	if err := u.Commit(); err != nil {
		t.Fatalf("Commit %s: %v", name, err)
	}
}
func get(t *testing.T, f storage.FS, name string, off int64) (string, error) {
	t.Helper()
	r, err := f.Open(ctx, name, off)
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}
func names(t *testing.T, f storage.FS, dir string) []string {
	t.Helper()
	var out []string
	for fi, err := range f.ReadDir(ctx, dir) {
		if err != nil {
			t.Fatalf("ReadDir %s: %v", dir, err)
		}
		n := fi.Name()
		if fi.IsDir() {
			n += "/"
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got %v, want %v", what, err, target)
	}
}

func testCreateReadStat(t *testing.T, newFS func(t *testing.T) storage.FS) {
	f := newFS(t)
	put(t, f, "a.txt", "hello")
	got, err := get(t, f, "a.txt", 0)
	if err != nil || got != "hello" {
		t.Fatalf("read %q %v", got, err)
	}
	if got, _ := get(t, f, "a.txt", 2); got != "llo" {
		t.Fatalf("offset read %q", got)
	}
	fi, err := f.Stat(ctx, "a.txt")
	if err != nil || fi.Size() != 5 || fi.IsDir() || fi.Name() != "a.txt" {
		t.Fatalf("stat %v %v", fi, err)
	}
	if time.Since(fi.ModTime()) > time.Hour {
		t.Errorf("modtime %v", fi.ModTime())
	}
	root, err := f.Stat(ctx, ".")
	if err != nil || !root.IsDir() {
		t.Fatalf("root %v %v", root, err)
	}
	_, err = f.Stat(ctx, "missing")
	wantErr(t, "stat missing", err, fs.ErrNotExist)
	_, err = f.Open(ctx, "missing", 0)
	wantErr(t, "open missing", err, fs.ErrNotExist)

}

func testAtomicReplace(t *testing.T, newFS func(t *testing.T) storage.FS, caps Caps) {
	f := newFS(t)
	put(t, f, "f", "old")
	kept := max(caps.ResumeUnit, 3) // what an abort keeps
	content := string(bytes.Repeat([]byte("new"), int(kept/3)+1))[:kept] + "-lost"
	u, err := f.Create(ctx, "f", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(u, content)
	if got, _ := get(t, f, "f", 0); got != "old" {
		t.Fatalf("visible before commit: %.20q", got)
	}
	if n := names(t, f, "."); len(n) != 1 {
		t.Fatalf("temporary file listed: %v", n)
	}
	u.Abort(errors.New("test"))
	if got, _ := get(t, f, "f", 0); got != "old" {
		t.Fatalf("abort changed the file: %.20q", got)
	}
	if p, ok := f.(storage.PartialSizer); ok {
		n, err := p.PartialSize(ctx, "f")
		if err != nil || n < kept {
			t.Fatalf("partial size %d %v, want at least %d", n, err, kept)
		}
		if _, err := p.PartialSize(ctx, "none"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("partial size of nothing: %v", err)
		}
		if k, ok := u.(storage.Keeper); ok && k.Kept() != n {
			t.Errorf("Kept says %d, PartialSize %d", k.Kept(), n)
		}
	}
	// Resume the aborted bytes.
	u, err = f.Create(ctx, "f", storage.CreateOptions{Offset: kept})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	io.WriteString(u, "-resumed")
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, f, "f", 0); got != content[:kept]+"-resumed" {
		t.Fatalf("resumed %.20q…", got)
	}
	_, err = f.Create(ctx, "f", storage.CreateOptions{Offset: 100 << 30})
	wantErr(t, "offset beyond", err, storage.ErrBadOffset)
	if n := names(t, f, "."); len(n) != 1 {
		t.Fatalf("left over: %v", n)
	}
}

func testAppendExclusive(t *testing.T, newFS func(t *testing.T) storage.FS) {
	f := newFS(t)
	put(t, f, "log", "one")
	u, err := f.Create(ctx, "log", storage.CreateOptions{Mode: storage.Append})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(u, "two")
	u.Commit()
	if got, _ := get(t, f, "log", 0); got != "onetwo" {
		t.Fatalf("append %q", got)
	}
	_, err = f.Create(ctx, "log", storage.CreateOptions{Mode: storage.Exclusive})
	wantErr(t, "exclusive on existing", err, fs.ErrExist)
	u, err = f.Create(ctx, "new", storage.CreateOptions{Mode: storage.Exclusive})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(u, "x")
	u.Commit()
	if got, _ := get(t, f, "new", 0); got != "x" {
		t.Fatalf("exclusive %q", got)
	}

}

func testDirectories(t *testing.T, newFS func(t *testing.T) storage.FS) {
	f := newFS(t)
	if err := f.Mkdir(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "mkdir twice", f.Mkdir(ctx, "d"), fs.ErrExist)
	wantErr(t, "mkdir no parent", f.Mkdir(ctx, "x/y"), fs.ErrNotExist)
	put(t, f, "d/f", "1")
	f.Mkdir(ctx, "d/sub")
	if got := names(t, f, "d"); len(got) != 2 || got[0] != "f" || got[1] != "sub/" {
		t.Fatalf("readdir %v", got)
	}
	wantErr(t, "rmdir non-empty", f.RemoveDir(ctx, "d"), storage.ErrNotEmpty)
	wantErr(t, "rmdir file", f.RemoveDir(ctx, "d/f"), storage.ErrNotDir)
	wantErr(t, "remove dir", f.Remove(ctx, "d/sub"), storage.ErrIsDir)
	_, err := f.Open(ctx, "d", 0)
	wantErr(t, "open dir", err, storage.ErrIsDir)
	_, err = f.Create(ctx, "d", storage.CreateOptions{})
	wantErr(t, "create over dir", err, storage.ErrIsDir)
	if err := f.Remove(ctx, "d/f"); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveDir(ctx, "d/sub"); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveDir(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "remove missing", f.Remove(ctx, "d"), fs.ErrNotExist)
	for fi, err := range f.ReadDir(ctx, "missing") {
		_ = fi
		wantErr(t, "readdir missing", err, fs.ErrNotExist)
	}

}

func testRename(t *testing.T, newFS func(t *testing.T) storage.FS) {
	f := newFS(t)
	put(t, f, "a", "A")
	put(t, f, "b", "B")
	f.Mkdir(ctx, "d")
	if err := f.Rename(ctx, "a", "d/a2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, f, "d/a2", 0); got != "A" {
		t.Fatal(got)
	}
	if err := f.Rename(ctx, "d/a2", "b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, f, "b", 0); got != "A" {
		t.Fatalf("replace: %q", got)
	}
	if err := f.Rename(ctx, "d", "e"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "rename missing", f.Rename(ctx, "nope", "x"), fs.ErrNotExist)

}

func testBadNames(t *testing.T, newFS func(t *testing.T) storage.FS) {
	f := newFS(t)
	for _, n := range []string{"/etc/passwd", "../x", "a/../../x", "", "a//b", "./a"} {
		_, err := f.Stat(ctx, n)
		wantErr(t, "stat "+n, err, storage.ErrBadName)
		_, err = f.Create(ctx, n, storage.CreateOptions{})
		wantErr(t, "create "+n, err, storage.ErrBadName)
	}

}

func testOptional(t *testing.T, newFS func(t *testing.T) storage.FS) {
	f := newFS(t)
	put(t, f, "f", "x")
	if c, ok := f.(storage.Chtimeser); ok {
		when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		if err := c.Chtimes(ctx, "f", when); err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat(ctx, "f")
		if !fi.ModTime().Equal(when) {
			t.Errorf("mtime %v", fi.ModTime())
		}
	}
	if c, ok := f.(storage.Chmoder); ok {
		if err := c.Chmod(ctx, "f", 0o600); err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat(ctx, "f")
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v", fi.Mode())
		}
	}
	fi, _ := f.Stat(ctx, "f")
	if _, ok := fi.Sys().(storage.Identifier); !ok {
		t.Errorf("FileInfo.Sys() is no storage.Identifier")
	}

}

func testLargeFile(t *testing.T, newFS func(t *testing.T) storage.FS) {
	f := newFS(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	u, _ := f.Create(ctx, "big", storage.CreateOptions{})
	u.Write(data)
	u.Commit()
	got, _ := get(t, f, "big", 0)
	if got != string(data) {
		t.Fatal("content differs")
	}

}
