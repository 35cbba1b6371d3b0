package accounts

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ferryftp/ferry/auth/password"
)

// Options configure a Manager.
type Options struct {
	// Path is the admins file, read again whenever it changes (ferry
	// admin edits it beside a running server).
	Path string
	// Secure marks the session cookie Secure: the listener speaks TLS.
	Secure bool
	// SessionTTL is how long a console session lasts (12h when zero).
	SessionTTL time.Duration
	// Failed, when set, is told of each failed login or bad token from
	// addr (the defender scores it); Banned, when set, refuses addresses
	// before their password is checked.
	Failed func(addr netip.Addr)
	Banned func(addr netip.Addr) bool
	Logger *slog.Logger
}

// Manager authenticates administrators: by an API token (Authorization:
// Bearer) or a console session cookie, whose changes need its CSRF token.
type Manager struct {
	o        Options
	mu       sync.Mutex
	file     *File
	stamp    fileStamp
	sessions map[string]*session
}

type fileStamp struct {
	mod  time.Time
	size int64
}

type session struct {
	admin, csrf string
	expires     time.Time
}

// Who is an authenticated administrator.
type Who struct {
	Admin string
	// CSRF is the session's token that changes must carry; empty for a
	// request made with an API token (no ambient credential to forge).
	CSRF string
	// Remote is the address the request came from.
	Remote netip.Addr
}

// CookieName is the console session's cookie.
const CookieName = "ferry_admin"

// CSRFHeader carries the CSRF token of an API call made with the
// session cookie; a form sends it as the field "csrf".
const CSRFHeader = "X-CSRF-Token"

// Errors of Login.
var (
	ErrBadLogin = errors.New("wrong name or password")
	ErrBanned   = errors.New("too many failed logins from your address; try again later")
)

// NewManager returns a manager of the admins file o.Path.
func NewManager(o Options) *Manager {
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Manager{o: o, sessions: map[string]*session{}}
}

// current is the admins file as it is now (read again when it changed);
// one that fails to read leaves no one in.
func (m *Manager) current() *File {
	m.mu.Lock()
	defer m.mu.Unlock()
	fi, err := os.Stat(m.o.Path)
	var st fileStamp
	if err == nil {
		st = fileStamp{fi.ModTime(), fi.Size()}
	}
	if m.file != nil && st == m.stamp {
		return m.file
	}
	f, err := Load(m.o.Path)
	if err != nil {
		m.o.Logger.Error("admins file not read: no administrator can log in", "err", err)
		f = &File{}
	}
	m.file, m.stamp = f, st
	return f
}

// Login checks name and pw from addr and opens a console session: the
// cookie to set, and its CSRF token.
func (m *Manager) Login(ctx context.Context, addr netip.Addr, name, pw string) (*http.Cookie, string, error) {
	if m.o.Banned != nil && m.o.Banned(addr) {
		return nil, "", ErrBanned
	}
	f := m.current()
	hash := password.Decoy()
	i := f.Find(name)
	if i >= 0 {
		hash = f.Admin[i].Password
	}
	if err := password.VerifyContext(ctx, hash, pw); err != nil || i < 0 {
		m.failed(addr, "admin login failed", "admin", name)
		return nil, "", ErrBadLogin
	}
	id, csrf := randomHex(32), randomHex(32)
	m.mu.Lock()
	now := time.Now()
	for k, s := range m.sessions {
		if now.After(s.expires) {
			delete(m.sessions, k)
		}
	}
	m.sessions[id] = &session{admin: name, csrf: csrf, expires: now.Add(m.o.SessionTTL)}
	m.mu.Unlock()
	m.o.Logger.Info("admin login", "admin", name, "remote", addr.String())
	return m.cookie(id, int(m.o.SessionTTL/time.Second)), csrf, nil
}

func (m *Manager) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: m.o.Secure, SameSite: http.SameSiteStrictMode}
}

// Logout ends the request's console session; it returns the cookie that
// clears it.
func (m *Manager) Logout(r *http.Request) *http.Cookie {
	if c, err := r.Cookie(CookieName); err == nil {
		m.mu.Lock()
		delete(m.sessions, c.Value)
		m.mu.Unlock()
	}
	return m.cookie("", -1)
}

func (m *Manager) failed(addr netip.Addr, msg string, args ...any) {
	m.o.Logger.Warn(msg, append(args, "remote", addr.String())...)
	if m.o.Failed != nil {
		m.o.Failed(addr)
	}
}

// Identify returns who made r: by its bearer token, else its session
// cookie. The admin must still exist.
func (m *Manager) Identify(r *http.Request) (Who, bool) {
	f := m.current()
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if ok {
			if who, ok := f.token(tok); ok {
				return who, true
			}
		}
		m.failed(RemoteAddr(r), "admin API token refused")
		return Who{}, false
	}
	c, err := r.Cookie(CookieName)
	if err != nil {
		return Who{}, false
	}
	m.mu.Lock()
	s, ok := m.sessions[c.Value]
	if ok && time.Now().After(s.expires) {
		delete(m.sessions, c.Value)
		ok = false
	}
	m.mu.Unlock()
	if !ok || f.Find(s.admin) < 0 {
		return Who{}, false
	}
	return Who{Admin: s.admin, CSRF: s.csrf}, true
}

// token checks an API token.
func (f *File) token(tok string) (Who, bool) {
	id, secret, ok := splitToken(tok)
	if !ok {
		return Who{}, false
	}
	h := hashSecret(secret)
	for _, t := range f.Token {
		if t.ID == id && subtle.ConstantTimeCompare([]byte(t.Hash), []byte(h)) == 1 && f.Find(t.Admin) >= 0 {
			return Who{Admin: t.Admin}, true
		}
	}
	return Who{}, false
}

// RemoteAddr is the client address of r.
func RemoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

type whoKey struct{}

// From returns the administrator of a request that passed Require.
func From(ctx context.Context) Who {
	w, _ := ctx.Value(whoKey{}).(Who)
	return w
}

// Require lets through requests of an authenticated administrator, with
// Who in their context; others go to denied, and those of an address the
// defender bans get 429. A change (any method but
// GET, HEAD) made with the session cookie must carry its CSRF token, in
// the X-CSRF-Token header or the form field "csrf": without it, 403.
func (m *Manager) Require(next http.Handler, denied http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.o.Banned != nil && m.o.Banned(RemoteAddr(r)) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error": "` + ErrBanned.Error() + `"}` + "\n"))
			return
		}
		who, ok := m.Identify(r)
		if !ok {
			denied(w, r)
			return
		}
		if who.CSRF != "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
			got := r.Header.Get(CSRFHeader)
			if got == "" {
				got = r.PostFormValue("csrf")
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(who.CSRF)) != 1 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				w.Write([]byte(`{"error": "missing or wrong CSRF token"}` + "\n"))
				return
			}
		}
		who.Remote = RemoteAddr(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), whoKey{}, who)))
	})
}
