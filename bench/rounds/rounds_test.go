package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestParseRate reads the rates and CPU figures out of bench/load's reports
// as the rounds read them.
func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		out  string
		want float64
		ok   bool
	}{
		{"small files up: 1000 transfers of 4096 B in 2.052s: 487 files/s (1 clients)\n", 487, true},
		{"RETR: 1073741824 bytes in 581ms: 1849 MB/s; server CPU 471ms: 2278 MB/CPU-s\n", 1849, true},
		{"load: EPSV: 425 EPSV: Address already in use\n", 0, false},
		{"files/s", 0, false},
	} {
		got, ok := parseRate(c.out)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRate(%q) = %v, %v; want %v, %v", c.out, got, ok, c.want, c.ok)
		}
	}
	if v, ok := parseUnit("RETR: 1 bytes in 1s: 1849 MB/s; server CPU 471ms: 2278 MB/CPU-s", "MB/CPU-s"); !ok || v != 2278 {
		t.Errorf("MB/CPU-s: %v, %v", v, ok)
	}
	if v, ok := parseUnit("small files up: 8 transfers of 4096 B in 2ms: 3790 files/s (1 clients); client CPU 212.5 µs/file", "µs/file"); !ok || v != 212.5 {
		t.Errorf("client µs/file: %v, %v", v, ok)
	}
}

// TestRoundsSmoke runs one small round of every workload against Ferry,
// the bare programs and bare-ftpd (the small-file workloads), and against pure-ftpd, ProFTPD and vsftpd when they
// are unpacked under $FERRY_PEERS and this runs as root (required under
// FERRY_INTEROP=1): each server starts with the configuration the rounds
// give it and every workload reports a rate.
func TestRoundsSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ferry and bench/load")
	}
	servers := "ferry,bare,bare-ftpd"
	if os.Getenv("FERRY_PEERS") != "" && os.Geteuid() == 0 {
		servers += ",pure-ftpd,ProFTPD,vsftpd"
	} else if os.Getenv("FERRY_INTEROP") == "1" {
		t.Fatal("required (FERRY_INTEROP=1): $FERRY_PEERS and root, to start the C servers")
	}
	bin := t.TempDir()
	for _, p := range []struct{ out, pkg string }{{"ferry", "../../cmd/ferry"}, {"load", "../load"}, {"rounds", "."}} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, p.out), p.pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", p.pkg, err, out)
		}
	}
	// The C servers drop to an unprivileged user, who must reach their
	// files: open the way down (t.TempDir makes its directories 0700).
	work := t.TempDir()
	for d := work; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "rounds"), "-ferry", filepath.Join(bin, "ferry"),
		"-load", filepath.Join(bin, "load"), "-dir", filepath.Join(work, "rounds"), "-servers", servers,
		"-rounds", "1", "-files", "4", "-big", "1048576", "-v", "-steps",
		// A few hundred logins, not the 20,000 of a real round: their
		// ports would sit in TIME_WAIT while the other packages' tests run.
		"-logins-for", "30ms")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rounds: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, ": exit status") || strings.Contains(line, "not measured") {
			t.Errorf("%s", line)
		}
	}
	for _, s := range strings.Split(servers, ",") {
		for _, w := range workloads() {
			if s == "bare" && w.bare == nil || s == "bare-ftpd" && w.unit != "file" {
				continue
			}
			if !strings.Contains(string(out), "| "+w.name+" | "+s+" | ") {
				t.Errorf("no row for %s on %s", w.name, s)
			}
			if w.unit == "file" && !strings.Contains(string(out), w.name+" "+s+": steps, median/p90 µs: EPSV→229 ") {
				t.Errorf("no steps for %s on %s", w.name, s)
			}
			if w.unit == "file" && !regexp.MustCompile(`\| `+w.name+` \| `+s+` \| [^|]+ files/s \| [0-9]+ µs/file, [0-9]+% kernel \(client [0-9]+ µs; cores [0-9]+% busy; [0-9.]+ switches/file\)`).MatchString(string(out)) {
				t.Errorf("no kernel share, client CPU, busy cores or switches for %s on %s", w.name, s)
			}
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
