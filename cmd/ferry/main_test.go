package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
)

var bin string

func TestMain(m *testing.M) {
	dir, _ := os.MkdirTemp("", "ferry-cmd")
	bin = filepath.Join(dir, "ferry")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ferryCmd runs ferry to completion in dir with env added.
func ferryCmd(t *testing.T, dir string, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return ferryCmdEnv(t, dir, append(os.Environ(), env...), stdin, args...)
}

// ferryCmdEnv runs ferry with exactly the environment env.
func ferryCmdEnv(t *testing.T, dir string, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("ferry %v did not exit", args)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

func TestServeErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("listen = [\":2121\"\nnope"), 0o644)
	unknown := filepath.Join(dir, "unknown.toml")
	os.WriteFile(unknown, []byte("lisen = [\":2121\"]\n"), 0o644)
	noRead := filepath.Join(dir, "noread")
	os.Mkdir(noRead, 0o000)
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o755)
	os.Chmod(open, 0o777)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--listen", ln.Addr().String()}, "address already in use"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--root", filepath.Join(dir, "missing")}, "root"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--config", bad}, "config"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--config", unknown}, "unknown key"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--passive-ports", "9-2"}, "passive ports"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--users", filepath.Join(dir, "none.toml")}, "does not exist"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--user", "x"}, "FERRY_PASSWORD"},
		{[]string{"serve", "--listen", "nonsense"}, "listen"},
		{[]string{"bogus"}, "unknown command"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--root", open}, "writable by every local user"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--run-as", "no-such-user-here"}, "no such user"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--run-as", "root"}, "that is root"},
	} {
		_, stderr, code := ferryCmd(t, dir, nil, "", tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code == 0 || !strings.Contains(stderr, tc.want) || (tc.args[0] == "serve" && len(lines) != 1) {
			t.Errorf("ferry %v: exit %d, stderr %q (want one line with %q)", tc.args, code, stderr, tc.want)
		}
	}
	// --allow-world-writable serves it anyway.
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--root", open, "--anonymous", "--allow-world-writable")
	cmd.Dir = dir
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var first string
	for sc := bufio.NewScanner(out); sc.Scan(); {
		if first = sc.Text(); strings.Contains(first, "listening on") {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if !strings.Contains(first, "listening on") {
		t.Errorf("--allow-world-writable did not start: %q", first)
	}
	if os.Getuid() != 0 {
		_, stderr, code := ferryCmd(t, dir, nil, "", "serve", "--listen", "127.0.0.1:0", "--run-as", "nobody")
		if code == 0 || !strings.Contains(stderr, "only a server started as root") {
			t.Errorf("--run-as without root: %d %q", code, stderr)
		}
	}
	if os.Getuid() != 0 { // root reads anything
		_, stderr, code := ferryCmd(t, dir, nil, "", "serve", "--listen", "127.0.0.1:0", "--root", noRead)
		if code == 0 || !strings.Contains(stderr, "not readable") {
			t.Errorf("unreadable root: %d %q", code, stderr)
		}
	}
}

func TestUserCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := filepath.Join(dir, "users.toml")
	env := []string{"FERRY_PASSWORD=first-pass"}
	if _, stderr, code := ferryCmd(t, dir, env, "", "user", "add", "alice", "--home", "alice", "--users", users); code != 0 {
		t.Fatal(stderr)
	}
	if _, _, code := ferryCmd(t, dir, env, "", "user", "add", "alice", "--home", "alice", "--users", users); code == 0 {
		t.Fatal("duplicate user added")
	}
	// Password from standard input when it is not a terminal.
	if _, stderr, code := ferryCmd(t, dir, nil, "bob-pass\n", "user", "add", "bob", "--home", "pub", "--read-only", "--users", users); code != 0 {
		t.Fatal(stderr)
	}
	out, _, _ := ferryCmd(t, dir, nil, "", "user", "list", "--users", users)
	if out != "alice\tread-write\talice\nbob\tread-only\tpub\n" {
		t.Fatalf("list: %q", out)
	}
	if _, stderr, code := ferryCmd(t, dir, nil, "", "user", "set", "bob", "--max-rate-down", "1MiB", "--expires", "2099-01-01", "--users", users); code != 0 {
		t.Fatal(stderr)
	}
	if _, _, code := ferryCmd(t, dir, nil, "", "user", "set", "bob", "--max-rate-up", "lots", "--users", users); code == 0 {
		t.Fatal("a bad rate accepted")
	}
	out, _, _ = ferryCmd(t, dir, nil, "", "user", "list", "--users", users)
	if out != "alice\tread-write\talice\nbob\tread-only\tpub\trate up -/s down 1MiB/s; expires 2099-01-01\n" {
		t.Fatalf("list after set: %q", out)
	}
	data, _ := os.ReadFile(users)
	if bytes.Contains(data, []byte("first-pass")) || bytes.Contains(data, []byte("bob-pass")) {
		t.Fatal("password stored in clear")
	}
	if fi, _ := os.Stat(users); fi.Mode().Perm() != 0o600 {
		t.Errorf("users file mode %v", fi.Mode())
	}
	if _, stderr, code := ferryCmd(t, dir, []string{"FERRY_PASSWORD=second-pass"}, "", "user", "passwd", "alice", "--users", users); code != 0 {
		t.Fatal(stderr)
	}
	// Serve the file and log in with the new passwords.
	addr, stop := startServe(t, dir, nil, "--listen", "127.0.0.1:0", "--users", users)
	defer stop()
	c := dialLogin(t, addr, "alice", "second-pass")
	if err := c.MakeDir("made"); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if _, err := os.Stat(filepath.Join(dir, "alice", "made")); err != nil {
		t.Fatal("alice's home is not dir/alice:", err)
	}
	c = dialLogin(t, addr, "bob", "bob-pass")
	if err := c.MakeDir("x"); err == nil {
		t.Fatal("read-only user made a directory")
	}
	c.Quit()
	if _, err := loginErr(addr, "alice", "first-pass"); err == nil {
		t.Fatal("old password still works")
	}
	// Deleting takes effect on the running server.
	if _, stderr, code := ferryCmd(t, dir, nil, "", "user", "del", "bob", "--users", users); code != 0 {
		t.Fatal(stderr)
	}
	if _, err := loginErr(addr, "bob", "bob-pass"); err == nil {
		t.Fatal("deleted user logged in")
	}
}

func TestQuickStartAndAnonymous(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := filepath.Join(dir, "pub")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "readme"), []byte("hi"), 0o644)
	addr, stop := startServe(t, dir, []string{"FERRY_PASSWORD=quick"}, "--listen", "127.0.0.1:0", "--root", root, "--user", "q", "--anonymous")
	defer stop()
	c := dialLogin(t, addr, "q", "quick")
	if err := c.MakeDir("newdir"); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	a := dialLogin(t, addr, "anonymous", "me@example.com")
	r, err := a.Retr("readme")
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := a.MakeDir("x"); err == nil {
		t.Fatal("anonymous wrote")
	}
	a.Quit()
	if _, err := os.Stat(filepath.Join(dir, "ferry-data", "users.toml")); err == nil {
		t.Error("quick start created a users file")
	}
}

// startServe runs ferry serve and returns its address and a stop function
// that sends SIGTERM and waits for a clean exit.
func startServe(t *testing.T, dir string, env []string, args ...string) (string, func()) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stdout, _ := cmd.StdoutPipe()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	addr := ""
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			addr = a
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if addr == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no address: %s", errb.String())
	}
	return addr, func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("ferry serve exit: %v\n%s", err, errb.String())
		}
		if strings.Contains(errb.String(), "quick") || strings.Contains(errb.String(), "second-pass") {
			t.Error("a password reached the log")
		}
	}
}

func loginErr(addr, user, pass string) (*jftp.ServerConn, error) {
	c, err := jftp.Dial(addr, jftp.DialWithTimeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, pass); err != nil {
		c.Quit()
		return nil, err
	}
	return c, nil
}

func dialLogin(t *testing.T, addr, user, pass string) *jftp.ServerConn {
	t.Helper()
	c, err := loginErr(addr, user, pass)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// TestClientFlagSets: each client command takes its own flags (beside the
// connection flags): another command's flag is a usage error (exit 2),
// and `ferry help CMD` and `ferry CMD --help` show the command's flags.
func TestClientFlagSets(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"ls", "--delete", "ftp://127.0.0.1:1/"},
		{"ls", "--verify", "ftp://127.0.0.1:1/"},
		{"mkdir", "-r", "ftp://127.0.0.1:1/x"},
		{"get", "--alg", "MD5", "ftp://127.0.0.1:1/x"},
		{"hash", "--delete", "ftp://127.0.0.1:1/x"},
	} {
		_, stderr, code := ferryCmd(t, dir, nil, "", args...)
		if code != 2 || !strings.Contains(stderr, "not defined") {
			t.Errorf("ferry %v: exit %d, %q; want 2 and an undefined flag", args, code, stderr)
		}
	}
	for _, args := range [][]string{{"help", "mirror"}, {"mirror", "--help"}} {
		stdout, _, code := ferryCmd(t, dir, nil, "", args...)
		if code != 0 || !strings.Contains(stdout, "ferry mirror SRC DST") || !strings.Contains(stdout, "-delete") || strings.Contains(stdout, "-alg") {
			t.Errorf("ferry %v: exit %d\n%s", args, code, stdout)
		}
	}
}

// TestServePrintConfig: flags override the file named by --config
// wherever --config stands, and --print-config prints TOML that --config
// reads back to the same configuration.
func TestServePrintConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "in.toml")
	os.WriteFile(conf, []byte("max_hashes = 2\nwelcome = \"from the file\"\n"), 0o644)
	out, errOut, code := ferryCmd(t, dir, nil, "", "serve", "--max-hashes", "7", "--config", conf, "--print-config")
	if code != 0 || !strings.Contains(out, "max_hashes = 7") || !strings.Contains(out, `welcome = "from the file"`) {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	printed := filepath.Join(dir, "printed.toml")
	os.WriteFile(printed, []byte(out), 0o644)
	again, errOut, code := ferryCmd(t, dir, nil, "", "serve", "--config", printed, "--print-config")
	if code != 0 || again != out {
		t.Fatalf("the printed configuration did not read back as itself (exit %d, %s):\n%s\n---\n%s", code, errOut, out, again)
	}
}
