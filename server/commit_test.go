package server_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/localfs"
	"github.com/ferryftp/ferry/storage/memfs"
)

// gatedFS holds each upload's Commit until the test opens the gate: a
// slow commit, as an object store's completion of a large upload is.
type gatedFS struct {
	*memfs.FS
	committing chan struct{} // a Commit has begun
	gate       chan struct{} // closed: Commits go on
}

func (f *gatedFS) Create(ctx context.Context, name string, o storage.CreateOptions) (storage.Upload, error) {
	u, err := f.FS.Create(ctx, name, o)
	if err != nil {
		return nil, err
	}
	return gatedUpload{u, f}, nil
}

type gatedUpload struct {
	storage.Upload
	f *gatedFS
}

func (u gatedUpload) Commit() error {
	u.f.committing <- struct{}{}
	<-u.f.gate
	return u.Upload.Commit()
}

// TestCommitOutlivesAbort: an upload whose bytes have all arrived and
// whose commit has begun is published and reported as such (226, result
// ok, so an upload event and not upload_failed) even when an ABOR or the
// end of the control connection comes before the commit ends. lftp gives
// up on a 226 that an object store's completion delays and closes the
// session: the server must not then call the published file a failure.
func TestCommitOutlivesAbort(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"ABOR", "control closed"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			fsys := &gatedFS{FS: memfs.New(), committing: make(chan struct{}, 1), gate: make(chan struct{})}
			results := make(chan string, 1)
			aborted := make(chan struct{}, 2)
			srv := ftptest.NewServer(t, ftptest.Options{FS: fsys, Config: func(s *server.Server) {
				server.SetAbortHook(s, func() { aborted <- struct{}{} })
				s.Hooks.ConnState = func(c *server.Conn, st server.ConnState) {
					if x := c.Transfer(); x != nil && st == server.StateTransferEnd {
						results <- x.Result
					}
				}
			}})
			c := srv.Dial(t).Login(ftptest.Writer)
			data := randBytes(3 << 20)
			d := c.Passive()
			c.Expect("STOR f", 150)
			d.Write(data)
			d.Close()
			wait(t, fsys.committing, 1, "the commit")
			if how == "ABOR" {
				c.Send("ABOR")
			} else {
				c.C.Close()
			}
			wait(t, aborted, 1, "the abort") // before the commit ends
			close(fsys.gate)
			if how == "ABOR" {
				for _, want := range []int{226, 226} {
					if code, text := c.Read(); code != want {
						t.Fatalf("got %d %q, want %d", code, text, want)
					}
				}
				c.Expect("NOOP", 200)
			}
			if r := <-results; r != "ok" {
				t.Errorf("transfer result %q, want ok", r)
			}
			r, err := fsys.Open(context.Background(), "f", 0)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			r.Close()
			if !bytes.Equal(got, data) {
				t.Errorf("stored %d bytes, want %d", len(got), len(data))
			}
		})
	}
}

// TestResumeDuringUpload: on local disk, REST n + STOR of a file that
// another session still uploads is answered 450 (busy) rather than built
// on the old file's first bytes, and the running upload commits whole.
func TestResumeDuringUpload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fsys, err := localfs.New(dir, localfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "f"), []byte("old contents"), 0o644)
	srv := ftptest.NewServer(t, ftptest.Options{FS: fsys})
	a := srv.Dial(t).Login(ftptest.Writer)
	da := a.Passive()
	a.Expect("STOR f", 150) // its upload is created before the 150
	da.Write([]byte("new "))
	b := srv.Dial(t).Login(ftptest.Writer)
	b.Passive()
	b.Expect("REST 4", 350)
	b.Expect("STOR f", 450)
	da.Write([]byte("contents"))
	da.Close()
	if code, text := a.Read(); code != 226 {
		t.Fatalf("the running upload ended %d %q", code, text)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "f")); string(got) != "new contents" {
		t.Fatalf("file holds %q", got)
	}
}
