package server

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// Hooks let a program observe the server, in the manner of net/http's
// BaseContext, ConnContext and ConnState: metrics, event streams and an
// administration view are built on them, not on a second mechanism.
// Every hook is optional; a hook runs on the session's goroutine (or the
// transfer's), so it must be quick and must not block.
type Hooks struct {
	// BaseContext returns the base context of the sessions accepted on
	// ln. Nil means context.Background(). The session's context, given to
	// storage and authentication calls, is derived from it and ends with
	// the session.
	BaseContext func(ln net.Listener) context.Context
	// ConnContext may replace the context of a new connection c (to attach
	// values). Nil leaves it.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ConnState is called when a session changes state: StateNew once it
	// is accepted, StateLoggedIn at each login, StateTransferStart and
	// StateTransferEnd around each transfer, StateClosed once it ends.
	ConnState func(c *Conn, state ConnState)
	// Action is called after a session's login, failed login, and each
	// file operation that succeeded: delete, rename, mkdir, rmdir.
	// Transfers are reported by ConnState's StateTransferEnd.
	Action func(c *Conn, a Action)
	// HashUploads, when set, is asked at each STOR or STOU (not APPE, not
	// a resume) whether to compute the SHA-256 of the bytes received, for
	// TransferInfo.SHA256. Such an upload leaves the zero-copy path.
	HashUploads func(c *Conn) bool
}

// ActionKind is the kind of an Action.
type ActionKind int

const (
	// ActionLogin is a login (Action.User logged in).
	ActionLogin ActionKind = iota
	// ActionLoginFailed is a refused PASS or certificate login:
	// Action.User is the name the client gave, Action.Reason why.
	ActionLoginFailed
	// ActionDelete is a file deleted (DELE).
	ActionDelete
	// ActionRename is a rename (RNFR Path, RNTO To).
	ActionRename
	// ActionMkdir is a directory made (MKD).
	ActionMkdir
	// ActionRmdir is a directory removed (RMD).
	ActionRmdir
)

var actionNames = [...]string{"login", "login_failed", "delete", "rename", "mkdir", "rmdir"}

func (k ActionKind) String() string { return actionNames[k] }

// Action is what a session did, reported to Hooks.Action.
type Action struct {
	Kind ActionKind
	// User is the logged-in user, or for ActionLoginFailed the name the
	// client gave (a client's choice: never a metric label).
	User string
	// Path is the virtual path acted on; for a rename, its old name.
	Path string
	// To is a rename's new virtual path.
	To string
	// Reason says why a login failed.
	Reason string
}

// act reports a to Hooks.Action.
func (s *session) act(a Action) {
	if f := s.srv.Hooks.Action; f != nil {
		if a.User == "" && s.acct != nil {
			a.User = s.acct.User
		}
		f(s.hook, a)
	}
}

// ConnState is a state of a session, reported to Hooks.ConnState.
type ConnState int

const (
	// StateNew is a connection just accepted, before its greeting.
	StateNew ConnState = iota
	// StateLoggedIn is a session whose user has just logged in.
	StateLoggedIn
	// StateTransferStart is a transfer (RETR, STOR, LIST …) whose data
	// connection is about to be opened.
	StateTransferStart
	// StateTransferEnd is a transfer that has ended, with its reply sent;
	// Conn.Transfer describes it.
	StateTransferEnd
	// StateClosed is a session that has ended.
	StateClosed
)

var stateNames = [...]string{"new", "logged in", "transfer start", "transfer end", "closed"}

func (s ConnState) String() string { return stateNames[s] }

// Conn is a session as the hooks see it. Its methods are safe to call
// from any goroutine.
type Conn struct {
	s      *session
	user   atomic.Pointer[string]
	xfer   atomic.Pointer[TransferInfo]
	cmd    atomic.Pointer[string] // the verb of the last command (in the command table)
	secure atomic.Bool            // the control connection is secured
	ended  atomic.Bool            // by End
	host   atomic.Pointer[string] // RemoteHost, made on first use
}

// TransferInfo describes a session's transfer, running or ended.
type TransferInfo struct {
	Verb   string        // RETR, STOR, APPE, STOU, LIST, NLST, MLSD
	Path   string        // the virtual path
	Start  time.Time     // when the command was accepted
	Bytes  int64         // moved so far, or in all once ended
	Result string        // once ended: ok, aborted, connection lost, error …
	Took   time.Duration // once ended
	Code   int           // once ended: the reply that ended it (226, 426, 552 …)
	ASCII  bool          // TYPE A (else binary)
	Size   int64         // the bytes a download will send (the file's size less a REST offset); 0 when not known
	// SHA256 is, once a STOR or STOU has committed, the hex SHA-256 of
	// the bytes received when Hooks.HashUploads asked for it.
	SHA256 string
}

// Upload says whether the transfer is an upload (STOR, APPE, STOU).
func (t *TransferInfo) Upload() bool {
	return t.Verb == "STOR" || t.Verb == "APPE" || t.Verb == "STOU"
}

// The directions of transfers, as Direction names them.
const (
	DirectionUpload   = "upload"
	DirectionDownload = "download" // RETR
	DirectionListing  = "listing"  // LIST, NLST, MLSD
)

// Direction names what the transfer moves.
func (t *TransferInfo) Direction() string {
	switch {
	case t.Upload():
		return DirectionUpload
	case t.Verb == "RETR":
		return DirectionDownload
	}
	return DirectionListing
}

// info describes x; a result says it has ended.
func (x *transfer) info(result string) *TransferInfo {
	t := &TransferInfo{Verb: x.verb, Path: x.path, Start: x.start, Bytes: x.bytes.Load(), Result: result, ASCII: x.ascii, Size: x.size}
	if result != "" {
		t.Took = time.Since(x.start)
		t.Code, t.SHA256 = x.code, x.sum
	}
	return t
}

// ID is the session's number, unique in the server's life (the session=
// of the log lines).
func (c *Conn) ID() uint64 { return c.s.id }

// RemoteAddr is the client's address; LocalAddr the server's.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.s.remote }

// RemoteHost is the client's address as text, an IPv4-mapped IPv6
// address as IPv4, made once per session (events carry it).
func (c *Conn) RemoteHost() string {
	if h := c.host.Load(); h != nil {
		return *h
	}
	h := c.s.remote.Addr().Unmap().String()
	c.host.Store(&h)
	return h
}

// LocalAddr is the address the client connected to.
func (c *Conn) LocalAddr() netip.AddrPort { return c.s.local }

// Since is when the connection was accepted.
func (c *Conn) Since() time.Time { return c.s.start }

// Context is the session's context (see Hooks.BaseContext).
func (c *Conn) Context() context.Context { return c.s.sctx }

// User is the logged-in user, or "".
func (c *Conn) User() string {
	if u := c.user.Load(); u != nil {
		return *u
	}
	return ""
}

// Transfer describes the session's running transfer, or the last one
// once it ended; nil before the first.
func (c *Conn) Transfer() *TransferInfo {
	t := c.xfer.Load()
	if t == nil {
		return nil
	}
	cp := *t
	if x := c.s.transfer(); x != nil && cp.Result == "" {
		cp.Bytes = x.bytes.Load()
	}
	return &cp
}

// state reports a change to Hooks.ConnState.
func (s *session) state(st ConnState) {
	if f := s.srv.Hooks.ConnState; f != nil {
		f(s.hook, st)
	}
}

// sessionContext is the context a new session on ln starts from.
func (s *Server) sessionContext(ln net.Listener, c net.Conn) context.Context {
	ctx := context.Background()
	if s.Hooks.BaseContext != nil {
		if b := s.Hooks.BaseContext(ln); b != nil {
			ctx = b
		}
	}
	if s.Hooks.ConnContext != nil {
		if cc := s.Hooks.ConnContext(ctx, c); cc != nil {
			ctx = cc
		}
	}
	return ctx
}
