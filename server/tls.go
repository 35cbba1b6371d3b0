package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/ftp"
)

// TLSPolicy says when a session must use TLS (RFC 4217).
type TLSPolicy int

const (
	// TLSOptional offers AUTH TLS (when TLS is configured) without
	// requiring it.
	TLSOptional TLSPolicy = iota
	// TLSRequired refuses USER and PASS on a connection without TLS.
	TLSRequired
	// TLSRequiredData also refuses data connections without PROT P.
	TLSRequiredData
)

func (p TLSPolicy) String() string {
	switch p {
	case TLSRequired:
		return "required"
	case TLSRequiredData:
		return "required-data"
	}
	return "optional"
}

// tlsTicketTag marks the session-ticket entry that binds a ticket to the
// control connection it was issued on.
var tlsTicketTag = []byte("ferry/ctl/1:")

// tlsBase returns the server's TLS configuration, prepared once: TLS 1.2
// at least, ALPN "ftp" (so a client that offers ALPN for another protocol is
// refused: ALPACA), and session ticket keys shared by every connection so a
// data connection can resume the control connection's session.
func (s *Server) tlsBase() *tls.Config {
	s.tlsOnce.Do(func() {
		if s.TLS == nil {
			return
		}
		c := s.TLS.Clone()
		if c.MinVersion < tls.VersionTLS12 {
			c.MinVersion = tls.VersionTLS12
		}
		if len(c.NextProtos) == 0 {
			c.NextProtos = []string{"ftp"}
		}
		var key [32]byte
		rand.Read(key[:])
		c.SetSessionTicketKeys([][32]byte{key})
		s.tlsConf = c
	})
	return s.tlsConf
}

// tlsOn reports whether the server can speak TLS.
func (s *Server) tlsOn() bool { return s.tlsBase() != nil }

// tlsPeer is what a session learns in the TLS handshake of its control
// connection, kept apart so that a session without TLS does not carry it.
type tlsPeer struct {
	token    [16]byte // binds this session's TLS tickets to it
	sni      string   // the TLS server name the client asked for
	certUser string   // common name of the verified TLS client certificate
}

// certUser is the common name of the client's verified certificate, or "".
func (s *session) certUser() string {
	if s.tlsPeer == nil {
		return ""
	}
	return s.tlsPeer.certUser
}

// sni is the TLS server name the client asked for, or "".
func (s *session) sni() string {
	if s.tlsPeer == nil {
		return ""
	}
	return s.tlsPeer.sni
}

// controlTLS is the configuration of one session's control connection: its
// tickets carry the session's token.
func (s *session) controlTLS() *tls.Config {
	base := s.srv.tlsBase()
	if s.tlsPeer == nil {
		s.tlsPeer = new(tlsPeer)
		rand.Read(s.tlsPeer.token[:])
	}
	c := base.Clone()
	c.WrapSession = s.wrapTicket(base)
	// The name the client asked TLS for (SNI) and the virtual host it
	// names with HOST must agree when it uses both (RFC 7151 §3.2).
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		s.tlsPeer.sni = cs.ServerName
		if s.host != "" && cs.ServerName != "" && !strings.EqualFold(s.host, cs.ServerName) {
			return fmt.Errorf("TLS server name %q does not match HOST %q", cs.ServerName, s.host)
		}
		return nil
	}
	return c
}

func (s *session) wrapTicket(base *tls.Config) func(tls.ConnectionState, *tls.SessionState) ([]byte, error) {
	token := s.tlsPeer.token[:]
	return func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, append(append([]byte{}, tlsTicketTag...), token...))
		return base.EncryptTicket(cs, ss)
	}
}

// secureControl runs the TLS handshake on the control connection (after
// AUTH TLS, or at once on an implicit-TLS listener).
func (s *session) secureControl() error {
	s.parkable = false // a TLS connection may hold bytes no socket event announces
	tc := tls.Server(s.conn, s.controlTLS())
	ctx, cancel := context.WithTimeout(s.ctx(), 30*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	if cs := tc.ConnectionState(); len(cs.VerifiedChains) > 0 {
		s.tlsPeer.certUser = cs.PeerCertificates[0].Subject.CommonName
	}
	s.wmu.Lock()
	s.conn = tc
	s.tls = true
	s.hook.secure.Store(true)
	s.wmu.Unlock()
	return nil
}

// cmdAUTH: AUTH TLS (also SSL and TLS-C, as the big servers accept them).
func (s *session) cmdAUTH(arg string) {
	mech := strings.ToUpper(strings.TrimSpace(arg))
	switch {
	case !s.srv.tlsOn():
		s.reply(ftp.CodeNotImplemented, "TLS is not configured on this server.")
		return
	case s.tls:
		s.reply(ftp.CodeBadSequence, "TLS is already on.")
		return
	case mech != "TLS" && mech != "SSL" && mech != "TLS-C" && mech != "TLS-P":
		s.reply(ftp.CodeParamNotImpl, "Unknown security mechanism; use AUTH TLS.")
		return
	}
	s.reply(ftp.CodeAuthOK, "Proceed with TLS negotiation.")
	// Whatever the client sent after AUTH in the clear is dropped, not
	// read as commands of the secured session (pure-ftpd CVE-2011-1575).
	s.lr.Reset(s.conn)
	if err := s.secureControl(); err != nil {
		s.log().Warn("TLS handshake failed", "err", err)
		s.srv.def.Record(s.remote.Addr(), defender.ProtocolError)
		s.closing = true
		s.closeMsg = "TLS handshake failed"
		return
	}
	s.lr.Reset(s.conn)
	if mech == "SSL" || mech == "TLS-P" {
		// Historic AUTH SSL clients expect protected data without PROT.
		s.pbsz, s.protP = true, true
	}
}

func (s *session) cmdPBSZ(arg string) {
	if !s.tls {
		s.reply(ftp.CodeBadSequence, "PBSZ needs AUTH TLS first.")
		return
	}
	for _, c := range strings.TrimSpace(arg) {
		if c < '0' || c > '9' {
			s.reply(ftp.CodeBadArguments, "PBSZ takes a number.")
			return
		}
	}
	s.pbsz = true
	s.reply(ftp.CodeOK, "PBSZ=0")
}

func (s *session) cmdPROT(arg string) {
	if !s.pbsz {
		s.reply(ftp.CodeBadSequence, "PROT needs PBSZ first.")
		return
	}
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "P":
		s.protP = true
		s.reply(ftp.CodeOK, "Data connections will be protected.")
	case "C":
		if s.policy >= TLSRequiredData || s.acct != nil && s.acct.Perms.TLSRequired {
			s.reply(ftp.CodeProtRefused, "Policy requires protected data connections (PROT P).")
			return
		}
		s.protP = false
		s.reply(ftp.CodeOK, "Data connections will be clear.")
	case "S", "E":
		s.reply(ftp.CodeProtNotSupported, "Only PROT C and P are supported.")
	default:
		s.reply(ftp.CodeParamNotImpl, "Unknown protection level.")
	}
}

// cmdCCC clears the command channel (RFC 4217 §6) where the server allows
// it: after 200, the TLS layer is closed and commands go on in the clear
// (for NAT devices that must read PORT); data stays as PROT says.
func (s *session) cmdCCC(string) {
	switch {
	case !s.tls:
		s.reply(ftp.CodeBadSequence, "The command channel is not protected.")
		return
	case !s.srv.o().AllowCCC || s.implicit:
		s.reply(ftp.CodeProtectionDenied, "CCC is not allowed by this server's policy.")
		return
	}
	tc, ok := s.conn.(*tls.Conn)
	if !ok {
		s.reply(ftp.CodeBadSequence, "The command channel is not protected.")
		return
	}
	s.reply(ftp.CodeOK, "Command channel cleared.")
	s.wmu.Lock()
	tc.CloseWrite() // close_notify; the TCP connection stays
	s.conn = tc.NetConn()
	s.tls = false
	s.hook.secure.Store(false)
	s.wmu.Unlock()
	// The client's own close_notify may still arrive before its next
	// command: skip whole TLS records at the start of the clear stream.
	s.lr.Reset(&skipTLSRecords{r: s.conn})
}

// skipTLSRecords drops TLS records (a close_notify, in any TLS version)
// that arrive before the first clear byte; no FTP command starts with a
// TLS record type (0x14–0x17).
type skipTLSRecords struct {
	r    net.Conn
	done bool
	left int // bytes of a record still to skip
}

func (k *skipTLSRecords) Read(p []byte) (int, error) {
	for !k.done {
		if k.left > 0 {
			var buf [512]byte
			n, err := k.r.Read(buf[:min(k.left, len(buf))])
			k.left -= n
			if err != nil {
				return 0, err
			}
			continue
		}
		var h [5]byte
		n, err := k.r.Read(h[:1])
		if err != nil {
			return 0, err
		}
		if n == 0 {
			continue
		}
		if h[0] < 0x14 || h[0] > 0x17 {
			k.done = true
			p[0] = h[0]
			m, err := k.r.Read(p[1:])
			return 1 + m, err
		}
		if _, err := io.ReadFull(k.r, h[1:5]); err != nil {
			return 0, err
		}
		k.left = int(h[3])<<8 | int(h[4])
	}
	return k.r.Read(p)
}

// loginNeedsTLS answers USER/PASS on a clear connection when the policy
// requires TLS, and reports whether it did.
func (s *session) loginNeedsTLS() bool {
	if s.tls || s.policy < TLSRequired || !s.srv.tlsOn() {
		return false
	}
	s.reply(ftp.CodeNotLoggedIn, "This server requires TLS: send AUTH TLS first.")
	return true
}

// dataNeedsTLS answers a transfer command that would open a clear data
// connection against the policy, and reports whether it did.
func (s *session) dataNeedsTLS() bool {
	userNeeds := s.acct != nil && s.acct.Perms.TLSRequired
	if s.protP || (s.policy < TLSRequiredData && !userNeeds) || !s.srv.tlsOn() {
		return false
	}
	s.reply(ftp.CodeProtRefused, "Policy requires protected data connections: send PBSZ 0 and PROT P.")
	return true
}

// errTLSReuse is a data connection that did not resume the control
// connection's TLS session.
var errTLSReuse = errors.New("data connection did not resume the control connection's TLS session")

// secureData runs the server side of the TLS handshake on a data
// connection. Unless the server's TLSSessionReuse is off, the client must
// resume the control connection's session (RFC 4217 §10.2): a full
// handshake, or a session from another connection, is refused.
func (s *session) secureData(ctx context.Context, c net.Conn) (net.Conn, error) {
	base := s.srv.tlsBase()
	var got []byte
	cfg := base.Clone()
	cfg.DynamicRecordSizingDisabled = true // bulk data: full-size records from the start
	cfg.WrapSession = s.wrapTicket(base)
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := base.DecryptTicket(identity, cs)
		if err != nil || ss == nil {
			return nil, nil
		}
		for _, e := range ss.Extra {
			if bytes.HasPrefix(e, tlsTicketTag) {
				got = e[len(tlsTicketTag):]
			}
		}
		return ss, nil
	}
	if !s.noReuse && (s.acct == nil || !s.acct.Perms.NoTLSSessionReuse) {
		// Refused inside the handshake, so the client gets an alert at
		// once rather than a connection that dies on first use.
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if !cs.DidResume || !bytes.Equal(got, s.tlsPeer.token[:]) {
				return errTLSReuse
			}
			return nil
		}
	}
	tc := tls.Server(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, s.srv.dataConnectTimeout())
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// tlsReuseHelp is the text of the 522 reply and log line for errTLSReuse:
// it names the setting an administrator looks for.
const tlsReuseHelp = "TLS session resumption required on the data connection; " +
	"a client that cannot resume needs tls_session_reuse = false (--tls-session-reuse off, or in the user's entry)"

func tlsDataError(err error) string {
	if errors.Is(err, errTLSReuse) {
		return tlsReuseHelp
	}
	return fmt.Sprintf("TLS negotiation on the data connection failed: %v", err)
}
