// Package doctor diagnoses an FTP server from the client's side: it
// connects as a client would, runs a bounded set of read-only checks
// (with Options.Write, a few writes in one directory), and reports each
// as ok, a warning or a problem, with its evidence and what to change,
// then the flags that work with curl, lftp, rclone, Python's ftplib and
// ferry. `ferry doctor URL` prints the report.
package doctor

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Options say which server to diagnose and how.
type Options struct {
	// Addr is the server's host:port; Scheme is ftp (TLS if offered is
	// only reported), ftpes (AUTH TLS) or ftps (implicit TLS).
	Addr, Scheme string
	// User and Password log in (anonymous when User is empty).
	User, Password string
	// TLS holds what to trust: RootCAs (nil: the system's), ServerName
	// (default: the host of Addr). The certificate is checked by the
	// doctor, which reports rather than refuses.
	TLS *tls.Config
	// CAFile names the file RootCAs came from, for the clients' flags.
	CAFile string
	// Write, when set, is a directory where a small test file is
	// uploaded, resumed, renamed, downloaded, hashed and removed.
	Write string
	// Speed adds a throughput test (16 MiB up and down) in Write.
	Speed bool
	// From is a second local address for the data-connection theft test;
	// unset: 127.0.0.2 for a server on 127.0.0.1, else the test is
	// skipped.
	From netip.Addr
	// Timeout bounds each step (default 5s).
	Timeout time.Duration
	// Transcript, when set, receives every command and reply (the
	// password hidden).
	Transcript io.Writer

	cacheOnce sync.Once
	cache     tls.ClientSessionCache
}

// tlsConfig is the configuration of a handshake: the server's name, no
// verification (Run verifies and reports), and the session cache shared
// by the control and data connections unless fresh.
func (o *Options) tlsConfig(fresh bool) *tls.Config {
	o.cacheOnce.Do(func() { o.cache = tls.NewLRUClientSessionCache(16) })
	cfg := &tls.Config{}
	if o.TLS != nil {
		cfg = o.TLS.Clone()
	}
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = nil
	cfg.ServerName = o.serverName()
	cfg.ClientSessionCache = o.cache
	if fresh {
		cfg.ClientSessionCache = nil
	}
	return cfg
}

func (o *Options) serverName() string {
	if o.TLS != nil && o.TLS.ServerName != "" {
		return o.TLS.ServerName
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return o.Addr
	}
	return host
}

// Verdict is a check's outcome.
type Verdict string

// Verdicts.
const (
	OK      Verdict = "ok"
	Warning Verdict = "warning"
	Problem Verdict = "problem"
	Skipped Verdict = "skipped"
)

// Check is one check's outcome: a stable ID (for scripts and tests),
// what was checked, the verdict, one line of evidence and, unless ok,
// one line of what to change.
type Check struct {
	ID       string  `json:"id"`
	Title    string  `json:"title"`
	Verdict  Verdict `json:"verdict"`
	Evidence string  `json:"evidence"`
	Fix      string  `json:"fix,omitempty"`
}

// Report is a whole diagnosis.
type Report struct {
	Target   string            `json:"target"`
	Checks   []Check           `json:"checks"`
	Flags    map[string]string `json:"flags,omitempty"` // per client: what works against this server (after a login)
	Duration float64           `json:"duration_seconds"`
}

// Problems counts the checks with a problem.
func (r *Report) Problems() int { return r.count(Problem) }

func (r *Report) count(v Verdict) int {
	n := 0
	for _, c := range r.Checks {
		if c.Verdict == v {
			n++
		}
	}
	return n
}

// Get returns the check with id, if it ran.
func (r *Report) Get(id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

func (r *Report) add(id, title string, v Verdict, evidence, fix string) {
	r.Checks = append(r.Checks, Check{ID: id, Title: title, Verdict: v, Evidence: evidence, Fix: fix})
}

// Run diagnoses the server of o. It never fails: what could not be done
// is a check with its verdict.
func Run(ctx context.Context, o *Options) *Report {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Scheme == "" {
		o.Scheme = "ftp"
	}
	start := time.Now()
	d := &run{o: o, r: &Report{Target: o.Scheme + "://" + o.Addr}}
	d.all(ctx)
	if d.loggedIn {
		d.r.Flags = d.flags() // what clients need, once there was a session to learn it from
	}
	d.r.Duration = time.Since(start).Seconds()
	return d.r
}
