package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/ftp"
)

// session is one control connection. One goroutine (serve) reads commands
// and runs them; a transfer runs in a goroutine of its own so that ABOR,
// STAT, NOOP and QUIT are answered meanwhile.
//
// Who may touch which field, as net/http documents its conn:
//   - Set once in newSession, then only read, from any goroutine: srv,
//     raw, remote, local, id, start, sctx, hook.
//   - Owned by the session goroutine (serve and the command handlers it
//     runs): every field not named otherwise. A transfer goroutine gets
//     what it needs as arguments and never reads them.
//   - conn and tls: AUTH TLS and CCC replace them on the session
//     goroutine, holding wmu, which reads them freely; any other goroutine
//     (a transfer writing its reply) reads them only under wmu. Shutdown
//     and Close use raw, never conn.
//   - Guarded by xmu: xfer.
//   - Guarded by srv.mu: counted, unauthDone.
type session struct {
	srv    *Server
	raw    net.Conn // the accepted connection; TLS wraps it, it never changes
	conn   net.Conn // raw, or the TLS connection over it (guarded by wmu)
	lr     ftp.LineReader
	remote netip.AddrPort // the client's (a PROXY header's source behind a balancer)
	local  netip.AddrPort // this end of the control connection
	// Behind a balancer (a PROXY header): via is the balancer's address,
	// advertise the address the client connected to (PASV names it when
	// public_host is unset), passiveProxy whether passive data
	// connections open with a PROXY header too.
	via          netip.Addr
	advertise    netip.Addr
	passiveProxy bool
	shared       string // the user counted in srv.UserSessions, if any
	id           uint64
	start        time.Time

	wmu sync.Mutex // serializes replies; guards conn and tls

	// Login state.
	host       string
	user       string // from USER, awaiting PASS
	acct       *auth.Account
	loginFails int32
	badCmds    int32 // unknown or malformed commands before login
	// Guarded by srv.mu: the user this session counts against, and
	// whether it no longer counts as unauthenticated (unauthDone, below
	// for its size).
	counted string

	// Session state.
	unauthDone bool
	binary     bool // TYPE I, or TYPE A (the default, RFC 959 3.1.1.1)
	epsvAll    bool
	closing    bool // QUIT seen or fatal error
	facts      ftp.Facts
	cwd        string           // virtual absolute path
	rest       int64            // pending REST offset
	rnfr       string           // pending RNFR name (virtual path)
	pasv       *net.TCPListener // pending PASV/EPSV: keep, or nil
	keep       *net.TCPListener // the session's passive listener, reused
	active     netip.AddrPort   // pending PORT/EPRT address
	hashAlg    string
	closeMsg   string // reason for the session end log line

	xmu  sync.Mutex
	xfer *transfer // running transfer, or nil (guarded by xmu)

	// TLS state (RFC 4217).
	policy   TLSPolicy // of the listener, or the server's
	tlsPeer  *tlsPeer  // after the first handshake; nil before
	implicit bool      // accepted on an implicit-TLS listener
	noReuse  bool      // TLS data connections need not resume (listener or server)
	tls      bool      // the control connection is secured (guarded by wmu)
	pbsz     bool      // PBSZ seen
	protP    bool      // PROT P: data connections are secured

	// Parking (park.go): whether the session may park (a connection the
	// poller can watch, never TLS); pstate, pwoken and pidx, guarded by
	// thePoller.mu; its key there; the end of the current wait for a command, kept across
	// a park.
	parkable bool
	pstate   uint8
	pwoken   bool
	pidx     int32
	pkey     uint64 // the session's key in the poller (parkKeys)
	idleEnd  time.Time

	hook   *Conn           // the session as the hooks see it
	sctx   *sessionCtx     // ends with the session (sctx.cancel)
	cmdCtx context.Context // of the command running, or nil (see watch)
}

func newSession(ctx context.Context, srv *Server, c net.Conn, a connAddrs) *session {
	srv.init()
	s := &session{
		srv:       srv,
		raw:       c,
		conn:      c,
		remote:    a.remote,
		local:     addrPort(c.LocalAddr()),
		via:       a.via,
		advertise: a.advertise,
		id:        srv.nextID.Add(1),
		start:     time.Now(),
		cwd:       "/",
		facts:     ftp.AllFacts,
		hashAlg:   "SHA-256",
	}
	s.sctx = newSessionCtx(ctx)
	s.hook = &Conn{s: s}
	s.lr.R = readers.Get().(*bufio.Reader)
	s.lr.R.Reset(c)
	_, s.parkable = c.(syscall.Conn)
	s.pkey = parkKeys.Add(1)
	s.parkable = s.parkable && canPark
	s.lr.Refuse = func(b []byte) {
		s.wmu.Lock()
		s.conn.Write(b)
		s.wmu.Unlock()
	}
	return s
}

// end closes the session with 421 (RFC 959: service not available,
// closing control connection): msg tells the client why, reason goes to
// the session's log line.
func (s *session) end(msg, reason string) {
	s.reply(ftp.CodeNotAvailable, msg+", closing control connection.")
	s.closing = true
	s.closeMsg = reason
}

// wake interrupts a session waiting for a command (Shutdown).
// It runs on another goroutine, so it uses raw: a read deadline set there
// holds for the TLS connection over it too.
// A parked session gets a goroutine that sees the shutdown.
func (s *session) wake() {
	s.raw.SetReadDeadline(time.Unix(1, 0))
	thePoller.unpark(s.pkey)
}

// kill closes the session's connections at once (Close).
func (s *session) kill() {
	s.sctx.cancel()
	s.raw.Close()
	if x := s.transfer(); x != nil {
		s.abortTransfer(x)
	}
	thePoller.unpark(s.pkey)
}

// log gives the server's logger with the session's id and client address.
// Nothing is kept for it in the session, and nothing is made for a record
// below the logger's level.
func (s *session) log() *slog.Logger { return slog.New((*sessionLog)(s)) }

// sessionLog is the session as the slog.Handler of its log: the server's
// handler, with the session's attributes added to each record it handles.
type sessionLog session

func (l *sessionLog) handler() slog.Handler {
	s := (*session)(l)
	return s.srv.logger().Handler().WithAttrs([]slog.Attr{
		slog.Uint64("session", s.id), slog.String("remote", s.remote.String())})
}

func (l *sessionLog) Enabled(ctx context.Context, level slog.Level) bool {
	return l.srv.logger().Handler().Enabled(ctx, level)
}

func (l *sessionLog) Handle(ctx context.Context, r slog.Record) error {
	return l.handler().Handle(ctx, r)
}

func (l *sessionLog) WithAttrs(as []slog.Attr) slog.Handler { return l.handler().WithAttrs(as) }
func (l *sessionLog) WithGroup(name string) slog.Handler    { return l.handler().WithGroup(name) }

// openShared counts the login of user on every server (UserSessions),
// and says whether it is within MaxSessionsPerUser.
func (s *session) openShared(user string) bool {
	us, max := s.srv.UserSessions, s.srv.o().MaxSessionsPerUser
	if us == nil || max < 0 {
		return true
	}
	ok, err := us.Open(s.ctx(), user, max)
	if err != nil {
		s.log().Error("sessions of the user on other servers not counted", "user", user, "err", err)
		return true
	}
	if ok {
		s.shared = user
	}
	return ok
}

// closeShared forgets the session's login in UserSessions.
func (s *session) closeShared() {
	if s.shared != "" {
		s.srv.UserSessions.Close(s.shared)
		s.shared = ""
	}
}

func (s *session) transfer() *transfer {
	s.xmu.Lock()
	defer s.xmu.Unlock()
	return s.xfer
}

// serve runs the session from its greeting, on the goroutine that accept
// starts.
func (s *session) serve() {
	if s.via.IsValid() {
		s.log().Info("session start", "local", s.local.String(), "via", s.via.String())
	} else {
		s.log().Info("session start", "local", s.local.String())
	}
	s.run(true)
}

// run reads and runs commands until the session ends, or until it parks
// (park.go): then run returns and a new goroutine calls it again later.
func (s *session) run(greet bool) {
	parked := false
	defer func() {
		if parked {
			return // another goroutine may own the session by now
		}
		if r := recover(); r != nil {
			s.log().Error("session panic", "panic", r, "stack", string(debug.Stack()))
			s.end("Internal error", "panic")
		}
		s.finish()
	}()
	if greet && !s.greet() {
		return
	}
	for !s.closing {
		line, err := s.readCommand()
		if err == errParked {
			parked = true
			return
		}
		if err != nil {
			s.endOnReadError(err)
			return
		}
		if line == "" {
			continue
		}
		s.dispatch(line)
	}
}

// greet makes the implicit TLS handshake, if any, and sends the greeting.
func (s *session) greet() bool {
	if s.implicit {
		if err := s.secureControl(); err != nil {
			s.log().Warn("TLS handshake failed", "err", err)
			s.closeMsg = "TLS handshake failed"
			s.srv.def.Record(s.remote.Addr(), defender.ProtocolError)
			return false
		}
		s.lr.Reset(s.conn)
		s.pbsz, s.protP = true, true // implicit FTPS protects data from the start
	}
	s.reply(ftp.CodeServiceReady, s.srv.o().Welcome)
	return true
}

// finish ends the session: its transfer, listener and connection, its
// log line, and its place in the server's counts.
func (s *session) finish() {
	if x := s.transfer(); x != nil {
		s.abortTransfer(x)
		<-x.done
	}
	s.sctx.cancel()
	s.closeListener()
	s.conn.Close()
	if s.hook.ended.Load() {
		s.closeMsg = "ended by an administrator"
	}
	s.log().Info("session end", "user", s.hook.User(), "duration", time.Since(s.start).Round(time.Millisecond), "reason", s.closeMsg)
	s.srv.ended(s)
}

// readCommand waits for the next command line. The idle timeout applies only
// while no transfer runs; before login, the login timeout bounds the wait
// too. Once a line's first byte is in, the rest must follow within the
// command timeout, so a client sending a byte now and then holds no slot.
// A session quiet for longer than PassiveKeep gives its passive listener
// back first.
//
// An idle session parks while it waits (errParked); its wait's end is kept
// in idleEnd meanwhile.
func (s *session) readCommand() (string, error) {
	if s.idleEnd.IsZero() {
		s.idleEnd = time.Now().Add(s.srv.idleTimeout())
	}
	line, err := s.awaitCommand()
	if err != errParked {
		s.idleEnd = time.Time{}
	}
	return line, err
}

func (s *session) awaitCommand() (string, error) {
	loginEnd := time.Time{}
	if s.acct == nil {
		loginEnd = s.start.Add(s.srv.loginTimeout())
	}
	quiet := false
	var lineStart time.Time // when the first byte of a line came
	for {
		end := s.waitEnd(loginEnd)
		deadline, phase := s.waitDeadline(end, quiet)
		if quiet && phase == waitEnd && s.mayPark() && s.park(deadline) {
			return "", errParked
		}
		s.conn.SetReadDeadline(deadline)
		if s.srv.inShutdown.Load() {
			return "", errShutdown
		}
		whole, err := s.awaitLine()
		if err == nil && !whole {
			// The rest of a started line: the command timeout from its
			// first byte, whatever else the wait was for.
			if lineStart.IsZero() {
				lineStart = time.Now()
			}
			deadline, phase = end, waitEnd
			if cd := lineStart.Add(s.srv.commandTimeout()); cd.Before(end) {
				deadline, phase = cd, waitLine
			}
			s.conn.SetReadDeadline(deadline)
		}
		var line string
		if err == nil {
			line, err = s.lr.ReadLine()
		}
		var ne net.Error
		if err != nil && errors.As(err, &ne) && ne.Timeout() {
			switch {
			case s.srv.inShutdown.Load():
				return "", errShutdown
			case phase == waitLine:
				return "", errSlowLine
			case phase == waitKeep:
				s.closeListener()
				continue
			case phase == waitQuiet:
				quiet = true
				continue
			case s.transfer() != nil:
				s.idleEnd = time.Now().Add(s.srv.idleTimeout())
				continue // never cut a running transfer
			case !loginEnd.IsZero() && !time.Now().Before(loginEnd):
				return "", errLoginTimeout
			}
			return "", errIdle
		}
		if errors.Is(err, ftp.ErrLineTooLong) {
			s.reply(ftp.CodeSyntaxError, "Command line too long.")
			s.badCommand()
			return "", nil
		}
		return line, err
	}
}

// What the read deadline of a wait for a command stands for.
const (
	waitEnd   = iota // the idle or login timeout
	waitKeep         // PassiveKeep: the passive listener goes back
	waitQuiet        // parkAfter: the session may park
	waitLine         // the command timeout, for the rest of a started line
)

// parkAfter is how long a session waits for its next command on its
// goroutine before it parks: a client in a burst of commands never pays
// for parking.
const parkAfter = 200 * time.Millisecond

// waitEnd is when the wait for a command ends the session: the idle
// timeout, or the login timeout before a login.
func (s *session) waitEnd(loginEnd time.Time) time.Time {
	if !loginEnd.IsZero() && loginEnd.Before(s.idleEnd) {
		return loginEnd
	}
	return s.idleEnd
}

// waitDeadline gives the deadline of the wait's next read, up to end, and
// what it stands for.
func (s *session) waitDeadline(end time.Time, quiet bool) (time.Time, int) {
	deadline := end
	now := time.Now()
	if s.keep != nil && s.pasv == nil && s.transfer() == nil {
		if k := now.Add(s.srv.passiveKeep()); k.Before(deadline) {
			return k, waitKeep
		}
	}
	if !quiet && s.mayPark() {
		if q := now.Add(parkAfter); q.Before(deadline) {
			return q, waitQuiet
		}
	}
	return deadline, waitEnd
}

// awaitLine waits for the first byte of the next line and reports whether
// the whole line is in (usually it arrives in one piece, and then needs no
// command deadline).
func (s *session) awaitLine() (whole bool, err error) {
	r := s.lr.R
	if r.Buffered() == 0 {
		if _, err := r.Peek(1); err != nil {
			return false, err
		}
	}
	b, _ := r.Peek(r.Buffered())
	return bytes.IndexByte(b, '\n') >= 0, nil
}

var (
	errShutdown     = errors.New("shutdown")
	errIdle         = errors.New("idle timeout")
	errLoginTimeout = errors.New("login timeout")
	errSlowLine     = errors.New("command line timeout")
)

func (s *session) endOnReadError(err error) {
	switch {
	case errors.Is(err, errShutdown):
		if x := s.transfer(); x != nil {
			<-x.done // let it finish (Shutdown's deadline closes it otherwise)
		}
		s.end("Server shutting down", "shutdown")
	case errors.Is(err, errIdle):
		s.end("Idle timeout", "idle timeout")
	case errors.Is(err, errLoginTimeout):
		s.end("Login timeout", "login timeout")
		s.srv.def.Record(s.remote.Addr(), defender.Timeout)
	case errors.Is(err, errSlowLine):
		s.end("Command line not completed in time", "command line timeout")
		s.srv.def.Record(s.remote.Addr(), defender.Timeout)
	case errors.Is(err, io.EOF):
		s.closeMsg = "client closed"
	default:
		s.closeMsg = "connection error"
	}
}

// reply sends one reply; text with "\n" becomes a multi-line reply.
func (s *session) reply(code int, text string) {
	bp := replyBufs.Get().(*[]byte)
	b := ftp.AppendReply((*bp)[:0], code, text)
	s.wmu.Lock()
	s.conn.SetWriteDeadline(time.Now().Add(s.srv.dataStallTimeout()))
	s.conn.Write(b)
	s.wmu.Unlock()
	if cap(b) <= 4096 {
		*bp = b
		replyBufs.Put(bp)
	}
}

// replyBufs hold replies being written: no session keeps a buffer.
var replyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func (s *session) replyf(code int, format string, args ...any) {
	s.reply(code, fmt.Sprintf(format, args...))
}

// dispatch runs one command line through the command table.
func (s *session) dispatch(line string) {
	cmd, err := ftp.ParseCommand(line)
	if err != nil {
		s.reply(ftp.CodeSyntaxError, "Syntax error, command unrecognized.")
		s.badCommand()
		return
	}
	if httpVerbs[cmd.Verb] {
		// A browser or proxy made to talk to the FTP port (cross-protocol
		// attacks): nothing after this line is taken for a command.
		s.log().Warn("cross-protocol request", "verb", cmd.Verb)
		s.reply(ftp.CodeNotAvailable, "This is an FTP server, not HTTP; closing control connection.")
		s.closing = true
		s.closeMsg = "cross-protocol request"
		s.srv.def.Record(s.remote.Addr(), defender.CrossProtocol)
		return
	}
	arg := cmd.Arg
	if cmd.Verb == "PASS" {
		arg = "****"
	}
	s.log().Debug("command", "verb", cmd.Verb, "arg", arg)
	c, ok := commands[cmd.Verb]
	if !ok {
		s.replyf(ftp.CodeSyntaxError, "Unknown command %s.", cmd.Verb)
		s.badCommand()
		return
	}
	s.hook.cmd.Store(&c.Verb)
	if x := s.transfer(); x != nil && !c.DuringTransfer {
		s.awaitTransfer(x) // commands run in order: wait for the transfer's end
	}
	if cmd.Verb != "RNTO" {
		s.rnfr = ""
	}
	if c.Login && s.acct == nil {
		s.reply(ftp.CodeNotLoggedIn, "Please log in with USER and PASS first.")
		s.badCommand()
		return
	}
	switch c.Arg {
	case argRequired:
		if cmd.Arg == "" {
			s.replyf(ftp.CodeBadArguments, "%s needs an argument.", cmd.Verb)
			return
		}
	case argNone:
		if cmd.Arg != "" {
			s.replyf(ftp.CodeBadArguments, "%s takes no argument.", cmd.Verb)
			return
		}
	}
	if (c.Login || cmd.Verb == "PASS") && !c.quick {
		// Storage and auth calls may hang on a network.
		defer s.watch()()
	}
	c.fn(s, cmd.Arg)
}

// httpVerbs are request methods of HTTP (and the HTTP/2 preface): no FTP
// command has these names.
var httpVerbs = map[string]bool{"GET": true, "POST": true, "PUT": true, "HEAD": true, "DELETE": true,
	"OPTIONS": true, "CONNECT": true, "TRACE": true, "PATCH": true, "PRI": true}

// badCommand counts an unknown, malformed or out-of-order command before
// login; past the server's bound the session ends. Logged-in clients probe
// commands freely.
func (s *session) badCommand() {
	if s.acct != nil || s.closing {
		return
	}
	s.badCmds++
	if s.srv.def.Record(s.remote.Addr(), defender.ProtocolError) {
		s.end("Too many errors from your address", "banned")
		return
	}
	if int(s.badCmds) > s.srv.o().MaxBadCommands {
		s.end("Too many bad commands before login", "too many bad commands")
	}
}

// ctx is the context of the command now running: storage and auth calls
// take it. It ends when the session does (QUIT, error, Shutdown's
// deadline, Close, the client hanging up) and when the client sends ABOR
// while the command hangs (see watch), so a backend blocked on a network
// gives up with it. What outlives the command (a transfer, a file opened
// for one) takes the session's context, s.sctx.
func (s *session) ctx() context.Context {
	if s.cmdCtx != nil {
		return s.cmdCtx
	}
	return s.sctx
}

// watchAfter is how long a command runs before its client is watched.
const watchAfter = 100 * time.Millisecond

// watch gives the command about to run a context of its own and, once it
// has run for watchAfter, watches the control connection meanwhile: the
// client hanging up ends the session's context, an ABOR waiting in the
// input ends the command's. Nothing is consumed: the session reads the
// ABOR next and answers it. The returned function ends the watch.
func (s *session) watch() (stop func()) {
	ctx, cancel := context.WithCancel(s.sctx)
	s.cmdCtx = ctx
	unwatch := s.watchControl(cancel)
	return func() {
		unwatch()
		cancel()
		s.cmdCtx = nil
	}
}

// awaitTransfer waits for the running transfer x to end before a command
// that cannot run beside it. Meanwhile the control connection is watched
// as in watch: an ABOR sent behind the waiting command aborts x (426),
// the command then runs, and the ABOR is read and answered after it.
func (s *session) awaitTransfer(x *transfer) {
	select {
	case <-x.done:
		return
	default:
	}
	unwatch := s.watchControl(x.abort)
	<-x.done
	unwatch()
}

// watchControl starts, after watchAfter, a goroutine that peeks at the
// control connection until the returned function is called: a hang-up
// ends the session's context, an ABOR next in the input calls onABOR.
func (s *session) watchControl(onABOR func()) (stop func()) {
	var (
		mu       sync.Mutex
		stopping bool
		done     chan struct{}
	)
	timer := time.AfterFunc(watchAfter, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopping {
			return
		}
		done = make(chan struct{})
		if f := s.srv.watchHook; f != nil {
			f() // tests: the watcher is about to read
		}
		go func() {
			defer close(done)
			for {
				mu.Lock()
				if stopping {
					mu.Unlock()
					return
				}
				s.conn.SetReadDeadline(time.Time{})
				mu.Unlock()
				if s.watchOnce(onABOR) {
					return
				}
			}
		}()
	})
	return func() {
		timer.Stop()
		mu.Lock()
		stopping = true
		d := done
		if d != nil {
			s.conn.SetReadDeadline(time.Unix(1, 0)) // wakes the watcher
		}
		mu.Unlock()
		if d != nil {
			<-d
		}
	}
}

// watchOnce checks the input already buffered for an ABOR, else waits for
// more input on the control connection without consuming it (the caller's
// loop checks that next), and reports whether the watch is over.
func (s *session) watchOnce(onABOR func()) bool {
	r := s.lr.R
	n := r.Buffered()
	if b, _ := r.Peek(n); isABOR(b) {
		onABOR()
		return true
	}
	if n >= r.Size() {
		return true // a full buffer of pipelined commands: nothing to wait for
	}
	if _, err := r.Peek(n + 1); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false // woken: the loop checks whether to stop
		}
		s.sctx.cancel() // the client is gone: end everything it started
		return true
	}
	return false
}

// isABOR reports whether b starts with an ABOR command line, after the
// Telnet IP and Synch a client may send before it (RFC 959 §4.1.3).
func isABOR(b []byte) bool {
	for len(b) >= 2 && b[0] == 0xff {
		b = b[2:]
	}
	if len(b) < 4 || !strings.EqualFold(string(b[:4]), "ABOR") {
		return false
	}
	return len(b) == 4 || b[4] == '\r' || b[4] == '\n' || b[4] == ' '
}

// resolve turns a client's path argument into a virtual absolute path and
// the storage name for it. It refuses names with control characters (553).
func (s *session) resolve(arg string) (vpath, name string, ok bool) {
	for i := 0; i < len(arg); i++ {
		if c := arg[i]; c < 0x20 || c == 0x7f {
			s.reply(ftp.CodeBadFileName, "File name not allowed: it holds a control character.")
			return "", "", false
		}
	}
	p := arg
	if !strings.HasPrefix(p, "/") {
		p = path.Join(s.cwd, p)
	}
	p = path.Clean("/" + p)
	name = strings.TrimPrefix(p, "/")
	if name == "" {
		name = "."
	}
	return p, name, true
}

// may reports whether the account has permission p at the virtual path
// vpath, and answers 550 when it has not.
func (s *session) may(p auth.Perm, vpath string) bool {
	if s.acct == nil || s.acct.Perms.At(vpath)&p != p {
		s.reply(ftp.CodeNoFile, "Permission denied.")
		return false
	}
	return true
}

// fail replies to a storage error and logs what the client is not told.
func (s *session) fail(err error, what string) {
	code, text := replyFor(err)
	if code == ftp.CodeLocalError {
		s.log().Warn("storage error", "op", what, "err", err)
	}
	s.reply(code, text)
}

func connInfo(s *session) auth.ConnInfo {
	return auth.ConnInfo{Remote: s.remote, Local: s.local, Host: s.host}
}
