// Package defender scores misbehaviour per client address and bans the
// addresses that pass a threshold: failed logins, protocol abuse, floods.
// A ban lasts BanTime and doubles for each further ban of the same
// address, up to MaxBanTime; an address on the allow-list is never banned.
// It holds no sockets: the server asks Banned at connect and calls Record.
//
// Each ban is logged as one line a fail2ban filter can match:
//
//	level=WARN msg="defender ban" ip=203.0.113.7 duration=15m0s bans=1 score=12 reason="login failed"
package defender

import (
	"cmp"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Event is a kind of misbehaviour, each with its score.
type Event int

const (
	// LoginFailed is a wrong user name or password. Score 1.
	LoginFailed Event = iota
	// ProtocolError is an unknown command or a command out of order before
	// login. Score 1.
	ProtocolError
	// LimitExceeded is a connection refused by a session limit. Score 1.
	LimitExceeded
	// Timeout is a client that let the login or a command line time out.
	// Score 2.
	Timeout
	// CrossProtocol is an HTTP (or other foreign) request sent to the FTP
	// port. Score 5.
	CrossProtocol
)

var eventNames = [...]string{"login failed", "protocol error", "limit exceeded", "timeout", "cross-protocol request"}
var eventScores = [...]int{1, 1, 1, 2, 5}

func (e Event) String() string { return eventNames[e] }

// Score is what an event adds to its address's score.
func (e Event) Score() int { return eventScores[e] }

// Config holds the defender's options; zero fields take the defaults.
type Config struct {
	// Threshold is the score at which an address is banned. Default 10.
	Threshold int
	// Window is how long a score is remembered: it starts again from zero
	// when the address's first scored event is older. Default 10 minutes.
	Window time.Duration
	// BanTime is the length of a first ban; each later ban of the same
	// address doubles it. Default 15 minutes.
	BanTime time.Duration
	// MaxBanTime caps a ban. Default 24 hours.
	MaxBanTime time.Duration
	// Forget is how long an address's ban count is kept after its last
	// ban ended. Default 24 hours.
	Forget time.Duration
	// AllowList are networks that are never banned (and not scored). Nil
	// means DefaultAllowList, the loopback networks, so that a monitoring
	// check or an administrator on the server itself cannot lock itself
	// out (fail2ban's ignoreip does the same); an empty non-nil list
	// scores every address, loopback included.
	AllowList []netip.Prefix
	// IPv6Prefix groups IPv6 addresses into networks of this length, as
	// one host usually holds a whole /64. Default 64; 128 scores each
	// address alone.
	IPv6Prefix int
	// MaxHosts bounds the addresses tracked at once; beyond it new
	// addresses are scored only once older entries expire. Default 100,000.
	MaxHosts int
	// Logger receives the ban lines. Nil means slog.Default().
	Logger *slog.Logger
	// OnBan, when set, is told of each ban as it begins (after the lock
	// is released): the network banned, until when, and the event that
	// passed the threshold.
	OnBan func(network netip.Prefix, until time.Time, reason Event)
}

// DefaultAllowList is the allow-list of a Config that sets none: the
// loopback networks 127.0.0.0/8 and ::1.
var DefaultAllowList = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// Defender is what a server asks of a defender: whether an address is
// banned (at connect), and to score an event (which may ban). Memory, the
// in-memory scorer of one process, is the implementation New returns; a
// store shared by several servers can take its place.
type Defender interface {
	// Banned reports whether ip is banned now, and until when.
	Banned(ip netip.Addr) (until time.Time, banned bool)
	// Record scores ev for ip and reports whether ip is banned afterwards.
	Record(ip netip.Addr, ev Event) (banned bool)
	// Unban lifts a ban on ip and forgets its history.
	Unban(ip netip.Addr)
}

// Interface guard.
var _ Defender = (*Memory)(nil)

// Memory scores addresses in this process's memory. It is safe for
// concurrent use. A nil *Memory bans nothing.
type Memory struct {
	cfg   Config
	mu    sync.Mutex
	hosts map[netip.Prefix]*host
}

type host struct {
	score     int
	since     time.Time // first scored event of the current window
	bans      int
	bannedTil time.Time
}

// New returns a defender with cfg's options.
func New(cfg Config) *Memory {
	return &Memory{cfg: cfg.WithDefaults(), hosts: map[netip.Prefix]*host{}}
}

// WithDefaults returns cfg with every zero field set to its default.
func (cfg Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = 10
	}
	def(&cfg.Window, 10*time.Minute)
	def(&cfg.BanTime, 15*time.Minute)
	def(&cfg.MaxBanTime, 24*time.Hour)
	def(&cfg.Forget, 24*time.Hour)
	if cfg.IPv6Prefix <= 0 || cfg.IPv6Prefix > 128 {
		cfg.IPv6Prefix = 64
	}
	if cfg.MaxHosts <= 0 {
		cfg.MaxHosts = 100000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AllowList == nil {
		cfg.AllowList = DefaultAllowList
	}
	return cfg
}

// Key is the network an address is scored as (cfg with defaults).
func (cfg Config) Key(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = cfg.IPv6Prefix
	}
	p, _ := ip.Prefix(bits)
	return p
}

// Allows says whether ip is on the allow-list: never scored or banned.
func (cfg Config) Allows(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range cfg.AllowList {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// BanFor is the length of an address's nth ban: BanTime doubled for each
// earlier one, at most MaxBanTime.
func (cfg Config) BanFor(n int) time.Duration {
	ban := cfg.BanTime
	for i := 1; i < n && ban < cfg.MaxBanTime; i++ {
		ban *= 2
	}
	return min(ban, cfg.MaxBanTime)
}

func (d *Memory) key(ip netip.Addr) netip.Prefix { return d.cfg.Key(ip) }

func (d *Memory) allowed(ip netip.Addr) bool { return d.cfg.Allows(ip) }

// Banned reports whether ip is banned now, and until when.
func (d *Memory) Banned(ip netip.Addr) (time.Time, bool) {
	if d == nil || !ip.IsValid() {
		return time.Time{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[d.key(ip)]
	if h == nil || !time.Now().Before(h.bannedTil) {
		return time.Time{}, false
	}
	return h.bannedTil, true
}

// Record scores ev for ip and reports whether ip is banned afterwards.
func (d *Memory) Record(ip netip.Addr, ev Event) bool {
	if d == nil || !ip.IsValid() {
		return false
	}
	d.mu.Lock()
	if d.allowed(ip) {
		d.mu.Unlock()
		return false
	}
	k := d.key(ip)
	banned, began := d.recordLocked(ip, k, ev)
	onBan := d.cfg.OnBan
	d.mu.Unlock()
	if !began.IsZero() && onBan != nil {
		onBan(k, began, ev)
	}
	return banned
}

// recordLocked scores ev for k and says whether it is banned afterwards
// and, when this event began a ban, until when; d.mu is held.
func (d *Memory) recordLocked(ip netip.Addr, k netip.Prefix, ev Event) (banned bool, began time.Time) {
	now := time.Now()
	h := d.hosts[k]
	if h == nil {
		if len(d.hosts) >= d.cfg.MaxHosts {
			d.sweepLocked(now)
			if len(d.hosts) >= d.cfg.MaxHosts {
				return false, time.Time{}
			}
		}
		h = &host{}
		d.hosts[k] = h
	}
	if now.Before(h.bannedTil) {
		return true, time.Time{} // already banned; a banned address is not scored further
	}
	if h.score == 0 || now.Sub(h.since) > d.cfg.Window {
		h.score, h.since = 0, now
	}
	h.score += eventScores[ev]
	if h.score < d.cfg.Threshold {
		return false, time.Time{}
	}
	h.bans++
	ban := d.cfg.BanFor(h.bans)
	h.bannedTil = now.Add(ban)
	d.cfg.Logger.Warn("defender ban", "ip", ip.Unmap().String(), "network", k.String(),
		"duration", ban, "bans", h.bans, "score", h.score, "reason", ev.String())
	h.score = 0
	return true, h.bannedTil
}

// Bans is the number of networks banned now.
func (d *Memory) Bans() int {
	if d == nil {
		return 0
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, h := range d.hosts {
		if now.Before(h.bannedTil) {
			n++
		}
	}
	return n
}

// Configure replaces the settings (a reloaded configuration); scores and
// bans are kept.
func (d *Memory) Configure(cfg Config) {
	if d == nil {
		return
	}
	d.mu.Lock()
	d.cfg = cfg.WithDefaults()
	d.mu.Unlock()
}

// sweepLocked drops entries with nothing left to remember.
func (d *Memory) sweepLocked(now time.Time) {
	for k, h := range d.hosts {
		banOver := !now.Before(h.bannedTil)
		windowOver := h.score == 0 || now.Sub(h.since) > d.cfg.Window
		if banOver && windowOver && (h.bans == 0 || now.Sub(h.bannedTil) > d.cfg.Forget) {
			delete(d.hosts, k)
		}
	}
}

// Unban lifts a ban on ip and forgets its history.
func (d *Memory) Unban(ip netip.Addr) {
	if d == nil {
		return
	}
	d.mu.Lock()
	delete(d.hosts, d.key(ip))
	d.mu.Unlock()
}

// Len is the number of addresses tracked.
func (d *Memory) Len() int {
	if d == nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.hosts)
}

// Entry is what a defender knows of one network: its score in the
// current window, how often it was banned, and until when it is banned
// (zero when it is not).
type Entry struct {
	Network netip.Prefix
	Score   int
	Bans    int
	Until   time.Time
}

// Banned says whether the entry's ban holds at now.
func (e Entry) Banned(now time.Time) bool { return now.Before(e.Until) }

// List returns the networks with a score or a ban now, by network.
func (d *Memory) List() []Entry {
	if d == nil {
		return nil
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sweepLocked(now)
	var es []Entry
	for k, h := range d.hosts {
		e := Entry{Network: k, Bans: h.bans}
		if now.Sub(h.since) <= d.cfg.Window {
			e.Score = h.score
		}
		if now.Before(h.bannedTil) {
			e.Until = h.bannedTil
		}
		if e.Score > 0 || !e.Until.IsZero() {
			es = append(es, e)
		}
	}
	SortEntries(es)
	return es
}

// SortEntries orders es by network.
func SortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		if c := a.Network.Addr().Compare(b.Network.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Network.Bits(), b.Network.Bits())
	})
}
