package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProgressBar: on a terminal (a pseudo-terminal from script(1), with a
// width) ferry get draws a progress bar and no summary line; off a
// terminal it prints the summary line only.
func TestProgressBar(t *testing.T) {
	script := need(t, "script")
	root := t.TempDir()
	f := startFerry(t, "127.0.0.1:0", "--user", "u", "--password", "pw", "--root", root)
	randFile(t, root, "big.bin", 16<<20)
	work := t.TempDir()
	url := "ftp://u:pw@" + f.Addr + "/big.bin"
	typescript := filepath.Join(work, "typescript")
	run(t, script, "-qc", "stty cols 120 rows 40; "+ferryBin+" get "+url+" "+filepath.Join(work, "a.bin"), typescript)
	b, err := os.ReadFile(typescript)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if !strings.Contains(out, "16.0 MiB / 16.0 MiB") || !strings.Contains(out, "done") || strings.Contains(out, "op=get") {
		t.Fatalf("terminal output has no finished bar, or a summary line:\n%q", out)
	}
	out = run(t, ferryBin, "get", url, filepath.Join(work, "b.bin"))
	if !strings.HasPrefix(out, "op=get bytes=16777216 ") || strings.Contains(out, "MiB") {
		t.Fatalf("output off a terminal: %q", out)
	}
}
