// Package integration drives the ferry binary with real FTP clients from
// Debian: curl and lftp. A missing client skips its test, or fails it when
// FERRY_INTEROP=1 (as .ci/run sets).
package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/ftptest"
)

var ferryBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-bin")
	if err != nil {
		panic(err)
	}
	ferryBin = filepath.Join(dir, "ferry")
	out, err := exec.Command("go", "build", "-o", ferryBin, "../cmd/ferry").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build ferry: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// need finds a tool, skipping the test (failing under FERRY_INTEROP=1)
// when it is missing.
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		ftptest.Missing(t, "%s not installed: %v", tool, err)
	}
	return p
}

// ferry is a running `ferry serve`.
type ferry struct {
	Addr     string   // host:port
	Implicit string   // host:port of the first implicit-TLS listener, if any
	Others   []string // host:port of listeners with a TLS policy of their own
	FP       string   // SHA-256 fingerprint of its TLS certificate
	URL      string   // ftp://host:port
	User     string
	Password string
	Hints    []string // the connect commands it printed
	Data     string   // data directory
	Root     string   // files directory
	cmd      *exec.Cmd
	stderr   *ftptest.SyncBuffer
}

var (
	listenRE = regexp.MustCompile(`listening on (\S+)`)
	passRE   = regexp.MustCompile(`with password: (\S+)`)
	fpRE     = regexp.MustCompile(`SHA-256 fingerprint (\S+)`)
)

// startFerry runs ferry serve on a free loopback port with args, in a fresh
// working directory, and waits until it prints its address.
func startFerry(t *testing.T, listen string, args ...string) *ferry {
	t.Helper()
	f, err := launchFerry(t, listen, args...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// launchFerry is startFerry returning, rather than failing the test, when
// ferry does not start (its log in the error).
func launchFerry(t *testing.T, listen string, args ...string) (*ferry, error) {
	t.Helper()
	wd := t.TempDir()
	cmd := exec.Command(ferryBin, append([]string{"serve", "--listen", listen}, args...)...)
	cmd.Dir = wd
	cmd.Env = append(os.Environ(), "FERRY_PASSWORD=")
	stdout, _ := cmd.StdoutPipe()
	f := &ferry{cmd: cmd, stderr: &ftptest.SyncBuffer{}, Data: filepath.Join(wd, "ferry-data"), Root: filepath.Join(wd, "ferry-data", "files"), User: "ferry"}
	cmd.Stderr = f.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("ferry log:\n%s", f.stderr)
		}
	})
	sc := bufio.NewScanner(stdout)
	deadline := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		l := sc.Text()
		if m := listenRE.FindStringSubmatch(l); m != nil {
			if strings.HasSuffix(l, "(implicit TLS)") {
				if f.Implicit == "" {
					f.Implicit = m[1]
				}
			} else if strings.Contains(l, "(tls ") {
				f.Others = append(f.Others, m[1])
			} else if f.Addr == "" {
				f.Addr = m[1]
			}
		}
		if m := fpRE.FindStringSubmatch(l); m != nil {
			f.FP = m[1]
		}
		if m := passRE.FindStringSubmatch(l); m != nil {
			f.Password = m[1]
		}
		if strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "  SHA-256") {
			f.Hints = append(f.Hints, strings.TrimPrefix(l, "  "))
		}
		if len(f.Hints) == 3 { // curl, lftp, ferry ls: the last line
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if f.Addr == "" {
		return nil, fmt.Errorf("ferry did not start: %s", f.stderr)
	}
	f.URL = "ftp://" + f.Addr
	return f, nil
}

// ferryUser runs `ferry user ARGS --users usersFile`, the password (for
// add and passwd) from FERRY_PASSWORD, and fails the test on an error.
func ferryUser(t *testing.T, usersFile, pass string, args ...string) {
	t.Helper()
	cmd := exec.Command(ferryBin, append(append([]string{"user"}, args...), "--users", usersFile)...)
	cmd.Env = append(os.Environ(), "FERRY_PASSWORD="+pass)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ferry user %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func randFile(t *testing.T, dir, name string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d expected", path, len(got), len(want))
	}
}

func TestEmbeddedDefault(t *testing.T) {
	f := startFerry(t, "127.0.0.1:0")
	if f.Password == "" {
		t.Fatal("no password printed on first start")
	}
	users, err := os.ReadFile(filepath.Join(f.Data, "users.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(users, []byte(f.Password)) || !bytes.Contains(users, []byte("$argon2id$")) {
		t.Fatal("users file does not hold only a hash")
	}
	if strings.Contains(f.stderr.String(), f.Password) {
		t.Fatal("password in the log")
	}
	// Explicit TLS is on by default, with a self-signed certificate made
	// on first start and its fingerprint printed.
	if _, err := os.Stat(filepath.Join(f.Data, "tls-cert.pem")); err != nil || len(f.FP) != 95 {
		t.Fatalf("no certificate or fingerprint: %v %q", err, f.FP)
	}
	if out := run(t, ferryBin, "ls", "--fingerprint", f.FP, "ftpes://ferry:"+f.Password+"@"+f.Addr+"/"); out != "" {
		t.Fatalf("listing of a fresh root: %q", out)
	}
}

func TestCurl(t *testing.T) {
	curl := need(t, "curl")
	for _, listen := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(listen, func(t *testing.T) {
			if strings.HasPrefix(listen, "[") {
				ftptest.NeedIPv6(t)
			}
			f := startFerry(t, listen)
			user := f.User + ":" + f.Password
			local := t.TempDir()
			data := randFile(t, local, "up.bin", 5<<20+11)
			base := []string{"-sS", "--fail", "--max-time", "60", "--user", user}
			// Upload and download in passive (EPSV) and active (EPRT) mode.
			run(t, curl, append(base, "-T", filepath.Join(local, "up.bin"), f.URL+"/up.bin")...)
			sameFile(t, filepath.Join(f.Root, "up.bin"), data)
			run(t, curl, append(base, "-o", filepath.Join(local, "down.bin"), f.URL+"/up.bin")...)
			sameFile(t, filepath.Join(local, "down.bin"), data)
			run(t, curl, append(base, "-P", "-", "-o", filepath.Join(local, "active.bin"), f.URL+"/up.bin")...)
			sameFile(t, filepath.Join(local, "active.bin"), data)
			run(t, curl, append(base, "-P", "-", "-T", filepath.Join(local, "up.bin"), f.URL+"/active-up.bin")...)
			sameFile(t, filepath.Join(f.Root, "active-up.bin"), data)
			if !strings.HasPrefix(listen, "[") {
				// PASV and PORT proper.
				run(t, curl, append(base, "--disable-epsv", "-o", filepath.Join(local, "pasv.bin"), f.URL+"/up.bin")...)
				sameFile(t, filepath.Join(local, "pasv.bin"), data)
				run(t, curl, append(base, "--disable-eprt", "-P", "-", "-o", filepath.Join(local, "port.bin"), f.URL+"/up.bin")...)
				sameFile(t, filepath.Join(local, "port.bin"), data)
			}
			// Resume a download.
			os.WriteFile(filepath.Join(local, "part.bin"), data[:1<<20], 0o644)
			run(t, curl, append(base, "-C", "-", "-o", filepath.Join(local, "part.bin"), f.URL+"/up.bin")...)
			sameFile(t, filepath.Join(local, "part.bin"), data)
			// Resume an upload (curl uses SIZE then APPE).
			os.WriteFile(filepath.Join(f.Root, "resume.bin"), data[:2<<20], 0o644)
			run(t, curl, append(base, "-C", "-", "-T", filepath.Join(local, "up.bin"), f.URL+"/resume.bin")...)
			sameFile(t, filepath.Join(f.Root, "resume.bin"), data)
			// Listings.
			list := run(t, curl, append(base, f.URL+"/")...)
			if !strings.Contains(list, fmt.Sprintf(" %d ", len(data))) || !strings.Contains(list, "up.bin") {
				t.Errorf("LIST: %q", list)
			}
			names := run(t, curl, append(base, "--list-only", f.URL+"/")...)
			if !strings.Contains(names, "resume.bin\n") {
				t.Errorf("NLST: %q", names)
			}
			// Create directories on upload, then delete with a quote command.
			run(t, curl, append(base, "--ftp-create-dirs", "-T", filepath.Join(local, "up.bin"), f.URL+"/a/b/c.bin")...)
			sameFile(t, filepath.Join(f.Root, "a", "b", "c.bin"), data)
			run(t, curl, append(base, "-Q", "DELE a/b/c.bin", "-Q", "RMD a/b", f.URL+"/")...)
			if _, err := os.Stat(filepath.Join(f.Root, "a", "b")); !os.IsNotExist(err) {
				t.Errorf("a/b still there: %v", err)
			}
			// A wrong password fails.
			cmd := exec.Command(curl, "-sS", "--fail", "--user", "ferry:wrong", f.URL+"/")
			if err := cmd.Run(); err == nil {
				t.Error("wrong password accepted")
			}
		})
	}
}

func lftpScript(f *ferry, cmds ...string) string {
	return strings.Join(append([]string{
		"set cmd:fail-exit yes",
		"set ftp:ssl-allow no",
		"set net:max-retries 2",
		"set net:timeout 10",
		"set net:reconnect-interval-base 1",
		"set xfer:clobber yes",
		fmt.Sprintf("open -u %s,%s %s", f.User, f.Password, f.URL),
	}, cmds...), "; ")
}

func TestLftp(t *testing.T) {
	lftp := need(t, "lftp")
	for _, tc := range []struct{ name, listen, mode string }{
		{"ipv4-passive", "127.0.0.1:0", "set ftp:passive-mode on"},
		{"ipv4-active", "127.0.0.1:0", "set ftp:passive-mode off"},
		{"ipv6-passive", "[::1]:0", "set ftp:passive-mode on"},
		{"ipv6-active", "[::1]:0", "set ftp:passive-mode off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.listen, "[") {
				ftptest.NeedIPv6(t)
			}
			f := startFerry(t, tc.listen)
			local := t.TempDir()
			src := filepath.Join(local, "tree")
			files := map[string][]byte{}
			for i, n := range []string{"a.txt", "sub/b.bin", "sub/deeper/c.bin", "ü n i/d.txt"} {
				files[n] = randFile(t, src, n, 1000*(i+1)*(i+1)*50)
			}
			// Mirror a tree up, then down into another directory.
			run(t, lftp, "-c", lftpScript(f, tc.mode, "mirror -R "+src+" tree"))
			for n, b := range files {
				sameFile(t, filepath.Join(f.Root, "tree", n), b)
			}
			dst := filepath.Join(local, "copy")
			run(t, lftp, "-c", lftpScript(f, tc.mode, "mirror tree "+dst))
			for n, b := range files {
				sameFile(t, filepath.Join(dst, n), b)
			}
			// A second mirror transfers nothing new (lftp compares size and time).
			out := run(t, lftp, "-c", lftpScript(f, tc.mode, "mirror -v tree "+dst))
			if strings.Contains(out, "Transferring file") {
				t.Errorf("second mirror transferred files: %s", out)
			}
			// put, get, resume a get, listings.
			big := randFile(t, local, "big.bin", 3<<20)
			run(t, lftp, "-c", lftpScript(f, tc.mode, "put "+filepath.Join(local, "big.bin")+" -o big.bin"))
			sameFile(t, filepath.Join(f.Root, "big.bin"), big)
			os.WriteFile(filepath.Join(local, "got.bin"), big[:1<<20], 0o644)
			run(t, lftp, "-c", lftpScript(f, tc.mode, "get -c big.bin -o "+filepath.Join(local, "got.bin")))
			sameFile(t, filepath.Join(local, "got.bin"), big)
			// Resume an upload: lftp sends REST + STOR.
			os.WriteFile(filepath.Join(f.Root, "half.bin"), big[:1<<20], 0o644)
			run(t, lftp, "-c", lftpScript(f, tc.mode, "put -c "+filepath.Join(local, "big.bin")+" -o half.bin"))
			sameFile(t, filepath.Join(f.Root, "half.bin"), big)
			ls := run(t, lftp, "-c", lftpScript(f, tc.mode, "cls -l tree/sub"))
			if !strings.Contains(ls, "b.bin") || !strings.Contains(ls, "deeper") {
				t.Errorf("cls: %q", ls)
			}
			ls = run(t, lftp, "-c", lftpScript(f, tc.mode, "set ftp:use-mlsd off", "ls tree"))
			if !strings.Contains(ls, "a.txt") || !strings.Contains(ls, "ü n i") {
				t.Errorf("ls: %q", ls)
			}
			run(t, lftp, "-c", lftpScript(f, tc.mode, "rm -r tree"))
			if _, err := os.Stat(filepath.Join(f.Root, "tree")); !os.IsNotExist(err) {
				t.Errorf("rm -r: %v", err)
			}
		})
	}
}
