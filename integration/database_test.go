package integration

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/admin/api"
	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/internal/pgtest"
)

// TestDatabaseUsers: three nodes on one PostgreSQL. A user added with
// `ferry user add --database` logs in through every node within a
// second; disabled (and at the end deleted), refused everywhere within a
// second; a users file
// imported with `ferry user import` logs in too; three uploads at once on
// three nodes hold one user's quota exactly; max_sessions_per_user counts
// the sessions of every node; 30 wrong passwords
// spread over the nodes ban the address on all of them.
func TestDatabaseUsers(t *testing.T) {
	pg := pgtest.Start(t, "127.0.0.20")
	root := t.TempDir()
	conf := filepath.Join(t.TempDir(), "ferry.toml")
	os.WriteFile(conf, []byte("login_fail_delay = \"-1s\"\nmax_login_attempts = 100\nmax_sessions_per_user = 3\n[defender]\nallow = []\nthreshold = 30\n"), 0o644)
	var nodes []*server
	for i := range 3 {
		host := nodeHost(i)
		s := &server{t: t, addr: net.JoinHostPort(host, strconv.Itoa(freePort(t, host))), root: root, wd: t.TempDir()}
		s.start("--config", conf, "--database", pg.URL)
		defer s.stop()
		nodes = append(nodes, s)
	}
	userCmd := func(pass string, args ...string) string {
		t.Helper()
		cmd := exec.Command(ferryBin, append(append([]string{"user"}, args...), "--database", pg.URL)...)
		cmd.Env = append(os.Environ(), "FERRY_PASSWORD="+pass)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ferry user %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	ctx := context.Background()
	// dial opens a session of user on n. The test's own earlier logins
	// end on the servers a moment after their clients leave, and
	// max_sessions_per_user counts them until then: a session refused
	// for them (421) is asked again, for a second.
	dial := func(n *server, user, pass string) (*client.Client, error) {
		for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			c, err := client.Dial(ctx, n.addr, &client.Config{User: user, Password: pass, Retries: -1, MaxConns: 1})
			if err == nil || !strings.Contains(err.Error(), "421") || time.Since(start) > time.Second {
				return c, err
			}
		}
	}
	login := func(n *server, user, pass string) error {
		c, err := client.Dial(ctx, n.addr, &client.Config{User: user, Password: pass, Retries: -1, MaxConns: 1})
		if err == nil {
			c.Close()
		}
		return err
	}
	// within waits until ok(node) holds on every node, a second at most.
	within := func(what string, ok func(n *server) bool) {
		t.Helper()
		start := time.Now()
		for i, n := range nodes {
			for !ok(n) {
				if time.Since(start) > time.Second {
					t.Fatalf("%s: not on node %d a second after the change", what, i)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	userCmd("dave-pw", "add", "dave", "--home", root)
	within("dave added", func(n *server) bool { return login(n, "dave", "dave-pw") == nil })
	userCmd("", "set", "dave", "--disabled")
	within("dave disabled", func(n *server) bool {
		err := login(n, "dave", "dave-pw")
		return err != nil && strings.Contains(err.Error(), "530")
	})
	if out := userCmd("", "list"); !strings.Contains(out, "dave") || !strings.Contains(out, "disabled") {
		t.Fatalf("user list --database: %s", out)
	}

	// One user's quota held exactly by three uploads at once on three
	// nodes: 4 MiB each under 10 MiB.
	frankHome := t.TempDir()
	userCmd("frank-pw", "add", "frank", "--home", frankHome, "--quota-bytes", "10MiB")
	within("frank added", func(n *server) bool { return login(n, "frank", "frank-pw") == nil })
	errs := make(chan error, 3)
	for i, n := range nodes {
		go func() {
			c, err := dial(n, "frank", "frank-pw")
			if err == nil {
				_, err = c.Store(ctx, "/f"+strconv.Itoa(i)+".bin", strings.NewReader(strings.Repeat("q", 4<<20)), nil)
				c.Close()
			}
			errs <- err
		}()
	}
	cut := 0
	for range 3 {
		if err := <-errs; err != nil {
			if !strings.Contains(err.Error(), "552") {
				t.Fatalf("an upload failed otherwise than by the quota: %v", err)
			}
			cut++
		}
	}
	var total int64
	ents, _ := os.ReadDir(frankHome)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && !strings.HasPrefix(e.Name(), ".") {
			total += fi.Size()
		}
	}
	// Which uploads finish depends on how they interleave (each holds what
	// it received until it ends): at most two fit, and the usage every
	// node sees is exactly what is stored.
	if cut < 1 || total != int64(3-cut)*4<<20 {
		t.Fatalf("%d uploads cut, %d bytes stored; want at least one cut and 4 MiB for each other", cut, total)
	}
	for i, n := range nodes {
		c, err := client.Dial(ctx, n.addr, &client.Config{User: "frank", Password: "frank-pw", Retries: -1, MaxConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Quote(ctx, "AVBL")
		c.Close()
		if err != nil || r.Code != 213 || strings.TrimSpace(r.Text) != strconv.FormatInt(10<<20-total, 10) {
			t.Fatalf("node %d: AVBL %d %q %v, want %d", i, r.Code, r.Text, err, 10<<20-total)
		}
	}

	file := filepath.Join(t.TempDir(), "users.toml")
	ferryUser(t, file, "erin-pw", "add", "erin", "--home", "erin")
	userCmd("", "import", file)
	within("erin imported", func(n *server) bool { return login(n, "erin", "erin-pw") == nil })
	if _, err := os.Stat(filepath.Join(filepath.Dir(file), "erin")); err != nil {
		t.Fatal(err)
	}

	// max_sessions_per_user = 3 counts the sessions on every node.
	var open []*client.Client
	for i := range 3 {
		c, err := dial(nodes[i], "erin", "erin-pw")
		if err != nil {
			t.Fatalf("session %d of erin: %v", i+1, err)
		}
		open = append(open, c)
	}
	if err := login(nodes[0], "erin", "erin-pw"); err == nil || !strings.Contains(err.Error(), "421") {
		t.Fatalf("a fourth session of erin, on the first node: %v", err)
	}
	open[2].Close()
	within("a session closed", func(n *server) bool { return n != nodes[0] || login(n, "erin", "erin-pw") == nil })
	open[0].Close()
	open[1].Close()

	// 30 wrong passwords from one address, ten on each node: banned on
	// all of them.
	for i := range 30 {
		c, err := client.Dial(ctx, nodes[i%3].addr, &client.Config{User: "erin", Password: "wrong", Retries: -1, MaxConns: 1, DialContext: fromClient})
		if err == nil {
			c.Close()
			t.Fatal("a wrong password logged in")
		}
	}
	within("the address banned", func(n *server) bool {
		_, err := client.Dial(ctx, n.addr, &client.Config{User: "erin", Password: "erin-pw", Retries: -1, MaxConns: 1, DialContext: fromClient})
		return err != nil && strings.Contains(err.Error(), "421")
	})
	if err := login(nodes[0], "erin", "erin-pw"); err != nil {
		t.Fatalf("another address after the ban: %v", err)
	}
	userCmd("", "del", "erin")
	within("erin deleted", func(n *server) bool {
		err := login(n, "erin", "erin-pw")
		return err != nil && strings.Contains(err.Error(), "530")
	})
}

// TestDatabaseAdminAPI: with --database, a user created through one
// node's admin API logs in on another within a second, a change made on
// the second reaches the first, a relative home is refused (every node
// must reach it), and a ban made on one node is listed and lifted from
// another.
func TestDatabaseAdminAPI(t *testing.T) {
	pg := pgtest.Start(t, "127.0.0.23")
	home := t.TempDir()
	wd := t.TempDir()
	admins := filepath.Join(wd, "admins.toml")
	e := &adminEnv{t: t, admins: admins}
	e.ferryAdmin("root-pw", "add", "root")
	tok := strings.TrimSpace(strings.SplitN(e.ferryAdmin("", "token", "create", "root"), "\n", 2)[0])
	conf := filepath.Join(wd, "ferry.toml")
	os.WriteFile(conf, []byte("login_fail_delay = \"-1s\"\n[defender]\nallow = []\nthreshold = 2\n"), 0o644)
	var nodes []*adminEnv
	for i := range 2 {
		host := nodeHost(i)
		adminAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
		s := &server{t: t, addr: net.JoinHostPort(host, strconv.Itoa(freePort(t, host))), root: home, wd: t.TempDir()}
		s.start("--config", conf, "--database", pg.URL, "--admin-listen", adminAddr, "--admins", admins)
		defer s.stop()
		// The API is called from 127.0.0.5: the failed logins of the
		// test's FTP client (127.0.0.1) may ban that address.
		nodes = append(nodes, &adminEnv{t: t, s: s, base: "http://" + adminAddr, ftp: s.addr, token: tok, hc: httpFrom("127.0.0.5")})
	}
	ctx := context.Background()
	within := func(what string, ok func() bool) {
		t.Helper()
		for start := time.Now(); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Since(start) > time.Second {
				t.Fatalf("%s: not a second after the change", what)
			}
		}
	}
	login := func(n *adminEnv) error {
		c, err := client.Dial(ctx, n.ftp, &client.Config{User: "erin", Password: "erin-pw", Retries: -1, MaxConns: 1})
		if err == nil {
			c.Close()
		}
		return err
	}
	if b := nodes[0].want(400, call{method: "POST", path: "/api/v1/users", tok: tok, body: map[string]any{"name": "erin", "password": "erin-pw", "home": "erin"}}); !strings.Contains(errorOf(b), "absolute") {
		t.Errorf("a relative home with --database: %s", b)
	}
	nodes[0].want(201, call{method: "POST", path: "/api/v1/users", tok: tok, body: map[string]any{"name": "erin", "password": "erin-pw", "home": home}})
	within("erin created on node 0, on node 1", func() bool { return login(nodes[1]) == nil })
	nodes[1].want(200, call{method: "PATCH", path: "/api/v1/users/erin", tok: tok, body: map[string]any{"disabled": true}})
	within("erin disabled on node 1, on node 0", func() bool { return login(nodes[0]) != nil })
	var u api.User
	json.Unmarshal(nodes[0].want(200, call{method: "GET", path: "/api/v1/users/erin", tok: tok}), &u)
	if !u.Disabled {
		t.Errorf("node 0 reads erin: %+v", u)
	}
	// Two wrong passwords on node 0 ban 127.0.0.2 for both nodes.
	guess(t, nodes[0].ftp, "127.0.0.2", "erin", 2)
	within("the ban listed by node 1", func() bool {
		var bans []api.Ban
		json.Unmarshal(nodes[1].want(200, call{method: "GET", path: "/api/v1/bans", tok: tok}), &bans)
		return slices.ContainsFunc(bans, func(b api.Ban) bool { return b.Network == "127.0.0.2/32" && b.Banned })
	})
	nodes[1].want(204, call{method: "DELETE", path: "/api/v1/bans/127.0.0.2", tok: tok})
	within("the ban lifted on node 1, on node 0", func() bool {
		code, _ := ftptest.DialFrom(t, nodes[0].ftp, "127.0.0.2").Read()
		return code == 220
	})
}
