package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestCreateLoadReload(t *testing.T) {
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	c, created, err := LoadOrCreate(cf, kf)
	if err != nil || !created {
		t.Fatalf("first start: %v, created %v", err, created)
	}
	if fi, _ := os.Stat(kf); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode())
	}
	leaf, err := x509.ParseCertificate(c.cur.Load().Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if pk, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pk.Curve != elliptic.P256() {
		t.Fatalf("key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	fp := c.Fingerprint()
	if len(fp) != 95 {
		t.Fatalf("fingerprint %q", fp)
	}
	// Second start: the same certificate.
	c2, created, err := LoadOrCreate(cf, kf)
	if err != nil || created || c2.Fingerprint() != fp {
		t.Fatalf("second start: %v, created %v", err, created)
	}
	// A new pair on disk replaces the one in use at Reload; a broken one
	// leaves it.
	dir2 := t.TempDir()
	other, _, _ := LoadOrCreate(filepath.Join(dir2, "c.pem"), filepath.Join(dir2, "k.pem"))
	b1, _ := os.ReadFile(other.CertFile)
	b2, _ := os.ReadFile(other.KeyFile)
	os.WriteFile(cf, b1, 0o644)
	os.WriteFile(kf, b2, 0o600)
	if err := c.Reload(); err != nil || c.Fingerprint() != other.Fingerprint() {
		t.Fatalf("reload: %v", err)
	}
	os.WriteFile(cf, []byte("garbage"), 0o644)
	if err := c.Reload(); err == nil {
		t.Fatal("reload of garbage succeeded")
	}
	if got, _ := c.GetCertificate(&tls.ClientHelloInfo{}); got == nil || c.Fingerprint() != other.Fingerprint() {
		t.Fatal("a failed reload dropped the certificate in use")
	}
	// One file present, one missing: an error, not a silent new pair.
	os.Remove(kf)
	if _, _, err := LoadOrCreate(cf, kf); err == nil {
		t.Fatal("half a pair accepted")
	}
}
