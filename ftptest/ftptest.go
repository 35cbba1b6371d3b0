// Package ftptest runs a Ferry server in-process for tests, on 127.0.0.1:0
// (or ::1), and speaks raw FTP to it: the model is net/http/httptest.
package ftptest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/memfs"
)

// Users of a test server: alice may write, bob may only read. Both have the
// password Password.
const (
	Writer   = "alice"
	Reader   = "bob"
	Password = "secret"
)

// Server is a running test server.
type Server struct {
	*server.Server
	Addr string     // host:port of the control listener
	FS   storage.FS // the users' root
	// FXP is given to alice's account.
	FXP []netip.Prefix
}

// Options configure NewServer.
type Options struct {
	FS      storage.FS             // default: a new memfs
	Network string                 // "tcp4" (default) or "tcp6"
	Addr    string                 // listen address; default 127.0.0.1:0 or [::1]:0 by Network
	Config  func(s *server.Server) // changes server options before Serve
	Logger  *slog.Logger           // default: discard
	// Implicit serves implicit TLS (ServeTLS); Config must set Server.TLS.
	Implicit bool
	// Account, when set, adjusts each account at login.
	Account func(a *auth.Account)
}

// NewServer starts a server that stops when the test ends.
func NewServer(t testing.TB, o Options) *Server {
	t.Helper()
	if o.FS == nil {
		o.FS = memfs.New()
	}
	addr := "127.0.0.1:0"
	if o.Network == "tcp6" {
		addr = "[::1]:0"
	}
	if o.Addr != "" {
		addr = o.Addr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		Missing(t, "cannot listen on %s: %v", addr, err)
	}
	ts := &Server{Addr: ln.Addr().String(), FS: o.FS}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ts.Server = &server.Server{
		Logger:  logger,
		Options: server.Options{LoginFailDelay: -1},
		Auth: auth.Func(func(ctx context.Context, c auth.ConnInfo, user, pass string) (*auth.Account, error) {
			if pass != Password {
				return nil, auth.ErrBadCredentials
			}
			var a *auth.Account
			switch user {
			case Writer:
				a = &auth.Account{User: user, FS: o.FS, Perms: auth.Permissions{Write: true, FXP: ts.FXP}}
			case Reader:
				a = &auth.Account{User: user, FS: o.FS}
			default:
				return nil, auth.ErrBadCredentials
			}
			if o.Account != nil {
				o.Account(a)
			}
			return a, nil
		}),
	}
	if o.Config != nil {
		o.Config(ts.Server)
	}
	done := make(chan struct{})
	go func() {
		if o.Implicit {
			ts.ServeTLS(ln)
		} else {
			ts.Serve(ln)
		}
		close(done)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ts.Shutdown(ctx)
		<-done
	})
	return ts
}

// Conn is a raw control connection.
type Conn struct {
	t testing.TB
	C net.Conn
	R *bufio.Reader
}

// Dial connects to the server and reads the greeting.
func (s *Server) Dial(t testing.TB) *Conn {
	t.Helper()
	c := Dial(t, s.Addr)
	if code, _ := c.Read(); code != 220 {
		t.Fatalf("greeting: got %d", code)
	}
	return c
}

// WithT sets the test that failures are reported to (for a Conn built by
// hand around a net.Conn).
func (c *Conn) WithT(t testing.TB) *Conn {
	c.t = t
	return c
}

// Dial connects to addr without reading anything.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	return DialFrom(t, addr, "")
}

// DialFrom is Dial from the local address from (such as 127.0.0.2;
// empty lets the system choose).
func DialFrom(t testing.TB, addr, from string) *Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &Conn{t: t, C: nc, R: bufio.NewReader(nc)}
}

// Login logs in as user with Password and sets TYPE I, as every real
// client does before a binary transfer (a session starts in TYPE A, RFC
// 959 3.1.1.1). LoginASCII leaves the default.
func (c *Conn) Login(user string) *Conn {
	c.t.Helper()
	c.LoginASCII(user)
	c.Expect("TYPE I", 200)
	return c
}

// LoginASCII logs in as user with Password and leaves the session's
// representation type at its default, ASCII.
func (c *Conn) LoginASCII(user string) *Conn {
	c.t.Helper()
	c.Expect("USER "+user, 331)
	c.Expect("PASS "+Password, 230)
	return c
}

// Send writes one command line.
func (c *Conn) Send(line string) {
	c.t.Helper()
	c.C.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.C, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

// ReadRaw reads one reply and returns its lines, without CRLF, as sent.
func (c *Conn) ReadRaw() []string {
	c.t.Helper()
	lines, err := ReadReply(c.R, c.C, 10*time.Second)
	if err != nil {
		c.t.Fatalf("read reply: %v (so far %q)", err, lines)
	}
	return lines
}

// ReadReply reads one reply of RFC 959 §4.2 from r.
func ReadReply(r *bufio.Reader, c net.Conn, timeout time.Duration) ([]string, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	var lines []string
	first := ""
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return lines, err
		}
		l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		lines = append(lines, l)
		if first == "" {
			if len(l) < 4 {
				return lines, fmt.Errorf("short reply line %q", l)
			}
			first = l
			if l[3] != '-' {
				return lines, nil
			}
			continue
		}
		if len(l) >= 4 && l[:3] == first[:3] && l[3] == ' ' {
			return lines, nil
		}
	}
}

// Read reads one reply and returns its code and its text (lines joined by
// "\n", codes stripped from the first and last line).
func (c *Conn) Read() (int, string) {
	c.t.Helper()
	lines := c.ReadRaw()
	code, _ := strconv.Atoi(lines[0][:3])
	var text []string
	for i, l := range lines {
		if i == 0 || i == len(lines)-1 && len(lines) > 1 {
			l = l[4:]
		}
		text = append(text, l)
	}
	return code, strings.Join(text, "\n")
}

// Cmd sends a command and reads its reply.
func (c *Conn) Cmd(line string) (int, string) {
	c.t.Helper()
	c.Send(line)
	return c.Read()
}

// Expect sends a command and fails the test unless the reply has code.
func (c *Conn) Expect(line string, code int) string {
	c.t.Helper()
	got, text := c.Cmd(line)
	if got != code {
		c.t.Fatalf("%s: got %d %q, want %d", line, got, text, code)
	}
	return text
}

// Passive sends EPSV and connects to the port it names.
func (c *Conn) Passive() net.Conn {
	c.t.Helper()
	text := c.Expect("EPSV", 229)
	port, err := ftp.ParseEPSV(text)
	if err != nil {
		c.t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(c.C.RemoteAddr().String())
	return c.dialData(net.JoinHostPort(host, strconv.Itoa(int(port))))
}

// PASV sends PASV and connects to the address it names.
func (c *Conn) PASV() net.Conn {
	c.t.Helper()
	text := c.Expect("PASV", 227)
	ap, err := ftp.ParsePASV(text)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.dialData(ap.String())
}

// dialData opens a data connection to addr, closed when the test ends.
func (c *Conn) dialData(addr string) net.Conn {
	c.t.Helper()
	d, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { d.Close() })
	return d
}

// Active listens on the control connection's local address and sends EPRT
// (or PORT with port true) for it. Accept the data connection from the
// returned listener after sending the transfer command.
func (c *Conn) Active(usePORT bool) net.Listener {
	c.t.Helper()
	host, _, _ := net.SplitHostPort(c.C.LocalAddr().String())
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { ln.Close() })
	ap := netip.MustParseAddrPort(ln.Addr().String())
	if usePORT {
		arg, err := ftp.FormatPORT(ap)
		if err != nil {
			c.t.Fatal(err)
		}
		c.Expect("PORT "+arg, 200)
	} else {
		c.Expect("EPRT "+ftp.FormatEPRT(ap), 200)
	}
	return ln
}

// Accept accepts one data connection within a deadline.
func Accept(t testing.TB, ln net.Listener) net.Conn {
	t.Helper()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	d, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// ReadAll reads a data connection to its end within a deadline.
func ReadAll(t testing.TB, d net.Conn) []byte {
	t.Helper()
	d.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TLS returns a server TLS configuration with a fresh self-signed ECDSA
// P-256 certificate for 127.0.0.1, ::1 and localhost, and a pool that
// trusts it.
func TLS(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	cert := issue(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "ferry test"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, // also the CA of test client certificates
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &tls.Config{Certificates: []tls.Certificate{cert}}, pool
}

// issue makes a fresh ECDSA P-256 key and a certificate of tmpl for it,
// valid from an hour ago for a day, signed by parent (nil: self-signed).
func issue(t testing.TB, tmpl *x509.Certificate, parent *tls.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	signer, signerKey := tmpl, any(key)
	if parent != nil {
		signer, signerKey = parent.Leaf, parent.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// ClientCert returns a TLS client certificate for name, signed by the
// certificate of a configuration from TLS (which is also a CA).
func ClientCert(t testing.TB, ca *tls.Config, name string) tls.Certificate {
	t.Helper()
	return issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &ca.Certificates[0])
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers, such as a
// server's log or a child process's stderr that a test reads meanwhile.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Interop reports whether FERRY_INTEROP=1: the test run must have every
// tool and capability it uses (CI), so a missing one fails.
func Interop() bool { return os.Getenv("FERRY_INTEROP") == "1" }

// Missing ends a test that lacks a tool or capability of the machine (an
// IPv6 loopback, a second loopback address, a command): it is skipped, or
// under FERRY_INTEROP=1 it fails, so CI cannot silently drop a case.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Interop() {
		t.Fatalf("required (FERRY_INTEROP=1): "+format, args...)
	}
	t.Skipf(format, args...)
}

// NeedIPv6 ends the test through Missing when the machine has no IPv6
// loopback.
func NeedIPv6(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		Missing(t, "no IPv6 loopback: %v", err)
		return
	}
	ln.Close()
}
