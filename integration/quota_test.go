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

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/internal/s3test"
)

// TestQuotas: a quota reached mid-upload by one session and by two at
// once, on local disk and on S3: cut with 552, nothing partial published,
// the old file intact, the usage exact afterwards and after a restart;
// ALLO and AVBL.
func TestQuotas(t *testing.T) {
	for _, backend := range []string{"disk", "s3"} {
		t.Run(backend, func(t *testing.T) {
			wd := t.TempDir()
			usersFile := filepath.Join(wd, "users.toml")
			where := []string{"--home", "alice"}
			if backend == "s3" {
				gw := s3test.Start(t)
				gw.SetEnv(t)
				where = []string{"--storage", gw.URL(gw.Bucket(t), "alice", "part_size=5MiB")}
			}
			cmd := exec.Command(ferryBin, append([]string{"user", "add", "alice", "--users", usersFile,
				"--quota-bytes", "10MiB", "--quota-files", "4"}, where...)...)
			cmd.Env = append(os.Environ(), "FERRY_PASSWORD=pw")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("user add: %v\n%s", err, out)
			}
			s := &server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1"))), root: filepath.Join(wd, "root"), wd: wd}
			os.Mkdir(s.root, 0o755)
			s.start("--users", usersFile)
			defer s.stop()
			ctx := context.Background()
			dial := func() *client.Client {
				c, err := client.Dial(ctx, s.addr, &client.Config{User: "alice", Password: "pw", Retries: -1})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
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
