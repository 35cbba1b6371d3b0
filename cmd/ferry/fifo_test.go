//go:build linux || darwin || freebsd

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestGetIntoPipe: ferry get into a named pipe (as into /dev/null)
// writes through it and leaves it a pipe; a .part renamed over it would
// have replaced it with a regular file. --verify there is a usage error.
func TestGetIntoPipe(t *testing.T) {
	root, u := clientServer(t, "tcp4")
	work := t.TempDir()
	data := randomFile(t, filepath.Join(root, "f.bin"), 1<<20+3)
	pipe := filepath.Join(work, "pipe")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + work}
	if out, errOut, code := ferryCmd(t, work, env, "", "get", "--verify", u+"/f.bin", pipe); code != 2 {
		t.Fatalf("get --verify into a pipe: exit %d, want 2\n%s%s", code, out, errOut)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := os.ReadFile(pipe)
		got <- b
	}()
	if out, errOut, code := ferryCmd(t, work, env, "", "get", u+"/f.bin", pipe); code != 0 {
		t.Fatalf("get into a pipe: exit %d\n%s%s", code, out, errOut)
	}
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("through the pipe: %d bytes, want %d", len(b), len(data))
	}
	fi, err := os.Lstat(pipe)
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the pipe is gone or replaced: %v %v", fi.Mode(), err)
	}
	if _, err := os.Stat(pipe + ".part"); !os.IsNotExist(err) {
		t.Fatalf("a .part beside the pipe: %v", err)
	}
}
