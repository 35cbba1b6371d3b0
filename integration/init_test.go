package integration

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// TestInitIsCheap: no package of the binary does real work when it is
// loaded. Every `ferry` command (and the timer-slack re-exec of `ferry
// serve`) pays package init; an argon2id hash made there once cost every
// start 128 ms and 19 MiB. Judged by bytes allocated, not by time.
func TestInitIsCheap(t *testing.T) {
	cmd := exec.Command(ferryBin, "help")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1", "FERRY_TIMER_SLACK=0")
	out, _ := cmd.CombinedOutput() // help's exit code is not the point
	lines := regexp.MustCompile(`(?m)^init (\S+) @\S+ ms, \S+ ms clock, (\d+) bytes`).FindAllSubmatch(out, -1)
	if len(lines) < 10 {
		t.Fatalf("GODEBUG=inittrace=1 printed %d package inits:\n%s", len(lines), out)
	}
	total := 0
	for _, m := range lines {
		n, _ := strconv.Atoi(string(m[2]))
		total += n
		if n > 1<<20 {
			t.Errorf("package %s allocates %d bytes at init (limit 1 MiB)", m[1], n)
		}
	}
	if total > 8<<20 {
		t.Errorf("package inits allocate %d bytes in all (limit 8 MiB)", total)
	}
	t.Logf("%d package inits, %d bytes", len(lines), total)
}
