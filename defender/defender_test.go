package defender

import (
	"bytes"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestBansGrowAndExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		d := New(Config{Threshold: 3, BanTime: time.Minute, MaxBanTime: 3 * time.Minute,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		ip := netip.MustParseAddr("203.0.113.7")
		other := netip.MustParseAddr("203.0.113.8")
		for i := 0; i < 2; i++ {
			if d.Record(ip, LoginFailed) {
				t.Fatalf("banned after %d failures", i+1)
			}
		}
		if !d.Record(ip, LoginFailed) {
			t.Fatal("not banned at the threshold")
		}
		if _, b := d.Banned(ip); !b {
			t.Fatal("Banned says no")
		}
		if _, b := d.Banned(other); b {
			t.Fatal("a neighbour is banned too")
		}
		time.Sleep(time.Minute - time.Second)
		if _, b := d.Banned(ip); !b {
			t.Fatal("the first ban ended early")
		}
		time.Sleep(2 * time.Second)
		if _, b := d.Banned(ip); b {
			t.Fatal("the first ban outlasted BanTime")
		}
		// Second ban: twice as long; third: capped at MaxBanTime.
		for _, want := range []time.Duration{2 * time.Minute, 3 * time.Minute, 3 * time.Minute} {
			d.Record(ip, LoginFailed)
			d.Record(ip, LoginFailed)
			d.Record(ip, LoginFailed)
			until, b := d.Banned(ip)
			if !b || time.Until(until) != want {
				t.Fatalf("ban until %v (banned %v), want %v from now", time.Until(until), b, want)
			}
			time.Sleep(want)
		}
		// fail2ban: one line per ban with the address.
		re := regexp.MustCompile(`level=WARN msg="defender ban" ip=203\.0\.113\.7 `)
		if n := len(re.FindAllString(logs.String(), -1)); n != 4 {
			t.Fatalf("%d ban lines, want 4:\n%s", n, logs.String())
		}
	})
}

func TestScoresAndWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := New(Config{Threshold: 5, Window: time.Minute, Logger: slog.New(slog.DiscardHandler)})
		ip := netip.MustParseAddr("198.51.100.1")
		// An HTTP request counts 5: banned at once.
		if !d.Record(ip, CrossProtocol) {
			t.Fatal("a cross-protocol request did not ban at threshold 5")
		}
		ip2 := netip.MustParseAddr("198.51.100.2")
		for i := 0; i < 4; i++ {
			d.Record(ip2, ProtocolError)
		}
		time.Sleep(time.Minute + time.Second) // the window ends: start again
		for i := 0; i < 4; i++ {
			if d.Record(ip2, ProtocolError) {
				t.Fatal("the score outlived its window")
			}
		}
		if !d.Record(ip2, Timeout) {
			t.Fatal("4 + 2 in one window did not ban")
		}
	})
}

func TestAllowListAndIPv6Networks(t *testing.T) {
	d := New(Config{Threshold: 1, AllowList: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		Logger: slog.New(slog.DiscardHandler)})
	for _, s := range []string{"10.1.2.3", "::ffff:10.1.2.3", "::1"} {
		ip := netip.MustParseAddr(s)
		for i := 0; i < 100; i++ {
			if d.Record(ip, CrossProtocol) {
				t.Fatalf("allow-listed %s banned", s)
			}
		}
	}
	if d.Len() != 0 {
		t.Fatalf("allow-listed addresses tracked: %d", d.Len())
	}
	// One /64 is one host: a ban covers its neighbours, not the next /64.
	d.Record(netip.MustParseAddr("2001:db8:1:2::5"), LoginFailed)
	if _, b := d.Banned(netip.MustParseAddr("2001:db8:1:2:ffff::1")); !b {
		t.Fatal("the /64 of a banned IPv6 address is not banned")
	}
	if _, b := d.Banned(netip.MustParseAddr("2001:db8:1:3::5")); b {
		t.Fatal("another /64 is banned")
	}
	// A v4-mapped address is the same host as the IPv4 one.
	d.Record(netip.MustParseAddr("::ffff:192.0.2.9"), LoginFailed)
	if _, b := d.Banned(netip.MustParseAddr("192.0.2.9")); !b {
		t.Fatal("v4-mapped and plain IPv4 are scored apart")
	}
	var nilD *Memory
	if nilD.Record(netip.MustParseAddr("192.0.2.1"), CrossProtocol) {
		t.Fatal("a nil defender banned")
	}
}

func TestMaxHostsBoundsMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := New(Config{Threshold: 2, MaxHosts: 100, Window: time.Minute, Logger: slog.New(slog.DiscardHandler)})
		for i := 0; i < 1000; i++ {
			d.Record(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), ProtocolError)
		}
		if d.Len() != 100 {
			t.Fatalf("%d hosts tracked, want the bound 100", d.Len())
		}
		time.Sleep(2 * time.Minute) // their windows end: room again
		if d.Record(netip.MustParseAddr("198.51.100.9"), ProtocolError); d.Len() != 1 {
			t.Fatalf("%d hosts after the sweep, want 1", d.Len())
		}
	})
}

func TestBanLineIsOneLine(t *testing.T) {
	var logs bytes.Buffer
	d := New(Config{Threshold: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	d.Record(netip.MustParseAddr("2001:db8::1"), CrossProtocol)
	if strings.Count(logs.String(), "\n") != 1 || !strings.Contains(logs.String(), "ip=2001:db8::1 network=2001:db8::/64") {
		t.Fatalf("ban line: %q", logs.String())
	}
}

// TestLoopbackAllowedByDefault: with no allow-list the loopback networks
// are never scored (an administrator testing on the server itself cannot
// lock itself out); an empty list scores them like any other address.
func TestLoopbackAllowedByDefault(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	d := New(Config{Threshold: 1, Logger: quiet})
	for _, s := range []string{"127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"} {
		if d.Record(netip.MustParseAddr(s), CrossProtocol) {
			t.Errorf("loopback %s banned under the default allow-list", s)
		}
	}
	if !d.Record(netip.MustParseAddr("192.0.2.1"), CrossProtocol) {
		t.Error("a non-loopback address was not banned")
	}
	scoreAll := New(Config{Threshold: 1, Logger: quiet, AllowList: []netip.Prefix{}})
	if !scoreAll.Record(netip.MustParseAddr("127.0.0.1"), CrossProtocol) {
		t.Error("an empty allow-list spared loopback")
	}
}

// TestOnBanAndConfigure: OnBan hears each ban once as it begins, Bans
// counts the networks banned now, and Configure changes the threshold of
// a running defender without forgetting its bans.
func TestOnBanAndConfigure(t *testing.T) {
	var got []string
	cfg := Config{Threshold: 2, AllowList: []netip.Prefix{}}
	cfg.OnBan = func(n netip.Prefix, until time.Time, reason Event) {
		got = append(got, n.String()+" "+reason.String())
		if time.Until(until) < 14*time.Minute {
			t.Errorf("ban until %v", until)
		}
	}
	d := New(cfg)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	d.Record(a, LoginFailed)
	d.Record(a, LoginFailed) // bans
	d.Record(a, LoginFailed) // already banned: no second OnBan
	if len(got) != 1 || got[0] != "192.0.2.1/32 "+LoginFailed.String() || d.Bans() != 1 {
		t.Fatalf("OnBan %v, %d bans", got, d.Bans())
	}
	cfg.Threshold = 5
	d.Configure(cfg)
	for range 4 {
		if d.Record(b, LoginFailed) {
			t.Fatal("banned below the new threshold")
		}
	}
	if !d.Record(b, LoginFailed) || d.Bans() != 2 {
		t.Fatalf("the fifth failure with threshold 5: %d bans", d.Bans())
	}
	if _, banned := d.Banned(a); !banned {
		t.Fatal("Configure forgot a ban")
	}
}

// TestList: the scored and banned networks, by network, with their
// scores, ban counts and ends; lifted and forgotten ones are gone.
func TestList(t *testing.T) {
	d := New(Config{Threshold: 3, AllowList: []netip.Prefix{}})
	a, b := netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("192.0.2.1")
	for range 3 {
		d.Record(a, LoginFailed)
	}
	d.Record(b, LoginFailed)
	es := d.List()
	now := time.Now()
	if len(es) != 2 || es[0].Network.Addr() != b || es[0].Score != 1 || es[0].Banned(now) ||
		es[1].Network.Addr() != a || !es[1].Banned(now) || es[1].Bans != 1 {
		t.Fatalf("List: %+v", es)
	}
	d.Unban(a)
	if es := d.List(); len(es) != 1 || es[0].Network.Addr() != b {
		t.Fatalf("after Unban: %+v", es)
	}
	if (*Memory)(nil).List() != nil {
		t.Error("a nil defender lists")
	}
}
