package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/localfs"
)

// clientServer starts an in-process server on a local directory and
// returns the directory and a URL prefix that logs in as alice.
func clientServer(t *testing.T, network string) (string, string) {
	t.Helper()
	root := t.TempDir()
	fsys, err := localfs.New(root, localfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := ftptest.NewServer(t, ftptest.Options{FS: fsys, Network: network})
	return root, "ftp://" + ftptest.Writer + ":" + ftptest.Password + "@" + srv.Addr
}

func randomFile(t *testing.T, name string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestClientCommands drives the client subcommands against a server, in
// passive and active mode over IPv4 and IPv6, checking files on both sides,
// the summary lines and the exit codes.
func TestClientCommands(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		for _, mode := range []string{"passive", "active"} {
			t.Run(network+"/"+mode, func(t *testing.T) {
				t.Parallel()
				root, u := clientServer(t, network)
				work := t.TempDir()
				var extra []string
				if mode == "active" {
					extra = []string{"--active"}
				}
				run := func(want int, args ...string) (string, string) {
					t.Helper()
					out, errOut, code := ferryCmd(t, work, []string{"HOME=" + work}, "", append(args, extra...)...)
					if code != want {
						t.Fatalf("ferry %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, out, errOut)
					}
					return out, errOut
				}
				data := randomFile(t, filepath.Join(work, "up", "big.bin"), 3<<20+5)
				small := randomFile(t, filepath.Join(work, "up", "d", "e", "small.txt"), 100)

				out, _ := run(0, "put", "up/big.bin", u+"/")
				if !strings.HasPrefix(out, "op=put bytes=3145733 ") {
					t.Fatalf("put summary: %q", out)
				}
				if got, _ := os.ReadFile(filepath.Join(root, "big.bin")); !bytes.Equal(got, data) {
					t.Fatal("put: server file differs")
				}
				run(0, "get", u+"/big.bin", "got.bin")
				if got, _ := os.ReadFile(filepath.Join(work, "got.bin")); !bytes.Equal(got, data) {
					t.Fatal("get: local file differs")
				}
				if _, err := os.Stat(filepath.Join(work, "got.bin.part")); !os.IsNotExist(err) {
					t.Fatal("get left its .part file")
				}
				out, _ = run(0, "cat", u+"/big.bin")
				if out != string(data) {
					t.Fatal("cat: output differs")
				}
				sum := sha256.Sum256(data)
				out, _ = run(0, "hash", u+"/big.bin")
				if want := fmt.Sprintf("SHA-256  %x  ", sum); !strings.HasPrefix(out, want) {
					t.Fatalf("hash: %q, want prefix %q", out, want)
				}
				run(0, "get", "--verify", u+"/big.bin", "v.bin")
				run(0, "put", "--verify", "up/big.bin", u+"/v.bin")

				// Resume: a partial local file is completed, not restarted.
				os.WriteFile(filepath.Join(work, "r.bin.part"), data[:1000], 0o644)
				_, errOut := run(0, "get", "-c", "-v", u+"/big.bin", "r.bin")
				if !strings.Contains(errOut, "> REST 1000") || strings.Contains(errOut, ftptest.Password) {
					t.Fatalf("get -c: transcript lacks REST 1000 or shows the password:\n%s", errOut)
				}
				if got, _ := os.ReadFile(filepath.Join(work, "r.bin")); !bytes.Equal(got, data) {
					t.Fatal("get -c: file differs")
				}
				os.WriteFile(filepath.Join(root, "p.bin"), data[:2000], 0o644)
				_, errOut = run(0, "put", "--continue", "-v", "up/big.bin", u+"/p.bin")
				if !strings.Contains(errOut, "> REST 2000") {
					t.Fatalf("put --continue: no REST 2000:\n%s", errOut)
				}
				if got, _ := os.ReadFile(filepath.Join(root, "p.bin")); !bytes.Equal(got, data) {
					t.Fatal("put --continue: server file differs")
				}

				// Directories, listing, rename, delete.
				run(0, "mkdir", "-p", u+"/a/b/c")
				run(0, "mv", u+"/p.bin", "a/b/q.bin")
				out, _ = run(0, "ls", u+"/a/b")
				if !strings.Contains(out, " 3145733 ") || !strings.Contains(out, "q.bin") || !strings.Contains(out, "c/") {
					t.Fatalf("ls: %q", out)
				}
				run(1, "rmdir", u+"/a")
				run(0, "rmdir", "-r", u+"/a")
				if _, err := os.Stat(filepath.Join(root, "a")); !os.IsNotExist(err) {
					t.Fatal("rmdir -r left the directory")
				}
				run(0, "rm", u+"/v.bin", u+"/big.bin")

				// Mirror up, then again (nothing to do), then down.
				out, _ = run(0, "mirror", "-P", "3", "up", u+"/m")
				if !strings.Contains(out, "op=mirror files=2 skipped=0") {
					t.Fatalf("mirror up: %q", out)
				}
				if got, _ := os.ReadFile(filepath.Join(root, "m", "d", "e", "small.txt")); !bytes.Equal(got, small) {
					t.Fatal("mirror up: file differs")
				}
				out, _ = run(0, "mirror", "up", u+"/m")
				if !strings.Contains(out, "op=mirror files=0 skipped=2") {
					t.Fatalf("second mirror up: %q", out)
				}
				randomFile(t, filepath.Join(work, "up", "d", "new.txt"), 10)
				out, _ = run(0, "mirror", "up", u+"/m")
				if !strings.Contains(out, "op=mirror files=1 skipped=2") {
					t.Fatalf("mirror up of one new file: %q", out)
				}
				out, _ = run(0, "mirror", u+"/m", "down")
				if !strings.Contains(out, "op=mirror files=3 skipped=0") {
					t.Fatalf("mirror down: %q", out)
				}
				if got, _ := os.ReadFile(filepath.Join(work, "down", "big.bin")); !bytes.Equal(got, data) {
					t.Fatal("mirror down: file differs")
				}
				out, _ = run(0, "mirror", u+"/m", "down")
				if !strings.Contains(out, "op=mirror files=0 skipped=3") {
					t.Fatalf("second mirror down: %q", out)
				}
				os.Remove(filepath.Join(work, "up", "d", "new.txt"))
				out, _ = run(0, "mirror", "--delete", "up", u+"/m")
				if !strings.Contains(out, "deleted=1") {
					t.Fatalf("mirror --delete: %q", out)
				}
				if _, err := os.Stat(filepath.Join(root, "m", "d", "new.txt")); !os.IsNotExist(err) {
					t.Fatal("mirror --delete left the file")
				}

				// Failures, in words and codes.
				_, errOut = run(1, "get", u+"/nope.bin")
				if !strings.Contains(errOut, "nope.bin") || !strings.Contains(errOut, "no such file") || !strings.Contains(errOut, "550") {
					t.Fatalf("missing file: %q", errOut)
				}
				bad := strings.Replace(u, ftptest.Password, "wrong", 1)
				_, errOut = run(4, "ls", bad+"/")
				if strings.Contains(errOut, "wrong") || !strings.Contains(errOut, "login refused") {
					t.Fatalf("bad password: %q", errOut)
				}
				run(2, "get")
				run(2, "ls", "http://example.com/")
			})
		}
	}
}

// TestClientNetworkErrors: a port where nothing listens is exit code 3,
// a missing password with no terminal is a usage error, and credentials
// come from ~/.netrc.
func TestClientNetworkErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	work := t.TempDir()
	_, errOut, code := ferryCmd(t, work, []string{"HOME=" + work}, "", "ls", "ftp://x:y@"+addr+"/")
	if code != exitNetwork || !strings.Contains(errOut, "connection refused") {
		t.Fatalf("refused: %d %q", code, errOut)
	}
	_, u := clientServer(t, "tcp4")
	host := strings.TrimPrefix(u, "ftp://"+ftptest.Writer+":"+ftptest.Password+"@")
	env := []string{"HOME=" + work, "PATH=" + os.Getenv("PATH")} // no FERRY_PASSWORD, no terminal
	_, errOut, code = ferryCmdEnv(t, work, env, "", "ls", "ftp://alice@"+host+"/")
	if code != exitUsage || !strings.Contains(errOut, "no password for alice@") {
		t.Fatalf("no password anywhere: %d %q", code, errOut)
	}
	ap := netip.MustParseAddrPort(host)
	os.WriteFile(filepath.Join(work, ".netrc"), []byte(fmt.Sprintf("machine %s login alice password %s\ndefault login anonymous password x\n", ap.Addr(), ftptest.Password)), 0o600)
	if _, errOut, code = ferryCmdEnv(t, work, env, "", "put", "-v", ".netrc", "ftp://"+host+"/n"); code != 0 || !strings.Contains(errOut, "> USER alice") {
		t.Fatalf("login from .netrc: %d %q", code, errOut)
	}
}

func TestParseRemote(t *testing.T) {
	for in, want := range map[string]string{
		"ftp://host/file":             "host:21 anonymous? path=file",
		"ftp://u:p%40ss@host:2121/a/": "host:2121 u:p@ss path=a dir",
		"ftp://host//etc/passwd":      "host:21 anonymous? path=/etc/passwd",
		"ftp://host/%2Fetc":           "host:21 anonymous? path=/etc",
		"ftp://[::1]:21/x;type=i":     "[::1]:21 anonymous? path=x",
		"FTP://HOST":                  "HOST:21 anonymous? path=",
		"ftps://h/x":                  "h:990 anonymous? path=x",
		"ftpes://h:2121/x":            "h:2121 anonymous? path=x",
	} {
		r, err := parseRemote(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		user := r.user + ":" + r.pass
		if r.user == "" {
			user = "anonymous?"
		}
		got := fmt.Sprintf("%s %s path=%s", r.host, user, r.path)
		if r.trailing {
			got += " dir"
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"http://x/", "ftp:///nohost", "ftp://h/a%0d%0aDELE%20x", "ftpes:///x"} {
		if _, err := parseRemote(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if s := (&remote{scheme: "ftp", host: "h:21", user: "u", pass: "secret", path: "a b"}).String(); strings.Contains(s, "secret") || s != "ftp://u@h/a%20b" {
		t.Errorf("String: %q", s)
	}
}

func TestParseNetrc(t *testing.T) {
	in := "# comment\nmachine a.example login alice password s3cret\n" +
		"macdef init\ncd /pub\n\n" +
		"machine b.example\n  login bob\n  account x\n  password pw2\ndefault login anonymous password me@\n"
	got := parseNetrc(strings.NewReader(in))
	want := []netrcMachine{{"a.example", "alice", "s3cret"}, {"b.example", "bob", "pw2"}, {"", "anonymous", "me@"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// corrupting stores every upload with its first byte changed, as a faulty
// disk or a broken middlebox would.
type corrupting struct{ storage.FS }

func (c corrupting) Create(ctx context.Context, name string, o storage.CreateOptions) (storage.Upload, error) {
	u, err := c.FS.Create(ctx, name, o)
	return &flipFirst{Upload: u}, err
}

// flipFirst is an Upload without the zero-copy capability: every byte
// passes through Write, and the first is changed.
type flipFirst struct {
	storage.Upload
	n int64
}

func (f *flipFirst) Write(p []byte) (int, error) {
	if f.n == 0 && len(p) > 0 {
		q := append([]byte(nil), p...)
		q[0] ^= 0xff
		p = q
	}
	n, err := f.Upload.Write(p)
	f.n += int64(n)
	return n, err
}

// TestVerifyMismatch: put --verify compares the server's hash with the
// local file's and exits 5 when they differ.
func TestVerifyMismatch(t *testing.T) {
	root := t.TempDir()
	fsys, err := localfs.New(root, localfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := ftptest.NewServer(t, ftptest.Options{FS: corrupting{fsys}})
	u := "ftp://" + ftptest.Writer + ":" + ftptest.Password + "@" + srv.Addr
	work := t.TempDir()
	randomFile(t, filepath.Join(work, "f.bin"), 100000)
	if _, errOut, code := ferryCmd(t, work, nil, "", "put", "f.bin", u+"/plain.bin"); code != 0 {
		t.Fatalf("put without --verify: exit %d %s", code, errOut)
	}
	_, errOut, code := ferryCmd(t, work, nil, "", "put", "--verify", "f.bin", u+"/checked.bin")
	if code != 5 {
		t.Fatalf("put --verify of a corrupted upload: exit %d, want 5\n%s", code, errOut)
	}
}
