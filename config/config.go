// Package config is Ferry's server configuration: a typed Config read from
// TOML, with defaults for the embedded setup (`ferry serve` with no
// arguments), validation, and the translation into a server.Server.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ferryftp/ferry/auth/users"
	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/events"
	"github.com/ferryftp/ferry/internal/opts"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/state/pgstate"
	"github.com/ferryftp/ferry/storage/backend"
)

// Config is everything `ferry serve` can be told, declared once: each
// field's doc comment is its documentation (godoc, `ferry serve --help`,
// docs/CONFIG.md), its toml tag its key and, dashed, its flag, its
// default tag the value a zero field takes, its min, max and enum tags
// what Validate accepts. The server's own settings are server.Options,
// embedded here and declared the same way.
//
// Zero means the default everywhere; a negative number or duration turns
// a limit or a feature off.
type Config struct {
	// Listen are the control-connection addresses.
	Listen []string `toml:"listen" default:":2121" flag:"address"`
	// DataDir holds the users file, the generated TLS certificate and, by
	// default, the files.
	DataDir string `toml:"data_dir" default:"ferry-data" flag:"dir"`
	// Root is the directory served to the quick-start user (--user) and
	// anonymous users. Empty: DataDir/files.
	Root string `toml:"root" flag:"dir"`
	// Storage is where the quick-start user's and anonymous users' files
	// live, as a URL, instead of Root: file:///srv/ftp, or
	// s3://BUCKET[/PREFIX] with the parameters endpoint, region,
	// path_style, part_size and concurrency. S3 credentials come from the
	// AWS SDK's default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
	// the shared credentials file, an instance role), never from the URL.
	Storage string `toml:"storage" flag:"url"`
	// Users is the users file. Empty: DataDir/users.toml.
	Users string `toml:"users" flag:"file"`
	// Database is a PostgreSQL URL (postgres://user@host/dbname) whose
	// users replace the users file, shared by every node of a cluster:
	// a change on one node reaches all within a second. The password comes
	// from PGPASSWORD or a PGPASSFILE, never the URL.
	Database string `toml:"database" flag:"url"`
	// Anonymous allows read-only anonymous logins to Root.
	Anonymous bool `toml:"anonymous"`

	server.Options

	// ShutdownTimeout is how long a stopping server waits for running
	// transfers before it closes them.
	ShutdownTimeout time.Duration `toml:"shutdown_timeout" default:"30s"`
	// PartialMaxAge is how long the kept part of an interrupted upload
	// waits for a resume (REST + STOR) before it is removed. Negative:
	// kept for good.
	PartialMaxAge time.Duration `toml:"partial_max_age" default:"168h"`
	// SyncUploads fsyncs each upload before it becomes visible.
	SyncUploads bool `toml:"sync_uploads"`
	// RunAs is the unprivileged user a server started as root becomes once
	// its ports are bound (its own state files are handed to it).
	RunAs string `toml:"run_as" flag:"user"`
	// AllowWorldWritable serves a root directory that every local user
	// may write to (refused by default: anyone on the machine could plant
	// or swap files there).
	AllowWorldWritable bool `toml:"allow_world_writable"`
	// LogLevel is the least severe level logged.
	LogLevel string `toml:"log_level" default:"info" enum:"debug|info|warn|error"`
	// LogFormat is the form of every log line: text (key=value) or json
	// (one JSON object a line).
	LogFormat string `toml:"log_format" default:"text" enum:"text|json"`
	// TransferLog is a file each ended transfer is appended to in the
	// xferlog format of wu-ftpd, ProFTPD and vsftpd, which log analysers
	// read. Empty: none.
	TransferLog string `toml:"transfer_log" flag:"file"`
	// AdminListen is the address of the HTTP listener for operators:
	// /metrics (Prometheus), /healthz and /readyz, the admin API under
	// /api/v1/ and the web console under /console/. A port alone, or a
	// missing host, listens on loopback; TLS with tls_cert when one is
	// set. Empty: none.
	AdminListen string `toml:"admin_listen" flag:"address"`
	// Admins is the file of the administrators of the API and console
	// and their API tokens (ferry admin add NAME, ferry admin token
	// create NAME). Empty: DataDir/admins.toml.
	Admins string `toml:"admins" flag:"file"`
	// HookRetryFor is how long the deliveries of an event to a failing
	// hook are retried before they are given up (logged, and kept in
	// DataDir/hooks/dead.jsonl).
	HookRetryFor time.Duration `toml:"hook_retry_for" default:"24h"`

	// TLS says when TLS is used: off, optional (AUTH TLS offered),
	// required (for login) or required-data (login and data connections).
	TLS string `toml:"tls" default:"optional" enum:"off|optional|required|required-data"`
	// TLSCert and TLSKey are PEM files. Empty: DataDir/tls-cert.pem and
	// DataDir/tls-key.pem, created self-signed on first start.
	TLSCert string `toml:"tls_cert" flag:"file"`
	// TLSKey is the private key of TLSCert, a PEM file.
	TLSKey string `toml:"tls_key" flag:"file"`
	// ImplicitListen are addresses for implicit TLS (ftps://, port 990 by
	// convention).
	ImplicitListen []string `toml:"implicit_listen" flag:"address"`
	// TLSSessionReuse requires TLS data connections to resume the control
	// connection's session, as vsftpd's require_ssl_reuse (RFC 4217 section
	// 10.2); false admits clients that cannot (stock Python ftplib, Apache
	// Commons Net).
	TLSSessionReuse *bool `toml:"tls_session_reuse" default:"true"`
	// TLSClientCA is a PEM file of the CAs whose client certificates the
	// server accepts (users with client_cert = "login" or "required").
	TLSClientCA string `toml:"tls_client_ca" flag:"file"`

	// Defender bans addresses that fail logins or abuse the protocol.
	Defender Defender `toml:"defender" flag:"-"`
	// Listeners are further listeners with settings of their own.
	Listeners []Listener `toml:"listener" flag:"-"`
	// Hooks receive events ([[hook]] tables): on names the kinds
	// (upload, upload_failed, download, delete, rename, mkdir, rmdir,
	// login, login_failed, ban); command (a program and its arguments,
	// with {event}, {user}, {path} and {size} replaced, the event's JSON
	// on its standard input) or url (an HTTP POST of the JSON) says where
	// they go; batch = N makes a url hook's POSTs arrays of up to N
	// events, sent when N wait or the oldest has waited batch_wait
	// (100ms); sha256 = true adds an upload's SHA-256; timeout bounds one
	// delivery (30s). Events wait in DataDir/hooks until delivered.
	Hooks []events.Hook `toml:"hook" flag:"-"`
}

// Defender is the [defender] table. It is on by default; the defaults of
// its other keys are the defender package's (defender.Config).
type Defender struct {
	// Enabled turns the defender off when false.
	Enabled *bool `toml:"enabled" default:"true"`
	// Threshold is the score that bans: a failed login or a bad command
	// before login scores 1, a timeout 2, an HTTP request 5.
	Threshold int `toml:"threshold" min:"0"`
	// Window is how long a score is remembered.
	Window time.Duration `toml:"window"`
	// BanTime is the first ban; each later ban doubles it up to
	// MaxBanTime.
	BanTime time.Duration `toml:"ban_time"`
	// MaxBanTime caps a ban.
	MaxBanTime time.Duration `toml:"max_ban_time"`
	// Allow are addresses or networks never banned. Unset: the loopback
	// networks (127.0.0.0/8, ::1); an empty list scores every address.
	Allow []string `toml:"allow"`
	// IPv6Prefix groups IPv6 clients by network.
	IPv6Prefix int `toml:"ipv6_prefix" min:"0" max:"128"`
}

// settings are the defender's options the table gives (Validate has
// checked Allow).
func (d Defender) settings(logger *slog.Logger) defender.Config {
	allow, _ := d.allowList()
	return defender.Config{Threshold: d.Threshold, Window: d.Window, BanTime: d.BanTime,
		MaxBanTime: d.MaxBanTime, AllowList: allow, IPv6Prefix: d.IPv6Prefix, Logger: logger}
}

// allowList parses Allow.
func (d Defender) allowList() ([]netip.Prefix, error) {
	if d.Allow == nil {
		return nil, nil // the defender's default: loopback
	}
	out, err := prefixes(d.Allow)
	if err != nil {
		return nil, fmt.Errorf("defender: allow %v", err)
	}
	if out == nil {
		out = []netip.Prefix{} // an empty list scores every address
	}
	return out, nil
}

// Listener is a [[listener]] table: an address with its own TLS rules.
type Listener struct {
	// Address is the listener's host:port.
	Address string `toml:"address"`
	// TLS, when set, replaces the server's tls policy here (optional,
	// required or required-data).
	TLS string `toml:"tls" enum:"|optional|required|required-data"`
	// Implicit makes it an implicit-TLS listener.
	Implicit bool `toml:"implicit"`
	// TLSSessionReuse, when set, replaces the server's setting here.
	TLSSessionReuse *bool `toml:"tls_session_reuse"`
	// ProxyProtocol puts the listener behind load balancers: connections
	// from ProxyTrusted must open with a PROXY protocol header (v1 or v2,
	// HAProxy's send-proxy or send-proxy-v2), whose client address then
	// counts everywhere; connections from anywhere else are refused.
	ProxyProtocol bool `toml:"proxy_protocol"`
	// ProxyTrusted are the balancers' addresses or networks.
	ProxyTrusted []string `toml:"proxy_trusted"`
	// PassiveProxyProtocol has passive data connections from the
	// balancers open with a PROXY header too, so that they are checked
	// against the client's address (else they are accepted from the
	// balancer that carries the session).
	PassiveProxyProtocol bool `toml:"passive_proxy_protocol"`
}

// AllListeners are the control listeners: listen, then implicit_listen,
// then the [[listener]] tables.
func (c *Config) AllListeners() []Listener {
	all := make([]Listener, 0, len(c.Listen)+len(c.ImplicitListen)+len(c.Listeners))
	for _, a := range c.Listen {
		all = append(all, Listener{Address: a})
	}
	for _, a := range c.ImplicitListen {
		all = append(all, Listener{Address: a, Implicit: true})
	}
	return append(all, c.Listeners...)
}

// Options returns the server options of l (Validate has checked
// ProxyTrusted).
func (l Listener) Options() server.ListenerOptions {
	o := server.ListenerOptions{ImplicitTLS: l.Implicit, PassiveProxy: l.PassiveProxyProtocol}
	if l.ProxyProtocol {
		o.ProxyTrusted, _ = prefixes(l.ProxyTrusted)
	}
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

// Default returns the embedded default configuration, every default
// filled in.
func Default() Config {
	var c Config
	c.fill()
	return c
}

// fill sets every zero field to its default.
func (c *Config) fill() {
	opts.Defaults(c)
	opts.Defaults(&c.Defender)
}

// Load reads a TOML file; the keys it does not set take their defaults.
// Unknown keys are errors.
func Load(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return Default(), err
	}
	if err := c.decode(string(data)); err != nil {
		return Default(), fmt.Errorf("%s: %v", path, err)
	}
	c.fill()
	return c, c.Validate()
}

func (c *Config) decode(data string) error {
	md, err := toml.Decode(data, c)
	if err != nil {
		return err
	}
	if und := md.Undecoded(); len(und) > 0 {
		return fmt.Errorf("unknown key %q", und[0].String())
	}
	return nil
}

// Effective is c with the defaults of the defender table resolved too:
// what --print-config prints, valid TOML that Load reads back as c.
func (c Config) Effective() Config {
	c.fill()
	d := c.Defender.settings(nil).WithDefaults()
	c.Defender.Threshold, c.Defender.Window, c.Defender.BanTime = d.Threshold, d.Window, d.BanTime
	c.Defender.MaxBanTime, c.Defender.IPv6Prefix = d.MaxBanTime, d.IPv6Prefix
	if c.Defender.Allow == nil {
		for _, p := range d.AllowList {
			c.Defender.Allow = append(c.Defender.Allow, p.String())
		}
	}
	return c
}

// Encode writes c as TOML.
func (c Config) Encode(w io.Writer) error {
	return toml.NewEncoder(w).Encode(c)
}

// StorageURL returns the location of the quick-start user's and
// anonymous users' files: Storage, else the directory RootDir.
func (c *Config) StorageURL() string {
	if c.Storage != "" {
		return c.Storage
	}
	return c.RootDir()
}

// RootDir returns Root or its default.
func (c *Config) RootDir() string {
	if c.Root != "" {
		return c.Root
	}
	return filepath.Join(c.DataDir, "files")
}

// AdminsFile returns Admins or its default.
func (c *Config) AdminsFile() string {
	if c.Admins != "" {
		return c.Admins
	}
	return filepath.Join(c.DataDir, "admins.toml")
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

// Validate checks the fields that can be checked without touching the
// disk; the error names the key.
func (c *Config) Validate() error {
	if err := opts.Validate(c); err != nil {
		return err
	}
	if err := opts.Validate(&c.Defender); err != nil {
		return fmt.Errorf("defender.%v", err)
	}
	if len(c.Listen) == 0 {
		return errors.New("listen: at least one address is needed")
	}
	if c.Storage != "" {
		if c.Root != "" {
			return errors.New("storage and root: set one (storage = \"file:///dir\" is root = \"/dir\")")
		}
		if err := backend.Check(c.Storage); err != nil {
			return err
		}
	}
	for _, n := range c.PublicHost.Networks {
		if !n.Network.IsValid() {
			return errors.New("public_host_network: network is missing")
		}
		if n.Host == "" {
			return fmt.Errorf("public_host_network %s: host is empty", n.Network)
		}
	}
	if _, err := c.Defender.allowList(); err != nil {
		return err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls_cert and tls_key go together")
	}
	if c.TLS == "off" && len(c.ImplicitListen) > 0 {
		return errors.New("implicit_listen needs tls on")
	}
	for _, l := range c.Listeners {
		if err := c.checkListener(l); err != nil {
			return err
		}
	}
	for i, h := range c.Hooks {
		if err := h.Validate(); err != nil {
			return fmt.Errorf("hook %d: %v", i+1, err)
		}
	}
	if c.AdminListen != "" {
		if _, err := c.AdminAddr(); err != nil {
			return err
		}
	}
	if c.Database != "" {
		if err := pgstate.CheckURL(c.Database); err != nil {
			return err
		}
	}
	return nil
}

// AdminAddr is AdminListen with loopback for a missing host.
func (c *Config) AdminAddr() (string, error) {
	a := c.AdminListen
	if _, err := strconv.Atoi(a); err == nil {
		a = ":" + a
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", fmt.Errorf("admin_listen %q: want host:port or a port", c.AdminListen)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// HooksDir is where the hook events wait: DataDir/hooks.
func (c *Config) HooksDir() string { return filepath.Join(c.DataDir, "hooks") }

func (c *Config) checkListener(l Listener) error {
	if l.Address == "" {
		return errors.New("listener: address is empty")
	}
	if err := opts.Validate(&l); err != nil {
		return fmt.Errorf("listener %s: %v", l.Address, err)
	}
	if c.TLS == "off" && (l.Implicit || l.TLS != "") {
		return fmt.Errorf("listener %s: TLS settings need tls on", l.Address)
	}
	if l.ProxyProtocol {
		if len(l.ProxyTrusted) == 0 {
			return fmt.Errorf("listener %s: proxy_protocol needs proxy_trusted, the balancers' addresses", l.Address)
		}
		if _, err := prefixes(l.ProxyTrusted); err != nil {
			return fmt.Errorf("listener %s: proxy_trusted: %v", l.Address, err)
		}
	} else if len(l.ProxyTrusted) > 0 || l.PassiveProxyProtocol {
		return fmt.Errorf("listener %s: proxy_trusted and passive_proxy_protocol need proxy_protocol = true", l.Address)
	}
	return nil
}

// prefixes parses addresses and networks.
func prefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, a := range list {
		p, err := users.ParseNet(a)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// DefenderSettings are the defender's settings, and whether it is on.
func (c *Config) DefenderSettings(logger *slog.Logger) (defender.Config, bool) {
	d := c.Defender
	return d.settings(logger), d.Enabled == nil || *d.Enabled
}

// Apply sets the server options c describes (all but Auth and Logger; set
// Logger first, the defender logs its bans to it).
func (c *Config) Apply(s *server.Server) {
	s.Options = c.Options
	if d, on := c.DefenderSettings(s.Logger); on {
		s.Defender = defender.New(d)
	}
	s.TLSPolicy = c.TLSPolicy()
	s.NoTLSSessionReuse = c.TLSSessionReuse != nil && !*c.TLSSessionReuse
}
