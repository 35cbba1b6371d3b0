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
	"github.com/ferryftp/ferry/limits"
	"golang.org/x/time/rate"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("ftp: server closed")

// PortRange is an inclusive range of TCP ports for passive listeners.
// The zero value lets the system choose any free port.
type PortRange struct{ Lo, Hi uint16 }

// UnmarshalText parses "LO-HI"; empty is the zero range.
func (r *PortRange) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*r = PortRange{}
		return nil
	}
	v, err := ParsePortRange(string(b))
	*r = v
	return err
}

// MarshalText writes "LO-HI", or nothing for the zero range.
func (r PortRange) MarshalText() ([]byte, error) {
	if r == (PortRange{}) {
		return []byte{}, nil
	}
	return fmt.Appendf(nil, "%d-%d", r.Lo, r.Hi), nil
}

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
	// Host is the address advertised in PASV replies (NAT): a literal
	// IPv4 address or a host name resolved at each PASV. Empty advertises
	// the address the client connected to.
	Host string `toml:"public_host"`
	// Networks override Host for clients in these networks, first match
	// wins (for NAT: LAN clients get the LAN address).
	Networks []NetworkHost `toml:"public_host_network"`
}

// NetworkHost advertises Host to clients in Network.
type NetworkHost struct {
	// Network is the clients' network, as "10.0.0.0/8".
	Network netip.Prefix `toml:"network"`
	// Host is the address or host name advertised to them.
	Host string `toml:"host"`
}

// Server is an FTP server. Its fields are options; the zero value with Auth
// set is a valid configuration. Do not change fields after Serve is called.
type Server struct {
	// Auth checks logins. Required.
	Auth auth.Authenticator
	// Logger receives one line per session start and end and per transfer.
	// Nil means slog.Default().
	Logger *slog.Logger

	// Options are the settings a configuration file holds.
	Options
	// Hooks observe sessions: contexts and state changes.
	Hooks Hooks

	// Defender scores failed logins and protocol abuse per client address
	// and bans (421 at connect) the addresses past its threshold. Nil
	// bans no one.
	Defender defender.Defender

	// UserSessions, when set, counts each user's logged-in sessions on
	// every server of a cluster, for MaxSessionsPerUser (this server's own
	// count is checked first). A login it cannot reach is let in, and
	// logged.
	UserSessions UserSessions

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
	cur        atomic.Pointer[settings] // what Reload replaces
	watchHook  func()                   // tests: called when a command's watcher starts
	parkHook   func(parked bool)        // tests: called when a session parks or resumes
	abortHook  func()                   // tests: called when a session has aborted its transfer
	def        defender.Defender        // Defender, or one that bans no one
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
		s.def = s.Defender
		if s.def == nil {
			s.def = (*defender.Memory)(nil) // bans no one
		}
		s.cur.Store(s.settingsFor(s.Options, s.TLSPolicy, s.NoTLSSessionReuse, nil))
		s.hashSem = make(chan struct{}, max(s.o().MaxHashes, 1))
		s.threadSem = make(chan struct{}, max(s.o().TransferThreads, 0))
	})
}

// settings are the server's options as they stand: Options with the
// defaults filled in, the TLS rules and the server-wide rate buckets.
type settings struct {
	Options
	policy   TLSPolicy
	noReuse  bool
	rateUp   limits.Limiter // MaxRateUp's bucket, or a nil one
	rateDown limits.Limiter
}

// o is the server's settings now.
func (s *Server) o() *settings { return s.cur.Load() }

// settingsFor makes the settings of o; the buckets of old are kept
// (their rate changed) where a limit stays.
func (s *Server) settingsFor(o Options, policy TLSPolicy, noReuse bool, old *settings) *settings {
	n := &settings{Options: o.WithDefaults(), policy: policy, noReuse: noReuse}
	n.rateUp = bucket(int64(n.MaxRateUp), old, func(o *settings) limits.Limiter { return o.rateUp })
	n.rateDown = bucket(int64(n.MaxRateDown), old, func(o *settings) limits.Limiter { return o.rateDown })
	return n
}

// bucket is the bucket of a rate bps: old's changed, or a new one; nil
// without a limit (limits.Pacer drops a nil *rate.Limiter).
func bucket(bps int64, old *settings, of func(*settings) limits.Limiter) limits.Limiter {
	if bps <= 0 {
		return nil
	}
	if old != nil {
		if b, ok := of(old).(*rate.Limiter); ok && b != nil {
			limits.SetRate(b, bps)
			return b
		}
	}
	return limits.NewLimiter(bps)
}

// Reload replaces the options and the TLS rules (a reloaded
// configuration): they apply to new sessions, and to the next commands
// and transfers of running ones; a transfer in flight finishes as it
// began. Invalid options change nothing. The sizes of the hash and
// transfer thread pools (max_hashes, transfer_threads) stay as started.
func (s *Server) Reload(o Options, policy TLSPolicy, noReuse bool) error {
	if err := o.Validate(); err != nil {
		return err
	}
	s.init()
	s.cur.Store(s.settingsFor(o, policy, noReuse, s.o()))
	return nil
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// off turns a negative duration (a setting turned off) into none.
func off(d time.Duration) time.Duration { return max(d, 0) }

// never turns a negative timeout (turned off) into one that never ends.
func never(d time.Duration) time.Duration {
	if d < 0 {
		return 100 * 365 * 24 * time.Hour
	}
	return d
}

func (s *Server) idleTimeout() time.Duration        { return never(s.o().IdleTimeout) }
func (s *Server) dataConnectTimeout() time.Duration { return never(s.o().DataConnectTimeout) }
func (s *Server) dataStallTimeout() time.Duration   { return never(s.o().DataStallTimeout) }
func (s *Server) passiveKeep() time.Duration        { return s.o().PassiveKeep }
func (s *Server) loginTimeout() time.Duration       { return never(s.o().LoginTimeout) }
func (s *Server) commandTimeout() time.Duration     { return never(s.o().CommandTimeout) }
func (s *Server) loginFailDelay() time.Duration     { return off(s.o().LoginFailDelay) }

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
	// ProxyTrusted, when set, puts the listener behind load balancers
	// speaking the PROXY protocol (v1 or v2): a connection from these
	// networks must open with a PROXY header, whose source then stands
	// for the client everywhere (defender, limits, logs, allow_from, the
	// data-connection check); a connection from anywhere else is refused.
	ProxyTrusted []netip.Prefix
	// PassiveProxy has passive data connections from ProxyTrusted open
	// with a PROXY header too, so that they are checked against the
	// client's address; without it, they are accepted from the balancer
	// that carried the control connection.
	PassiveProxy bool
}

// ServeWith is Serve with options for this listener.
func (s *Server) ServeWith(ln net.Listener, o ListenerOptions) error {
	if o.ImplicitTLS && s.tlsBase() == nil {
		ln.Close()
		return errors.New("ftp: implicit TLS needs Server.TLS")
	}
	return s.serve(ln, listenerRules{implicit: o.ImplicitTLS, policy: o.TLSPolicy, noReuse: o.NoTLSSessionReuse,
		proxy: o.ProxyTrusted, passiveProxy: o.PassiveProxy})
}

// listenerRules are what a session takes from its listener: its own TLS
// rules where it has them, else the server's at the session's start.
type listenerRules struct {
	implicit     bool
	policy       *TLSPolicy
	noReuse      *bool
	proxy        []netip.Prefix // PROXY headers from these, no one else
	passiveProxy bool
}

func (s *Server) serve(ln net.Listener, l listenerRules) error {
	s.init()
	if s.Auth == nil {
		ln.Close()
		return errors.New("ftp: Server.Auth is nil")
	}
	if err := s.Options.Validate(); err != nil {
		ln.Close()
		return fmt.Errorf("ftp: %w", err)
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
		if len(l.proxy) > 0 {
			go s.acceptProxied(ln, c, l) // the header is read off the accept loop
			continue
		}
		s.accept(ln, c, l, connAddrs{remote: addrPort(c.RemoteAddr())})
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// accept admits c, from the client at a.remote, under the session limits
// and starts its session.
func (s *Server) accept(ln net.Listener, c net.Conn, l listenerRules, a connAddrs) {
	remote := a.remote
	ip := remote.Addr()
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		refuse(c, "Server shutting down.")
		return
	}
	if _, banned := s.def.Banned(ip); banned {
		s.mu.Unlock()
		s.logger().Debug("session refused", "remote", remote, "reason", "banned")
		refuse(c, "Too many errors from your address, try again later.")
		return
	}
	reason, msg := "", ""
	switch {
	case s.o().MaxSessions >= 0 && len(s.sessions) >= s.o().MaxSessions:
		reason, msg = "max sessions", "Too many connections, try again later."
	case s.o().MaxSessionsPerIP >= 0 && s.perIP[ip] >= s.o().MaxSessionsPerIP:
		reason, msg = "max sessions per ip", "Too many connections from your address."
	case s.o().MaxUnauthenticated >= 0 && s.unauth >= s.o().MaxUnauthenticated:
		reason, msg = "max unauthenticated", "Too many connections, try again later."
	case s.o().MaxUnauthenticatedPerIP >= 0 && s.unauthIP[ip] >= s.o().MaxUnauthenticatedPerIP:
		reason, msg = "max unauthenticated per ip", "Too many connections from your address."
	}
	if reason != "" {
		s.mu.Unlock()
		s.logger().Warn("session refused", "remote", remote, "reason", reason)
		s.def.Record(ip, defender.LimitExceeded)
		refuse(c, msg)
		return
	}
	sess := newSession(s.sessionContext(ln, c), s, c, a)
	sess.passiveProxy = l.passiveProxy && a.via.IsValid()
	cur := s.o()
	sess.implicit, sess.policy, sess.noReuse = l.implicit, cur.policy, cur.noReuse
	if l.policy != nil {
		sess.policy = *l.policy
	}
	if l.noReuse != nil {
		sess.noReuse = *l.noReuse
	}
	s.sessions[sess] = struct{}{}
	s.perIP[ip]++
	s.unauth++
	s.unauthIP[ip]++
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		sess.state(StateNew)
		sess.serve()
	}()
}

// UserSessions counts logged-in sessions per user across servers.
type UserSessions interface {
	// Open counts a session of user unless max are open already.
	Open(ctx context.Context, user string, max int) (bool, error)
	// Close forgets a session Open counted.
	Close(user string)
}

// ended forgets a session that has ended (its last goroutine calls it).
func (s *Server) ended(sess *session) {
	defer s.wg.Done()
	ip := sess.remote.Addr()
	s.mu.Lock()
	delete(s.sessions, sess)
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	s.releaseUserLocked(sess)
	s.mu.Unlock()
	sess.closeShared()
	sess.state(StateClosed)
}

// admitUser moves sess from the unauthenticated to user's logged-in
// sessions, unless user is at MaxSessionsPerUser.
func (s *Server) admitUser(sess *session, user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.o().MaxSessionsPerUser >= 0 && s.perUser[user] >= s.o().MaxSessionsPerUser {
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
