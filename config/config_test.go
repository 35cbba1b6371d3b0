package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/server"
)

func TestLoadApply(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(f, []byte(`
listen = ["127.0.0.1:2121", "[::1]:2121"]
passive_ports = "50000-50010"
public_host = "192.0.2.1"
idle_timeout = "5m"
passive_keep = "-1s"
max_sessions_per_ip = 4
[[public_host_network]]
network = "10.0.0.0/8"
host = "10.0.0.5"
`), 0o644)
	c, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	var s server.Server
	c.Apply(&s)
	if s.PassivePorts != (server.PortRange{Lo: 50000, Hi: 50010}) || s.IdleTimeout != 5*time.Minute || s.PassiveKeep != -time.Second || s.MaxSessionsPerIP != 4 ||
		s.PublicHost.Host != "192.0.2.1" || len(s.PublicHost.Networks) != 1 || s.PublicHost.Networks[0].Host != "10.0.0.5" {
		t.Fatalf("%+v %v %v", s.PassivePorts, s.IdleTimeout, s.PublicHost)
	}
	if c.RootDir() != filepath.Join("ferry-data", "files") || len(c.Listen) != 2 {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []string{`idle_timeout = "soon"`, `passive_ports = "5-1"`, `log_level = "loud"`, `nope = 1`, `[[public_host_network]]` + "\nnetwork='x'\nhost='y'", `listen = []`,
		`tls = "maybe"`, `tls = "off"` + "\nimplicit_listen = [':990']", `tls_cert = "c.pem"`, "[[listener]]\naddress=':21'\ntls='strict'",
		"[[listener]]\ntls='required'", "tls = 'off'\n[[listener]]\naddress=':990'\nimplicit=true"} {
		os.WriteFile(f, []byte(bad), 0o644)
		if _, err := Load(f); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestListeners(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(f, []byte("tls = 'optional'\ntls_session_reuse = false\n[[listener]]\naddress = ':2222'\ntls = 'required-data'\n[[listener]]\naddress = ':990'\nimplicit = true\n"), 0o644)
	c, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 2 || *c.Listeners[0].Options().TLSPolicy != server.TLSRequiredData || !c.Listeners[1].Options().ImplicitTLS || c.Listeners[1].Options().TLSPolicy != nil {
		t.Fatalf("listeners %+v", c.Listeners)
	}
	var s server.Server
	c.Apply(&s)
	if !s.NoTLSSessionReuse || s.TLSPolicy != server.TLSOptional {
		t.Fatalf("applied: NoTLSSessionReuse %v, TLSPolicy %v", s.NoTLSSessionReuse, s.TLSPolicy)
	}
}

func TestDefenderAndLimits(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(f, []byte(`
login_timeout = "20s"
command_timeout = "10s"
max_unauthenticated = 500
max_unauthenticated_per_ip = 8
max_sessions_per_user = 3
max_bad_commands = 2
transfer_threads = -1
[defender]
threshold = 3
ban_time = "1h"
allow = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
`), 0o644)
	c, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	var s server.Server
	c.Apply(&s)
	if s.LoginTimeout != 20*time.Second || s.CommandTimeout != 10*time.Second || s.MaxUnauthenticated != 500 ||
		s.MaxUnauthenticatedPerIP != 8 || s.MaxSessionsPerUser != 3 || s.MaxBadCommands != 2 || s.Defender == nil || s.TransferThreads != -1 {
		t.Fatalf("%v %v %d %d %d %d", s.LoginTimeout, s.CommandTimeout, s.MaxUnauthenticated, s.MaxUnauthenticatedPerIP, s.MaxSessionsPerUser, s.MaxBadCommands)
	}
	// The allow-list and threshold reach the defender.
	for i := 0; i < 5; i++ {
		s.Defender.Record(netip.MustParseAddr("192.0.2.7"), defender.LoginFailed)
		s.Defender.Record(netip.MustParseAddr("10.9.9.9"), defender.LoginFailed)
	}
	s.Defender.Record(netip.MustParseAddr("192.0.2.8"), defender.LoginFailed)
	s.Defender.Record(netip.MustParseAddr("192.0.2.8"), defender.LoginFailed)
	if !s.Defender.Record(netip.MustParseAddr("192.0.2.8"), defender.LoginFailed) {
		t.Fatal("threshold 3 did not ban")
	}
	if _, b := s.Defender.Banned(netip.MustParseAddr("192.0.2.7")); b {
		t.Fatal("allow-listed address banned")
	}
	// On by default; off when told.
	var d server.Server
	dc := Default()
	dc.Apply(&d)
	if d.Defender == nil {
		t.Fatal("the default has no defender")
	}
	os.WriteFile(f, []byte("[defender]\nenabled = false\n"), 0o644)
	c, _ = Load(f)
	var off server.Server
	c.Apply(&off)
	if off.Defender != nil {
		t.Fatal("enabled = false left a defender")
	}
	for _, bad := range []string{"[defender]\nallow = ['nonsense']", "max_login_attempts = -1", "log_level = 'loud'", "[defender]\nipv6_prefix = 129"} {
		os.WriteFile(f, []byte(bad), 0o644)
		if _, err := Load(f); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestDefenderLoopback: the default allow-list spares loopback; `allow =
// []` removes it, so loopback is scored and banned.
func TestDefenderLoopback(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.toml")
	for _, tc := range []struct {
		file   string
		banned bool
	}{{"[defender]\nthreshold = 1\n", false}, {"[defender]\nthreshold = 1\nallow = []\n", true}} {
		os.WriteFile(f, []byte(tc.file), 0o644)
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		var s server.Server
		c.Apply(&s)
		if got := s.Defender.Record(netip.MustParseAddr("127.0.0.1"), defender.CrossProtocol); got != tc.banned {
			t.Errorf("%q: loopback banned %v, want %v", tc.file, got, tc.banned)
		}
	}
}
