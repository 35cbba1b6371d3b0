package main

// PROT P throughput in separate processes: Ferry's FTPS (explicit TLS, PROT
// P, data connections resuming the control session) driven by the client
// library, beside a minimal crypto/tls program doing the same I/O in a
// process of its own (io.Copy between the file and a tls.Conn, TLS 1.3,
// ECDSA P-256 as Ferry's default certificate).

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"time"

	"github.com/ferryftp/ferry/client"
)

// upBuffer is the client's upload buffer on both sides (the client
// library's own).
const upBuffer = 128 << 10

func tlsClient(ctx context.Context) (*client.Client, error) {
	c, err := client.Dial(ctx, *addr, &client.Config{User: *user, Password: *pass,
		TLS: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}})
	if err == nil && *cwd != "" {
		if err = c.ChangeDir(ctx, *cwd); err != nil {
			c.Close()
		}
	}
	return c, err
}

// tlsRetr downloads path over PROT P and discards it.
func tlsRetr(path string, pid int) error {
	return tlsSingle("TLS RETR", pid, func(ctx context.Context, c *client.Client) (int64, error) {
		dl, err := c.Retrieve(ctx, path, nil)
		if err != nil {
			return 0, err
		}
		n, err := discard(dl)
		if cerr := dl.Close(); err == nil {
			err = cerr
		}
		return n, err
	})
}

// tlsStor uploads size bytes over PROT P.
func tlsStor(path string, size int64, pid int) error {
	src, err := source(size)
	if err != nil {
		return err
	}
	defer src.Close()
	return tlsSingle("TLS STOR", pid, func(ctx context.Context, c *client.Client) (int64, error) {
		return c.Store(ctx, path, src, nil)
	})
}

// tlsSingle runs one PROT P transfer on a fresh session and reports it,
// timed from the data connection's setup to the 226.
func tlsSingle(what string, pid int, transfer func(context.Context, *client.Client) (int64, error)) error {
	ctx := context.Background()
	c, err := tlsClient(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	cpu := startCPU(pid)
	start := time.Now()
	n, err := transfer(ctx, c)
	if err != nil {
		return err
	}
	report(what, n, time.Since(start), cpu.used())
	return nil
}

// baselineTLSRetr: the minimal TLS server sends the file; the client
// discards it.
func baselineTLSRetr(file string) error {
	return baseline("baseline TLS RETR (file->tls.Conn)", dialTLS, discardConn, "serve-tls-file", "-file", file)
}

// baselineTLSStor: the client sends size bytes through TLS; the minimal
// server copies them into a new file in dir and closes once it is written.
func baselineTLSStor(dir string, size int64) error {
	src, err := source(size)
	if err != nil {
		return err
	}
	defer src.Close()
	return baseline("baseline TLS STOR (tls.Conn->file)", dialTLS, func(c net.Conn) (int64, error) {
		return uploaded(c, func() (int64, error) {
			return io.CopyBuffer(c, struct{ io.Reader }{src}, make([]byte, upBuffer))
		})
	}, "sink-tls-file", "-dir", dir)
}

func dialTLS(addr string) (net.Conn, error) {
	return tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
}

// tlsListen listens on loopback with a fresh self-signed certificate.
func tlsListen() (net.Listener, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "load"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS13}
	return tls.Listen("tcp", "127.0.0.1:0", conf)
}
