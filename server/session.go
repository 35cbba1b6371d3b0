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
//     raw, remote, local, id, start, sctx, cancel, hook.
//   - Owned by the session goroutine (serve and the command handlers it
//     runs): every field not named otherwise. A transfer goroutine gets
//     what it needs as arguments and never reads them.
//   - conn and tls: AUTH TLS and CCC replace them on the session
//     goroutine, holding wmu, which reads them freely; any other goroutine
//     (a transfer writing its reply) reads them only under wmu. Shutdown
//     and Close use raw, never conn. wbuf is guarded by wmu.
//   - Guarded by xmu: xfer.
//   - Guarded by srv.mu: counted, unauthDone.
//   - log is set at the start of serve, before any other goroutine of
//     the session exists.
type session struct {
	srv    *Server
	raw    net.Conn // the accepted connection; TLS wraps it, it never changes
	conn   net.Conn // raw, or the TLS connection over it (guarded by wmu)
	lr     ftp.LineReader
	remote netip.AddrPort
	local  netip.AddrPort
	id     uint64
	start  time.Time
	log    *slog.Logger

	wmu  sync.Mutex // serializes replies; guards conn, wbuf and tls
	wbuf []byte

	// Login state.
	host       string
	user       string // from USER, awaiting PASS
	acct       *auth.Account
	loginFails int
	badCmds    int // unknown or malformed commands before login
	// Guarded by srv.mu: the user this session counts against, and
	// whether it no longer counts as unauthenticated.
	counted    string
	unauthDone bool

	// Session state.
	cwd      string // virtual absolute path
	binary   bool   // TYPE I, or TYPE A (the default, RFC 959 3.1.1.1)
	rest     int64  // pending REST offset
	rnfr     string // pending RNFR name (virtual path)
	epsvAll  bool
	pasv     *net.TCPListener // pending PASV/EPSV: keep, or nil
	keep     *net.TCPListener // the session's passive listener, reused
	active   netip.AddrPort   // pending PORT/EPRT address
	facts    ftp.Facts
	hashAlg  string
	closing  bool   // QUIT seen or fatal error
	closeMsg string // reason for the session end log line

	xmu  sync.Mutex
	xfer *transfer // running transfer, or nil (guarded by xmu)

	// TLS state (RFC 4217).
	implicit bool      // accepted on an implicit-TLS listener
	policy   TLSPolicy // of the listener, or the server's
	noReuse  bool      // TLS data connections need not resume (listener or server)
	tls      bool      // the control connection is secured (guarded by wmu)
	tlsToken []byte    // binds this session's TLS tickets to it
	sni      string    // the TLS server name the client asked for
	certUser string    // common name of the verified TLS client certificate
	pbsz     bool      // PBSZ seen
	protP    bool      // PROT P: data connections are secured

	hook   *Conn // the session as the hooks see it
	sctx   context.Context
	cancel context.CancelFunc
	cmdCtx context.Context // of the command running, or nil (see watch)
}

func newSession(ctx context.Context, srv *Server, c net.Conn) *session {
	srv.init()
	s := &session{
		srv:     srv,
		raw:     c,
		conn:    c,
		remote:  addrPort(c.RemoteAddr()),
		local:   addrPort(c.LocalAddr()),
		id:      srv.nextID.Add(1),
		start:   time.Now(),
		cwd:     "/",
		facts:   ftp.AllFacts,
		hashAlg: "SHA-256",
	}
	s.sctx, s.cancel = context.WithCancel(ctx)
	s.hook = &Conn{s: s}
	s.lr.R = bufio.NewReaderSize(c, 512)
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
func (s *session) wake() { s.raw.SetReadDeadline(time.Unix(1, 0)) }

// kill closes the session's connections at once (Close).
func (s *session) kill() {
	s.cancel()
	s.raw.Close()
	if x := s.transfer(); x != nil {
		x.abort()
	}
}

func (s *session) transfer() *transfer {
	s.xmu.Lock()
	defer s.xmu.Unlock()
	return s.xfer
}

func (s *session) serve() {
	s.log = s.srv.logger().With("session", s.id, "remote", s.remote.String())
	s.log.Info("session start", "local", s.local.String())
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("session panic", "panic", r, "stack", string(debug.Stack()))
			s.end("Internal error", "panic")
		}
		if x := s.transfer(); x != nil {
			x.abort()
			<-x.done
		}
		s.cancel()
		s.closeListener()
		s.conn.Close()
		s.log.Info("session end", "user", s.hook.User(), "duration", time.Since(s.start).Round(time.Millisecond), "reason", s.closeMsg)
	}()
	if s.implicit {
		if err := s.secureControl(); err != nil {
			s.log.Warn("TLS handshake failed", "err", err)
			s.closeMsg = "TLS handshake failed"
			s.srv.def.Record(s.remote.Addr(), defender.ProtocolError)
			return
		}
		s.lr.Reset(s.conn)
		s.pbsz, s.protP = true, true // implicit FTPS protects data from the start
	}
	s.reply(ftp.CodeServiceReady, s.srv.opts.Welcome)
	for !s.closing {
		line, err := s.readCommand()
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

// readCommand waits for the next command line. The idle timeout applies only
// while no transfer runs; before login, the login timeout bounds the wait
// too. Once a line's first byte is in, the rest must follow within the
// command timeout, so a client sending a byte now and then holds no slot.
// A session quiet for longer than PassiveKeep gives its passive listener
// back first.
func (s *session) readCommand() (string, error) {
	idleEnd := time.Now().Add(s.srv.idleTimeout())
	loginEnd := time.Time{}
	if s.acct == nil {
		loginEnd = s.start.Add(s.srv.loginTimeout())
	}
	for {
		deadline := idleEnd
		if !loginEnd.IsZero() && loginEnd.Before(deadline) {
			deadline = loginEnd
		}
		keepPhase := false
		if s.keep != nil && s.pasv == nil && s.transfer() == nil {
			if k := time.Now().Add(s.srv.passiveKeep()); k.Before(deadline) {
				deadline, keepPhase = k, true
			}
		}
		s.conn.SetReadDeadline(deadline)
		if s.srv.inShutdown.Load() {
			return "", errShutdown
		}
		slowLine := false
		whole, err := s.awaitLine()
		if err == nil && !whole {
			if cd := time.Now().Add(s.srv.commandTimeout()); cd.Before(deadline) {
				s.conn.SetReadDeadline(cd)
				slowLine, keepPhase = true, false
			}
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
			case slowLine:
				return "", errSlowLine
			case keepPhase:
				s.closeListener()
				continue
			case s.transfer() != nil:
				idleEnd = time.Now().Add(s.srv.idleTimeout())
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
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wbuf = ftp.AppendReply(s.wbuf[:0], code, text)
	s.conn.SetWriteDeadline(time.Now().Add(s.srv.dataStallTimeout()))
	s.conn.Write(s.wbuf)
	if cap(s.wbuf) > 4096 {
		s.wbuf = nil
	}
}

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
		s.log.Warn("cross-protocol request", "verb", cmd.Verb)
		s.reply(ftp.CodeNotAvailable, "This is an FTP server, not HTTP; closing control connection.")
		s.closing = true
		s.closeMsg = "cross-protocol request"
		s.srv.def.Record(s.remote.Addr(), defender.CrossProtocol)
		return
	}
	if cmd.Verb == "PASS" {
		s.log.Debug("command", "verb", "PASS", "arg", "****")
	} else {
		s.log.Debug("command", "verb", cmd.Verb, "arg", cmd.Arg)
	}
	c, ok := commands[cmd.Verb]
	if !ok {
		s.replyf(ftp.CodeSyntaxError, "Unknown command %s.", cmd.Verb)
		s.badCommand()
		return
	}
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
	if s.badCmds > s.srv.opts.MaxBadCommands {
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
		s.cancel() // the client is gone: end everything it started
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

// canWrite answers 550 for a read-only account.
func (s *session) canWrite() bool {
	if s.acct == nil || !s.acct.Perms.Write {
		s.reply(ftp.CodeNoFile, "Permission denied.")
		return false
	}
	return true
}

// fail replies to a storage error and logs what the client is not told.
func (s *session) fail(err error, what string) {
	code, text := replyFor(err)
	if code == ftp.CodeLocalError {
		s.log.Warn("storage error", "op", what, "err", err)
	}
	s.reply(code, text)
}

func connInfo(s *session) auth.ConnInfo {
	return auth.ConnInfo{Remote: s.remote, Local: s.local, Host: s.host}
}
