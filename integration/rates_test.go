package integration

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/client"
)

// TestRateLimits: a user's max_rate_down and max_rate_up, timed over a
// 3-second transfer, for one session and shared by three; the server-wide
// max_rate_down for a user without a limit; and a limit changed with
// `ferry user set` on the running server.
func TestRateLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("timed transfers of several seconds")
	}
	wd := t.TempDir()
	usersFile := filepath.Join(wd, "users.toml")
	user := func(args ...string) { t.Helper(); ferryUser(t, usersFile, "pw-"+args[1], args...) }
	user("add", "alice", "--home", "alice", "--max-rate-down", "1MiB", "--max-rate-up", "1MiB")
	user("add", "bob", "--home", "bob")
	data := seeded(5, 6<<20)
	os.WriteFile(filepath.Join(wd, "alice", "three.bin"), data[:3<<20], 0o644)
	os.WriteFile(filepath.Join(wd, "alice", "one.bin"), data[:1<<20], 0o644)
	os.WriteFile(filepath.Join(wd, "bob", "six.bin"), data, 0o644)
	conf := filepath.Join(wd, "ferry.toml")
	os.WriteFile(conf, []byte("max_rate_down = \"2MiB\"\n"), 0o644)
	s := &server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1"))), root: filepath.Join(wd, "root"), wd: wd}
	os.Mkdir(s.root, 0o755)
	s.start("--config", conf, "--users", usersFile)
	defer s.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dial := func(name string) *client.Client {
		c, err := client.Dial(ctx, s.addr, &client.Config{User: name, Password: "pw-" + name, Retries: -1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	get := func(c *client.Client, name string) int64 {
		d, err := c.Retrieve(ctx, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		n, err := io.Copy(io.Discard, d)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	within := func(what string, took, want time.Duration, tol float64) {
		t.Helper()
		lo, hi := time.Duration(float64(want)*(1-tol)), time.Duration(float64(want)*(1+tol))
		if took < lo || took > hi {
			t.Errorf("%s took %v, want %v ± %.0f%%", what, took.Round(time.Millisecond), want, tol*100)
		} else {
			t.Logf("%s took %v (want %v)", what, took.Round(time.Millisecond), want)
		}
	}
	timed := func(f func()) time.Duration {
		start := time.Now()
		f()
		return time.Since(start)
	}

	c := dial("alice")
	within("alice RETR 3 MiB at 1 MiB/s", timed(func() { get(c, "three.bin") }), 3*time.Second, 0.1)
	within("alice STOR 3 MiB at 1 MiB/s", timed(func() {
		if _, err := c.Store(ctx, "up.bin", bytes.NewReader(data[:3<<20]), nil); err != nil {
			t.Fatal(err)
		}
	}), 3*time.Second, 0.1)
	c.Close()
	within("three sessions of alice, 1 MiB each, sharing 1 MiB/s", timed(func() {
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := dial("alice")
				defer c.Close()
				get(c, "one.bin")
			}()
		}
		wg.Wait()
	}), 3*time.Second, 0.1)
	b := dial("bob")
	within("bob RETR 6 MiB at the server's 2 MiB/s", timed(func() { get(b, "six.bin") }), 3*time.Second, 0.1)
	b.Close()

	user("set", "alice", "--max-rate-down", "3MiB")
	c = dial("alice")
	defer c.Close()
	within("alice RETR 3 MiB after set --max-rate-down 3MiB (the server's 2 MiB/s still caps it)", timed(func() { get(c, "three.bin") }), 1500*time.Millisecond, 0.15)
}
