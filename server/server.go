// Package server is Ferry's FTP server: the session state machine of
// RFC 959 and its extensions, data connections in port (PORT/EPRT) and
// passive (PASV/EPSV) mode, and the server lifecycle (Serve, Shutdown,
// Close). Storage and users come from the storage and auth packages.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/defender"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("ftp: server closed")

// PortRange is an inclusive range of TCP ports for passive listeners.
// The zero value lets the system choose any free port.
type PortRange struct{ Lo, Hi uint16 }

// ParsePortRange parses "LO-HI".
func ParsePortRange(s string) (PortRange, error) {
	var r PortRange
	if _, err := fmt.Sscanf(s, "%d-%d", &r.Lo, &r.Hi); err != nil || r.Lo == 0 || r.Hi < r.Lo {
		return PortRange{}, fmt.Errorf("passive ports %q: want LO-HI with 0 < LO <= HI <= 65535", s)
	}
	return r, nil
}

// PublicHost says which address to advertise in PASV replies.
type PublicHost struct {
	// Host is a literal IPv4 address or a host name resolved at each PASV.
	// Empty advertises the address the client connected to.
	Host string
	// Networks overrides Host for clients in these networks, first match
	// wins (for NAT: LAN clients get the LAN address).
	Networks []NetworkHost
}

// NetworkHost advertises Host to clients in Network.
type NetworkHost struct {
	Network netip.Prefix
	Host    string
}

// Server is an FTP server. Its fields are options; the zero value with Auth
// set is a valid configuration. Do not change fields after Serve is called.
type Server struct {
	// Auth checks logins. Required.
	Auth auth.Authenticator
	// Logger receives one line per session start and end and per transfer.
	// Nil means slog.Default().
	Logger *slog.Logger
	// Welcome is the text of the 220 greeting. Empty means "Ferry FTP server ready.".
	Welcome string

	// PassivePorts is the range passive listeners are opened in.
	PassivePorts PortRange
	// PassiveKeep is how long a session that goes quiet keeps its passive
	// listener for the next PASV/EPSV (reusing it spares eight system calls
	// per transfer). After it, the port goes back to the range. Zero means
	// 5 seconds; negative closes the listener after every transfer.
	PassiveKeep time.Duration
	// PublicHost is the address advertised in PASV replies (NAT).
	PublicHost PublicHost
	// Hosts, if set, are the virtual host names HOST accepts (RFC 7151);
	// others get 504. Empty accepts any name.
	Hosts []string

	// MaxSessions limits concurrent sessions (0 = unlimited);
	// MaxSessionsPerIP limits them per client address. Beyond a limit a
	// connection gets 421 and is closed.
	MaxSessions, MaxSessionsPerIP int
	// IdleTimeout ends a session that sends no command for this long while no
	// transfer runs (RFC 1123 §4.1.3.2). Zero means 15 minutes.
	IdleTimeout time.Duration
	// DataConnectTimeout bounds the wait for a data connection to be
	// accepted or dialled. Zero means 30 seconds.
	DataConnectTimeout time.Duration
	// DataStallTimeout ends a transfer that moves no byte for this long.
	// Zero means 2 minutes.
	DataStallTimeout time.Duration
	// LoginFailDelay is waited before answering a failed PASS. Zero means
	// 1 second; negative means none.
	LoginFailDelay time.Duration
	// MaxLoginAttempts is the number of failed PASS before 421 and
	// disconnection. Zero means 3.
	MaxLoginAttempts int
	// MaxGlobMatches bounds the entries a wildcard LIST/NLST returns. Zero
	// means 100,000.
	MaxGlobMatches int
	// MaxHashes bounds concurrent HASH/XSHA*/XCRC computations server-wide.
	// Zero means 4.
	MaxHashes int
	// TransferThreads bounds the transfers that run on an OS thread of
	// their own (Linux: plain binary RETR of 1 MiB or more and plain
	// binary STOR/APPE/STOU, between local disk and the data connection,
	// by sendfile(2) and splice(2) on a blocking socket). Such a transfer
	// sleeps in the kernel until the client gives or takes more, where one
	// through Go's network poller is handed between threads at every full
	// or empty socket buffer; beyond the bound, transfers take the poller.
	// Zero means 64; negative sends every transfer through the poller.
	TransferThreads int

	// Defender scores failed logins and protocol abuse per client address
	// and bans (421 at connect) the addresses past its threshold. Nil
	// bans no one.
	Defender *defender.Defender
	// MaxUnauthenticated limits connections that have not logged in yet,
	// server-wide and per client address (0 = unlimited). Beyond a limit
	// a connection gets 421 and is closed.
	MaxUnauthenticated, MaxUnauthenticatedPerIP int
	// MaxSessionsPerUser limits the logged-in sessions of one user
	// (0 = unlimited); the login beyond it gets 421.
	MaxSessionsPerUser int
	// LoginTimeout is the time a connection has to log in. Zero means
	// 1 minute.
	LoginTimeout time.Duration
	// CommandTimeout is the time a command line has to arrive whole once
	// its first byte is in (one byte every few seconds holds no slot).
	// Zero means 30 seconds.
	CommandTimeout time.Duration
	// MaxBadCommands is the number of unknown, malformed or out-of-order
	// commands a client may send before login; the next one ends the
	// session. Zero means 5.
	MaxBadCommands int

	// TLS, when set, enables FTPS (RFC 4217): AUTH TLS on every listener,
	// and ServeTLS for implicit TLS. Its certificates are the server's.
	TLS *tls.Config
	// TLSPolicy says when TLS is required: never (the default), for login,
	// or for login and data.
	TLSPolicy TLSPolicy
	// NoTLSSessionReuse lets a TLS data connection make a full handshake.
	// By default it must resume the control connection's session (RFC 4217
	// §10.2, as vsftpd's require_ssl_reuse), so a stranger who grabbed the
	// data port cannot complete the transfer; some clients (stock Python
	// ftplib, Apache Commons Net) cannot resume.
	NoTLSSessionReuse bool
	// AllowCCC lets a logged-in client turn TLS off on its control
	// connection (CCC, RFC 4217 §6) so a NAT device can read PORT; its
	// data connections stay protected if PROT P.
	AllowCCC bool

	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	sessions   map[*session]struct{}
	perIP      map[netip.Addr]int
	unauth     int                // sessions not logged in
	unauthIP   map[netip.Addr]int // the same per client address
	perUser    map[string]int     // logged-in sessions per user
	inShutdown atomic.Bool
	nextID     atomic.Uint64
	wg         sync.WaitGroup
	hashSem    chan struct{}
	threadSem  chan struct{}
	initOnce   sync.Once
	tlsOnce    sync.Once
	tlsConf    *tls.Config
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.listeners = map[net.Listener]struct{}{}
		s.sessions = map[*session]struct{}{}
		s.perIP = map[netip.Addr]int{}
		s.unauthIP = map[netip.Addr]int{}
		s.perUser = map[string]int{}
		n := s.MaxHashes
		if n <= 0 {
			n = 4
		}
		s.hashSem = make(chan struct{}, n)
		if n = s.TransferThreads; n == 0 {
			n = 64
		}
		s.threadSem = make(chan struct{}, max(n, 0))
	})
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func dur(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (s *Server) idleTimeout() time.Duration        { return dur(s.IdleTimeout, 15*time.Minute) }
func (s *Server) dataConnectTimeout() time.Duration { return dur(s.DataConnectTimeout, 30*time.Second) }
func (s *Server) dataStallTimeout() time.Duration   { return dur(s.DataStallTimeout, 2*time.Minute) }
func (s *Server) passiveKeep() time.Duration        { return dur(s.PassiveKeep, 5*time.Second) }
func (s *Server) loginTimeout() time.Duration       { return dur(s.LoginTimeout, time.Minute) }
func (s *Server) commandTimeout() time.Duration     { return dur(s.CommandTimeout, 30*time.Second) }

// takeThread reserves one of the TransferThreads, if one is free.
func (s *Server) takeThread() bool {
	select {
	case s.threadSem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *Server) releaseThread() { <-s.threadSem }

func (s *Server) maxBadCommands() int {
	if s.MaxBadCommands <= 0 {
		return 5
	}
	return s.MaxBadCommands
}

func (s *Server) loginFailDelay() time.Duration {
	if s.LoginFailDelay < 0 {
		return 0
	}
	return dur(s.LoginFailDelay, time.Second)
}

func (s *Server) maxLoginAttempts() int {
	if s.MaxLoginAttempts <= 0 {
		return 3
	}
	return s.MaxLoginAttempts
}

func (s *Server) maxGlobMatches() int {
	if s.MaxGlobMatches <= 0 {
		return 100000
	}
	return s.MaxGlobMatches
}

// ListenAndServe listens on the TCP address addr and serves.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown or Close, serving each in
// its own goroutine. It always returns a non-nil error; after Shutdown or
// Close it is ErrServerClosed. Serve may be called for several listeners.
func (s *Server) Serve(ln net.Listener) error { return s.ServeWith(ln, ListenerOptions{}) }

// ServeTLS is Serve for implicit TLS (ftps://, port 990 by convention):
// every connection starts with a TLS handshake, and data connections are
// protected from the start. It needs TLS.
func (s *Server) ServeTLS(ln net.Listener) error {
	return s.ServeWith(ln, ListenerOptions{ImplicitTLS: true})
}

// ListenerOptions are the settings of one listener.
type ListenerOptions struct {
	// ImplicitTLS starts every connection with a TLS handshake.
	ImplicitTLS bool
	// TLSPolicy, when set, replaces the server's TLSPolicy for sessions
	// of this listener.
	TLSPolicy *TLSPolicy
	// NoTLSSessionReuse, when set, replaces the server's NoTLSSessionReuse.
	NoTLSSessionReuse *bool
}

// ServeWith is Serve with options for this listener.
func (s *Server) ServeWith(ln net.Listener, o ListenerOptions) error {
	if o.ImplicitTLS && s.tlsBase() == nil {
		ln.Close()
		return errors.New("ftp: implicit TLS needs Server.TLS")
	}
	l := listenerRules{implicit: o.ImplicitTLS, policy: s.TLSPolicy, noReuse: s.NoTLSSessionReuse}
	if o.TLSPolicy != nil {
		l.policy = *o.TLSPolicy
	}
	if o.NoTLSSessionReuse != nil {
		l.noReuse = *o.NoTLSSessionReuse
	}
	return s.serve(ln, l)
}

// listenerRules are what a session takes from its listener.
type listenerRules struct {
	implicit bool
	policy   TLSPolicy
	noReuse  bool
}

func (s *Server) serve(ln net.Listener, l listenerRules) error {
	s.init()
	if s.Auth == nil {
		return errors.New("ftp: Server.Auth is nil")
	}
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.accept(c, l)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// accept admits c under the session limits and starts its session.
func (s *Server) accept(c net.Conn, l listenerRules) {
	remote := addrPort(c.RemoteAddr())
	ip := remote.Addr()
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		refuse(c, "Server shutting down.")
		return
	}
	if _, banned := s.Defender.Banned(ip); banned {
		s.mu.Unlock()
		s.logger().Debug("session refused", "remote", remote, "reason", "banned")
		refuse(c, "Too many errors from your address, try again later.")
		return
	}
	reason, msg := "", ""
	switch {
	case s.MaxSessions > 0 && len(s.sessions) >= s.MaxSessions:
		reason, msg = "max sessions", "Too many connections, try again later."
	case s.MaxSessionsPerIP > 0 && s.perIP[ip] >= s.MaxSessionsPerIP:
		reason, msg = "max sessions per ip", "Too many connections from your address."
	case s.MaxUnauthenticated > 0 && s.unauth >= s.MaxUnauthenticated:
		reason, msg = "max unauthenticated", "Too many connections, try again later."
	case s.MaxUnauthenticatedPerIP > 0 && s.unauthIP[ip] >= s.MaxUnauthenticatedPerIP:
		reason, msg = "max unauthenticated per ip", "Too many connections from your address."
	}
	if reason != "" {
		s.mu.Unlock()
		s.logger().Warn("session refused", "remote", remote, "reason", reason)
		s.Defender.Record(ip, defender.LimitExceeded)
		refuse(c, msg)
		return
	}
	sess := newSession(s, c)
	sess.implicit, sess.policy, sess.noReuse = l.implicit, l.policy, l.noReuse
	s.sessions[sess] = struct{}{}
	s.perIP[ip]++
	s.unauth++
	s.unauthIP[ip]++
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		sess.serve()
		s.mu.Lock()
		delete(s.sessions, sess)
		if s.perIP[ip]--; s.perIP[ip] <= 0 {
			delete(s.perIP, ip)
		}
		s.releaseUserLocked(sess)
		s.mu.Unlock()
	}()
}

// admitUser moves sess from the unauthenticated to user's logged-in
// sessions, unless user is at MaxSessionsPerUser.
func (s *Server) admitUser(sess *session, user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.MaxSessionsPerUser > 0 && s.perUser[user] >= s.MaxSessionsPerUser {
		return false
	}
	s.unauthLeftLocked(sess)
	s.perUser[user]++
	sess.counted = user
	return true
}

// releaseUser counts sess as unauthenticated again (REIN).
func (s *Server) releaseUser(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.counted == "" {
		return
	}
	s.dropUserLocked(sess)
	sess.unauthDone = false
	s.unauth++
	s.unauthIP[sess.remote.Addr()]++
}

// releaseUserLocked forgets sess in the counts (session end).
func (s *Server) releaseUserLocked(sess *session) {
	s.unauthLeftLocked(sess)
	s.dropUserLocked(sess)
}

func (s *Server) dropUserLocked(sess *session) {
	if u := sess.counted; u != "" {
		if s.perUser[u]--; s.perUser[u] <= 0 {
			delete(s.perUser, u)
		}
		sess.counted = ""
	}
}

func (s *Server) unauthLeftLocked(sess *session) {
	if sess.unauthDone {
		return
	}
	sess.unauthDone = true
	s.unauth--
	ip := sess.remote.Addr()
	if s.unauthIP[ip]--; s.unauthIP[ip] <= 0 {
		delete(s.unauthIP, ip)
	}
}

func refuse(c net.Conn, msg string) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte("421 " + msg + "\r\n"))
	c.Close()
}

// Shutdown stops the server gracefully: it closes the listeners, ends idle
// sessions with 421, and lets running transfers finish. When ctx ends
// first, remaining sessions are closed and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.inShutdown.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for sess := range s.sessions {
		sess.wake()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close closes the listeners and every session at once.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	s.inShutdown.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for sess := range s.sessions {
		sess.kill()
	}
	s.mu.Unlock()
	return nil
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
