// Package tlscert holds a server's TLS certificate: loaded from PEM files,
// created self-signed when the embedded default has none, and reloaded in
// place (on SIGHUP) without touching the connections that use it.
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// Cert is a certificate and key read from two PEM files, replaceable while
// in use.
type Cert struct {
	CertFile, KeyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// Load reads the certificate and key.
func Load(certFile, keyFile string) (*Cert, error) {
	c := &Cert{CertFile: certFile, KeyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadOrCreate loads the pair, or, when neither file exists, creates a
// self-signed ECDSA P-256 certificate for localhost, the loopback addresses
// and this machine's host name, valid for five years. created reports it.
func LoadOrCreate(certFile, keyFile string) (c *Cert, created bool, err error) {
	_, e1 := os.Stat(certFile)
	_, e2 := os.Stat(keyFile)
	if errors.Is(e1, os.ErrNotExist) && errors.Is(e2, os.ErrNotExist) {
		if err := create(certFile, keyFile); err != nil {
			return nil, false, err
		}
		created = true
	}
	c, err = Load(certFile, keyFile)
	return c, created, err
}

// Reload rereads the files; on failure the certificate in use stays.
func (c *Cert) Reload() error {
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s, key %s: %v", c.CertFile, c.KeyFile, err)
	}
	c.cur.Store(&pair)
	return nil
}

// Switch reads another pair of files and uses them from now on; on
// failure the certificate in use stays. Call it from one goroutine (a
// reload), as Reload.
func (c *Cert) Switch(certFile, keyFile string) error {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s, key %s: %v", certFile, keyFile, err)
	}
	c.CertFile, c.KeyFile = certFile, keyFile
	c.cur.Store(&pair)
	return nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (c *Cert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// Fingerprint is the SHA-256 hash of the certificate in use, as colon-
// separated hex pairs (what clients show and pin).
func (c *Cert) Fingerprint() string { return Fingerprint(c.cur.Load().Certificate[0]) }

// Fingerprint is the SHA-256 hash of a DER certificate as colon-separated
// hex pairs, the form `ferry serve` prints and clients pin.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var sb strings.Builder
	for i, b := range sum {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02X", b)
	}
	return sb.String()
}

func create(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return err
	}
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[len(names)-1], Organization: []string{"Ferry FTP server (self-signed)"}},
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	for _, f := range []string{certFile, keyFile} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
