package integration

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/internal/s3test"
	"github.com/ferryftp/ferry/storage/localfs"
)

// TestQuotas: a quota reached mid-upload by one session and by two at
// once, on local disk and on S3: cut with 552, nothing partial published,
// the old file intact, the usage exact afterwards and after a restart;
// ALLO and AVBL.
func TestQuotas(t *testing.T) {
	for _, backend := range []string{"disk", "s3"} {
		t.Run(backend, func(t *testing.T) {
			wd := t.TempDir()
			files := newAliceFiles(t, backend, wd)
			s := files.serve("--quota-bytes", "10MiB", "--quota-files", "4")
			defer s.stop()
			usersFile := files.users
			ctx := context.Background()
			dial := func() *client.Client { return files.dial(ctx, s) }
			c := dial()
			old := seeded(6, 2<<20)
			if _, err := c.Store(ctx, "old.bin", bytes.NewReader(old), nil); err != nil {
				t.Fatal(err)
			}
			// One session passes the quota overwriting old.bin: cut with 552.
			_, err := c.Store(ctx, "old.bin", bytes.NewReader(seeded(7, 12<<20)), nil)
			if err == nil || !strings.Contains(err.Error(), "552") {
				t.Fatalf("12 MiB over a 10 MiB quota: %v, want 552", err)
			}
			if got := fetch(t, c, "old.bin"); !bytes.Equal(got, old) {
				t.Fatal("the cut overwrite changed old.bin")
			}
			// Two sessions at once, 5 MiB each, with 8 MiB left: one is cut.
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := dial()
					defer c.Close()
					_, errs[i] = c.Store(ctx, "two-"+strconv.Itoa(i)+".bin", bytes.NewReader(seeded(uint64(10+i), 5<<20)), nil)
				}()
			}
			wg.Wait()
			if (errs[0] == nil) == (errs[1] == nil) {
				t.Fatalf("two 5 MiB uploads with 8 MiB left: %v, %v; want exactly one cut", errs[0], errs[1])
			}
			es, err := c.List(ctx, "/")
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for _, e := range es {
				total += e.Size
			}
			if total != 7<<20 || len(es) != 2 {
				t.Fatalf("stored %d bytes in %d files, want 7 MiB in 2 (nothing partial published): %+v", total, len(es), es)
			}
			if r, _ := c.Quote(ctx, "ALLO 4194304"); r.Code != 552 {
				t.Errorf("ALLO 4 MiB with 3 MiB left: %d", r.Code)
			}
			if r, _ := c.Quote(ctx, "ALLO 1024"); r.Code != 202 {
				t.Errorf("ALLO 1 KiB: %d", r.Code)
			}
			if r, _ := c.Quote(ctx, "AVBL"); r.Code != 213 || strings.TrimSpace(r.Text) != strconv.Itoa(3<<20) {
				t.Errorf("AVBL: %d %q, want 213 %d", r.Code, r.Text, 3<<20)
			}
			// A resume (REST + STOR) from a kept part of 5 MiB is known to
			// pass the 3 MiB left before a byte is sent.
			files.keepPart("late.bin", 5<<20)
			sent, err := c.Store(ctx, "late.bin", bytes.NewReader(seeded(31, 1<<20)), &client.TransferOptions{Offset: 5 << 20})
			if err == nil || !strings.Contains(err.Error(), "552") || sent != 0 {
				t.Errorf("REST 5 MiB + STOR with 3 MiB left: %d bytes sent, %v; want 552 before any", sent, err)
			}
			if err := c.Delete(ctx, "old.bin"); err != nil {
				t.Fatal(err)
			}
			c.Close()
			// The usage survives a restart, and ferry user list shows it.
			s.stop()
			s.start("--users", usersFile)
			out, err := exec.Command(ferryBin, "user", "list", "--users", usersFile).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "quota 5MiB of 10MiB, 1 of 4 files") {
				t.Fatalf("user list: %v %s", err, out)
			}
			c = dial()
			defer c.Close()
			if _, err := c.Store(ctx, "fits.bin", bytes.NewReader(seeded(20, 5<<20)), nil); err != nil {
				t.Fatalf("5 MiB with 5 MiB left after the restart: %v", err)
			}
			if _, err := c.Store(ctx, "one-more.bin", bytes.NewReader([]byte("x")), nil); err == nil || !strings.Contains(err.Error(), "552") {
				t.Fatalf("a byte past the full quota: %v", err)
			}
			// A larger quota set on the running server applies from the
			// next login.
			ferryUser(t, usersFile, "", "set", "alice", "--quota-bytes", "20MiB")
			c2 := dial()
			defer c2.Close()
			if _, err := c2.Store(ctx, "one-more.bin", bytes.NewReader([]byte("x")), nil); err != nil {
				t.Fatalf("a byte after set --quota-bytes 20MiB: %v", err)
			}
		})
	}
}

func fetch(t *testing.T, c *client.Client, p string) []byte {
	t.Helper()
	d, err := c.Retrieve(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// aliceFiles is where alice's files live in the quota tests: her home
// under wd on disk, or the prefix alice/ of a bucket on versitygw (its
// credentials in the environment).
type aliceFiles struct {
	t      *testing.T
	wd     string
	gw     *s3test.Server // nil on disk
	bucket string
	users  string // the users file, once serve made it
}

// serve adds alice, with her quota flags, to a users file in wd and starts
// a server on it.
func (a *aliceFiles) serve(quota ...string) *server {
	a.users = filepath.Join(a.wd, "users.toml")
	ferryUser(a.t, a.users, "pw", append(append([]string{"add", "alice"}, quota...), a.args()...)...)
	s := &server{t: a.t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(a.t, "127.0.0.1"))), root: filepath.Join(a.wd, "root"), wd: a.wd}
	os.Mkdir(s.root, 0o755)
	s.start("--users", a.users)
	return s
}

// dial logs alice in to s.
func (a *aliceFiles) dial(ctx context.Context, s *server) *client.Client {
	c, err := client.Dial(ctx, s.addr, &client.Config{User: "alice", Password: "pw", Retries: -1})
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

func newAliceFiles(t *testing.T, backend, wd string) *aliceFiles {
	a := &aliceFiles{t: t, wd: wd}
	if backend == "s3" {
		a.gw = s3test.Start(t)
		a.gw.SetEnv(t)
		a.bucket = a.gw.Bucket(t)
	}
	return a
}

// args are the flags of ferry user add that put alice's files there.
func (a *aliceFiles) args() []string {
	if a.gw == nil {
		return []string{"--home", "alice"}
	}
	return []string{"--storage", a.gw.URL(a.bucket, "alice", "part_size=5MiB")}
}

// keepPart leaves the kept part of a cut upload of name (n bytes) for a
// resume, as the backend keeps it.
func (a *aliceFiles) keepPart(name string, n int) {
	if a.gw == nil {
		os.WriteFile(filepath.Join(a.wd, "alice", localfs.Prefix+"part."+name), seeded(30, n), 0o644)
		return
	}
	key, ctx := "alice/"+name, context.Background()
	up, err := a.gw.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &a.bucket, Key: &key})
	if err == nil {
		_, err = a.gw.Client().UploadPart(ctx, &s3.UploadPartInput{Bucket: &a.bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(seeded(30, n))})
	}
	if err != nil {
		a.t.Fatal(err)
	}
}

// kept is the bytes of the kept parts of name on the backend.
func (a *aliceFiles) kept(name string) int64 {
	if a.gw != nil {
		return storedParts(a.t, a.gw, a.bucket, "alice/"+name)
	}
	fi, err := os.Stat(filepath.Join(a.wd, "alice", localfs.Prefix+"part."+name))
	if err != nil {
		return 0
	}
	return fi.Size()
}
