package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/doctor"
)

// runDoctor runs `ferry doctor --json ARGS` and returns its report and
// exit code.
func runDoctor(t *testing.T, args ...string) (*doctor.Report, int) {
	t.Helper()
	cmd := exec.Command(ferryBin, append([]string{"doctor", "--json"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("doctor took %v (at most 30 s)", d)
	}
	var r doctor.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("doctor %v: %v\n%s\n%s", args, err, out.String(), errOut.String())
	}
	return &r, code
}

// verdicts checks the verdict of each check named in want (and, after a
// "|", that its evidence or fix holds a text).
func verdicts(t *testing.T, r *doctor.Report, want map[string]string) {
	t.Helper()
	for id, w := range want {
		v, text, _ := strings.Cut(w, "|")
		c, ok := r.Get(id)
		switch {
		case !ok:
			t.Errorf("%s: no check %s", r.Target, id)
		case string(c.Verdict) != v:
			t.Errorf("%s: %s is %s (%s; %s), want %s", r.Target, id, c.Verdict, c.Evidence, c.Fix, v)
		case text != "" && !strings.Contains(c.Evidence+" "+c.Fix, text):
			t.Errorf("%s: %s says %q / %q, want %q in it", r.Target, id, c.Evidence, c.Fix, text)
		}
	}
}

// TestDoctorFerry: ferry doctor against Ferry, healthy (explicit TLS with
// the CA, writes), then deliberately wrong: a passive address that does
// not listen, a passive port nothing forwards, a self-signed certificate
// clients do not have, TLS session reuse required.
func TestDoctorFerry(t *testing.T) {
	certFile, keyFile, _, _ := testCert(t)
	ftp := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	root := t.TempDir()
	f := startFerry(t, ftp, "--tls-cert", certFile, "--tls-key", keyFile, "--user", "u", "--password", "pw", "--root", root)
	r, code := runDoctor(t, "--ca-file", certFile, "--write", "/", "--speed", "--from", "127.0.0.4", "ftpes://u:pw@"+ftp+"/")
	// Bounded in connections: the main session and one each for the TLS
	// versions, HOST, anonymous and the clear-text login.
	if n := strings.Count(f.stderr.String(), `msg="session start"`); n > 5 {
		t.Errorf("the doctor opened %d control connections", n)
	}
	verdicts(t, r, map[string]string{
		"connect": "ok", "greeting": "ok", "tls.auth": "ok", "tls.cert": "warning|days left", "tls.versions": "ok",
		"login": "ok", "tls.protp": "ok", "feat": "ok", "feat.mlsd": "ok", "feat.rest": "ok", "feat.utf8": "ok", "feat.host": "ok",
		"pasv.address": "ok", "pasv.connect": "ok", "epsv": "ok", "active": "ok", "active.port": "ok",
		"tls.reuse": "warning|ftplib", "sec.anonymous": "ok", "sec.cleartext": "warning", "sec.bounce": "ok", "sec.theft": "ok|127.0.0.4",
		"write.upload": "ok", "write.resume": "ok", "write.rename": "ok", "write.download": "ok", "write.hash": "ok", "write.delete": "ok",
		"speed": "ok|16 MiB up at", "tls.ccc": "ok",
	})
	if code != 0 || r.Problems() != 0 {
		t.Errorf("healthy Ferry: exit %d, %d problems", code, r.Problems())
	}
	if left, _ := os.ReadDir(root); len(left) != 0 {
		t.Errorf("the writes left %d files behind: %v", len(left), left[0].Name())
	}
	if !strings.Contains(r.Flags["python"], "session") || !strings.Contains(r.Flags["curl"], "--ssl-reqd --cacert "+certFile) || !strings.Contains(r.Flags["ferry"], "--ca-file") {
		t.Errorf("flags: %v", r.Flags)
	}
	// The same server without its CA: a self-signed certificate is a
	// problem, and the flags say how clients trust it.
	r, code = runDoctor(t, "ftpes://u:pw@"+ftp+"/")
	verdicts(t, r, map[string]string{"tls.cert": "problem|self-signed", "login": "ok"})
	if code != 1 || !strings.Contains(r.Flags["ferry"], "--fingerprint") || !strings.Contains(r.Flags["rclone"], "--ftp-no-check-certificate") {
		t.Errorf("self-signed: exit %d, flags %v", code, r.Flags)
	}
	// TLS required, and an implicit-TLS listener: ftps:// is diagnosed
	// through it, a login in the clear is refused (good), and ftp://
	// alone cannot log in (a problem that names ftpes://).
	fs, fsCert := startFTPS(t)
	r, code = runDoctor(t, "--ca-file", fsCert, "ftps://u:pw@"+fs.Implicit+"/")
	verdicts(t, r, map[string]string{"tls.auth": "ok|TLS 1.3", "tls.cert": "ok", "login": "ok", "tls.protp": "ok", "pasv.connect": "ok", "active": "ok"})
	if code != 0 {
		t.Errorf("implicit TLS: exit %d", code)
	}
	r, _ = runDoctor(t, "--ca-file", fsCert, "ftpes://u:pw@"+fs.Addr+"/")
	verdicts(t, r, map[string]string{"sec.cleartext": "ok|refused", "login": "ok"})
	r, code = runDoctor(t, "ftp://u:pw@"+fs.Addr+"/")
	verdicts(t, r, map[string]string{"login": "problem|ftpes://"})
	if code != 1 {
		t.Errorf("a login refused: exit %d", code)
	}
	// Session reuse not required: every client works.
	ftp2 := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	startFerry(t, ftp2, "--tls-cert", certFile, "--tls-key", keyFile, "--tls-session-reuse=false", "--user", "u", "--password", "pw", "--root", t.TempDir())
	r, _ = runDoctor(t, "--ca-file", certFile, "ftpes://u:pw@"+ftp2+"/")
	verdicts(t, r, map[string]string{"tls.reuse": "ok"})
}

// TestDoctorPassiveMistakes: a public_host of 127.0.0.2 on a server that
// listens on 127.0.0.1 only (the 227 address does not accept), and a
// server behind a forwarder of the control port alone (the passive port
// is closed where the client connects: the firewall mistake).
func TestDoctorPassiveMistakes(t *testing.T) {
	ftp := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	startFerry(t, ftp, "--public-host", "127.0.0.2", "--user", "u", "--password", "pw", "--root", t.TempDir())
	r, code := runDoctor(t, "ftp://u:pw@"+ftp+"/")
	verdicts(t, r, map[string]string{"pasv.address": "problem|127.0.0.2", "pasv.connect": "ok", "active": "ok"})
	if code != 1 || !strings.Contains(r.Flags["lftp"], "ignore-pasv-address") {
		t.Errorf("wrong public_host: exit %d, flags %v", code, r.Flags)
	}

	// A forwarder on 127.0.0.5 carries the control connection only.
	ftp2 := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	startFerry(t, ftp2, "--user", "u", "--password", "pw", "--root", t.TempDir())
	fwd := forward(t, "127.0.0.5", "", ftp2)
	r, code = runDoctor(t, "ftp://u:pw@"+fwd+"/")
	verdicts(t, r, map[string]string{"pasv.connect": "problem|firewall", "epsv": "problem", "active": "ok"})
	if code != 1 || !strings.Contains(r.Flags["curl"], "--ftp-port") || !strings.Contains(r.Flags["ferry"], "--active") {
		t.Errorf("passive port closed: exit %d, flags %v", code, r.Flags)
	}
	// The same, but the server sees the client as another address (a
	// NAT): it refuses EPRT and PORT to the client's own, and no mode
	// works.
	r, _ = runDoctor(t, "ftp://u:pw@"+forward(t, "127.0.0.5", "127.0.0.6", ftp2)+"/")
	verdicts(t, r, map[string]string{"pasv.connect": "problem", "active": "warning|EPRT", "active.port": "warning|PORT"})
}

// forward listens on host and copies each connection to and from to,
// both ways, connecting from the address from when set: a balancer or NAT
// that forwards the control port alone.
func forward(t *testing.T, host, from, to string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				d := net.Dialer{}
				if from != "" {
					d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
				}
				s, err := d.Dial("tcp", to)
				if err != nil {
					return
				}
				defer s.Close()
				go io.Copy(s, c)
				io.Copy(c, s)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestDoctorPeers: ferry doctor against vsftpd, pure-ftpd and ProFTPD as
// the integration suite configures them (FXP open to everyone, which the
// doctor finds: PORT to a third address, and passive data from another
// address, are problems), and vsftpd with its own defaults there
// (port_promiscuous and pasv_promiscuous off: both ok). Each check's
// verdict is asserted.
func TestDoctorPeers(t *testing.T) {
	healthy := map[string]string{
		"connect": "ok", "greeting": "ok", "login": "ok", "feat": "ok", "feat.mlsd": "ok", "feat.rest": "ok",
		"pasv.address": "ok", "pasv.connect": "ok", "pasv.range": "ok", "epsv": "ok", "active": "ok", "active.port": "ok",
		"sec.bounce": "problem|accepted", "sec.theft": "problem|from 127.0.0.2",
		"write.upload": "ok", "write.resume": "ok", "write.rename": "ok", "write.download": "ok", "write.delete": "ok",
	}
	for _, ps := range peerStarters {
		if ps.name == "pyftpdlib" {
			continue
		}
		t.Run(ps.name, func(t *testing.T) {
			p := ps.start(t, "127.0.0.1", ps.pasv+50)
			want := maps.Clone(healthy)
			maps.Copy(want, peerDoctor[ps.name])
			doctorPeer(t, p, want)
		})
	}
	t.Run("vsftpd strict", func(t *testing.T) {
		p := startVsftpdWith(t, "127.0.0.1", 52280, "port_promiscuous=NO\npasv_promiscuous=NO\n")
		want := maps.Clone(healthy)
		maps.Copy(want, peerDoctor["vsftpd"])
		want["sec.bounce"], want["sec.theft"] = "ok|refused", "ok"
		doctorPeer(t, p, want)
	})
}

// doctorPeer runs the doctor with writes against p and checks want.
func doctorPeer(t *testing.T, p *peer, want map[string]string) {
	t.Helper()
	r, code := runDoctor(t, "--write", p.base, "ftp://"+p.user+":"+p.pass+"@"+p.addr+"/")
	verdicts(t, r, want)
	if (code == 0) != (r.Problems() == 0) {
		t.Errorf("exit %d with %d problems", code, r.Problems())
	}
	if t.Failed() {
		b, _ := json.MarshalIndent(r, "", "  ")
		t.Logf("report:\n%s", b)
	}
}

// peerDoctor are the verdicts that differ between the peers, as they are
// configured for the tests.
var peerDoctor = map[string]map[string]string{
	"vsftpd":    {"sec.anonymous": "skipped", "tls.auth": "warning|no AUTH TLS", "feat.mlsd": "skipped|not in FEAT"},
	"pure-ftpd": {"sec.anonymous": "ok", "tls.auth": "ok", "sec.cleartext": "warning"},
	"ProFTPD":   {"sec.anonymous": "ok"},
}

// TestDoctorIPv6: over IPv6, PASV is skipped (IPv4 only), EPSV and EPRT
// carry the listings, the writes go through EPSV, and nothing is a
// problem.
func TestDoctorIPv6(t *testing.T) {
	f := startFerry(t, "[::1]:0", "--user", "u", "--password", "pw", "--root", t.TempDir())
	r, code := runDoctor(t, "--write", "/", "ftp://u:pw@"+f.Addr+"/")
	verdicts(t, r, map[string]string{"pasv": "skipped|IPv4 only", "epsv": "ok", "active": "ok", "feat.mlsd": "ok",
		"write.upload": "ok", "write.resume": "ok", "write.download": "ok", "write.delete": "ok"})
	if _, ran := r.Get("active.port"); ran || code != 0 {
		t.Errorf("PORT over IPv6 ran: %v; exit %d", ran, code)
	}
}
