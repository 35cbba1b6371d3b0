package server

import (
	"time"

	"github.com/ferryftp/ferry/internal/bytesize"
	"github.com/ferryftp/ferry/internal/opts"
)

// Options are the server's settings, declared once: the doc comment of a
// field is its documentation (in godoc, `ferry serve --help` and
// docs/CONFIG.md), its toml tag its key in the configuration file (and,
// dashed, its flag), its default tag the value a zero field takes.
//
// The same rule holds for every field: zero means the default; a
// negative number or duration turns the limit or the feature off (a
// negative timeout never expires).
type Options struct {
	// Welcome is the text of the 220 greeting.
	Welcome string `toml:"welcome" default:"Ferry FTP server ready."`

	// PassivePorts is the range passive listeners are opened in, "LO-HI";
	// empty lets the system choose any free port.
	PassivePorts PortRange `toml:"passive_ports"`
	// PassiveKeep is how long a session that goes quiet keeps its passive
	// listener for the next PASV/EPSV (reusing it spares eight system
	// calls per transfer); after it, the port goes back to the range.
	// Negative closes the listener after every transfer.
	PassiveKeep time.Duration `toml:"passive_keep" default:"5s"`
	// PublicHost is the address advertised in PASV replies (NAT), and the
	// addresses advertised to some client networks.
	PublicHost
	// Hosts are the virtual host names HOST accepts (RFC 7151); others
	// get 504. Empty accepts any name.
	Hosts []string `toml:"hosts"`

	// MaxSessions limits concurrent sessions; beyond it a connection gets
	// 421 and is closed. Negative: unlimited.
	MaxSessions int `toml:"max_sessions" default:"-1"`
	// MaxSessionsPerIP limits concurrent sessions per client address.
	// Negative: unlimited.
	MaxSessionsPerIP int `toml:"max_sessions_per_ip" default:"-1"`
	// MaxUnauthenticated limits the connections that have not logged in
	// yet. Negative: unlimited.
	MaxUnauthenticated int `toml:"max_unauthenticated" default:"-1"`
	// MaxUnauthenticatedPerIP limits the connections per client address
	// that have not logged in yet. Negative: unlimited.
	MaxUnauthenticatedPerIP int `toml:"max_unauthenticated_per_ip" default:"-1"`
	// MaxSessionsPerUser limits the logged-in sessions of one user; the
	// login beyond it gets 421. Negative: unlimited.
	MaxSessionsPerUser int `toml:"max_sessions_per_user" default:"-1"`

	// IdleTimeout ends a session that sends no command for this long
	// while no transfer runs (RFC 1123 4.1.3.2). Negative: never.
	IdleTimeout time.Duration `toml:"idle_timeout" default:"15m"`
	// DataConnectTimeout bounds the wait for a data connection to be
	// accepted or dialled.
	DataConnectTimeout time.Duration `toml:"data_connect_timeout" default:"30s"`
	// DataStallTimeout ends a transfer that moves no byte for this long.
	DataStallTimeout time.Duration `toml:"data_stall_timeout" default:"2m"`
	// LoginTimeout is the time a connection has to log in; a password
	// verification waits its turn no longer than this either.
	LoginTimeout time.Duration `toml:"login_timeout" default:"1m"`
	// CommandTimeout is the time a command line has to arrive whole once
	// its first byte is in (one byte every few seconds holds no slot).
	CommandTimeout time.Duration `toml:"command_timeout" default:"30s"`
	// LoginFailDelay is waited before answering a failed PASS. Negative:
	// no delay.
	LoginFailDelay time.Duration `toml:"login_fail_delay" default:"1s"`
	// MaxLoginAttempts is the number of failed PASS before 421 and
	// disconnection.
	MaxLoginAttempts int `toml:"max_login_attempts" default:"3" min:"0"`
	// MaxBadCommands is the number of unknown, malformed or out-of-order
	// commands a client may send before login; the next one ends the
	// session.
	MaxBadCommands int `toml:"max_bad_commands" default:"5" min:"0"`

	// MaxGlobMatches bounds the entries a wildcard LIST/NLST returns.
	MaxGlobMatches int `toml:"max_glob_matches" default:"100000" min:"0"`
	// MaxHashes bounds concurrent HASH/XSHA*/XCRC computations
	// server-wide.
	MaxHashes int `toml:"max_hashes" default:"4" min:"0"`
	// TransferThreads bounds the transfers that run on an OS thread of
	// their own (Linux: plain binary RETR of 1 MiB or more and plain
	// binary STOR/APPE/STOU between local disk and the data connection, by
	// sendfile(2) and splice(2) on a blocking socket); beyond it, and
	// elsewhere, transfers go through Go's network poller. Negative: none.
	TransferThreads int `toml:"transfer_threads" default:"64"`
	// Sendfile lets plain transfers between local disk and the data
	// connection take the kernel's zero-copy paths (sendfile(2) for a
	// download, splice(2) for an upload), as vsftpd's use_sendfile and
	// ProFTPD's UseSendfile; false copies through memory instead, for file
	// systems whose sendfile misbehaves (some network and FUSE mounts).
	Sendfile *bool `toml:"sendfile" default:"true"`
	// MaxRateUp caps the bytes a second of all the server's uploads
	// together ("10MiB"), beside each user's own max_rate_up. 0: no limit;
	// transfers without any limit keep their zero-copy path.
	MaxRateUp bytesize.Size `toml:"max_rate_up"`
	// MaxRateDown caps the bytes a second of all the server's downloads
	// together, beside each user's own max_rate_down. 0: no limit.
	MaxRateDown bytesize.Size `toml:"max_rate_down"`

	// AllowCCC lets a logged-in client turn TLS off on its control
	// connection (CCC, RFC 4217 section 6) so that a NAT device can read
	// PORT; its data connections stay protected if PROT P.
	AllowCCC bool `toml:"allow_ccc"`
}

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	opts.Defaults(&o)
	return o
}

// Validate checks o's bounds; the error names the setting's key.
func (o *Options) Validate() error { return opts.Validate(o) }
