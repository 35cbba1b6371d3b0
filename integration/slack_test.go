package integration

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestTimerSlack: `ferry serve` runs with 1 ms of timer slack (it sets it
// and executes itself again, same PID, still serving), and
// FERRY_TIMER_SLACK=0 leaves the system's.
func TestTimerSlack(t *testing.T) {
	own, err := os.ReadFile("/proc/self/timerslack_ns")
	if err != nil {
		t.Skip("no /proc/self/timerslack_ns: not Linux 4.6 or later")
	}
	slack := func(s *server) string {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/timerslack_ns")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	for _, c := range []struct{ env, want string }{{"", "1000000"}, {"0", strings.TrimSpace(string(own))}} {
		if c.env != "" {
			t.Setenv("FERRY_TIMER_SLACK", c.env)
		}
		wd := t.TempDir()
		s := &server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1"))), root: filepath.Join(wd, "root"), wd: wd}
		os.Mkdir(s.root, 0o755)
		s.start()
		if got := slack(s); got != c.want {
			t.Errorf("FERRY_TIMER_SLACK=%q: the server's timer slack is %s ns, want %s", c.env, got, c.want)
		}
		s.stop()
	}
}
