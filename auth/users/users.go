// Package users keeps virtual users in a TOML file and authenticates them.
//
//	[[user]]
//	name = "alice"
//	password = "$argon2id$v=19$m=19456,t=2,p=1$…$…"   # or a bcrypt hash
//	home = "files/alice"          # relative to the users file's directory
//	permission = "read-write"     # or "read-only" (the default)
//	fxp = ["192.0.2.0/24"]        # networks allowed for third-party transfers
//
// The file is read again when it changes, so `ferry user add` takes effect on
// a running server. Passwords are stored only as hashes.
package users

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/time/rate"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/auth/password"
	"github.com/ferryftp/ferry/internal/atomicfile"
	"github.com/ferryftp/ferry/internal/bytesize"
	"github.com/ferryftp/ferry/limits"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/backend"
)

// User is one entry of a users file.
type User struct {
	Name     string `toml:"name"`
	Password string `toml:"password"`
	Home     string `toml:"home,omitempty"`
	// Storage, when set, is where the user's files live instead of Home:
	// a storage URL (file:///dir, s3://bucket/prefix?endpoint=…).
	Storage    string   `toml:"storage,omitempty"`
	Permission string   `toml:"permission,omitempty"`
	FXP        []string `toml:"fxp,omitempty"`
	// TLS "required": no login without TLS, no data without PROT P.
	TLS string `toml:"tls,omitempty"`
	// TLSSessionReuse false lets this user's TLS data connections skip
	// resuming the control session.
	TLSSessionReuse *bool `toml:"tls_session_reuse,omitempty"`
	// ClientCert: "login" (a TLS client certificate naming the user logs
	// in alone) or "required" (certificate and password); absent: password.
	ClientCert string `toml:"client_cert,omitempty"`
	// AllowFrom, when set, are the only addresses or networks the user
	// may log in from.
	AllowFrom []string `toml:"allow_from,omitempty"`
	// Expires is the last day the user may log in ("2027-03-31", through
	// the end of that day UTC), or an RFC 3339 time.
	Expires string `toml:"expires,omitempty"`
	// Disabled refuses every login of the user.
	Disabled bool `toml:"disabled,omitempty"`
	// MaxRateUp and MaxRateDown cap the bytes a second of all the user's
	// uploads, and downloads, together ("1MiB"); 0: no limit.
	MaxRateUp   bytesize.Size `toml:"max_rate_up,omitempty"`
	MaxRateDown bytesize.Size `toml:"max_rate_down,omitempty"`
	// QuotaBytes and QuotaFiles cap what the user stores ("10GiB",
	// 100000); 0: no cap.
	QuotaBytes bytesize.Size `toml:"quota_bytes,omitempty"`
	QuotaFiles int64         `toml:"quota_files,omitempty"`
	// Dirs are per-directory permissions (also written [[users.NAME.dirs]]).
	Dirs []DirRule `toml:"dirs,omitempty"`
}

// DirRule gives the permissions in a directory of the user's files and
// below it: perms is a list of list, download, upload, overwrite,
// delete, rename, mkdir (or all, none, read-only).
type DirRule struct {
	Path  string `toml:"path" json:"path"`
	Perms string `toml:"perms" json:"perms"`
}

// ParseExpires reads an expires value: the first instant the account no
// longer works. A day means its end (UTC).
func ParseExpires(s string) (time.Time, error) {
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.AddDate(0, 0, 1), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("expires %q: want a date (2027-03-31) or an RFC 3339 time", s)
}

// Permission values.
const (
	ReadOnly  = "read-only"
	ReadWrite = "read-write"
)

type file struct {
	User []User `toml:"user"`
	// Users holds the [[users.NAME.dirs]] tables, merged into User.
	Users map[string]struct {
		Dirs []DirRule `toml:"dirs"`
	} `toml:"users,omitempty"`
}

var validName = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// ValidName reports whether name is acceptable as a user name.
func ValidName(name string) bool { return validName.MatchString(name) }

func (u *User) validate() error {
	if !ValidName(u.Name) {
		return fmt.Errorf("user %q: name must be 1-64 of A-Z a-z 0-9 . _ @ -", u.Name)
	}
	if err := password.Check(u.Password); err != nil {
		return fmt.Errorf("user %q: password must be an argon2id or bcrypt hash", u.Name)
	}
	if u.Home == "" && u.Storage == "" {
		return fmt.Errorf("user %q: home or storage is required", u.Name)
	}
	if u.Storage != "" {
		if err := backend.Check(u.Storage); err != nil {
			return fmt.Errorf("user %q: %v", u.Name, err)
		}
	}
	switch u.Permission {
	case "", ReadOnly, ReadWrite:
	default:
		return fmt.Errorf("user %q: permission must be %q or %q", u.Name, ReadOnly, ReadWrite)
	}
	for _, n := range u.FXP {
		if _, err := ParseNet(n); err != nil {
			return fmt.Errorf("user %q: fxp: %v", u.Name, err)
		}
	}
	switch u.ClientCert {
	case auth.CertOptional, auth.CertLogin, auth.CertRequired:
	default:
		return fmt.Errorf("user %q: client_cert must be \"login\" or \"required\"", u.Name)
	}
	if u.TLS != "" && u.TLS != "required" {
		return fmt.Errorf("user %q: tls must be \"required\" or absent", u.Name)
	}
	for _, n := range u.AllowFrom {
		if _, err := ParseNet(n); err != nil {
			return fmt.Errorf("user %q: allow_from: %v", u.Name, err)
		}
	}
	if u.Expires != "" {
		if _, err := ParseExpires(u.Expires); err != nil {
			return fmt.Errorf("user %q: %v", u.Name, err)
		}
	}
	for _, d := range u.Dirs {
		if d.Path == "" {
			return fmt.Errorf("user %q: dirs: a rule without a path", u.Name)
		}
		if _, err := auth.ParsePerm(d.Perms); err != nil {
			return fmt.Errorf("user %q: dirs %s: %v", u.Name, d.Path, err)
		}
	}
	return nil
}

// ParseNet parses a network ("192.0.2.0/24") or one address (a network
// of its own), as allow_from, fxp and the configuration's address lists
// take them.
func ParseNet(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or network", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Load reads a users file. A missing file is an empty list.
func Load(path string) ([]User, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f file
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown key %s", path, und[0])
	}
	for name, more := range f.Users {
		i := slices.IndexFunc(f.User, func(u User) bool { return u.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("%s: users.%s.dirs: no [[user]] named %q", path, name, name)
		}
		f.User[i].Dirs = append(f.User[i].Dirs, more.Dirs...)
	}
	seen := map[string]bool{}
	for i := range f.User {
		if err := f.User[i].validate(); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if seen[f.User[i].Name] {
			return nil, fmt.Errorf("%s: user %q appears twice", path, f.User[i].Name)
		}
		seen[f.User[i].Name] = true
	}
	return f.User, nil
}

// Validate checks every user and that no name appears twice.
func Validate(users []User) error {
	seen := map[string]bool{}
	for i := range users {
		if err := users[i].validate(); err != nil {
			return err
		}
		if seen[users[i].Name] {
			return fmt.Errorf("user %q appears twice", users[i].Name)
		}
		seen[users[i].Name] = true
	}
	return nil
}

// Save writes users to path atomically, readable by its owner only.
func Save(path string, users []User) error {
	if err := Validate(users); err != nil {
		return err
	}
	sort.Slice(users, func(i, j int) bool { return users[i].Name < users[j].Name })
	var buf bytes.Buffer
	buf.WriteString("# Ferry users. Edit with `ferry user add|set|passwd|del|list`.\n# Passwords are argon2id or bcrypt hashes; homes are relative to this file.\n\n")
	if err := toml.NewEncoder(&buf).Encode(file{User: users}); err != nil {
		return err
	}
	return atomicfile.WritePrivate(path, buf.Bytes())
}

// Store authenticates the users of a users file, and optionally anonymous
// users. It is safe for concurrent use.
type Store struct {
	// Path is the users file. Empty means no file (only Extra and
	// Anonymous users).
	Path string
	// Extra users, beside the file (the --user quick-start user). Their
	// Home is an absolute path or relative to the working directory.
	Extra []User
	// Anonymous, if set, is the read-only storage of the users "anonymous"
	// and "ftp", who log in with any password.
	Anonymous storage.FS
	// FS opens a user's files: a directory (Home) or a storage URL
	// (Storage); nil means a backend.Opener with default options.
	FS func(ctx context.Context, loc string) (storage.FS, error)
	// UsageFile keeps the usage of users with a quota across restarts;
	// empty means usage.json beside Path (none without Path).
	UsageFile string
	// Source, when set, holds the users instead of the file at Path (a
	// database).
	Source Source
	// Banks, when set, keeps quota usage where several nodes share it (a
	// database), instead of UsageFile: a quota is then exact across nodes.
	Banks func(user string) QuotaBank
	// PartialMaxAge is how long the kept part of an interrupted upload
	// counts in a quota's usage (the sweeper's partial_max_age; 0 or less:
	// until it is resumed or replaced).
	PartialMaxAge time.Duration

	mu     sync.Mutex
	loaded time.Time // mtime of the file as loaded
	size   int64
	// srcVersion is the Source's version as loaded.
	srcVersion int64
	users      map[string]*entry
	homes      map[string]storage.FS
	rates      map[string]*userRates // by user name, kept across reloads
	ledgers    map[string]*limits.Ledger
	usage      usageFile
	macKey     [32]byte
	initKey    sync.Once
}

type entry struct {
	User
	perms   auth.Permissions
	rates   auth.Rates
	home    string
	allow   []netip.Prefix // from AllowFrom
	expires time.Time      // from Expires; zero: never
	// mac is HMAC(macKey, password) of the last password that verified
	// against this hash: later logins with it skip the expensive hash.
	mac []byte
	// acct is the account every session of this user shares (guarded by
	// Store.mu; made on the first login after a reload).
	acct *auth.Account
}

// userRates are the token buckets one user's sessions share.
type userRates struct{ up, down *rate.Limiter }

// ratesLocked returns the limiters of u, made or updated to its limits.
func (s *Store) ratesLocked(u User) auth.Rates {
	if s.rates == nil {
		s.rates = map[string]*userRates{}
	}
	r := s.rates[u.Name]
	if r == nil {
		r = &userRates{}
		s.rates[u.Name] = r
	}
	set := func(l **rate.Limiter, bps int64) limits.Limiter {
		switch {
		case bps <= 0:
			*l = nil
			return nil
		case *l == nil:
			*l = limits.NewLimiter(bps)
		default:
			limits.SetRate(*l, bps)
		}
		return *l
	}
	return auth.Rates{Up: set(&r.up, int64(u.MaxRateUp)), Down: set(&r.down, int64(u.MaxRateDown))}
}

// Reload reads the users file now.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked(true)
}

func (s *Store) reloadLocked(force bool) error {
	list, changed, err := s.loadLocked(force)
	if err != nil || !changed {
		return err
	}
	base := "."
	if s.Path != "" {
		base = filepath.Dir(s.Path)
	}
	m := make(map[string]*entry, len(list)+len(s.Extra))
	add := func(u User, base string) error {
		if err := u.validate(); err != nil {
			return err
		}
		e := &entry{User: u, home: u.Home}
		switch {
		case u.Storage != "":
			e.home = u.Storage
		case !filepath.IsAbs(e.home):
			e.home = filepath.Join(base, e.home)
		}
		e.perms.Write = u.Permission == ReadWrite
		e.perms.TLSRequired = u.TLS == "required" || u.ClientCert != ""
		e.perms.ClientCert = u.ClientCert
		e.perms.NoTLSSessionReuse = u.TLSSessionReuse != nil && !*u.TLSSessionReuse
		for _, n := range u.FXP {
			p, _ := ParseNet(n)
			e.perms.FXP = append(e.perms.FXP, p)
		}
		for _, n := range u.AllowFrom {
			p, _ := ParseNet(n)
			e.allow = append(e.allow, p)
		}
		for _, d := range u.Dirs {
			p, _ := auth.ParsePerm(d.Perms)
			e.perms.Dirs = append(e.perms.Dirs, auth.DirPerm{Path: auth.CleanDir(d.Path), Perm: p})
		}
		if u.Expires != "" {
			e.expires, _ = ParseExpires(u.Expires)
		}
		e.rates = s.ratesLocked(u)
		if old, ok := s.users[u.Name]; ok && old.Password == u.Password {
			e.mac = old.mac
		}
		m[u.Name] = e
		return nil
	}
	for _, u := range list {
		if err := add(u, base); err != nil {
			return err
		}
	}
	for _, u := range s.Extra {
		if err := add(u, "."); err != nil {
			return err
		}
	}
	s.users = m
	return nil
}

// loadLocked reads the users of the Source or the file, unless nothing
// changed since the last load and force is false.
func (s *Store) loadLocked(force bool) (list []User, changed bool, err error) {
	if s.Source != nil {
		v := s.Source.Version()
		if !force && s.users != nil && v == s.srcVersion {
			return nil, false, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if list, err = s.Source.Users(ctx); err != nil {
			return nil, false, err
		}
		s.srcVersion = v
		return list, true, nil
	}
	var mtime time.Time
	var size int64
	if s.Path != "" {
		fi, err := os.Stat(s.Path)
		if err == nil {
			mtime, size = fi.ModTime(), fi.Size()
		}
		if !force && s.users != nil && mtime.Equal(s.loaded) && size == s.size {
			return nil, false, nil
		}
	} else if s.users != nil {
		return nil, false, nil
	}
	if s.Path != "" {
		if list, err = Load(s.Path); err != nil {
			return nil, false, err
		}
	}
	s.loaded, s.size = mtime, size
	return list, true, nil
}

// Source is where a Store's users come from, beside Extra, instead of
// the users file: a database.
type Source interface {
	// Version changes whenever the users change. It does no I/O: the
	// Store asks at every login.
	Version() int64
	// Users reads every user.
	Users(ctx context.Context) ([]User, error)
}

// init makes the per-process HMAC key. (The bound on concurrent hash
// verifications is password.MaxConcurrent.)
func (s *Store) init() {
	s.initKey.Do(func() { rand.Read(s.macKey[:]) })
}

func (s *Store) mac(pass string) []byte {
	h := hmac.New(sha256.New, s.macKey[:])
	h.Write([]byte(pass))
	return h.Sum(nil)
}

// Authenticate implements auth.Authenticator. A password that verified once
// is remembered as a keyed HMAC in memory, so later logins with it cost
// microseconds instead of an argon2id run; a wrong password always pays the
// full hash, as does an unknown user.
func (s *Store) Authenticate(ctx context.Context, c auth.ConnInfo, user, pass string) (*auth.Account, error) {
	if s.Anonymous != nil && auth.IsAnonymous(user) {
		return &auth.Account{User: user, FS: s.Anonymous}, nil
	}
	s.init()
	mac := s.mac(pass)
	s.mu.Lock()
	if err := s.reloadLocked(false); err != nil && s.users == nil {
		s.mu.Unlock()
		return nil, err
	}
	e, ok := s.users[user]
	var cached bool
	if ok && e.mac != nil && hmac.Equal(e.mac, mac) {
		cached = true
	}
	s.mu.Unlock()
	if !cached {
		hash := password.Decoy()
		if ok {
			hash = e.Password
		}
		err := password.VerifyContext(ctx, hash, pass)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil || !ok {
			return nil, auth.ErrBadCredentials
		}
		s.mu.Lock()
		e.mac = mac
		s.mu.Unlock()
	}
	if err := e.admits(c, time.Now()); err != nil {
		return nil, err
	}
	return s.account(ctx, e)
}

// admits checks the account rules that hold whatever the password: the
// user is not disabled, not expired, and logs in from an allowed address.
// They are checked only after the password verified, so that a refusal
// says nothing to someone who does not know it; each is a failed login.
func (e *entry) admits(c auth.ConnInfo, now time.Time) error {
	switch {
	case e.Disabled:
		return fmt.Errorf("%w: the account is disabled", auth.ErrBadCredentials)
	case !e.expires.IsZero() && !now.Before(e.expires):
		return fmt.Errorf("%w: the account expired (expires = %q)", auth.ErrBadCredentials, e.Expires)
	case len(e.allow) > 0:
		addr := c.Remote.Addr().Unmap()
		for _, p := range e.allow {
			if p.Contains(addr) {
				return nil
			}
		}
		return fmt.Errorf("%w: %s is not in allow_from", auth.ErrBadCredentials, addr)
	}
	return nil
}

// account returns the account of e, shared by all its sessions. The
// backend is opened outside the lock: an object store's takes a request.
func (s *Store) account(ctx context.Context, e *entry) (*auth.Account, error) {
	s.mu.Lock()
	acct, fsys := e.acct, s.homes[e.home]
	s.mu.Unlock()
	if acct != nil {
		return acct, nil
	}
	if fsys == nil {
		var err error
		if fsys, err = s.open(ctx, e.home); err != nil {
			return nil, fmt.Errorf("users: files of %q: %w", e.Name, err)
		}
	}
	ledger, err := s.ledger(ctx, e.User, fsys)
	if err != nil {
		return nil, fmt.Errorf("users: quota of %q: %w", e.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.acct != nil {
		return e.acct, nil
	}
	if have, ok := s.homes[e.home]; ok {
		fsys = have // opened meanwhile by another session
	} else {
		if s.homes == nil {
			s.homes = map[string]storage.FS{}
		}
		s.homes[e.home] = fsys
	}
	e.acct = &auth.Account{User: e.Name, FS: limits.WithQuota(fsys, ledger), Perms: e.perms, Rates: e.rates}
	return e.acct, nil
}

// ledger returns the quota ledger of u, made on first use from the usage
// file or, for a user it does not know, a scan of fsys (outside the
// store's lock: a large home takes a while); nil for a user without a
// quota. With Banks, the usage is the bank's, shared by the nodes.
func (s *Store) ledger(ctx context.Context, u User, fsys storage.FS) (*limits.Ledger, error) {
	q := limits.Quota{Bytes: int64(u.QuotaBytes), Files: u.QuotaFiles}
	s.mu.Lock()
	s.usage.setPath(cmp.Or(s.UsageFile, s.defaultUsageFile()))
	l, ok := s.ledgers[u.Name]
	s.mu.Unlock()
	if q == (limits.Quota{}) {
		s.dropLedger(u.Name)
		return nil, nil
	}
	if ok {
		l.SetQuota(q)
		return l, nil
	}
	if s.Banks != nil {
		var err error
		if l, err = s.bankLedger(ctx, u, q, fsys); err != nil {
			return nil, err
		}
		return s.keepLedger(u.Name, l, q, limits.State{}, true), nil
	}
	st, known := s.usage.get(u.Name)
	if !known {
		st.Usage, _ = limits.Scan(ctx, fsys) // this quota's first start
	}
	name := u.Name
	l = limits.NewLedger(st, limits.LedgerOptions{
		Quota: q, PartialMaxAge: s.PartialMaxAge,
		Changed: func(now limits.State) { s.usage.set(name, now) },
	})
	return s.keepLedger(name, l, q, st, known), nil
}

// keepLedger remembers l as name's, unless another session made one
// meanwhile; an unknown usage st is written.
func (s *Store) keepLedger(name string, l *limits.Ledger, q limits.Quota, st limits.State, known bool) *limits.Ledger {
	s.mu.Lock()
	defer s.mu.Unlock()
	if have, ok := s.ledgers[name]; ok {
		have.SetQuota(q)
		return have // made meanwhile by another session
	}
	if s.ledgers == nil {
		s.ledgers = map[string]*limits.Ledger{}
	}
	s.ledgers[name] = l
	if !known {
		s.usage.set(name, st)
	}
	return l
}

// bankLedger makes the ledger of u on its bank, counting the user's files
// first when the bank has no usage yet.
func (s *Store) bankLedger(ctx context.Context, u User, q limits.Quota, fsys storage.FS) (*limits.Ledger, error) {
	bank := s.Banks(u.Name)
	used, known, err := bank.Load(ctx)
	if err != nil {
		return nil, err
	}
	if !known {
		if used, err = limits.Scan(ctx, fsys); err != nil {
			return nil, err
		}
		if err := bank.Init(ctx, used); err != nil {
			return nil, err
		}
		if used, _, err = bank.Load(ctx); err != nil { // another node's count may have come first
			return nil, err
		}
	}
	return limits.NewLedger(limits.State{Usage: used}, limits.LedgerOptions{Quota: q, PartialMaxAge: s.PartialMaxAge, Bank: bank}), nil
}

// QuotaBank is a user's usage shared by several nodes (a database).
type QuotaBank interface {
	limits.Bank
	// Load is the usage kept, and whether there is one yet.
	Load(ctx context.Context) (limits.Usage, bool, error)
	// Init records a first count, unless another node did first.
	Init(ctx context.Context, u limits.Usage) error
}

// dropLedger forgets the ledger and the usage of a user whose quota was
// removed: the usage is not kept up to date without one, so a quota set
// again starts with a new scan.
func (s *Store) dropLedger(name string) {
	s.mu.Lock()
	l, ok := s.ledgers[name]
	delete(s.ledgers, name)
	s.mu.Unlock()
	if ok {
		l.Detach()
	}
	s.usage.remove(name) // (a bank's usage goes when the users are saved)
}

func (s *Store) defaultUsageFile() string {
	if s.Path == "" {
		return ""
	}
	return UsagePath(s.Path)
}

// UsagePath is where the quota usage of the users of usersFile is kept:
// usage.json beside it.
func UsagePath(usersFile string) string {
	return filepath.Join(filepath.Dir(usersFile), "usage.json")
}

// QuotaUse calls fn for each user with a byte or file quota: the bytes
// used (the running ledger's, else the usage file's; a user whose usage
// is not counted yet is left out) and the byte quota.
func (s *Store) QuotaUse(fn func(user string, used, limit int64)) {
	type q struct {
		name  string
		limit int64
		l     *limits.Ledger
	}
	var qs []q
	s.mu.Lock()
	s.usage.setPath(cmp.Or(s.UsageFile, s.defaultUsageFile()))
	for name, e := range s.users {
		if e.QuotaBytes > 0 || e.QuotaFiles > 0 {
			qs = append(qs, q{name, int64(e.QuotaBytes), s.ledgers[name]})
		}
	}
	s.mu.Unlock()
	for _, u := range qs {
		if u.l != nil {
			fn(u.name, u.l.Used().Bytes, u.limit)
		} else if st, ok := s.usage.get(u.name); ok {
			fn(u.name, st.Bytes, u.limit)
		}
	}
}

// Storages lists the storage URLs of the users as loaded (for sweeping
// them at start without reading the file again).
func (s *Store) Storages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.users {
		if e.Storage != "" {
			out = append(out, e.Storage)
		}
	}
	return out
}

// usageFile is the usage of users with a quota, by name, kept as JSON.
type usageFile struct {
	mu      sync.Mutex
	path    string
	loaded  bool
	pending bool // a save is scheduled
	m       map[string]limits.State
}

func (f *usageFile) load() {
	if f.loaded {
		return
	}
	f.loaded = true
	f.m = map[string]limits.State{}
	if f.path == "" {
		return
	}
	if b, err := os.ReadFile(f.path); err == nil {
		json.Unmarshal(b, &f.m)
	}
}

func (f *usageFile) setPath(p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loaded {
		f.path = p
	}
}

func (f *usageFile) get(name string) (limits.State, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.load()
	u, ok := f.m[name]
	return u, ok
}

// set records name's usage; the file is rewritten (atomically) within
// usageDelay, once for all the changes meanwhile, not once per upload.
func (f *usageFile) set(name string, u limits.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.load()
	f.m[name] = u
	f.schedule()
}

// remove forgets name's usage.
func (f *usageFile) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.load()
	if _, ok := f.m[name]; ok {
		delete(f.m, name)
		f.schedule()
	}
}

// schedule saves the file within usageDelay; f.mu is held.
func (f *usageFile) schedule() {
	if f.path == "" || f.pending {
		return
	}
	f.pending = true
	time.AfterFunc(usageDelay, f.save)
}

// usageDelay bounds what a crash can lose of the usage: the changes of
// its last second (a scan on the next start is not made for a known user).
const usageDelay = time.Second

// Flush writes the quota usage now (a server stopping).
func (s *Store) Flush() {
	s.usage.mu.Lock()
	pending := s.usage.pending
	s.usage.mu.Unlock()
	if pending {
		s.usage.save()
	}
}

func (f *usageFile) save() {
	f.mu.Lock()
	if !f.pending {
		f.mu.Unlock()
		return // saved already
	}
	f.pending = false
	b, _ := json.MarshalIndent(f.m, "", "  ")
	path := f.path
	f.mu.Unlock()
	atomicfile.WritePrivate(path, b) // a failure keeps the last one: the next change tries again
}

// LoadUsage reads a usage file (for ferry user list).
func LoadUsage(path string) map[string]limits.State {
	f := usageFile{path: path}
	f.load()
	return f.m
}

// AuthenticateCert logs in a user whose entry says client_cert = "login"
// (the server has verified the certificate and that it names the user).
func (s *Store) AuthenticateCert(ctx context.Context, c auth.ConnInfo, user string) (*auth.Account, error) {
	s.init()
	s.mu.Lock()
	if err := s.reloadLocked(false); err != nil && s.users == nil {
		s.mu.Unlock()
		return nil, err
	}
	e, ok := s.users[user]
	s.mu.Unlock()
	if !ok || e.perms.ClientCert != auth.CertLogin {
		return nil, auth.ErrBadCredentials
	}
	if err := e.admits(c, time.Now()); err != nil {
		return nil, err
	}
	return s.account(ctx, e)
}

// open opens the backend of loc.
func (s *Store) open(ctx context.Context, loc string) (storage.FS, error) {
	if s.FS != nil {
		return s.FS(ctx, loc)
	}
	var o backend.Opener
	return o.Open(ctx, loc)
}
