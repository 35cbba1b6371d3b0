package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftptest"
)

// testCert writes ftptest's self-signed certificate (for 127.0.0.1) as
// PEM: the certificate, its key, and both in one file; it returns the paths
// and a pool that trusts it.
func testCert(t *testing.T) (certFile, keyFile, bothFile string, pool *x509.CertPool) {
	t.Helper()
	conf, pool := ftptest.TLS(t)
	kder, err := x509.MarshalECPrivateKey(conf.Certificates[0].PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	cp := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: conf.Certificates[0].Certificate[0]})
	kp := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	certFile, keyFile, bothFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "both.pem")
	os.WriteFile(certFile, cp, 0o644)
	os.WriteFile(keyFile, kp, 0o600)
	os.WriteFile(bothFile, append(append([]byte{}, cp...), kp...), 0o600)
	return certFile, keyFile, bothFile, pool
}

// TestClientTLSAgainstPeers: explicit TLS with PROT P against servers that
// require TLS for login and data, vsftpd among them with require_ssl_reuse
// (every data connection must resume the control connection's session);
// many data connections in a row; the certificate verified against a CA
// pool, refused without it (naming the fingerprint), accepted by the
// command with --insecure.
func TestClientTLSAgainstPeers(t *testing.T) {
	certFile, keyFile, bothFile, pool := testCert(t)
	peers := []struct {
		name  string
		start func(t *testing.T) *peer
	}{
		{"pyftpdlib", func(t *testing.T) *peer { return startPyftpdlibWith(t, "127.0.0.1", 52700, bothFile) }},
		{"pure-ftpd", func(t *testing.T) *peer {
			return startPureFTPdWith(t, "127.0.0.1", 52800, "-Y", "3", "-2", certFile+","+keyFile)
		}},
		{"ProFTPD", func(t *testing.T) *peer {
			return startProFTPDWith(t, "127.0.0.1", 53000, func(modules string) string {
				if _, err := os.Stat(filepath.Join(modules, "mod_tls.so")); err != nil {
					if os.Getenv("FERRY_INTEROP") == "1" {
						t.Fatalf("ProFTPD mod_tls (Debian package proftpd-mod-crypto) is required: %v", err)
					}
					t.Skip("ProFTPD mod_tls not installed")
				}
				// mod_tls requires data connections to resume the control
				// session by default (no NoSessionReuseRequired).
				return "ModulePath " + modules + "\nLoadModule mod_tls.c\nTLSEngine on\nTLSRequired on\n" +
					"TLSProtocol TLSv1.2 TLSv1.3\nTLSECCertificateFile " + certFile + "\nTLSECCertificateKeyFile " + keyFile + "\n" +
					"TLSLog " + filepath.Join(filepath.Dir(certFile), "tls.log") + "\n"
			})
		}},
		{"vsftpd", func(t *testing.T) *peer {
			return startVsftpdWith(t, "127.0.0.1", 52900, "ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=YES\n"+
				"force_anon_data_ssl=YES\nrequire_ssl_reuse=YES\nrsa_cert_file="+certFile+"\nrsa_private_key_file="+keyFile+"\n")
		}},
	}
	for _, pp := range peers {
		t.Run(pp.name, func(t *testing.T) {
			p := pp.start(t)
			ctx := context.Background()
			// In the clear: refused, as the server requires TLS.
			if _, err := client.Dial(ctx, p.addr, &client.Config{User: p.user, Password: p.pass, Timeout: 10 * time.Second}); err == nil {
				t.Fatal("login in the clear accepted: the server is not requiring TLS")
			}
			for _, active := range []bool{false, true} {
				var tr bytes.Buffer
				c := p.dial(t, client.Config{Active: active, Transcript: &tr, TLS: &tls.Config{RootCAs: pool}})
				data := randBytes(1<<20 + 3)
				name := p.base + "/tls.bin"
				if _, err := c.Store(ctx, name, bytes.NewReader(data), nil); err != nil {
					t.Fatalf("active=%v: Store: %v\n%s", active, err, tr.String())
				}
				if _, err := c.Store(ctx, p.base+"/empty.bin", strings.NewReader(""), nil); err != nil {
					t.Fatalf("empty Store: %v", err)
				}
				for i := 0; i < 12; i++ {
					d, err := c.Retrieve(ctx, name, nil)
					if err != nil {
						t.Fatalf("active=%v: Retrieve %d: %v\n%s", active, i, err, tr.String())
					}
					got, err := io.ReadAll(d)
					d.Close()
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("active=%v: Retrieve %d: %d bytes, %v", active, i, len(got), err)
					}
					if _, err := c.List(ctx, p.base); err != nil {
						t.Fatalf("List %d: %v", i, err)
					}
				}
				if !strings.Contains(tr.String(), "> AUTH TLS") || !strings.Contains(tr.String(), "> PROT P") {
					t.Fatalf("no AUTH TLS / PROT P in the transcript:\n%s", tr.String())
				}
				c.Delete(ctx, name)
			}
			if pp.name == "vsftpd" || pp.name == "ProFTPD" {
				// The reuse requirement is live: a client that cannot resume
				// the control session gets no data connection.
				c := p.dial(t, client.Config{TLS: &tls.Config{RootCAs: pool, ClientSessionCache: forgetful{}}})
				if _, err := c.List(ctx, p.base); err == nil {
					t.Fatalf("%s accepted a data connection that did not resume the session", pp.name)
				}
			}
			// An unknown certificate: refused, with its fingerprint.
			_, err := client.Dial(ctx, p.addr, &client.Config{User: p.user, Password: p.pass, TLS: &tls.Config{}, Timeout: 10 * time.Second})
			if err == nil || !strings.Contains(err.Error(), "SHA-256 fingerprint") {
				t.Fatalf("self-signed certificate without a CA: %v", err)
			}
			// The command: --insecure accepts it, without it exit code 3.
			work := t.TempDir()
			os.WriteFile(filepath.Join(work, "up.bin"), randBytes(300000), 0o644)
			u := "ftpes://" + p.user + ":" + p.pass + "@" + p.addr + "/" + strings.TrimPrefix(p.base+"/cli.bin", "/")
			out := run(t, ferryBin, "put", "--insecure", filepath.Join(work, "up.bin"), u)
			if !strings.HasPrefix(out, "op=put bytes=300000 ") {
				t.Fatalf("ferry put ftpes://: %q", out)
			}
			run(t, ferryBin, "get", "--insecure", u, filepath.Join(work, "down.bin"))
			sameFile(t, filepath.Join(work, "down.bin"), randBytes(300000))
			code, errOut := runCode(t, ferryBin, "ls", u)
			if code != 3 || !strings.Contains(errOut, "fingerprint") {
				t.Fatalf("ls without --insecure: exit %d, %q", code, errOut)
			}
		})
	}
}

// runCode runs a command and returns its exit code and stderr.
func runCode(t *testing.T, name string, args ...string) (int, string) {
	t.Helper()
	cmd := execCommand(name, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cmd.ProcessState.ExitCode(), errb.String()
}

func execCommand(name string, args ...string) *exec.Cmd {
	return exec.Command(name, args...)
}

// forgetful is a TLS session cache that keeps nothing.
type forgetful struct{}

func (forgetful) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (forgetful) Put(string, *tls.ClientSessionState)        {}
