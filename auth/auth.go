// Package auth defines how the server learns who a client is and what it may
// do: an Authenticator checks a user name and password and returns an
// Account with the user's storage and permissions.
package auth

import (
	"context"
	"errors"
	"net/netip"

	"github.com/ferryftp/ferry/limits"
	"github.com/ferryftp/ferry/storage"
)

// Authenticator checks credentials. Implementations must take about the same
// time for an unknown user as for a wrong password, and must be safe for
// concurrent use.
type Authenticator interface {
	Authenticate(ctx context.Context, c ConnInfo, user, pass string) (*Account, error)
}

// CertAuthenticator is implemented by authenticators that can log in a
// user on a verified TLS client certificate alone (the server has checked
// it against its client CAs and that it names the user).
type CertAuthenticator interface {
	// AuthenticateCert returns user's account when the user may log in by
	// certificate alone, and ErrBadCredentials otherwise.
	AuthenticateCert(ctx context.Context, c ConnInfo, user string) (*Account, error)
}

// Client certificate rules of an account (Permissions.ClientCert).
const (
	CertOptional = ""         // a password, certificate or not
	CertLogin    = "login"    // a matching certificate alone logs in (232)
	CertRequired = "required" // a matching certificate and the password
)

// ConnInfo describes the control connection a login arrives on.
type ConnInfo struct {
	Remote netip.AddrPort // the client
	Local  netip.AddrPort // the server's address it connected to
	Host   string         // the virtual host from HOST (RFC 7151), or ""
}

// Account is a logged-in user. The server never changes an Account, so an
// Authenticator may hand the same one to every session of a user.
type Account struct {
	User  string
	FS    storage.FS // the user's root directory; "/" on the wire
	Perms Permissions
	// Rates pace the transfers of all the user's sessions together.
	Rates Rates
}

// Rates are an account's bandwidth limits; nil is none.
type Rates struct {
	Up, Down limits.Limiter
}

// Permissions say what an account may do.
type Permissions struct {
	// Write allows uploads, deletes, renames, MKD/RMD, MFMT and SITE CHMOD.
	// Without it the account is read-only.
	Write bool
	// FXP lists the networks, other than the client's own address, that
	// this account's data connections may go to (PORT/EPRT) or come from
	// (PASV/EPSV): third-party transfers between servers. Empty allows
	// none. Ports below 1024 are refused whatever this says.
	FXP []netip.Prefix
	// TLSRequired refuses this account's login on a connection without TLS
	// and its data connections without PROT P, whatever the server's
	// policy.
	TLSRequired bool
	// NoTLSSessionReuse lets this account's TLS data connections make a
	// full handshake (clients that cannot resume the control session).
	NoTLSSessionReuse bool
	// ClientCert is CertOptional, CertLogin or CertRequired.
	ClientCert string
	// Dirs are per-directory permissions that replace, in a directory and
	// below it, what Write grants (see At).
	Dirs []DirPerm
}

// AllowsFXP reports whether a data connection with addr is allowed for a
// client at peer.
func (p Permissions) AllowsFXP(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, n := range p.FXP {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// ErrBadCredentials is returned for an unknown user or a wrong password;
// the two are never told apart.
var ErrBadCredentials = errors.New("auth: wrong user name or password")

// Func adapts a function to an Authenticator.
type Func func(ctx context.Context, c ConnInfo, user, pass string) (*Account, error)

func (f Func) Authenticate(ctx context.Context, c ConnInfo, user, pass string) (*Account, error) {
	return f(ctx, c, user, pass)
}
