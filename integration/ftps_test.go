package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftptest"
)

// startFTPS runs ferry serve with TLS required for login and data, an
// implicit-TLS listener beside the explicit one, and a quick-start user;
// it returns the server and the certificate file it created.
func startFTPS(t *testing.T, extra ...string) (*ferry, string) {
	t.Helper()
	root := t.TempDir()
	f := startFerry(t, "127.0.0.1:0", append([]string{"--tls", "required-data", "--implicit-listen", "127.0.0.1:0",
		"--user", "u", "--password", "pw", "--root", root}, extra...)...)
	f.Root, f.User, f.Password = root, "u", "pw"
	if f.Implicit == "" {
		t.Fatalf("no implicit-TLS listener:\n%s", f.stderr)
	}
	return f, filepath.Join(f.Data, "tls-cert.pem")
}

// TestFTPSCurl: curl with --ssl-reqd (explicit) and ftps:// (implicit),
// verifying Ferry's self-signed certificate against the file it created;
// several transfers on one control connection, each data connection
// resuming its TLS session.
func TestFTPSCurl(t *testing.T) {
	curl := need(t, "curl")
	f, cert := startFTPS(t)
	work := t.TempDir()
	data := randFile(t, work, "up.bin", 3<<20)
	base := "ftp://" + f.Addr
	run(t, curl, "-sS", "--ssl-reqd", "--cacert", cert, "-u", "u:pw", "-T", filepath.Join(work, "up.bin"), base+"/a.bin")
	sameFile(t, filepath.Join(f.Root, "a.bin"), data)
	// One curl, four downloads: the control connection is reused, and each
	// data connection must resume the control session.
	args := []string{"-sS", "--ssl-reqd", "--cacert", cert, "-u", "u:pw"}
	for i := 0; i < 4; i++ {
		args = append(args, base+"/a.bin", "-o", filepath.Join(work, fmt.Sprintf("d%d.bin", i)))
	}
	run(t, curl, args...)
	for i := 0; i < 4; i++ {
		sameFile(t, filepath.Join(work, fmt.Sprintf("d%d.bin", i)), data)
	}
	out := run(t, curl, "-sS", "--cacert", cert, "-u", "u:pw", "ftps://"+f.Implicit+"/")
	if !strings.Contains(out, "a.bin") {
		t.Fatalf("implicit TLS listing: %q", out)
	}
	// In the clear: refused (530 to USER).
	cmd := exec.Command(curl, "-sS", "-u", "u:pw", base+"/")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("clear login accepted: %s", out)
	}
}

// TestFTPSLftp: lftp with ftp:ssl-force and protected data, the
// certificate verified, a mirror both ways.
func TestFTPSLftp(t *testing.T) {
	lftp := need(t, "lftp")
	f, cert := startFTPS(t)
	work := t.TempDir()
	want := map[string][]byte{}
	for i, n := range []int{10, 70000, 2 << 20} {
		rel := fmt.Sprintf("tree/d%d/f%d", i%2, i)
		want[rel] = randFile(t, work, rel, n)
	}
	script := strings.Join([]string{
		"set cmd:fail-exit yes", "set net:max-retries 1", "set net:timeout 10",
		"set ftp:ssl-force yes", "set ftp:ssl-protect-data yes", "set ftp:ssl-protect-list yes",
		"set ssl:ca-file " + cert,
		"open -u u,pw ftp://" + f.Addr,
		"mirror -R " + filepath.Join(work, "tree") + " up",
		"mirror up " + filepath.Join(work, "back"),
		"cls -1 up",
	}, "; ")
	out := run(t, lftp, "-c", script)
	if !strings.Contains(out, "d0") {
		t.Fatalf("lftp cls: %q", out)
	}
	for rel, b := range want {
		sameFile(t, filepath.Join(f.Root, "up", strings.TrimPrefix(rel, "tree/")), b)
		sameFile(t, filepath.Join(work, "back", strings.TrimPrefix(rel, "tree/")), b)
	}
}

const ftplibScript = `
import ftplib, ssl, sys, io
host, port, cafile, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

class Resuming(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control session."""
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size

ctx = ssl.create_default_context(cafile=cafile)
cls = Resuming if mode == "resume" else ftplib.FTP_TLS
f = cls(context=ctx, timeout=10)
f.connect(host, port)
f.login("u", "pw")
f.prot_p()
data = b"python ftplib over TLS\n" * 5000
f.storbinary("STOR py.bin", io.BytesIO(data))
for i in range(5):
    got = io.BytesIO()
    f.retrbinary("RETR py.bin", got.write)
    assert got.getvalue() == data, "content differs"
print(len(f.nlst()), "names")
f.quit()
`

// TestFTPSPythonFtplib: Python's ftplib made to resume passes with the
// reuse requirement on; stock ftplib (which cannot resume) is refused with
// a 522 that names the setting, and passes with --tls-session-reuse off.
func TestFTPSPythonFtplib(t *testing.T) {
	py := pythonWith(t, "ftplib, ssl")
	f, cert := startFTPS(t)
	host, port, _ := strings.Cut(f.Addr, ":")
	if out := run(t, py, "-c", ftplibScript, host, port, cert, "resume"); !strings.Contains(out, "names") {
		t.Fatalf("resuming ftplib: %q", out)
	}
	cmd := exec.Command(py, "-c", ftplibScript, host, port, cert, "stock")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err == nil {
		t.Fatal("stock ftplib (no resumption) was accepted with the reuse requirement on")
	}
	// ftplib fails on the data connection's TLS alert, or, when the
	// reply wins the race, on the 522 that names the setting; the log
	// names it either way.
	if e := errb.String(); !strings.Contains(e, "SSL") && !(strings.Contains(e, "522") && strings.Contains(e, "tls_session_reuse")) {
		t.Fatalf("stock ftplib failed for another reason:\n%s", errb.String())
	}
	if !strings.Contains(f.stderr.String(), "tls_session_reuse") {
		t.Fatalf("no log line names the setting:\n%s", f.stderr)
	}

	lax, cert2 := startFTPS(t, "--tls-session-reuse", "off")
	host, port, _ = strings.Cut(lax.Addr, ":")
	if out := run(t, py, "-c", ftplibScript, host, port, cert2, "stock"); !strings.Contains(out, "names") {
		t.Fatalf("stock ftplib with reuse off: %q", out)
	}
}

// TestFerryClientFTPS: the ferry command against ferry serve over explicit
// and implicit TLS, the certificate pinned by the fingerprint the server
// printed, or trusted from its file; a wrong pin and an unknown
// certificate are network errors (exit 3) that name the fingerprint.
func TestFerryClientFTPS(t *testing.T) {
	f, cert := startFTPS(t)
	if len(f.FP) != 95 {
		t.Fatalf("ferry serve printed no fingerprint: %q", f.FP)
	}
	work := t.TempDir()
	data := randFile(t, work, "x.bin", 5<<20)
	exp, imp := "ftpes://u:pw@"+f.Addr, "ftps://u:pw@"+f.Implicit
	run(t, ferryBin, "put", "--fingerprint", f.FP, filepath.Join(work, "x.bin"), exp+"/")
	sameFile(t, filepath.Join(f.Root, "x.bin"), data)
	run(t, ferryBin, "get", "--ca-file", cert, imp+"/x.bin", filepath.Join(work, "y.bin"))
	sameFile(t, filepath.Join(work, "y.bin"), data)
	out := run(t, ferryBin, "mirror", "-P", "4", "--fingerprint", strings.ReplaceAll(f.FP, ":", ""), exp+"/", filepath.Join(work, "m"))
	if !strings.Contains(out, "op=mirror files=1 ") {
		t.Fatalf("mirror over TLS: %q", out)
	}
	wrong := strings.Repeat("AB:", 31) + "AB"
	for _, args := range [][]string{{"ls", "--fingerprint", wrong, exp + "/"}, {"ls", imp + "/"}} {
		code, errOut := runCode(t, ferryBin, args...)
		if code != 3 || !strings.Contains(errOut, f.FP) {
			t.Fatalf("%v: exit %d, %q (want 3 and the fingerprint %s)", args, code, errOut, f.FP)
		}
	}
}

// TestCertificateReload: SIGHUP rereads the certificate; new connections
// get the new one, a session already open keeps working.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certA, keyA, _, _ := testCert(t)
	certB, keyB, _, _ := testCert(t)
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(to, b, 0o600)
	}
	copyFile(certA, cert)
	copyFile(keyA, key)
	root := t.TempDir()
	f := startFerry(t, "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--user", "u", "--password", "pw", "--root", root)
	fpA := f.FP
	old, err := client.Dial(context.Background(), f.Addr, &client.Config{User: "u", Password: "pw", TLS: &tls.Config{InsecureSkipVerify: true}, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	copyFile(certB, cert)
	copyFile(keyB, key)
	f.cmd.Process.Signal(syscall.SIGHUP)
	// The reload is logged; wait for that line (the server's own output).
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(f.stderr.String(), "TLS certificate reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", f.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, errOut := runCode(t, ferryBin, "ls", "--fingerprint", fpA, "ftpes://u:pw@"+f.Addr+"/")
	if code != 3 || strings.Contains(errOut, fpA+" ") {
		t.Fatalf("after SIGHUP the old certificate is still served: %d %q", code, errOut)
	}
	if _, err := old.List(context.Background(), "/"); err != nil {
		t.Fatalf("the session open before SIGHUP: %v", err)
	}
}

// TestServeConfigTLS drives the configuration file's TLS keys through
// ferry serve: a [[listener]] that requires TLS beside a plain one, and
// tls_client_ca with a user whose client certificate alone logs in.
func TestServeConfigTLS(t *testing.T) {
	dir := t.TempDir()
	ca, _ := ftptest.TLS(t)
	write := func(name string, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", "CERTIFICATE", ca.Certificates[0].Certificate[0])
	cc := ftptest.ClientCert(t, ca, "alice")
	kder, _ := x509.MarshalECPrivateKey(cc.PrivateKey.(*ecdsa.PrivateKey))
	certFile, keyFile := write("alice.pem", "CERTIFICATE", cc.Certificate[0]), write("alice-key.pem", "EC PRIVATE KEY", kder)

	users := filepath.Join(dir, "users.toml")
	os.MkdirAll(filepath.Join(dir, "home"), 0o755)
	for _, name := range []string{"alice", "bob"} {
		ferryUser(t, users, "pw", "add", name, "--home", "home")
	}
	b, err := os.ReadFile(users)
	if err != nil || !bytes.Contains(b, []byte(`name = "alice"`)) {
		t.Fatalf("users file: %v\n%s", err, b)
	}
	b = bytes.Replace(b, []byte(`name = "alice"`), []byte(`name = "alice"`+"\nclient_cert = \"login\""), 1)
	os.WriteFile(users, b, 0o600)
	conf := filepath.Join(dir, "ferry.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("users = %q\ntls_client_ca = %q\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = \"required\"\n", users, caFile)), 0o600)

	srv := startFerry(t, "127.0.0.1:0", "--config", conf)
	if len(srv.Others) != 1 {
		t.Fatalf("no [[listener]] address printed:\n%s", srv.stderr)
	}
	req := srv.Others[0]
	// The plain listener takes bob's clear login; the [[listener]]
	// refuses it. alice, a certificate user, needs TLS everywhere.
	run(t, ferryBin, "ls", "ftp://bob:pw@"+srv.Addr+"/")
	for _, u := range []string{"ftp://bob:pw@" + req + "/", "ftp://alice:pw@" + srv.Addr + "/"} {
		if code, errOut := runCode(t, ferryBin, "ls", u); code != 4 {
			t.Fatalf("%s: exit %d, %q", u, code, errOut)
		}
	}
	// Over TLS with alice's certificate the password is not even asked:
	// a wrong one in the URL does not matter (USER gets 232).
	tlsArgs := []string{"--fingerprint", srv.FP, "--client-cert", certFile, "--client-key", keyFile, "-v"}
	cmd := exec.Command(ferryBin, append(append([]string{"ls"}, tlsArgs...), "ftpes://alice:wrong@"+req+"/")...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil || !strings.Contains(errb.String(), "< 232 ") || strings.Contains(errb.String(), "> PASS") {
		t.Fatalf("login by certificate: %v\n%s", err, errb.String())
	}
	// Without the certificate the wrong password is refused.
	if code, _ := runCode(t, ferryBin, "ls", "--fingerprint", srv.FP, "ftpes://alice:wrong@"+req+"/"); code != 4 {
		t.Fatalf("wrong password without a certificate: exit %d", code)
	}
}
