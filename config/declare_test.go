package config

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/opts"
	"github.com/ferryftp/ferry/server"
)

// TestEverySettingDeclaredOnce: every server option is a key of the file,
// has documentation (help, docs/CONFIG.md) and, in the top table, a flag;
// zero means its default.
func TestEverySettingDeclaredOnce(t *testing.T) {
	c := Default()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.Flags(fs)
	var o server.Options
	n := 0
	for _, f := range opts.Fields(&o) {
		n++
		if help[f.Key] == "" {
			t.Errorf("%s (%s): no documentation", f.Key, f.Name)
		}
		if !IsTable(f) && fs.Lookup(dashed(f.Key)) == nil {
			t.Errorf("%s: no flag --%s", f.Key, dashed(f.Key))
		}
	}
	if n != reflect.TypeFor[server.Options]().NumField()+1 { // PublicHost holds two
		t.Errorf("%d keys for %d fields of server.Options: a field without a toml tag?", n, reflect.TypeFor[server.Options]().NumField())
	}
	// Settings that drifted before: reachable from the file now.
	f := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(f, []byte("max_glob_matches = 7\nmax_hashes = 2\nmax_sessions = 0\nmax_bad_commands = 0\n"), 0o644)
	got, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxGlobMatches != 7 || got.MaxHashes != 2 || got.MaxSessions != -1 || got.MaxBadCommands != 5 {
		t.Errorf("max_glob_matches %d, max_hashes %d, max_sessions 0 → %d, max_bad_commands 0 → %d",
			got.MaxGlobMatches, got.MaxHashes, got.MaxSessions, got.MaxBadCommands)
	}
}

func dashed(key string) string {
	return string(bytes.ReplaceAll([]byte(key), []byte("_"), []byte("-")))
}

// TestPrintConfigRoundTrip: the effective configuration, written as TOML,
// reads back as itself, with flags over a file included.
func TestPrintConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "in.toml")
	os.WriteFile(file, []byte(`
listen = ["127.0.0.1:2121"]
passive_ports = "50000-50010"
idle_timeout = "5m"
[[public_host_network]]
network = "10.0.0.0/8"
host = "10.0.0.5"
[defender]
threshold = 4
allow = []
[[listener]]
address = ":990"
implicit = true
`), 0o644)
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse([]string{"--listen", "[::1]:21", "--listen", "127.0.0.2:21", "--idle-timeout", "1m", "--tls-session-reuse", "off"}); err != nil {
		t.Fatal(err)
	}
	if len(c.Listen) != 2 || c.Listen[0] != "[::1]:21" || c.IdleTimeout != time.Minute || *c.TLSSessionReuse {
		t.Fatalf("flags over the file: listen %q, idle %v, reuse %v", c.Listen, c.IdleTimeout, *c.TLSSessionReuse)
	}
	eff := c.Effective()
	var buf bytes.Buffer
	if err := eff.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.toml")
	os.WriteFile(out, buf.Bytes(), 0o644)
	back, err := Load(out)
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(back.Effective(), eff) {
		t.Errorf("round trip differs:\nprinted %+v\nread    %+v", eff, back.Effective())
	}
	if eff.Defender.Allow == nil || len(eff.Defender.Allow) != 0 {
		t.Errorf("allow = [] became %q", eff.Defender.Allow)
	}
}

// TestReferenceCurrent: help.go and docs/CONFIG.md are what the doc
// comments of the declarations generate.
func TestReferenceCurrent(t *testing.T) {
	out, err := exec.Command("go", "run", "./gendoc", "-check").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}
