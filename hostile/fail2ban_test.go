package hostile

import (
	"bufio"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
)

// failregexes reads the failregex lines of the shipped fail2ban filter and
// turns them into Go regular expressions (<HOST> becomes a group).
func failregexes(t *testing.T) []*regexp.Regexp {
	t.Helper()
	f, err := os.Open("../contrib/fail2ban/filter.d/ferry.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var res []*regexp.Regexp
	in := false
	for sc := bufio.NewScanner(f); sc.Scan(); {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "failregex ="):
			in = true
			l = strings.TrimPrefix(l, "failregex =")
		case in && strings.HasPrefix(l, " "):
		default:
			in = false
			continue
		}
		pat := strings.ReplaceAll(strings.TrimSpace(l), "<HOST>", `(?P<host>[0-9A-Fa-f:.]+)`)
		res = append(res, regexp.MustCompile(pat))
	}
	if len(res) != 2 {
		t.Fatalf("%d failregex lines, want 2", len(res))
	}
	return res
}

// TestFail2banFilter: the shipped filter finds the address in the lines a
// real server writes for failed logins (IPv4 and IPv6) and bans.
func TestFail2banFilter(t *testing.T) {
	res := failregexes(t)
	var logs ftptest.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	def := defender.New(defender.Config{Threshold: 2, BanTime: time.Hour, Logger: logger, AllowList: []netip.Prefix{}})
	config := func(s *server.Server) { s.Defender = def }
	v4 := ftptest.NewServer(t, ftptest.Options{Logger: logger, Config: config})
	v6 := ftptest.NewServer(t, ftptest.Options{Logger: logger, Config: config, Network: "tcp6"})
	for _, srv := range []*ftptest.Server{v4, v6} {
		c := srv.Dial(t)
		c.Expect("USER alice", 331)
		c.Expect("PASS wrong", 530)
		c.Expect("USER alice", 331)
		c.Expect("PASS wrong", 421) // the second failure bans
	}
	hosts := map[string]int{}
	for _, line := range strings.Split(logs.String(), "\n") {
		for _, re := range res {
			if m := re.FindStringSubmatch(line); m != nil {
				hosts[m[re.SubexpIndex("host")]]++
			}
		}
	}
	// Two failed logins and one ban line per address.
	if hosts["127.0.0.1"] != 3 || hosts["::1"] != 3 || len(hosts) != 2 {
		t.Fatalf("the filter found %v in:\n%s", hosts, logs.String())
	}
}
