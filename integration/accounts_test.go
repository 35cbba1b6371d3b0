package integration

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/ftptest"
)

// TestAccountRules: allow_from, expires and disabled refuse a login with
// the right password with 530 (the log says why, the defender counts it),
// and `ferry user set` changes them on a running server.
func TestAccountRules(t *testing.T) {
	wd := t.TempDir()
	usersFile := filepath.Join(wd, "users.toml")
	today := time.Now().UTC()
	user := func(args ...string) { t.Helper(); ferryUser(t, usersFile, "pw-"+args[1], args...) }
	user("add", "alice", "--home", "alice", "--allow-from", "127.0.0.2", "--allow-from", "10.0.0.0/8")
	user("add", "bob", "--home", "bob", "--expires", today.AddDate(0, 0, -1).Format(time.DateOnly))
	user("add", "carol", "--home", "carol", "--disabled")
	user("add", "dave", "--home", "dave", "--expires", today.Format(time.DateOnly), "--allow-from", "127.0.0.0/8")
	if _, err := exec.Command(ferryBin, "user", "set", "dave", "--users", usersFile).CombinedOutput(); err == nil {
		t.Error("user set with nothing to change succeeded")
	}
	if out, err := exec.Command(ferryBin, "user", "set", "dave", "--expires", "someday", "--users", usersFile).CombinedOutput(); err == nil || !strings.Contains(string(out), "expires") {
		t.Errorf("user set --expires someday: %v %s", err, out)
	}

	conf := filepath.Join(wd, "ferry.toml")
	os.WriteFile(conf, []byte("login_fail_delay = \"-1ns\"\nmax_login_attempts = 10\n[defender]\nthreshold = 6\nallow = []\n"), 0o644)
	s := &server{t: t, addr: net.JoinHostPort("0.0.0.0", strconv.Itoa(freePort(t, "0.0.0.0"))), root: filepath.Join(wd, "root"), wd: wd}
	os.Mkdir(s.root, 0o755)
	s.start("--config", conf, "--users", usersFile)
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("ferry logs:\n%s", s.logs.String())
		}
	})
	addr := strings.Replace(s.addr, "0.0.0.0", "127.0.0.1", 1)
	login := func(from, name string) int {
		t.Helper()
		c := ftptest.DialFrom(t, addr, from)
		if code, _ := c.Read(); code != 220 {
			return code
		}
		c.Expect("USER "+name, 331)
		code, _ := c.Cmd("PASS pw-" + name)
		if code != 421 { // 421 closes the connection
			c.Cmd("QUIT")
		}
		return code
	}
	for _, tc := range []struct {
		from, name string
		want       int
	}{
		{"127.0.0.2", "alice", 230}, {"127.0.0.1", "alice", 530},
		{"127.0.0.1", "bob", 530}, {"127.0.0.1", "carol", 530},
		{"127.0.0.4", "dave", 230},
	} {
		if got := login(tc.from, tc.name); got != tc.want {
			t.Errorf("%s from %s: %d, want %d", tc.name, tc.from, got, tc.want)
		}
	}
	for _, reason := range []string{"127.0.0.1 is not in allow_from", "the account expired", "the account is disabled"} {
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.logs.String(), reason); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log", reason)
			}
		}
	}

	// Changed on the running server: carol enabled, dave disabled.
	user("set", "carol", "--disabled=false")
	user("set", "dave", "--disabled")
	if got := login("127.0.0.5", "carol"); got != 230 {
		t.Errorf("carol after --disabled=false: %d", got)
	}
	if got := login("127.0.0.5", "dave"); got != 530 {
		t.Errorf("dave after --disabled: %d", got)
	}
	// The refusals count as failed logins: 127.0.0.1 has 3; the sixth bans.
	for range 2 {
		if got := login("127.0.0.1", "bob"); got != 530 {
			t.Fatalf("bob: %d", got)
		}
	}
	if got := login("127.0.0.1", "bob"); got != 421 {
		t.Errorf("the sixth refused login from 127.0.0.1: %d, want 421 (banned)", got)
	}
	// The banned address is closed on connecting, without a greeting.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if strings.HasPrefix(line, "220") {
		t.Errorf("the banned address was greeted: %q", line)
	}
}
