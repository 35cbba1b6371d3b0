package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
)

func tlsServer(t *testing.T, network string, implicit bool, config func(*server.Server)) (*ftptest.Server, *x509.CertPool) {
	t.Helper()
	conf, pool := ftptest.TLS(t)
	srv := ftptest.NewServer(t, ftptest.Options{Network: network, Implicit: implicit, Config: func(s *server.Server) {
		s.TLS = conf
		if config != nil {
			config(s)
		}
	}})
	return srv, pool
}

func tlsClient(t *testing.T, addr string, cfg client.Config) (*client.Client, error) {
	t.Helper()
	if cfg.User == "" {
		cfg.User, cfg.Password = ftptest.Writer, ftptest.Password
	}
	cfg.Timeout = 10 * time.Second
	c, err := client.Dial(context.Background(), addr, &cfg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// TestTLSTransfers: explicit and implicit TLS, TLS 1.2 and 1.3, passive
// and active, IPv4 and IPv6, many protected data connections in a row,
// each resuming the control connection's session as the server requires.
func TestTLSTransfers(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		for _, implicit := range []bool{false, true} {
			srv, pool := tlsServer(t, network, implicit, func(s *server.Server) { s.TLSPolicy = server.TLSRequiredData })
			for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				for _, active := range []bool{false, true} {
					name := network + map[bool]string{false: "/explicit", true: "/implicit"}[implicit] +
						map[uint16]string{tls.VersionTLS12: "/TLS1.2", tls.VersionTLS13: "/TLS1.3"}[version] +
						map[bool]string{false: "/passive", true: "/active"}[active]
					t.Run(name, func(t *testing.T) {
						c, err := tlsClient(t, srv.Addr, client.Config{Active: active, ImplicitTLS: implicit,
							TLS: &tls.Config{RootCAs: pool, MinVersion: version, MaxVersion: version}})
						if err != nil {
							t.Fatal(err)
						}
						ctx := context.Background()
						data := bytes.Repeat([]byte("ferry tls "), 300000)
						p := strings.ReplaceAll(name, "/", "-")
						if _, err := c.Store(ctx, p, bytes.NewReader(data), nil); err != nil {
							t.Fatal(err)
						}
						for i := 0; i < 20; i++ {
							d, err := c.Retrieve(ctx, p, nil)
							if err != nil {
								t.Fatalf("Retrieve %d: %v", i, err)
							}
							got, err := io.ReadAll(d)
							d.Close()
							if err != nil || !bytes.Equal(got, data) {
								t.Fatalf("Retrieve %d: %d bytes, %v", i, len(got), err)
							}
						}
						if es, err := c.List(ctx, "/"); err != nil || len(es) == 0 {
							t.Fatalf("List: %v, %v", es, err)
						}
					})
				}
			}
		}
	}
}

// TestTLSDownloadAbort: PROT P downloads cut short by the client (ABOR
// while the server writes its batched records) leave the session usable,
// and the next download of the file arrives whole.
func TestTLSDownloadAbort(t *testing.T) {
	srv, pool := tlsServer(t, "tcp4", false, nil)
	c, err := tlsClient(t, srv.Addr, client.Config{TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := make([]byte, 16<<20)
	rand.Read(data)
	if _, err := c.Store(ctx, "big", bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		d, err := c.Retrieve(ctx, "big", nil)
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 1<<20)
		if _, err := io.ReadFull(d, head); err != nil || !bytes.Equal(head, data[:len(head)]) {
			t.Fatalf("first MiB: %v", err)
		}
		d.Close() // before the end: ABOR
		d, err = c.Retrieve(ctx, "big", nil)
		if err != nil {
			t.Fatalf("after ABOR: %v", err)
		}
		got, err := io.ReadAll(d)
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("whole download after ABOR: %d bytes, %v", len(got), err)
		}
	}
}

// forgetful is a client session cache that keeps nothing: every data
// connection makes a full handshake.
type forgetful struct{}

func (forgetful) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (forgetful) Put(string, *tls.ClientSessionState)        {}

// stranger resumes with another session than the control connection's:
// it hands out a session saved from a different control connection.
type stranger struct{ other tls.ClientSessionCache }

func (s stranger) Get(key string) (*tls.ClientSessionState, bool) { return s.other.Get(key) }
func (s stranger) Put(string, *tls.ClientSessionState)            {}

// TestTLSSessionReuse: a data connection with a full handshake, or one
// resuming another connection's session, is refused with 522 naming the
// setting; with NoTLSSessionReuse it is accepted. In TLS 1.2 (session IDs
// and tickets) and TLS 1.3 (tickets) alike.
func TestTLSSessionReuse(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) { testTLSSessionReuse(t, v) })
	}
}

func testTLSSessionReuse(t *testing.T, v uint16) {
	srv, pool := tlsServer(t, "tcp4", false, nil)
	ctx := context.Background()
	var tr bytes.Buffer
	c, err := tlsClient(t, srv.Addr, client.Config{Transcript: &tr, TLS: &tls.Config{MinVersion: v, MaxVersion: v, RootCAs: pool, ClientSessionCache: forgetful{}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.List(ctx, "/")
	var fe *client.Error
	if !errors.As(err, &fe) || fe.Code != 522 || !strings.Contains(fe.Msg, "tls_session_reuse") {
		t.Fatalf("full handshake on the data connection: %v", err)
	}
	// A session from another control connection.
	other := tls.NewLRUClientSessionCache(4)
	if _, err := tlsClient(t, srv.Addr, client.Config{TLS: &tls.Config{MinVersion: v, MaxVersion: v, RootCAs: pool, ClientSessionCache: other}}); err != nil {
		t.Fatal(err)
	}
	c2, err := tlsClient(t, srv.Addr, client.Config{TLS: &tls.Config{MinVersion: v, MaxVersion: v, RootCAs: pool, ClientSessionCache: stranger{other}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.List(ctx, "/"); !errors.As(err, &fe) || fe.Code != 522 {
		t.Fatalf("another session's ticket on the data connection: %v", err)
	}

	lax, pool2 := tlsServer(t, "tcp4", false, func(s *server.Server) { s.NoTLSSessionReuse = true })
	c3, err := tlsClient(t, lax.Addr, client.Config{TLS: &tls.Config{MinVersion: v, MaxVersion: v, RootCAs: pool2, ClientSessionCache: forgetful{}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c3.List(ctx, "/"); err != nil {
		t.Fatalf("NoTLSSessionReuse: %v", err)
	}
}

// TestTLSPolicy: USER in the clear is refused when TLS is required; a
// clear data connection is refused with 521 under TLSRequiredData; PBSZ,
// PROT order and levels; AUTH without TLS configured.
func TestTLSPolicy(t *testing.T) {
	srv, _ := tlsServer(t, "tcp4", false, func(s *server.Server) { s.TLSPolicy = server.TLSRequiredData })
	c := srv.Dial(t)
	c.Expect("USER alice", 530)
	c.Expect("PASS secret", 530)
	c.Expect("PBSZ 0", 503)
	c.Expect("PROT P", 503)
	c.Expect("AUTH KERBEROS", 504)
	if !strings.Contains(c.Expect("FEAT", 211), "AUTH TLS") {
		t.Fatal("FEAT does not offer AUTH TLS")
	}

	plain := ftptest.NewServer(t, ftptest.Options{})
	pc := plain.Dial(t)
	pc.Expect("AUTH TLS", 502)
	if strings.Contains(pc.Expect("FEAT", 211), "AUTH") {
		t.Fatal("FEAT offers AUTH TLS without TLS configured")
	}
}

// TestTLSPolicyAfterAuth drives the protocol by hand over TLS: bytes sent
// after AUTH TLS in the clear are not executed; PROT C is refused by the
// data policy, PROT S is not supported, and a transfer before PROT P is
// refused with 521.
func TestTLSPolicyAfterAuth(t *testing.T) {
	srv, pool := tlsServer(t, "tcp4", false, func(s *server.Server) { s.TLSPolicy = server.TLSRequiredData })
	srv.FS.Mkdir(context.Background(), "keep")
	c := srv.Dial(t)
	// AUTH and a DELE-like command in one packet: the second must vanish.
	c.Send("AUTH TLS\r\nRMD keep")
	if code, _ := c.Read(); code != 234 {
		t.Fatalf("AUTH TLS: %d", code)
	}
	tc := tls.Client(c.C, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	sc := (&ftptest.Conn{C: tc, R: bufio.NewReader(tc)}).WithT(t)
	sc.Login(ftptest.Writer)
	sc.Expect("PBSZ 0", 200)
	sc.Expect("PROT S", 536)
	sc.Expect("PROT C", 521)
	sc.Expect("PASV", 227)
	sc.Expect("LIST", 521)
	sc.Expect("PROT P", 200)
	if _, err := srv.FS.Stat(context.Background(), "keep"); err != nil {
		t.Fatalf("the command pipelined behind AUTH TLS ran: %v", err)
	}
}

// TestTLSHandshakeRefusals: TLS 1.0/1.1 and a foreign ALPN protocol are
// refused at the handshake.
func TestTLSHandshakeRefusals(t *testing.T) {
	srv, pool := tlsServer(t, "tcp4", true, nil)
	for name, cfg := range map[string]*tls.Config{
		"TLS 1.1":   {RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
		"ALPN http": {RootCAs: pool, NextProtos: []string{"http/1.1"}},
	} {
		if _, err := tlsClient(t, srv.Addr, client.Config{ImplicitTLS: true, TLS: cfg}); err == nil {
			t.Errorf("%s: handshake accepted", name)
		}
	}
	if _, err := tlsClient(t, srv.Addr, client.Config{ImplicitTLS: true, TLS: &tls.Config{RootCAs: pool, NextProtos: []string{"ftp"}}}); err != nil {
		t.Fatalf("ALPN ftp: %v", err)
	}
}

// TestTLSHostAndSNI: HOST after a handshake must name the TLS server name;
// HOST before AUTH TLS must match the name the handshake asks for.
func TestTLSHostAndSNI(t *testing.T) {
	srv, pool := tlsServer(t, "tcp4", false, nil)
	ctx := context.Background()
	// HOST first, then a handshake for another name: refused by the server
	// (the client is told not to check the certificate's names).
	_, err := client.Dial(ctx, srv.Addr, &client.Config{Host: "localhost", User: ftptest.Writer, Password: ftptest.Password,
		TLS: &tls.Config{InsecureSkipVerify: true, ServerName: "other.example"}, Timeout: 5 * time.Second})
	if err == nil {
		t.Fatal("SNI other.example after HOST localhost accepted")
	}
	// Matching names: fine.
	if _, err := tlsClient(t, srv.Addr, client.Config{Host: "localhost", TLS: &tls.Config{RootCAs: pool, ServerName: "localhost"}}); err != nil {
		t.Fatal(err)
	}
	// Handshake first (SNI localhost), then HOST: must match.
	c := srv.Dial(t)
	c.Expect("AUTH TLS", 234)
	tc := tls.Client(c.C, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	sc := (&ftptest.Conn{C: tc, R: bufio.NewReader(tc)}).WithT(t)
	sc.Expect("HOST other.example", 504)
	sc.Expect("HOST LOCALHOST", 220)
}

// TestTLSPerUser: an account that requires TLS cannot log in without it,
// and its data must be protected, on a server whose own policy is
// optional; an account without session reuse may make full handshakes
// on a server that requires them.
func TestTLSPerUser(t *testing.T) {
	conf, pool := ftptest.TLS(t)
	srv := ftptest.NewServer(t, ftptest.Options{
		Config: func(s *server.Server) { s.TLS = conf },
		Account: func(a *auth.Account) {
			if a.User == ftptest.Writer {
				a.Perms.TLSRequired = true
			} else {
				a.Perms.NoTLSSessionReuse = true
			}
		},
	})
	c := srv.Dial(t)
	c.Expect("USER "+ftptest.Writer, 331)
	c.Expect("PASS "+ftptest.Password, 530)
	srv.Dial(t).Login(ftptest.Reader) // bob needs no TLS

	// alice over TLS, but with PROT C: refused for data.
	cl, err := tlsClient(t, srv.Addr, client.Config{TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := cl.Quote(context.Background(), "PROT C"); err != nil || r.Code != 521 {
		t.Fatalf("PROT C for a TLS-only account: %v, %v", r, err)
	}
	// bob: full handshakes on data connections are fine.
	cb, err := tlsClient(t, srv.Addr, client.Config{User: ftptest.Reader, Password: ftptest.Password,
		TLS: &tls.Config{RootCAs: pool, ClientSessionCache: forgetful{}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cb.List(context.Background(), "/"); err != nil {
		t.Fatalf("bob without session reuse: %v", err)
	}
}

// certAuth adds login by certificate to the test server's authenticator.
type certAuth struct {
	auth.Authenticator
	rule map[string]string // user → auth.Cert*
}

func (c certAuth) AuthenticateCert(ctx context.Context, ci auth.ConnInfo, user string) (*auth.Account, error) {
	if c.rule[user] != auth.CertLogin {
		return nil, auth.ErrBadCredentials
	}
	return c.Authenticate(ctx, ci, user, ftptest.Password)
}

// TestTLSClientCertificates: with client CAs configured, a certificate
// naming a "login" user logs in alone (232); a "required" user needs the
// certificate and the password; a certificate for another name or from
// another CA does not help.
func TestTLSClientCertificates(t *testing.T) {
	conf, pool := ftptest.TLS(t)
	rules := map[string]string{ftptest.Writer: auth.CertLogin, ftptest.Reader: auth.CertRequired}
	srv := ftptest.NewServer(t, ftptest.Options{
		Config: func(s *server.Server) {
			s.TLS = conf.Clone()
			s.TLS.ClientCAs = pool
			s.TLS.ClientAuth = tls.VerifyClientCertIfGiven
			s.Auth = certAuth{s.Auth, rules}
		},
		Account: func(a *auth.Account) { a.Perms.ClientCert = rules[a.User] },
	})
	other, _ := ftptest.TLS(t)
	ctx := context.Background()
	login := func(user, pass string, cert *tls.Certificate) (*client.Client, string, error) {
		cfg := &tls.Config{RootCAs: pool}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		var tr bytes.Buffer
		c, err := client.Dial(ctx, srv.Addr, &client.Config{User: user, Password: pass, TLS: cfg, Transcript: &tr, Timeout: 5 * time.Second})
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, tr.String(), err
	}
	alice, bob := ftptest.ClientCert(t, conf, ftptest.Writer), ftptest.ClientCert(t, conf, ftptest.Reader)
	// alice: certificate alone.
	c, tr, err := login(ftptest.Writer, "not the password", &alice)
	if err != nil || !strings.Contains(tr, "< 232 ") || strings.Contains(tr, "> PASS") {
		t.Fatalf("alice by certificate: %v\n%s", err, tr)
	}
	if _, err := c.List(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	// bob's certificate does not log alice in; a foreign CA's certificate
	// for alice is refused at the handshake or ignored.
	if _, _, err := login(ftptest.Writer, "wrong", &bob); err == nil {
		t.Fatal("bob's certificate logged alice in")
	}
	foreign := ftptest.ClientCert(t, other, ftptest.Writer)
	if _, _, err := login(ftptest.Writer, "wrong", &foreign); err == nil {
		t.Fatal("a certificate from another CA logged alice in")
	}
	// bob: certificate and password.
	if _, _, err := login(ftptest.Reader, ftptest.Password, nil); err == nil {
		t.Fatal("bob logged in without his certificate")
	}
	if _, tr, err := login(ftptest.Reader, ftptest.Password, &bob); err != nil || !strings.Contains(tr, "< 230 ") {
		t.Fatalf("bob with certificate and password: %v\n%s", err, tr)
	}
}

// TestCCC: where allowed, CCC clears the control connection after login
// and commands go on in the clear, data still protected; where not, 533.
func TestCCC(t *testing.T) {
	srv, pool := tlsServer(t, "tcp4", false, func(s *server.Server) { s.AllowCCC = true })
	var tr bytes.Buffer
	c, err := tlsClient(t, srv.Addr, client.Config{ClearControl: true, Transcript: &tr, TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatalf("%v\n%s", err, tr.String())
	}
	ctx := context.Background()
	data := bytes.Repeat([]byte("ccc"), 100000)
	if _, err := c.Store(ctx, "after-ccc", bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		d, err := c.Retrieve(ctx, "after-ccc", nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(d)
		d.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("after CCC: %d bytes", len(got))
		}
	}
	if !strings.Contains(tr.String(), "< 200 Command channel cleared") {
		t.Fatalf("no CCC in the transcript:\n%s", tr.String())
	}
	strict, pool2 := tlsServer(t, "tcp4", false, nil)
	if _, err := tlsClient(t, strict.Addr, client.Config{ClearControl: true, TLS: &tls.Config{RootCAs: pool2}}); err == nil || !strings.Contains(err.Error(), "533") {
		t.Fatalf("CCC where not allowed: %v", err)
	}
}

// TestTLSPerListener: one server, an internal listener where TLS is
// optional and a public one where it is required.
func TestTLSPerListener(t *testing.T) {
	srv, pool := tlsServer(t, "tcp4", false, nil) // server policy: optional
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	required := server.TLSRequired
	go srv.ServeWith(ln, server.ListenerOptions{TLSPolicy: &required})
	srv.Dial(t).Login(ftptest.Writer) // the test server's own listener: clear login fine
	c := ftptest.Dial(t, ln.Addr().String())
	if code, _ := c.Read(); code != 220 {
		t.Fatalf("greeting %d", code)
	}
	c.Expect("USER "+ftptest.Writer, 530)

	// A listener for clients that cannot resume TLS sessions.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	go srv.ServeWith(ln2, server.ListenerOptions{NoTLSSessionReuse: &yes})
	cl, err := tlsClient(t, ln2.Addr().String(), client.Config{TLS: &tls.Config{RootCAs: pool, ClientSessionCache: forgetful{}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.List(context.Background(), "/"); err != nil {
		t.Fatalf("full handshakes on a listener without the reuse rule: %v", err)
	}
	cs, err := tlsClient(t, srv.Addr, client.Config{TLS: &tls.Config{RootCAs: pool, ClientSessionCache: forgetful{}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.List(context.Background(), "/"); err == nil {
		t.Fatal("full handshakes accepted on the server's own listener")
	}
}
