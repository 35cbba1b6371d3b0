package main

import (
	"bytes"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ferryftp/ferry/admin/accounts"
	"github.com/ferryftp/ferry/admin/api"
	"github.com/ferryftp/ferry/auth/users"
	"github.com/ferryftp/ferry/defender"
)

// started is when the process started (the API's uptime).
var started = time.Now()

// version is the module's version as built ("(devel)" from a checkout).
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return "unknown"
}

// apiNode is what the admin API reads and changes of r.
func (r *running) apiNode() api.Node {
	n := api.Node{
		Version:  version(),
		Started:  started,
		Sessions: r.srv,
		Users:    users.File(r.cfg.UsersFile()),
		HomeBase: filepath.Dir(r.cfg.UsersFile()),
		UsersChanged: func() {
			if err := r.st.store.Reload(); err != nil {
				r.logger.Error("users not reloaded", "err", err)
			}
		},
		Quotas:    r.st.store.QuotaUse,
		Listeners: r.listenerAddrs,
		Config:    func() any { return redactedConfig(r.current()) },
		Reload:    r.reloadErr,
		HookQueue: func() int { return r.obs.events.Load().Len() },
	}
	n.Name, _ = os.Hostname()
	if r.st.db != nil {
		n.Users, n.HomeBase = dbRepo{r.st.db}, ""
	}
	if r.def != nil {
		n.Defender = r.def
	}
	return n
}

// adminAuth authenticates the administrators of the admins file; failed
// logins are scored by the defender.
func (r *running) adminAuth() *accounts.Manager {
	cfg := r.current()
	o := accounts.Options{Path: cfg.AdminsFile(), Secure: cfg.TLSCert != "" && r.cert != nil, Logger: r.logger}
	if d := r.def; d != nil {
		o.Failed = func(ip netip.Addr) { d.Record(ip, defender.LoginFailed) }
		o.Banned = func(ip netip.Addr) bool { _, b := d.Banned(ip); return b }
	}
	return accounts.NewManager(o)
}

// listenerAddrs are the addresses of the control listeners.
func (r *running) listenerAddrs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.lns {
		out = append(out, l.ln.Addr().String())
	}
	return out
}

// redactedConfig is cfg as --print-config writes it, with the secrets a
// URL may carry (a database password, a hook's credentials or query)
// removed.
func redactedConfig(cfg any) any {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
		return map[string]string{"error": "configuration not encoded"}
	}
	var m map[string]any
	if _, err := toml.Decode(buf.String(), &m); err != nil {
		return map[string]string{"error": "configuration not encoded"}
	}
	if db, ok := m["database"].(string); ok {
		m["database"] = redactURL(db)
	}
	if hooks, ok := m["hook"].([]map[string]any); ok {
		for _, h := range hooks {
			if u, ok := h["url"].(string); ok {
				h["url"] = redactURL(u)
			}
		}
	}
	return m
}

// redactURL drops a URL's password and query values.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(redacted)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	q := u.Query()
	for k := range q {
		q.Set(k, "redacted")
	}
	u.RawQuery = q.Encode()
	return u.String()
}
