package hostile

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/localfs"
	"github.com/ferryftp/ferry/storage/memfs"
)

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// store uploads data as name and returns the final reply code.
func store(t *testing.T, c *ftptest.Conn, name string, data []byte) int {
	t.Helper()
	d := c.Passive()
	c.Send("STOR " + name)
	if code, _ := c.Read(); code != 150 {
		d.Close()
		return code
	}
	d.SetWriteDeadline(time.Now().Add(30 * time.Second))
	d.Write(data) // may fail once the server gives up: the reply tells
	d.Close()
	code, _ := c.Read()
	return code
}

// retrieve downloads name, which must succeed.
func retrieve(t *testing.T, c *ftptest.Conn, name string) []byte {
	t.Helper()
	d := c.Passive()
	c.Expect("RETR "+name, 150)
	data := ftptest.ReadAll(t, d)
	if code, text := c.Read(); code != 226 {
		t.Fatalf("RETR %s: %d %s", name, code, text)
	}
	return data
}

// tryRetrieve downloads name and reports whether it succeeded (226).
func tryRetrieve(c *ftptest.Conn, name string) ([]byte, bool) {
	d := c.Passive()
	c.Send("RETR " + name)
	if code, _ := c.Read(); code != 150 {
		d.Close()
		return nil, false
	}
	d.SetReadDeadline(time.Now().Add(30 * time.Second))
	data, err := io.ReadAll(d)
	d.Close()
	code, _ := c.Read()
	return data, err == nil && code == 226
}

// TestSameNameUploads: clients uploading one name at once end with one
// complete file, never a mix.
func TestSameNameUploads(t *testing.T) {
	w := newWorld(t, nil)
	const clients = 8
	for round := 0; round < 5; round++ {
		datas := make([][]byte, clients)
		for i := range datas {
			datas[i] = randBytes(256<<10 + i*4096)
		}
		var wg sync.WaitGroup
		codes := make([]int, clients)
		for i := 0; i < clients; i++ {
			c := w.Dial(t).Login(ftptest.Writer)
			wg.Go(func() { codes[i] = store(t, c, "same.bin", datas[i]) })
		}
		wg.Wait()
		got, err := os.ReadFile(filepath.Join(w.root, "same.bin"))
		if err != nil {
			t.Fatal(err)
		}
		whole := false
		for i, d := range datas {
			if codes[i] != 226 {
				t.Fatalf("round %d client %d: %d", round, i, codes[i])
			}
			whole = whole || bytes.Equal(got, d)
		}
		if !whole {
			t.Fatalf("round %d: same.bin (%d bytes) is no client's whole upload", round, len(got))
		}
	}
	w.check(t)
}

// TestDiskFull: on a full file system (a 4 MiB tmpfs), uploads get 452,
// the file they would have replaced stays whole, the space comes back,
// and the server goes on serving; through Go's network poller and on a
// thread of its own (splice(2) on a blocking socket past the first MiB).
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root (the injected-error test runs anywhere)")
	}
	for _, threads := range []int{0, -1} {
		t.Run(fmt.Sprint("threads=", threads), func(t *testing.T) { diskFull(t, threads) })
	}
}

func diskFull(t *testing.T, threads int) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		// A container may forbid mounts even to root; TestStorageErrors
		// covers the same path with an injected error.
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	keep := randBytes(200 << 10)
	if err := os.WriteFile(filepath.Join(mnt, "keep"), keep, 0o644); err != nil {
		t.Fatal(err)
	}
	fsys, err := localfs.New(mnt, localfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	srv := ftptest.NewServer(t, ftptest.Options{FS: fsys, Config: func(s *server.Server) { s.TransferThreads = threads }})
	c := srv.Dial(t).Login(ftptest.Writer)
	for _, name := range []string{"big", "keep", "big"} {
		if code := store(t, c, name, randBytes(8<<20)); code != 452 {
			t.Fatalf("STOR %s on a full disk: %d, want 452", name, code)
		}
		if got, _ := os.ReadFile(filepath.Join(mnt, "keep")); !bytes.Equal(got, keep) {
			t.Fatalf("after STOR %s, keep has %d bytes, not its old content", name, len(got))
		}
	}
	ents, _ := os.ReadDir(mnt)
	for _, e := range ents {
		if e.Name() != "keep" {
			t.Errorf("left on the full disk: %s", e.Name())
		}
	}
	// The space is back: a small upload and a download work.
	small := randBytes(100 << 10)
	if code := store(t, c, "small", small); code != 226 {
		t.Fatalf("small upload after the failures: %d", code)
	}
	if got := retrieve(t, c, "keep"); !bytes.Equal(got, keep) {
		t.Fatal("RETR keep")
	}
	c.Expect("QUIT", 221)
}

// faultyFS fails every upload's writes past a limit with err, and blocks
// Stat of "hang" until its context ends.
type faultyFS struct {
	storage.FS
	limit  int
	err    error
	hung   chan struct{} // closed when a Stat of "hang" begins
	hungMu sync.Once
	ended  chan error // the error the hanging Stat returned
}

func (f *faultyFS) Create(ctx context.Context, name string, o storage.CreateOptions) (storage.Upload, error) {
	u, err := f.FS.Create(ctx, name, o)
	if err != nil {
		return nil, err
	}
	return &faultyUpload{Upload: u, left: f.limit, err: f.err}, nil
}

func (f *faultyFS) Stat(ctx context.Context, name string) (os.FileInfo, error) {
	if strings.HasSuffix(name, "hang") {
		f.hungMu.Do(func() { close(f.hung) })
		<-ctx.Done()
		f.ended <- ctx.Err()
		return nil, ctx.Err()
	}
	return f.FS.Stat(ctx, name)
}

type faultyUpload struct {
	storage.Upload
	left int
	err  error
}

func (u *faultyUpload) Write(p []byte) (int, error) {
	if len(p) > u.left {
		n, _ := u.Upload.Write(p[:u.left])
		u.left = 0
		return n, u.err
	}
	u.left -= len(p)
	return u.Upload.Write(p)
}

// TestStorageErrors: an injected ENOSPC or quota error gives 452 or 552
// with the old file whole; on any system, root or not.
func TestStorageErrors(t *testing.T) {
	mem := memfs.New()
	fsys := &faultyFS{FS: mem, limit: 64 << 10, err: storage.ErrNoSpace, hung: make(chan struct{}), ended: make(chan error, 1)}
	srv := ftptest.NewServer(t, ftptest.Options{FS: fsys})
	c := srv.Dial(t).Login(ftptest.Writer)
	fsys.limit = 1 << 30
	old := randBytes(10 << 10)
	if code := store(t, c, "f", old); code != 226 {
		t.Fatal(code)
	}
	fsys.limit = 64 << 10
	if code := store(t, c, "f", randBytes(1<<20)); code != 452 {
		t.Fatalf("ENOSPC: %d, want 452", code)
	}
	fsys.err = storage.ErrQuota
	if code := store(t, c, "f", randBytes(1<<20)); code != 552 {
		t.Fatalf("quota: %d, want 552", code)
	}
	if got := retrieve(t, c, "f"); !bytes.Equal(got, old) {
		t.Fatal("the old file was damaged")
	}
	c.Expect("NOOP", 200)
}

// TestHangingStorageCut: a storage call that hangs ends with its context
// when the client disconnects.
func TestHangingStorageCut(t *testing.T) {
	mem := memfs.New()
	fsys := &faultyFS{FS: mem, limit: 1 << 30, hung: make(chan struct{}), ended: make(chan error, 1)}
	srv := ftptest.NewServer(t, ftptest.Options{FS: fsys})
	c := srv.Dial(t).Login(ftptest.Writer)
	c.Send("SIZE hang")
	select {
	case <-fsys.hung:
	case <-time.After(5 * time.Second):
		t.Fatal("the storage call did not start")
	}
	c.C.Close() // the client goes away
	select {
	case err := <-fsys.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the call ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a hanging storage call outlived its client")
	}
	// ABOR cuts it too: the hanging command fails, ABOR is answered, and
	// the session goes on.
	fsys.hung = make(chan struct{})
	fsys.hungMu = sync.Once{}
	n := srv.Dial(t).Login(ftptest.Writer)
	n.Send("MDTM hang")
	<-fsys.hung
	n.C.Write([]byte("\xff\xf4\xff\xf2ABOR\r\n"))
	if err := <-fsys.ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("ABOR ended the call with %v", err)
	}
	if code, _ := n.Read(); code != 426 {
		t.Fatalf("the aborted command: %d, want 426", code)
	}
	if code, _ := n.Read(); code != 225 && code != 226 {
		t.Fatalf("ABOR: %d", code)
	}
	n.Expect("NOOP", 200)
}
