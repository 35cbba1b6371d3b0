package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/internal/peers"
	"github.com/ferryftp/ferry/internal/procstat"
)

// server is one FTP server under measurement.
type server struct {
	name             string
	addr, user, pass string
	cwd              string // directory the files live in, relative to the login directory
	disk             string // that directory on disk
	tls              bool   // PROT P workloads run against it
	cmd              *exec.Cmd
	uid, gid         int  // owner of the files it serves (-1: as written)
	rest             int  // its processes at rest, beside the first
	smallOnly        bool // it runs the small-file workloads only
}

// certFiles is one ECDSA P-256 certificate for every server.
type certFiles struct{ cert, key, both string }

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop ends the server by its PID and waits for it.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// many makes the directory "many" of n empty files, for LIST-10k.
func (s *server) many(n int) error {
	d := filepath.Join(s.disk, "many")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	s.own(d)
	for i := range n {
		f, err := os.Create(filepath.Join(d, fmt.Sprintf("file-%06d.dat", i)))
		if err != nil {
			return err
		}
		f.Close()
	}
	return nil
}

// clean removes what a workload uploaded, keeping big.bin and many.
func (s *server) clean() {
	entries, _ := os.ReadDir(s.disk)
	for _, e := range entries {
		if e.Name() != "big.bin" && e.Name() != "many" {
			os.RemoveAll(filepath.Join(s.disk, e.Name()))
		}
	}
}

func (s *server) own(path string) {
	if s.uid >= 0 {
		os.Chown(path, s.uid, s.gid)
	}
}

// start starts the named server with its files under base, its control
// port at port and passive ports above it.
func start(name, base string, port int, c certFiles) (*server, error) {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	pasv := [2]int{port + 1, port + 4999}
	var s *server
	var err error
	switch name {
	case "bare":
		return &server{name: name, disk: base, tls: true, uid: -1}, nil
	case "ferry":
		s, err = startFerry(*ferryBin, base, addr, pasv, c)
	case "ferry-base":
		if *baseBin == "" {
			return nil, fmt.Errorf("no -base binary")
		}
		s, err = startFerry(*baseBin, base, addr, pasv, c)
	case "ferry-quota":
		s, err = startFerryQuota(*ferryBin, base, addr, pasv, c)
	case "ferry-rated":
		// The same server with server-wide rate limits far above the
		// link: the cost of pacing when it never waits.
		s, err = startFerry(*ferryBin, base, addr, pasv, c, "--max-rate-up", "1TiB", "--max-rate-down", "1TiB")
	case "ferry-metrics":
		// Metrics served and every transfer in the xferlog: the cost of
		// observing without hooks.
		s, err = startFerry(*ferryBin, base, addr, pasv, c, "--admin-listen", "127.0.0.1:0", "--transfer-log", filepath.Join(base, "xferlog"))
	case "ferry-xferlog":
		// ferry-metrics' transfer log alone.
		s, err = startFerry(*ferryBin, base, addr, pasv, c, "--transfer-log", filepath.Join(base, "xferlog"))
	case "ferry-admin":
		// ferry-metrics' admin listener (metrics) alone.
		s, err = startFerry(*ferryBin, base, addr, pasv, c, "--admin-listen", "127.0.0.1:0")
	case "ferry-hooks":
		// ferry-metrics plus an HTTP hook hearing every upload, download
		// and login, answered by this process.
		s, err = startFerryHooks(*ferryBin, base, addr, pasv, c, 0)
	case "ferry-batch":
		// ferry-hooks with batch = 100: the POSTs carry the events
		// waiting, up to 100.
		s, err = startFerryHooks(*ferryBin, base, addr, pasv, c, 100)
	case "pure-ftpd", "ProFTPD", "vsftpd":
		s, err = startPeer(name, base, addr, pasv, c)
	case "ftpserver":
		s, err = startFTPServer(base, addr, pasv, c)
	case "bare-ftpd":
		// The least a Go FTP server must do for small files
		// (bench/load bare-ftpd): the limit Ferry approaches there.
		root := filepath.Join(base, "root")
		if err = os.MkdirAll(root, 0o755); err == nil {
			cmd := exec.Command(*loadBin, "-addr", addr, "bare-ftpd", "-dir", root, "-pasv", fmt.Sprintf("%d-%d", pasv[0], pasv[1]))
			s = &server{addr: addr, user: "bench", pass: "bench", disk: root, cmd: logTo(cmd, base), uid: -1, smallOnly: true}
		}
	default:
		return nil, fmt.Errorf("unknown server %q", name)
	}
	if err != nil {
		return nil, err
	}
	s.name = name
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	if err := awaitGreeting(addr); err != nil {
		s.stop()
		return nil, err
	}
	s.rest = len(procstat.Descendants(s.pid()))
	return s, nil
}

// awaitGreeting waits, at most ten seconds, for a 220 on addr.
func awaitGreeting(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, "220") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no greeting on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func logTo(cmd *exec.Cmd, base string) *exec.Cmd {
	f, err := os.Create(filepath.Join(base, "server.log"))
	if err == nil {
		cmd.Stdout, cmd.Stderr = f, f
	}
	return cmd
}

func startFerry(bin, base, addr string, pasv [2]int, c certFiles, extra ...string) (*server, error) {
	root := filepath.Join(base, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--listen", addr, "--root", root, "--user", "bench",
		"--data-dir", filepath.Join(base, "data"), "--tls-cert", c.cert, "--tls-key", c.key,
		"--passive-ports", fmt.Sprintf("%d-%d", pasv[0], pasv[1]),
		"--log-level", "warn", "--max-sessions", "0")
	cmd.Args = append(cmd.Args, extra...)
	cmd.Env = append(os.Environ(), "FERRY_PASSWORD=bench-pw")
	return &server{addr: addr, user: "bench", pass: "bench-pw", disk: root, tls: true, cmd: logTo(cmd, base), uid: -1}, nil
}

// startFerryHooks starts ferry with metrics, a transfer log and an HTTP
// hook on uploads, downloads and logins, delivered to hookSink, batch
// events at most in a POST.
func startFerryHooks(bin, base, addr string, pasv [2]int, c certFiles, batch int) (*server, error) {
	url, err := hookSink()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(base, "ferry.toml")
	text := fmt.Sprintf("[[hook]]\non = [\"upload\", \"upload_failed\", \"download\", \"login\"]\nurl = %q\nbatch = %d\n", url, batch)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	return startFerry(bin, base, addr, pasv, c, "--config", conf, "--admin-listen", "127.0.0.1:0", "--transfer-log", filepath.Join(base, "xferlog"))
}

// sinkPosts counts the POSTs hookSink took.
var sinkPosts atomic.Int64

// hookSink is an HTTP endpoint in this process that takes hook events
// (204), started once.
var hookSink = sync.OnceValues(func() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sinkPosts.Add(1)
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	return "http://" + ln.Addr().String() + "/events", nil
})

// startFerryQuota starts ferry with its user in a users file, under a
// quota far above what the workloads store: the cost of counting.
func startFerryQuota(bin, base, addr string, pasv [2]int, c certFiles) (*server, error) {
	s, err := startFerry(bin, base, addr, pasv, c)
	if err != nil {
		return nil, err
	}
	users := filepath.Join(base, "data", "users.toml")
	add := exec.Command(bin, "user", "add", "bench", "--home", s.disk, "--users", users, "--quota-bytes", "1TiB", "--quota-files", "100000000")
	add.Env = append(os.Environ(), "FERRY_PASSWORD="+s.pass)
	if out, err := add.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("user add: %v: %s", err, out)
	}
	// The same command line, the users file instead of the quick-start user.
	args := []string{}
	for i := 1; i < len(s.cmd.Args); i++ {
		if s.cmd.Args[i] == "--user" {
			i++
			continue
		}
		args = append(args, s.cmd.Args[i])
	}
	s.cmd = logTo(exec.Command(bin, append(args, "--users", users)...), base)
	return s, nil
}

// peerBinaries are the C servers' Debian packages and binaries.
var peerBinaries = map[string]struct{ pkg, bin string }{
	"pure-ftpd": {"pure-ftpd", "pure-ftpd"},
	"ProFTPD":   {"proftpd-core", "proftpd"},
	"vsftpd":    {"vsftpd", "vsftpd"},
}

// startPeer starts one of the C servers configured by internal/peers, as
// the integration tests run them, with settings for load: more sessions,
// TLS offered with the common certificate, and a cheap SHA-512 crypt
// password as the others have.
func startPeer(name, base, addr string, pasv [2]int, c certFiles) (*server, error) {
	pb := peerBinaries[name]
	path, err := peers.Find(*peersDir, pb.pkg, pb.bin)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	o := peers.Options{Bin: path, Dir: base, Host: host, Pasv: pasv}
	o.Port, _ = strconv.Atoi(port)
	if name != "vsftpd" {
		o.User = "bench"
		if o.Crypt, err = peers.SHA512Crypt("/usr/bin/python3", "bench-pw"); err != nil {
			return nil, err
		}
	}
	var ps *peers.Setup
	pass := "bench-pw"
	switch name {
	case "pure-ftpd":
		pw, err := peers.Find(*peersDir, "pure-ftpd", "pure-pw")
		if err != nil {
			return nil, err
		}
		// -c/-C sessions; -Y 1 TLS offered, -2 its certificate.
		ps, err = peers.PureFTPd(o, pw, "-c", "200", "-C", "200", "-Y", "1", "-2", c.cert+","+c.key)
	case "ProFTPD":
		ps, err = peers.ProFTPD(o, fmt.Sprintf("MaxInstances 200\nModulePath %s\nLoadModule mod_tls.c\nTLSEngine on\n"+
			"TLSRequired off\nTLSProtocol TLSv1.2 TLSv1.3\nTLSECCertificateFile %s\nTLSECCertificateKeyFile %s\n",
			peers.ModuleDir(path), c.cert, c.key))
	case "vsftpd":
		pass = "bench@"
		ps, err = peers.Vsftpd(o, fmt.Sprintf("max_clients=200\nssl_enable=YES\nallow_anon_ssl=YES\n"+
			"require_ssl_reuse=NO\nrsa_cert_file=%s\nrsa_private_key_file=%s\n", c.cert, c.key))
	}
	if err != nil {
		return nil, err
	}
	// The login's directory is the account's root but for vsftpd's /files.
	return &server{addr: addr, user: ps.User, pass: pass, cwd: strings.TrimPrefix(ps.Base, "/"), disk: ps.Disk,
		tls: true, cmd: logTo(ps.Cmd, base), uid: ps.UID, gid: ps.GID}, nil
}

func startFTPServer(base, addr string, pasv [2]int, c certFiles) (*server, error) {
	if *ftpserver == "" {
		return nil, fmt.Errorf("no -ftpserver binary")
	}
	root := filepath.Join(base, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`{"version": 1, "listen_address": %q,
 "passive_transfer_port_range": {"start": %d, "end": %d},
 "tls": {"server_cert": {"cert": %q, "key": %q}},
 "accesses": [{"user": "bench", "pass": "bench-pw", "fs": "os", "params": {"basePath": %q}}]}`,
		addr, pasv[0], pasv[1], c.cert, c.key, root)
	cf := filepath.Join(base, "ftpserver.json")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(*ftpserver, "-conf", cf)
	return &server{addr: addr, user: "bench", pass: "bench-pw", disk: root, tls: true, cmd: logTo(cmd, base), uid: -1}, nil
}

// makeCert writes one self-signed ECDSA P-256 certificate for every server.
func makeCert(dir string) (certFiles, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return certFiles{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return certFiles{}, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return certFiles{}, err
	}
	cp := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kp := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	c := certFiles{filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "both.pem")}
	for f, b := range map[string][]byte{c.cert: cp, c.key: kp, c.both: append(append([]byte{}, cp...), kp...)} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return c, err
		}
	}
	return c, nil
}

// writeRandom writes size random bytes to path.
func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
