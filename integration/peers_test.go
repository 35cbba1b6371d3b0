package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/internal/peers"
)

// The Ferry client against real servers from Debian: pyftpdlib, pure-ftpd,
// vsftpd and ProFTPD. The three C servers conflict as Debian packages;
// .ci/run unpacks them side by side under $FERRY_PEERS (apt-get download,
// dpkg -x), and the tests run each binary from there with a configuration
// of their own on a loopback address.

// peer is a running third-party server.
type peer struct {
	name       string
	addr       string // host:port
	user, pass string
	base       string // FTP directory the tests may write in
	disk       string // that directory on disk
}

// peerBinary finds a server binary in PATH or under $FERRY_PEERS/PKG.
func peerBinary(t *testing.T, pkg, bin string) string {
	t.Helper()
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	if dir := os.Getenv("FERRY_PEERS"); dir != "" {
		if p, err := peers.Find(dir, pkg, bin); err == nil {
			return p
		}
	}
	if os.Getenv("FERRY_INTEROP") == "1" {
		t.Fatalf("%s (Debian package %s) is required (FERRY_INTEROP=1): not in PATH nor under $FERRY_PEERS", bin, pkg)
	}
	t.Skipf("%s not installed (set FERRY_PEERS to a directory of unpacked packages)", bin)
	return ""
}

func needRoot(t *testing.T, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("FERRY_INTEROP") == "1" {
			t.Fatalf("%s needs root to run (FERRY_INTEROP=1)", what)
		}
		t.Skipf("%s needs root", what)
	}
}

func freePort(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPeer runs cmd in its own process group, stopped with the test, and
// waits until addr accepts connections.
func startPeer(t *testing.T, name, addr string, cmd *exec.Cmd) {
	t.Helper()
	log := &ftptest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, log)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			// Wait for the greeting: a forking server is ready once it answers.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "220") {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("%s exited at start:\n%s", name, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start listening on %s:\n%s", name, addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sha512Crypt hashes pw in the crypt(3) format the C servers read, with
// Debian's Python (the same interpreter pyftpdlib needs).
func sha512Crypt(t *testing.T, pw string) string {
	t.Helper()
	h, err := peers.SHA512Crypt(pythonWith(t, "crypt"), pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// pythonWith finds a python3 that can import module, preferring Debian's.
func pythonWith(t *testing.T, module string) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-W", "ignore", "-c", "import "+module).Run() == nil {
			return p
		}
	}
	if os.Getenv("FERRY_INTEROP") == "1" {
		t.Fatalf("python3 with %s is required (FERRY_INTEROP=1; Debian package python3-pyftpdlib)", module)
	}
	t.Skipf("no python3 with %s", module)
	return ""
}

func startPyftpdlib(t *testing.T, host string, pasv int) *peer {
	return startPyftpdlibWith(t, host, pasv, "")
}

// startPyftpdlibWith runs pyftpdlib; with certFile (a PEM of certificate
// and key) it requires TLS on the control and data connections.
func startPyftpdlibWith(t *testing.T, host string, pasv int, certFile string) *peer {
	module := "pyftpdlib"
	if certFile != "" {
		module = "pyftpdlib, OpenSSL"
	}
	py := pythonWith(t, module)
	dir := t.TempDir()
	port := freePort(t, host)
	script := `
import sys, logging
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
host, port, root, lo = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
logging.basicConfig(level=logging.WARNING)
a = DummyAuthorizer()
a.add_user("tester", "pw", root, perm="elradfmwMT")
h = FTPHandler
if len(sys.argv) > 5 and sys.argv[5]:
    from pyftpdlib.handlers import TLS_FTPHandler
    h = TLS_FTPHandler
    h.certfile = sys.argv[5]
    h.tls_control_required = True
    h.tls_data_required = True
h.authorizer = a
h.passive_ports = range(lo, lo + 100)
h.permit_foreign_addresses = True   # FXP
FTPServer((host, port), h).serve_forever()
`
	startPeer(t, "pyftpdlib", net.JoinHostPort(host, strconv.Itoa(port)),
		exec.Command(py, "-W", "ignore", "-c", script, host, strconv.Itoa(port), dir, strconv.Itoa(pasv), certFile))
	return &peer{name: "pyftpdlib", addr: net.JoinHostPort(host, strconv.Itoa(port)), user: "tester", pass: "pw", base: "/", disk: dir}
}

func startPureFTPd(t *testing.T, host string, pasv int) *peer {
	return startPureFTPdWith(t, host, pasv)
}

func startPureFTPdWith(t *testing.T, host string, pasv int, extra ...string) *peer {
	o := peerOptions(t, "pure-ftpd", peerBinary(t, "pure-ftpd", "pure-ftpd"), host, pasv)
	return runPeer(t, "pure-ftpd", "pw", peerSetup(t)(peers.PureFTPd(o, peerBinary(t, "pure-ftpd", "pure-pw"), extra...)))
}

func startVsftpd(t *testing.T, host string, pasv int) *peer {
	return startVsftpdWith(t, host, pasv, "")
}

func startVsftpdWith(t *testing.T, host string, pasv int, extra string) *peer {
	o := peerOptions(t, "vsftpd", peerBinary(t, "vsftpd", "vsftpd"), host, pasv)
	return runPeer(t, "vsftpd", "ferry@", peerSetup(t)(peers.Vsftpd(o, extra)))
}

func startProFTPD(t *testing.T, host string, pasv int) *peer {
	return startProFTPDWith(t, host, pasv, func(string) string { return "" })
}

// startProFTPDWith runs ProFTPD with extra configuration, given the
// directory of its loadable modules.
func startProFTPDWith(t *testing.T, host string, pasv int, extra func(moduleDir string) string) *peer {
	bin := peerBinary(t, "proftpd-core", "proftpd")
	o := peerOptions(t, "ProFTPD", bin, host, pasv)
	return runPeer(t, "ProFTPD", "pw", peerSetup(t)(peers.ProFTPD(o, extra(peers.ModuleDir(bin)))))
}

// peerOptions places a C server (run as root) in a temporary directory, on
// a free port of host with 100 passive ports from pasv, with the account
// tester/pw (vsftpd's is anonymous).
func peerOptions(t *testing.T, name, bin, host string, pasv int) peers.Options {
	t.Helper()
	needRoot(t, name)
	o := peers.Options{Bin: bin, Dir: t.TempDir(), Host: host, Port: freePort(t, host), Pasv: [2]int{pasv, pasv + 99}}
	if name != "vsftpd" {
		o.User, o.Crypt = "tester", sha512Crypt(t, "pw")
	}
	return o
}

// peerSetup fails the test on a configuration error.
func peerSetup(t *testing.T) func(*peers.Setup, error) *peers.Setup {
	return func(s *peers.Setup, err error) *peers.Setup {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// runPeer starts a configured server and describes it.
func runPeer(t *testing.T, name, pass string, s *peers.Setup) *peer {
	t.Helper()
	startPeer(t, name, s.Addr, s.Cmd)
	return &peer{name: name, addr: s.Addr, user: s.User, pass: pass, base: s.Base, disk: s.Disk}
}

var peerStarters = []struct {
	name  string
	start func(t *testing.T, host string, pasv int) *peer
	pasv  int
}{
	{"pyftpdlib", startPyftpdlib, 52600},
	{"pure-ftpd", startPureFTPd, 52000},
	{"vsftpd", startVsftpd, 52200},
	{"ProFTPD", startProFTPD, 52400},
}

func (p *peer) dial(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	cfg.User, cfg.Password = p.user, p.pass
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	c, err := client.Dial(context.Background(), p.addr, &cfg)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.ChangeDir(context.Background(), p.base); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	return c
}

// TestClientAgainstPeers lists, uploads, downloads, resumes and renames
// with the client library against each server, passive and active, then
// mirrors a tree up and down with the ferry command.
func TestClientAgainstPeers(t *testing.T) {
	for _, ps := range peerStarters {
		t.Run(ps.name, func(t *testing.T) {
			p := ps.start(t, "127.0.0.1", ps.pasv)
			for _, active := range []bool{false, true} {
				mode := "passive"
				if active {
					mode = "active"
				}
				t.Run(mode, func(t *testing.T) {
					peerLibrary(t, p, p.dial(t, client.Config{Active: active}), mode, active)
				})
			}
			t.Run("mirror", func(t *testing.T) { peerMirror(t, p) })
		})
	}
}

func peerLibrary(t *testing.T, p *peer, c *client.Client, dir string, active bool) {
	ctx := context.Background()
	if err := c.MkdirAll(ctx, dir+"/sub"); err != nil {
		t.Fatal(err)
	}
	data := randBytes(2<<20 + 11)
	name := dir + "/data.bin"
	if n, err := c.Store(ctx, name, bytes.NewReader(data), nil); err != nil || n != int64(len(data)) {
		t.Fatalf("Store: %d, %v", n, err)
	}
	sameFile(t, filepath.Join(p.disk, dir, "data.bin"), data)
	if sz, err := c.Size(ctx, name); err != nil || sz != int64(len(data)) {
		t.Fatalf("Size: %d, %v", sz, err)
	}
	d, err := c.Retrieve(ctx, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(d)
	d.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Retrieve: %d bytes, %v", len(got), err)
	}
	// Closing a download early aborts it (ABOR), and the connection is
	// back in step for the next command: no new control connection.
	big := randBytes(32 << 20)
	if _, err := c.Store(ctx, dir+"/big.bin", bytes.NewReader(big), nil); err != nil {
		t.Fatal(err)
	}
	var dials atomic.Int32
	one := p.dial(t, client.Config{MaxConns: 1, Active: active, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == p.addr {
			dials.Add(1)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	for i := 0; i < 3; i++ {
		d, err = one.Retrieve(ctx, dir+"/big.bin", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(d, make([]byte, 100000)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := d.Close(); err != nil {
			t.Fatalf("early Close: %v", err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("ABOR took %v", el)
		}
		if sz, err := one.Size(ctx, name); err != nil || sz != int64(len(data)) {
			t.Fatalf("after an aborted download: SIZE %d, %v", sz, err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d control connections: an ABOR left one out of step", n)
	}
	// Resume both ways: a download from an offset, an upload from one.
	d, err = c.Retrieve(ctx, name, &client.TransferOptions{Offset: 123456})
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(d)
	d.Close()
	if err != nil || !bytes.Equal(got, data[123456:]) {
		t.Fatalf("Retrieve from offset: %d bytes, %v", len(got), err)
	}
	part := dir + "/part.bin"
	if _, err := c.Store(ctx, part, bytes.NewReader(data[:700000]), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(ctx, part, bytes.NewReader(data[700000:]), &client.TransferOptions{Offset: 700000}); err != nil {
		t.Fatalf("Store from offset: %v", err)
	}
	sameFile(t, filepath.Join(p.disk, dir, "part.bin"), data)
	// Listing: MLSD where offered, LIST otherwise.
	es, err := c.List(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]client.Entry{}
	for _, e := range es {
		found[e.Name] = e
	}
	if e := found["data.bin"]; e.Type != ftp.TypeFile || e.Size != int64(len(data)) || e.ModTime.IsZero() {
		t.Fatalf("List: data.bin is %+v (all: %+v)", e, es)
	}
	if e := found["sub"]; e.Type != ftp.TypeDir {
		t.Fatalf("List: sub is %+v", e)
	}
	if c.HasFeature("MLST") {
		if e, err := c.Stat(ctx, name); err != nil || e.Size != int64(len(data)) {
			t.Fatalf("Stat: %+v, %v", e, err)
		}
	}
	if _, err := c.ModTime(ctx, name); err != nil {
		t.Fatalf("ModTime: %v", err)
	}
	when := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := c.SetModTime(ctx, name, when); err != nil && !errors.Is(err, client.ErrUnsupported) {
		t.Fatalf("SetModTime: %v", err)
	} else if err == nil {
		if mt, err := c.ModTime(ctx, name); err != nil || !mt.Equal(when) {
			t.Fatalf("ModTime after set: %v, %v", mt, err)
		}
	}
	if err := c.Rename(ctx, part, dir+"/sub/moved.bin"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Size(ctx, part); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after rename: %v", err)
	}
	if _, err := c.Retrieve(ctx, dir+"/nope", nil); err == nil {
		t.Fatal("Retrieve of a missing file succeeded")
	}
	if err := c.RemoveAll(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p.disk, dir)); !os.IsNotExist(err) {
		t.Fatalf("RemoveAll left %s", dir)
	}
}

// randBytes is n bytes that never repeat a block (a counter-mode
// stream of ChaCha8 with a fixed seed), so a swapped or repeated chunk
// cannot go unnoticed.
func randBytes(n int) []byte {
	b := make([]byte, n)
	mrand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y'}).Read(b)
	return b
}

func peerMirror(t *testing.T, p *peer) {
	work := t.TempDir()
	var want = map[string][]byte{}
	for i, n := range []int{0, 1, 5000, 1 << 20} {
		rel := fmt.Sprintf("t/d%d/f%d.bin", i%2, i)
		want[rel] = randFile(t, work, rel, n)
	}
	u := "ftp://" + p.user + ":" + p.pass + "@" + p.addr + "/" + strings.TrimPrefix(path.Join(p.base, "mirror"), "/")
	out := run(t, ferryBin, "mirror", "-P", "3", filepath.Join(work, "t"), u)
	if !strings.Contains(out, "op=mirror files=4 skipped=0") {
		t.Fatalf("mirror up: %s", out)
	}
	for rel, b := range want {
		sameFile(t, filepath.Join(p.disk, "mirror", strings.TrimPrefix(rel, "t/")), b)
	}
	out = run(t, ferryBin, "mirror", filepath.Join(work, "t"), u)
	if !strings.Contains(out, "files=0 skipped=4") {
		t.Fatalf("second mirror up sent files again: %s", out)
	}
	out = run(t, ferryBin, "mirror", "-P", "3", u, filepath.Join(work, "back"))
	if !strings.Contains(out, "op=mirror files=4 skipped=0") {
		t.Fatalf("mirror down: %s", out)
	}
	for rel, b := range want {
		sameFile(t, filepath.Join(work, "back", strings.TrimPrefix(rel, "t/")), b)
	}
	out = run(t, ferryBin, "mirror", u, filepath.Join(work, "back"))
	if !strings.Contains(out, "files=0 skipped=4") {
		t.Fatalf("second mirror down fetched files again: %s", out)
	}
}

// TestFXPBetweenPeers copies with FXP between servers configured to allow
// it, each on its own loopback address and driven from a third, so each
// server's data connection really goes to a foreign address.
func TestFXPBetweenPeers(t *testing.T) {
	pairs := []struct{ a, b int }{{1, 2}, {0, 1}, {2, 0}} // pure-ftpd→vsftpd, pyftpdlib→pure-ftpd, vsftpd→pyftpdlib
	for i, pr := range pairs {
		sa, sb := peerStarters[pr.a], peerStarters[pr.b]
		t.Run(sa.name+"→"+sb.name, func(t *testing.T) {
			a := sa.start(t, fmt.Sprintf("127.0.%d.2", 10+i), sa.pasv+50)
			b := sb.start(t, fmt.Sprintf("127.0.%d.3", 10+i), sb.pasv+50)
			cfg := client.Config{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
				return d.DialContext(ctx, network, addr)
			}}
			ca, cb := a.dial(t, cfg), b.dial(t, cfg)
			ctx := context.Background()
			data := randBytes(3<<20 + 1)
			if _, err := ca.Store(ctx, "src.bin", bytes.NewReader(data), nil); err != nil {
				t.Fatal(err)
			}
			res, err := client.Copy(ctx, client.Location{Client: ca, Path: "src.bin"}, client.Location{Client: cb, Path: "dst.bin"}, &client.CopyOptions{NoRelay: true})
			if err != nil || res.Method != client.MethodFXP || res.Bytes != int64(len(data)) {
				t.Fatalf("FXP: %+v, %v", res, err)
			}
			sameFile(t, filepath.Join(b.disk, "dst.bin"), data)
		})
	}
}

// TestFerryCpBetweenFerryServers: ferry cp between two ferry serve
// processes whose quick-start users have no FXP permission: the copy is
// relayed, and says so.
func TestFerryCpBetweenFerryServers(t *testing.T) {
	ra, rb := t.TempDir(), t.TempDir()
	a := startFerry(t, "127.0.0.2:0", "--user", "u", "--password", "pw", "--root", ra)
	b := startFerry(t, "127.0.0.3:0", "--user", "u", "--password", "pw", "--root", rb)
	data := randFile(t, ra, "f.bin", 1<<20)
	out := run(t, ferryBin, "cp", "ftp://u:pw@"+a.Addr+"/f.bin", "ftp://u:pw@"+b.Addr+"/g.bin")
	if !strings.HasPrefix(out, "op=cp-relay bytes=1048576 ") {
		t.Fatalf("cp: %s", out)
	}
	sameFile(t, filepath.Join(rb, "g.bin"), data)
}
