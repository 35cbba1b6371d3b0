package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/localfs"
	"github.com/ferryftp/ferry/storage/memfs"
)

func TestHashesAndTimes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fsys, _ := localfs.New(dir, localfs.Options{})
	srv := ftptest.NewServer(t, ftptest.Options{FS: fsys})
	data := randBytes(100000)
	os.WriteFile(filepath.Join(dir, "f"), data, 0o644)
	c := srv.Dial(t).Login(ftptest.Writer)
	sum := sha256.Sum256(data)
	if got := c.Expect("HASH f", 213); got != fmt.Sprintf("SHA-256 0-100000 %x f", sum) {
		t.Errorf("HASH: %q", got)
	}
	c.Expect("REST 500", 350)
	part := sha256.Sum256(data[500:])
	if got := c.Expect("HASH f", 213); got != fmt.Sprintf("SHA-256 500-100000 %x f", part) {
		t.Errorf("HASH range: %q", got)
	}
	if got := c.Expect("XSHA256 f 10 20", 250); got != hex.EncodeToString(sha256OfRange(data, 10, 20)) {
		t.Errorf("XSHA256 range %q", got)
	}
	if got := c.Expect("XCRC f", 250); got != fmt.Sprintf("%08x", crc32.ChecksumIEEE(data)) {
		t.Errorf("XCRC %q", got)
	}
	c.Expect("HASH missing", 550)
	c.Expect("MFMT 20010203040506 f", 213)
	if got := c.Expect("MDTM f", 213); got != "20010203040506" {
		t.Errorf("MDTM %q", got)
	}
	c.Expect("MFMT 2001 f", 501)
	c.Expect("SITE CHMOD 600 f", 200)
	if fi, _ := os.Stat(filepath.Join(dir, "f")); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	c.Expect("SITE CHMOD 7777 f", 501)
	c.Expect("SITE NOPE", 504)
	if got := c.Expect("AVBL", 213); got == "0" {
		t.Errorf("AVBL %q", got)
	}
	code, text := c.Cmd("STAT f")
	if code != 213 || !strings.Contains(text, " 100000 ") {
		t.Errorf("STAT f: %d %q", code, text)
	}
	c.Expect("CLNT test 1.0", 200)
}

func sha256OfRange(b []byte, s, e int) []byte {
	h := sha256.Sum256(b[s:e])
	return h[:]
}

// TestListingNamesAndGlobs: globs, ls options, names that hold CR or LF on
// disk, and NLST output that works as RETR arguments.
func TestListingNamesAndGlobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, n := range []string{"a.txt", "b.txt", "c.log", "cr\rname", "lf\nname"} {
		os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "x.txt"), []byte("x"), 0o644)
	fsys, _ := localfs.New(dir, localfs.Options{})
	srv := ftptest.NewServer(t, ftptest.Options{FS: fsys})
	c := srv.Dial(t).Login(ftptest.Writer)
	m := modes[0]
	if got := sortedLines(download(t, c, m, "NLST *.txt")); got != "a.txt,b.txt" {
		t.Errorf("NLST glob: %s", got)
	}
	if got := sortedLines(download(t, c, m, "NLST sub/*.txt")); got != "sub/x.txt" {
		t.Errorf("NLST sub glob: %s", got)
	}
	list := string(download(t, c, m, "LIST -la"))
	if !strings.Contains(list, " cr\r\x00name\r\n") {
		t.Errorf("CR name not encoded: %q", list)
	}
	if strings.Contains(list, "lf") {
		t.Errorf("LF name listed: %q", list)
	}
	if n := strings.Count(list, "\r\n"); n != 5 {
		t.Errorf("LIST has %d lines: %q", n, list)
	}
	// NLST of a directory gives names usable as RETR arguments.
	for _, name := range strings.Split(strings.TrimSpace(string(download(t, c, m, "NLST sub"))), "\r\n") {
		if got := string(download(t, c, m, "RETR "+name)); got != "x" {
			t.Errorf("RETR %s: %q", name, got)
		}
	}
	c.Expect("NLST [", 501)
	code, text := c.Cmd("STAT /")
	if code != 213 || !strings.Contains(text, "a.txt") || strings.Contains(text, "lf") {
		t.Errorf("STAT /: %d %q", code, text)
	}
	// 2,000 PASV in a row leave at most one listener open.
	for i := 0; i < 2000; i++ {
		c.Send("PASV")
	}
	for i := 0; i < 2000; i++ {
		if code, _ := c.Read(); code != 227 {
			t.Fatalf("PASV %d: %d", i, code)
		}
	}
	if got := sortedLines(download(t, c, m, "NLST *.log")); got != "c.log" {
		t.Errorf("after PASV flood: %s", got)
	}
}

func sortedLines(b []byte) string {
	lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
	for i := 1; i < len(lines); i++ {
		for j := i; j > 0 && lines[j] < lines[j-1]; j-- {
			lines[j], lines[j-1] = lines[j-1], lines[j]
		}
	}
	return strings.Join(lines, ",")
}

// TestNoEscape: through the server, nothing outside the user's root is
// read, written or listed.
func TestNoEscape(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
	root := t.TempDir()
	os.Symlink(outside, filepath.Join(root, "link"))
	fsys, _ := localfs.New(root, localfs.Options{})
	srv := ftptest.NewServer(t, ftptest.Options{FS: fsys})
	c := srv.Dial(t).Login(ftptest.Writer)
	c.Expect("CWD ../../..", 250)
	if got := c.Expect("PWD", 257); got != `"/" is the current directory.` {
		t.Fatal(got)
	}
	rel, _ := filepath.Rel(root, filepath.Join(outside, "secret"))
	for _, p := range []string{"../../secret", rel, filepath.Join(outside, "secret"), "link/secret", `..\..\secret`} {
		if code, _ := c.Cmd("SIZE " + p); code == 213 {
			t.Errorf("SIZE %s succeeded", p)
		}
		c.Passive()
		if code, _ := c.Cmd("RETR " + p); code == 150 {
			t.Errorf("RETR %s opened", p)
		}
	}
	c.Expect("CWD link", 550)
	// A FIFO put there by someone else is refused, not opened (it would block).
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err == nil {
		c.Passive()
		c.Expect("RETR fifo", 550)
		c.Expect("XCRC fifo", 550)
		c.Expect("HASH fifo", 550)
	}
	c.Expect("MKD link/x", 550)
	if list := string(download(t, c, modes[0], "LIST")); strings.Contains(list, "link") {
		t.Errorf("link out listed: %q", list)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		t.Errorf("outside changed: %v", ents)
	}
}

// panicFS panics in Stat, to check the server recovers per session.
type panicFS struct{ storage.FS }

func (panicFS) Stat(context.Context, string) (fs.FileInfo, error) { panic("boom") }

func TestPanicRecovered(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{FS: panicFS{memfs.New()}})
	c := srv.Dial(t).Login(ftptest.Writer)
	code, text := c.Cmd("SIZE x")
	if code != 421 || strings.Contains(text, "boom") {
		t.Fatalf("%d %q", code, text)
	}
	srv.Dial(t).Login(ftptest.Writer).Expect("NOOP", 200)
}

func TestHostAndRein(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) { s.Hosts = []string{"ftp.example.com"} }})
	c := srv.Dial(t)
	c.Expect("HOST other.example", 504)
	c.Expect("HOST FTP.example.com", 220)
	c.Login(ftptest.Writer)
	c.Expect("HOST ftp.example.com", 503)
	c.Expect("MKD d", 257)
	c.Expect("CWD d", 250)
	c.Expect("REIN", 220)
	c.Expect("PWD", 530)
	c.Login(ftptest.Reader)
	if got := c.Expect("PWD", 257); got != `"/" is the current directory.` {
		t.Fatal(got)
	}
	c.Expect("MKD e", 550)
	c.Expect("HELP", 214)
}

// panicListFS panics while a listing streams, in the transfer goroutine.
type panicListFS struct{ storage.FS }

func (panicListFS) ReadDir(context.Context, string) iter.Seq2[fs.FileInfo, error] {
	return func(func(fs.FileInfo, error) bool) { panic("boom in listing") }
}

func TestTransferPanicRecovered(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{FS: panicListFS{memfs.New()}})
	c := srv.Dial(t).Login(ftptest.Writer)
	d := c.Passive()
	c.Expect("LIST", 150)
	code, text := c.Read()
	if code != 451 || strings.Contains(text, "boom") {
		t.Fatalf("%d %q", code, text)
	}
	ftptest.ReadAll(t, d) // the data connection was closed
	c.Expect("NOOP", 200)
}

// panicUploadFS makes uploads that panic in Write and note their Abort.
type panicUploadFS struct {
	storage.FS
	aborted chan error
}

func (f panicUploadFS) Create(ctx context.Context, name string, o storage.CreateOptions) (storage.Upload, error) {
	up, err := f.FS.Create(ctx, name, o)
	if err != nil {
		return nil, err
	}
	return &panicUpload{Upload: up, aborted: f.aborted}, nil
}

type panicUpload struct {
	storage.Upload
	aborted chan error
}

func (u *panicUpload) Write([]byte) (int, error) { panic("boom in upload") }

func (u *panicUpload) Abort(cause error) error {
	u.aborted <- cause
	return u.Upload.Abort(cause)
}

// TestUploadPanicAborts: an upload whose storage panics is still ended
// (Abort: its temporary file, its part buffers), answered 451 without the
// panic's text, and the session goes on.
func TestUploadPanicAborts(t *testing.T) {
	t.Parallel()
	f := panicUploadFS{FS: memfs.New(), aborted: make(chan error, 1)}
	srv := ftptest.NewServer(t, ftptest.Options{FS: f})
	c := srv.Dial(t).Login(ftptest.Writer)
	d := c.Passive()
	c.Expect("STOR p.bin", 150)
	d.Write([]byte("data"))
	d.Close()
	code, text := c.Read()
	if code != 451 || strings.Contains(text, "boom") {
		t.Fatalf("%d %q", code, text)
	}
	select {
	case cause := <-f.aborted:
		if !strings.Contains(cause.Error(), "panic") {
			t.Fatalf("aborted with %v", cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the panicked upload was never aborted")
	}
	c.Expect("NOOP", 200)
}

// TestGlobBound: a wildcard listing stops at MaxGlobMatches entries.
func TestGlobBound(t *testing.T) {
	t.Parallel()
	fsys := memfs.New()
	srv := ftptest.NewServer(t, ftptest.Options{FS: fsys, Config: func(s *server.Server) { s.MaxGlobMatches = 3 }})
	c := srv.Dial(t).Login(ftptest.Writer)
	for i := 0; i < 6; i++ {
		upload(t, c, modes[0], "STOR", fmt.Sprintf("f%d.txt", i), []byte("x"))
	}
	if n := strings.Count(string(download(t, c, modes[0], "NLST *.txt")), "\r\n"); n != 3 {
		t.Errorf("NLST *.txt gave %d names, want the bound 3", n)
	}
	if n := strings.Count(string(download(t, c, modes[0], "LIST f*")), "\r\n"); n != 3 {
		t.Errorf("LIST f* gave %d lines, want 3", n)
	}
	if n := strings.Count(string(download(t, c, modes[0], "NLST")), "\r\n"); n != 6 {
		t.Errorf("NLST without a pattern gave %d names, want all 6", n)
	}
}
