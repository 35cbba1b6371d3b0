package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSystemdUnit: contrib/systemd/ferry.service passes systemd-analyze
// verify (where systemd is), and the command line it starts is one ferry
// serve accepts.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../contrib/systemd/ferry.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=/usr/local/bin/ferry (.*)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("no ExecStart of /usr/local/bin/ferry")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "ferry.toml")
	os.WriteFile(conf, []byte("listen = [\"127.0.0.1:0\"]\n"), 0o644)
	args := strings.Fields(strings.NewReplacer("/etc/ferry/ferry.toml", conf, "/var/lib/ferry", dir).Replace(string(m[1])))
	var out, errb bytes.Buffer
	if err := runServe(context.Background(), append(args[1:], "--print-config"), &out, &errb); err != nil || args[0] != "serve" {
		t.Fatalf("%v: %v %s", args, err, errb.String())
	}
	if !strings.Contains(out.String(), `data_dir = "`+dir+`"`) {
		t.Fatalf("the unit's --data-dir is not the data directory:\n%s", out.String())
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze on this machine")
	}
	// verify wants the program to exist: this test's binary stands in.
	self, _ := os.Executable()
	f := filepath.Join(dir, "ferry.service")
	os.WriteFile(f, bytes.ReplaceAll(unit, []byte("/usr/local/bin/ferry"), []byte(self)), 0o644)
	if out, err := exec.Command(analyze, "verify", f).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
