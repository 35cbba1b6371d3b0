package integration

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestPasswordPrompt: with no password anywhere else, ferry asks on the
// terminal, does not echo it, and logs in with it.
func TestPasswordPrompt(t *testing.T) {
	script := need(t, "script")
	root := t.TempDir()
	f := startFerry(t, "127.0.0.1:0", "--user", "u", "--password", "s3cret-pw", "--root", root)
	randFile(t, root, "x.bin", 10)
	work := t.TempDir()
	typescript := filepath.Join(work, "typescript")
	cmd := execCommand(script, "-qfc", "stty cols 120 rows 40; "+ferryBin+" ls ftp://u@"+f.Addr+"/", typescript)
	cmd.Env = []string{"HOME=" + work, "PATH=" + os.Getenv("PATH")}
	stdin, _ := cmd.StdinPipe()
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Type the password once the prompt is up, as a person would: typed
	// earlier, the terminal would echo it before ferry turned echo off.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(typescript)
		if strings.Contains(string(b), "Password for") {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no prompt: %q", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	io.WriteString(stdin, "s3cret-pw\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, outb.String())
	}
	b, _ := os.ReadFile(typescript)
	out := string(b)
	if !strings.Contains(out, "Password for u@127.0.0.1:") || !strings.Contains(out, "x.bin") {
		t.Fatalf("no prompt or no listing:\n%q", out)
	}
	if strings.Contains(out, "s3cret-pw") {
		t.Fatalf("the password was echoed:\n%q", out)
	}
}
