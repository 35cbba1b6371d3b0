package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

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
