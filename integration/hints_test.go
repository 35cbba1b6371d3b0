package integration

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConnectHintsPasted: every command `ferry serve` prints on first
// start (curl, lftp, the ferry client) is pasted into a shell on a
// terminal, as a new user would, answered with the printed password at
// its prompt, and lists the file put there — over TLS, the generated
// certificate trusted through its file.
func TestConnectHintsPasted(t *testing.T) {
	need(t, "curl")
	need(t, "lftp")
	script := need(t, "script") // a terminal for the password prompts
	f := startFerry(t, "127.0.0.1:0")
	if len(f.Hints) != 3 {
		t.Fatalf("hints: %q", f.Hints)
	}
	os.WriteFile(filepath.Join(f.Root, "hello.txt"), []byte("hello\n"), 0o644)
	for _, hint := range f.Hints {
		tool, _, _ := strings.Cut(hint, " ")
		tool = filepath.Base(strings.Trim(tool, "'"))
		t.Run(tool, func(t *testing.T) {
			trust := map[string]string{"curl": "--cacert ", "lftp": "set ssl:ca-file ", "ferry": "--ca-file "}[tool]
			if trust == "" || !strings.Contains(hint, trust+f.Data) {
				t.Errorf("%s: does not trust the generated certificate by its file: %s", tool, hint)
			}
			steps := []step{{"assword", f.Password}}
			if tool == "lftp" {
				steps = append(steps, step{"lftp ferry@", "ls"}, step{"hello.txt", "exit"})
			}
			out := paste(t, script, hint, steps)
			if !strings.Contains(out, "hello.txt") {
				t.Fatalf("%s listed no hello.txt:\n%s", hint, out)
			}
		})
	}
}

// step waits for a prompt and answers it with a line.
type step struct{ prompt, answer string }

// paste runs line in sh on a terminal (script(1)) with this build of
// ferry first in PATH, answering each prompt in turn, and returns what the
// terminal showed. It fails when the command fails or takes over 30s.
func paste(t *testing.T, script, line string, steps []step) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-qec", line, "/dev/null")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FERRY_PASSWORD=") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// No ~/.netrc, no lftp rc. (The ferry hint names this build by its
	// path: it is not in PATH.)
	cmd.Env = append(cmd.Env, "TERM=dumb", "HOME="+t.TempDir())
	in, _ := cmd.StdinPipe()
	outp, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder // the whole terminal
	since := 0              // where the output after the last answer starts
	r := bufio.NewReader(outp)
	buf := make([]byte, 4096)
	for _, s := range steps {
		for !strings.Contains(all.String()[since:], s.prompt) {
			n, err := r.Read(buf)
			all.Write(buf[:n])
			if err != nil {
				cmd.Wait()
				t.Fatalf("%s: no prompt %q: %v\n%s", line, s.prompt, err, all.String())
			}
		}
		io.WriteString(in, s.answer+"\n")
		since = all.Len()
	}
	b, _ := io.ReadAll(r)
	all.Write(b)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, all.String())
	}
	return all.String()
}
