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
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one FTP server under measurement.
type server struct {
	name             string
	addr, user, pass string
	cwd              string // directory the files live in, relative to the login directory
	disk             string // that directory on disk
	tls              bool   // PROT P workloads run against it
	cmd              *exec.Cmd
	uid, gid         int // owner of the files it serves (-1: as written)
	rest             int // its processes at rest, beside the first
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
	case "pure-ftpd":
		s, err = startPureFTPd(base, addr, pasv, c)
	case "ProFTPD":
		s, err = startProFTPD(base, addr, pasv, c)
	case "vsftpd":
		s, err = startVsftpd(base, addr, pasv, c)
	case "ftpserver":
		s, err = startFTPServer(base, addr, pasv, c)
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
	s.rest = len(descendants(s.pid()))
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

func startFerry(bin, base, addr string, pasv [2]int, c certFiles) (*server, error) {
	root := filepath.Join(base, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--listen", addr, "--root", root, "--user", "bench",
		"--data-dir", filepath.Join(base, "data"), "--tls-cert", c.cert, "--tls-key", c.key,
		"--passive-ports", fmt.Sprintf("%d-%d", pasv[0], pasv[1]),
		"--log-level", "warn", "--max-sessions", "0")
	cmd.Env = append(os.Environ(), "FERRY_PASSWORD=bench-pw")
	return &server{addr: addr, user: "bench", pass: "bench-pw", disk: root, tls: true, cmd: logTo(cmd, base), uid: -1}, nil
}

// peerBinary finds a server unpacked from its Debian package.
func peerBinary(pkg, bin string) (string, error) {
	for _, d := range []string{"sbin", "bin"} {
		p := filepath.Join(*peersDir, pkg, "usr", d, bin)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not unpacked in -peers %q (see .ci/run)", bin, *peersDir)
}

// systemUser is an unprivileged account with a home (vsftpd needs one)
// that owns the C servers' files.
func systemUser() (uid, gid int, name string, err error) {
	for _, name := range []string{"daemon", "bin", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(u.HomeDir); err == nil && fi.IsDir() {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			return uid, gid, name, nil
		}
	}
	return 0, 0, "", fmt.Errorf("no unprivileged system user with a home directory")
}

// ownedDir makes base/files, owned by uid.
func ownedDir(base string, uid, gid int) (string, error) {
	d := filepath.Join(base, "files")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	return d, os.Chown(d, uid, gid)
}

func startPureFTPd(base, addr string, pasv [2]int, c certFiles) (*server, error) {
	bin, err := peerBinary("pure-ftpd", "pure-ftpd")
	if err != nil {
		return nil, err
	}
	pw, err := peerBinary("pure-ftpd", "pure-pw")
	if err != nil {
		return nil, err
	}
	uid, gid, _, err := systemUser()
	if err != nil {
		return nil, err
	}
	home, err := ownedDir(base, uid, gid)
	if err != nil {
		return nil, err
	}
	// A SHA-512 crypt hash, as for the others a cheap login: pure-pw would
	// pick argon2id.
	passwd := filepath.Join(base, "passwd")
	line := fmt.Sprintf("bench:%s:%d:%d::%s/./::::::::::::\n", sha512Crypt("bench-pw"), uid, gid, home)
	if err := os.WriteFile(passwd, []byte(line), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(pw, "mkdb", filepath.Join(base, "pure.pdb"), "-f", passwd).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pure-pw mkdb: %v: %s", err, out)
	}
	host, port, _ := net.SplitHostPort(addr)
	// -A chroot, -E no anonymous, -H no DNS, -Y 1 TLS offered, -c/-C
	// sessions, -u 1 any uid.
	cmd := exec.Command(bin, "-S", host+","+port, "-l", "puredb:"+filepath.Join(base, "pure.pdb"),
		"-E", "-A", "-H", "-u", "1", "-c", "200", "-C", "200", "-Y", "1", "-2", c.cert+","+c.key,
		"-p", fmt.Sprintf("%d:%d", pasv[0], pasv[1]))
	return &server{addr: addr, user: "bench", pass: "bench-pw", disk: home, tls: true, cmd: logTo(cmd, base), uid: uid, gid: gid}, nil
}

func startProFTPD(base, addr string, pasv [2]int, c certFiles) (*server, error) {
	bin, err := peerBinary("proftpd-core", "proftpd")
	if err != nil {
		return nil, err
	}
	uid, gid, _, err := systemUser()
	if err != nil {
		return nil, err
	}
	home, err := ownedDir(base, uid, gid)
	if err != nil {
		return nil, err
	}
	os.WriteFile(filepath.Join(base, "passwd"), fmt.Appendf(nil, "bench:%s:%d:%d::%s:/bin/false\n", sha512Crypt("bench-pw"), uid, gid, home), 0o600)
	os.WriteFile(filepath.Join(base, "group"), fmt.Appendf(nil, "bench:x:%d:\n", gid), 0o600)
	modules := filepath.Join(filepath.Dir(filepath.Dir(bin)), "lib", "proftpd")
	host, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf(`ServerType standalone
ServerName "bench"
DefaultAddress %[1]s
Port %[2]s
UseIPv6 off
User nobody
Group nogroup
MaxInstances 200
PidFile %[3]s/proftpd.pid
ScoreboardFile %[3]s/scoreboard
DelayTable none
WtmpLog off
TransferLog none
SystemLog %[3]s/proftpd.log
AuthOrder mod_auth_file.c
AuthUserFile %[3]s/passwd
AuthGroupFile %[3]s/group
RequireValidShell off
DefaultRoot ~
PassivePorts %[4]d %[5]d
AllowOverwrite on
AllowStoreRestart on
UseReverseDNS off
ModulePath %[6]s
LoadModule mod_tls.c
TLSEngine on
TLSRequired off
TLSProtocol TLSv1.2 TLSv1.3
TLSECCertificateFile %[7]s
TLSECCertificateKeyFile %[8]s
`, host, port, base, pasv[0], pasv[1], modules, c.cert, c.key)
	cf := filepath.Join(base, "proftpd.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-n", "-q", "-c", cf)
	return &server{addr: addr, user: "bench", pass: "bench-pw", disk: home, tls: true, cmd: logTo(cmd, base), uid: uid, gid: gid}, nil
}

func startVsftpd(base, addr string, pasv [2]int, c certFiles) (*server, error) {
	bin, err := peerBinary("vsftpd", "vsftpd")
	if err != nil {
		return nil, err
	}
	uid, gid, name, err := systemUser()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(base, "root")
	os.MkdirAll(filepath.Join(base, "empty"), 0o755)
	os.MkdirAll(root, 0o755)
	pub, err := ownedDir(root, uid, gid)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	// Anonymous users who may write in /files: vsftpd's local users need
	// PAM and system accounts, which a benchmark should not create.
	conf := fmt.Sprintf(`listen=YES
listen_address=%s
listen_port=%s
background=NO
max_clients=200
anonymous_enable=YES
local_enable=NO
no_anon_password=YES
anon_root=%s
ftp_username=%s
nopriv_user=%s
write_enable=YES
anon_upload_enable=YES
anon_other_write_enable=YES
anon_umask=022
pasv_min_port=%d
pasv_max_port=%d
connect_from_port_20=NO
seccomp_sandbox=NO
isolate_network=NO
secure_chroot_dir=%s
xferlog_enable=NO
syslog_enable=NO
ssl_enable=YES
allow_anon_ssl=YES
require_ssl_reuse=NO
rsa_cert_file=%s
rsa_private_key_file=%s
`, host, port, root, name, name, pasv[0], pasv[1], filepath.Join(base, "empty"), c.cert, c.key)
	cf := filepath.Join(base, "vsftpd.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, cf)
	return &server{addr: addr, user: "anonymous", pass: "bench@", cwd: "files", disk: pub, tls: true, cmd: logTo(cmd, base), uid: uid, gid: gid}, nil
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

// sha512Crypt hashes pw in the crypt(3) format the C servers read (SHA-512,
// a cheap login like the others'), with Debian's Python.
func sha512Crypt(pw string) string {
	out, err := exec.Command("/usr/bin/python3", "-W", "ignore", "-c",
		"import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_SHA512)))", pw).Output()
	if err != nil {
		return "!" // the login fails, and the report says so
	}
	return strings.TrimSpace(string(out))
}
