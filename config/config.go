// Package config is Ferry's server configuration: a typed Config read from
// TOML, with defaults for the embedded setup (`ferry serve` with no
// arguments), validation, and the translation into a server.Server.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/server"
)

// Duration is a time.Duration written as "15m", "30s" … in TOML.
type Duration time.Duration

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// NetworkHost advertises Host in PASV to clients in Network.
type NetworkHost struct {
	Network string `toml:"network"`
	Host    string `toml:"host"`
}

// Config is everything `ferry serve` can be told. Zero fields take the
// defaults documented on each.
type Config struct {
	// Listen are the control-connection addresses. Default [":2121"].
	Listen []string `toml:"listen"`
	// DataDir holds the users file and, by default, the files. Default
	// "ferry-data".
	DataDir string `toml:"data_dir"`
	// Root is the directory served to --user and anonymous users. Default
	// DataDir/files.
	Root string `toml:"root"`
	// Users is the users file. Default DataDir/users.toml.
	Users string `toml:"users"`
	// Anonymous allows read-only anonymous logins to Root.
	Anonymous bool `toml:"anonymous"`
	// PassivePorts is "LO-HI"; empty lets the system choose.
	PassivePorts string `toml:"passive_ports"`
	// PassiveKeep is how long a quiet session keeps its passive port for
	// reuse; default 5s, negative ("-1s") closes it after every transfer.
	PassiveKeep Duration `toml:"passive_keep"`
	// PublicHost is advertised in PASV replies (literal address or host
	// name); PublicHostNetworks override it per client network.
	PublicHost         string        `toml:"public_host"`
	PublicHostNetworks []NetworkHost `toml:"public_host_network"`
	// Hosts are the virtual host names HOST accepts; empty accepts any.
	Hosts []string `toml:"hosts"`
	// MaxSessions and MaxSessionsPerIP limit sessions (0 = unlimited).
	MaxSessions      int `toml:"max_sessions"`
	MaxSessionsPerIP int `toml:"max_sessions_per_ip"`
	// Timeouts. Defaults: idle 15m, data connect 30s, data stall 2m,
	// login fail delay 1s, shutdown 30s.
	IdleTimeout        Duration `toml:"idle_timeout"`
	DataConnectTimeout Duration `toml:"data_connect_timeout"`
	DataStallTimeout   Duration `toml:"data_stall_timeout"`
	LoginFailDelay     Duration `toml:"login_fail_delay"`
	ShutdownTimeout    Duration `toml:"shutdown_timeout"`
	// MaxLoginAttempts before 421. Default 3.
	MaxLoginAttempts int `toml:"max_login_attempts"`
	// LoginTimeout is the time a connection has to log in (default 1m);
	// CommandTimeout the time a command line has to arrive whole once its
	// first byte is in (default 30s).
	LoginTimeout   Duration `toml:"login_timeout"`
	CommandTimeout Duration `toml:"command_timeout"`
	// MaxUnauthenticated and MaxUnauthenticatedPerIP cap connections not
	// logged in yet; MaxSessionsPerUser caps one user's sessions
	// (0 = unlimited).
	MaxUnauthenticated      int `toml:"max_unauthenticated"`
	MaxUnauthenticatedPerIP int `toml:"max_unauthenticated_per_ip"`
	MaxSessionsPerUser      int `toml:"max_sessions_per_user"`
	// MaxBadCommands is how many unknown or out-of-order commands a client
	// may send before login (default 5); the next one closes the session.
	MaxBadCommands int `toml:"max_bad_commands"`
	// TransferThreads bounds the large plain transfers run on an OS thread
	// of their own, sendfile(2) or splice(2) on a blocking socket (default
	// 64); the others go through Go's network poller. Negative: none.
	TransferThreads int `toml:"transfer_threads"`
	// Defender bans addresses that fail logins or abuse the protocol.
	Defender Defender `toml:"defender"`
	// RunAs is the unprivileged user a server started as root becomes once
	// its ports are bound (Ferry's own state files are handed to it).
	RunAs string `toml:"run_as"`
	// AllowWorldWritable serves a root directory that every local user
	// may write to (refused by default: anyone on the machine could plant
	// or swap files there).
	AllowWorldWritable bool `toml:"allow_world_writable"`
	// PartialMaxAge is how long the kept part of an interrupted upload
	// waits for a resume (REST + STOR) before it is removed; default 168h
	// (7 days), negative keeps them.
	PartialMaxAge Duration `toml:"partial_max_age"`
	// SyncUploads fsyncs each upload before it becomes visible.
	SyncUploads bool `toml:"sync_uploads"`
	// Welcome is the 220 greeting text.
	Welcome string `toml:"welcome"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `toml:"log_level"`

	// TLS is "off", "optional" (the default: AUTH TLS offered),
	// "required" (no login without TLS) or "required-data" (and no clear
	// data connection either).
	TLS string `toml:"tls"`
	// TLSCert and TLSKey are PEM files. Default DataDir/tls-cert.pem and
	// DataDir/tls-key.pem, created self-signed on first start.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// ImplicitListen are addresses for implicit TLS (ftps://, port 990 by
	// convention).
	ImplicitListen []string `toml:"implicit_listen"`
	// TLSSessionReuse requires TLS data connections to resume the control
	// connection's session (default true); false admits clients that
	// cannot (stock Python ftplib, Apache Commons Net).
	TLSSessionReuse *bool `toml:"tls_session_reuse"`
	// TLSClientCA is a PEM file of the CAs whose client certificates the
	// server accepts (users with client_cert = "login" or "required").
	TLSClientCA string `toml:"tls_client_ca"`
	// AllowCCC lets logged-in clients clear the command channel (CCC).
	AllowCCC bool `toml:"allow_ccc"`
	// Listeners are further listeners with settings of their own.
	Listeners []Listener `toml:"listener"`
}

// Defender is the [defender] table. It is on by default.
type Defender struct {
	// Enabled turns the defender off when false.
	Enabled *bool `toml:"enabled"`
	// Threshold is the score that bans: a failed login or a bad command
	// before login scores 1, a timeout 2, an HTTP request 5. Default 10.
	Threshold int `toml:"threshold"`
	// Window is how long a score is remembered. Default 10m.
	Window Duration `toml:"window"`
	// BanTime is the first ban; each later ban doubles it up to
	// MaxBanTime. Defaults 15m and 24h.
	BanTime    Duration `toml:"ban_time"`
	MaxBanTime Duration `toml:"max_ban_time"`
	// Allow are addresses or networks never banned. Unset: the loopback
	// networks (127.0.0.0/8, ::1); an empty list scores every address.
	Allow []string `toml:"allow"`
	// IPv6Prefix groups IPv6 clients by network. Default 64.
	IPv6Prefix int `toml:"ipv6_prefix"`
}

// allowList parses Allow.
func (d Defender) allowList() ([]netip.Prefix, error) {
	if d.Allow == nil {
		return nil, nil // the defender's default: loopback
	}
	out := []netip.Prefix{}
	for _, a := range d.Allow {
		if p, err := netip.ParsePrefix(a); err == nil {
			out = append(out, p.Masked())
		} else if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
		} else {
			return nil, fmt.Errorf("defender: allow %q is not an address or network", a)
		}
	}
	return out, nil
}

// Listener is a [[listener]] table: an address with its own TLS rules.
type Listener struct {
	Address string `toml:"address"`
	// TLS, when set, replaces the server's tls policy here ("optional",
	// "required", "required-data").
	TLS string `toml:"tls"`
	// Implicit makes it an implicit-TLS listener.
	Implicit bool `toml:"implicit"`
	// TLSSessionReuse, when set, replaces the server's setting here.
	TLSSessionReuse *bool `toml:"tls_session_reuse"`
}

// Options returns the server options of l.
func (l Listener) Options() server.ListenerOptions {
	o := server.ListenerOptions{ImplicitTLS: l.Implicit}
	if l.TLSSessionReuse != nil {
		no := !*l.TLSSessionReuse
		o.NoTLSSessionReuse = &no
	}
	if l.TLS != "" {
		p := policy(l.TLS)
		o.TLSPolicy = &p
	}
	return o
}

// Default returns the embedded default configuration.
func Default() Config {
	return Config{Listen: []string{":2121"}, DataDir: "ferry-data", LogLevel: "info"}
}

// Load reads a TOML file over the defaults. Unknown keys are errors.
func Load(path string) (Config, error) {
	c := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return c, fmt.Errorf("%s: %v", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return c, fmt.Errorf("%s: unknown key %q", path, und[0].String())
	}
	return c, c.Validate()
}

// RootDir returns Root or its default.
func (c *Config) RootDir() string {
	if c.Root != "" {
		return c.Root
	}
	return filepath.Join(c.DataDir, "files")
}

// UsersFile returns Users or its default.
func (c *Config) UsersFile() string {
	if c.Users != "" {
		return c.Users
	}
	return filepath.Join(c.DataDir, "users.toml")
}

// TLSCertFiles returns the certificate and key files, and whether they
// are the embedded default's (created when missing).
func (c *Config) TLSCertFiles() (cert, key string, generated bool) {
	if c.TLSCert != "" || c.TLSKey != "" {
		return c.TLSCert, c.TLSKey, false
	}
	return filepath.Join(c.DataDir, "tls-cert.pem"), filepath.Join(c.DataDir, "tls-key.pem"), true
}

// TLSPolicy returns the server policy for TLS.
func (c *Config) TLSPolicy() server.TLSPolicy { return policy(c.TLS) }

func policy(s string) server.TLSPolicy {
	switch s {
	case "required":
		return server.TLSRequired
	case "required-data":
		return server.TLSRequiredData
	}
	return server.TLSOptional
}

// Validate checks the fields that can be checked without touching the disk.
func (c *Config) Validate() error {
	if len(c.Listen) == 0 {
		return errors.New("listen: at least one address is needed")
	}
	if c.PassivePorts != "" {
		if _, err := server.ParsePortRange(c.PassivePorts); err != nil {
			return err
		}
	}
	for _, n := range c.PublicHostNetworks {
		if _, err := netip.ParsePrefix(n.Network); err != nil {
			return fmt.Errorf("public_host_network: %q is not a network", n.Network)
		}
		if n.Host == "" {
			return fmt.Errorf("public_host_network %s: host is empty", n.Network)
		}
	}
	if c.MaxSessions < 0 || c.MaxSessionsPerIP < 0 || c.MaxLoginAttempts < 0 || c.MaxUnauthenticated < 0 ||
		c.MaxUnauthenticatedPerIP < 0 || c.MaxSessionsPerUser < 0 || c.MaxBadCommands < 0 ||
		c.Defender.Threshold < 0 || c.Defender.IPv6Prefix < 0 || c.Defender.IPv6Prefix > 128 {
		return errors.New("limits must not be negative")
	}
	if _, err := c.Defender.allowList(); err != nil {
		return err
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.TLS {
	case "", "off", "optional", "required", "required-data":
	default:
		return fmt.Errorf("tls %q: want off, optional, required or required-data", c.TLS)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls_cert and tls_key go together")
	}
	if c.TLS == "off" && len(c.ImplicitListen) > 0 {
		return errors.New("implicit_listen needs tls on")
	}
	for _, l := range c.Listeners {
		if l.Address == "" {
			return errors.New("listener: address is empty")
		}
		switch l.TLS {
		case "", "optional", "required", "required-data":
		default:
			return fmt.Errorf("listener %s: tls %q: want optional, required or required-data", l.Address, l.TLS)
		}
		if c.TLS == "off" && (l.Implicit || l.TLS != "") {
			return fmt.Errorf("listener %s: TLS settings need tls on", l.Address)
		}
	}
	return nil
}

// Apply sets the server options c describes (all but Auth and Logger; set
// Logger first, the defender logs its bans to it).
func (c *Config) Apply(s *server.Server) {
	if c.PassivePorts != "" {
		s.PassivePorts, _ = server.ParsePortRange(c.PassivePorts)
	}
	s.PassiveKeep = time.Duration(c.PassiveKeep)
	s.PublicHost.Host = c.PublicHost
	for _, n := range c.PublicHostNetworks {
		p, _ := netip.ParsePrefix(n.Network)
		s.PublicHost.Networks = append(s.PublicHost.Networks, server.NetworkHost{Network: p.Masked(), Host: n.Host})
	}
	s.Hosts = c.Hosts
	s.MaxSessions = c.MaxSessions
	s.MaxSessionsPerIP = c.MaxSessionsPerIP
	s.IdleTimeout = time.Duration(c.IdleTimeout)
	s.DataConnectTimeout = time.Duration(c.DataConnectTimeout)
	s.DataStallTimeout = time.Duration(c.DataStallTimeout)
	s.LoginFailDelay = time.Duration(c.LoginFailDelay)
	s.MaxLoginAttempts = c.MaxLoginAttempts
	s.LoginTimeout = time.Duration(c.LoginTimeout)
	s.CommandTimeout = time.Duration(c.CommandTimeout)
	s.MaxUnauthenticated = c.MaxUnauthenticated
	s.MaxUnauthenticatedPerIP = c.MaxUnauthenticatedPerIP
	s.MaxSessionsPerUser = c.MaxSessionsPerUser
	s.MaxBadCommands = c.MaxBadCommands
	s.TransferThreads = c.TransferThreads
	if d := c.Defender; d.Enabled == nil || *d.Enabled {
		allow, _ := d.allowList()
		s.Defender = defender.New(defender.Config{
			Threshold: d.Threshold, Window: time.Duration(d.Window),
			BanTime: time.Duration(d.BanTime), MaxBanTime: time.Duration(d.MaxBanTime),
			AllowList: allow, IPv6Prefix: d.IPv6Prefix, Logger: s.Logger,
		})
	}
	s.Welcome = c.Welcome
	s.TLSPolicy = c.TLSPolicy()
	s.NoTLSSessionReuse = c.TLSSessionReuse != nil && !*c.TLSSessionReuse
	s.AllowCCC = c.AllowCCC
}
