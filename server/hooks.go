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
	s    *session
	user atomic.Pointer[string]
	xfer atomic.Pointer[TransferInfo]
}

// TransferInfo describes a session's transfer, running or ended.
type TransferInfo struct {
	Verb   string        // RETR, STOR, APPE, STOU, LIST, NLST, MLSD
	Path   string        // the virtual path
	Start  time.Time     // when the command was accepted
	Bytes  int64         // moved so far, or in all once ended
	Result string        // once ended: ok, aborted, connection lost, error …
	Took   time.Duration // once ended
}

// info describes x; a result says it has ended.
func (x *transfer) info(result string) *TransferInfo {
	t := &TransferInfo{Verb: x.verb, Path: x.path, Start: x.start, Bytes: x.bytes.Load(), Result: result}
	if result != "" {
		t.Took = time.Since(x.start)
	}
	return t
}

// ID is the session's number, unique in the server's life (the session=
// of the log lines).
func (c *Conn) ID() uint64 { return c.s.id }

// RemoteAddr is the client's address; LocalAddr the server's.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.s.remote }

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
