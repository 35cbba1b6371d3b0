package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/admin"
	"github.com/ferryftp/ferry/admin/api"
	"github.com/ferryftp/ferry/admin/console"
	"github.com/ferryftp/ferry/config"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/tlscert"
)

// running is a started server and what a reload (SIGHUP) changes: the
// server's options, TLS certificate, defender settings, hooks, transfer
// log, users, log level, the listeners and the admin listener.
type running struct {
	srv     *server.Server
	st      *stores
	def     shared        // nil with the defender off
	cert    *tlscert.Cert // nil with TLS off
	obs     *observer
	args    []string // ferry serve's: read again at each reload
	cfg     config.Config
	level   *slog.LevelVar
	logger  *slog.Logger
	errc    chan error // a listener that failed on its own
	closing atomic.Bool

	reloadMu sync.Mutex            // one reload at a time (SIGHUP, the admin API)
	mu       sync.Mutex            // guards lns, admin, and cfg's changes
	lns      map[string]*listening // by listenerKey
	admin    *http.Server
}

// listening is a control listener being served.
type listening struct{ ln net.Listener }

// listenerKey names a listener by its address and settings: a reload
// keeps the listeners whose key stays.
func listenerKey(l config.Listener) string {
	reuse := ""
	if l.TLSSessionReuse != nil {
		reuse = strconv.FormatBool(*l.TLSSessionReuse)
	}
	return fmt.Sprintf("%s|%v|%s|%s|%v|%v|%v", l.Address, l.Implicit, l.TLS, reuse, l.ProxyProtocol, l.ProxyTrusted, l.PassiveProxyProtocol)
}

// serve serves ln; a listener that fails on its own (not closed by a
// reload) ends the server.
func (r *running) serve(key string, ln net.Listener, o server.ListenerOptions) {
	l := &listening{ln: ln}
	r.mu.Lock()
	r.lns[key] = l
	r.mu.Unlock()
	go func() {
		err := r.srv.ServeWith(ln, o)
		r.mu.Lock()
		mine := r.lns[key] == l
		r.mu.Unlock()
		if mine && !errors.Is(err, server.ErrServerClosed) {
			r.errc <- err
		}
	}()
}

// run serves until ctx ends or SIGTERM/SIGINT, reloading on SIGHUP, then
// shuts down within shutdown_timeout.
func (r *running) run(ctx context.Context) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sig)
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				r.reload()
				continue
			}
			return r.shutdown()
		case <-ctx.Done():
			return r.shutdown()
		case err := <-r.errc:
			r.srv.Close()
			r.stopAdmin()
			return err
		}
	}
}

func (r *running) shutdown() error {
	r.closing.Store(true) // /readyz says so
	r.logger.Info("shutting down: waiting for running transfers")
	sctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	defer cancel()
	if err := r.srv.Shutdown(sctx); err != nil {
		r.logger.Warn("shutdown deadline passed: closed remaining sessions")
	}
	r.stopAdmin()
	return nil
}

// reload reads the configuration again (the --config file, then the
// flags over it) and applies it. One that does not load or validate
// changes nothing: it is logged, and the running one kept.
func (r *running) reload() { r.reloadErr() }

// reloadErr is reload, saying why a configuration was not applied (the
// admin API's reload).
func (r *running) reloadErr() error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	a, err := parseServe(r.args, io.Discard)
	if err == nil && a == nil {
		err = errors.New("no configuration")
	}
	if err == nil {
		err = r.srv.Reload(a.cfg.Options, a.cfg.TLSPolicy(), a.cfg.TLSSessionReuse != nil && !*a.cfg.TLSSessionReuse)
	}
	if err != nil {
		r.logger.Error("configuration not reloaded: the running one is kept", "err", err)
		return err
	}
	cfg := a.cfg
	var lvl slog.Level
	lvl.UnmarshalText([]byte(cfg.LogLevel))
	r.level.Set(lvl)
	if r.def != nil {
		d, _ := cfg.DefenderSettings(r.logger)
		d.OnBan = r.obs.ban
		r.def.Configure(d)
	}
	r.reloadCert(cfg)
	if err := r.obs.setHooks(cfg); err != nil {
		r.logger.Error("hooks not reloaded", "err", err)
	}
	if err := r.obs.setTransferLog(cfg.TransferLog); err != nil {
		r.logger.Error("transfer log not reopened", "err", err)
	}
	if err := r.st.store.Reload(); err != nil {
		r.logger.Error("users not reloaded", "err", err)
	}
	r.reloadListeners(cfg)
	r.reloadAdmin(cfg)
	if keys := restartOnly(r.cfg, cfg); len(keys) > 0 {
		r.logger.Warn("changed settings that take effect at the next start", "keys", keys)
	}
	r.mu.Lock()
	r.cfg = cfg
	r.mu.Unlock()
	r.logger.Info("configuration reloaded", "hooks", len(cfg.Hooks), "listeners", len(cfg.AllListeners()))
	return nil
}

// current is the configuration in effect.
func (r *running) current() config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
}

// restartOnly lists the keys changed between old and new that a reload
// does not apply.
func restartOnly(old, new config.Config) []string {
	var keys []string
	for key, same := range map[string]bool{
		"data_dir": old.DataDir == new.DataDir, "root": old.Root == new.Root, "storage": old.Storage == new.Storage,
		"users": old.Users == new.Users, "anonymous": old.Anonymous == new.Anonymous, "run_as": old.RunAs == new.RunAs,
		"tls": (old.TLS == "off") == (new.TLS == "off"), "tls_client_ca": old.TLSClientCA == new.TLSClientCA,
		"log_format": old.LogFormat == new.LogFormat, "max_hashes": old.MaxHashes == new.MaxHashes,
		"transfer_threads": old.TransferThreads == new.TransferThreads, "hook_retry_for": old.HookRetryFor == new.HookRetryFor,
		"partial_max_age": old.PartialMaxAge == new.PartialMaxAge, "sync_uploads": old.SyncUploads == new.SyncUploads,
		"database":         old.Database == new.Database,
		"defender.enabled": reflect.DeepEqual(old.Defender.Enabled, new.Defender.Enabled),
	} {
		if !same {
			keys = append(keys, key)
		}
	}
	return keys
}

// reloadCert rereads the certificate, or reads the one the configuration
// now names; sessions keep running, new handshakes use it.
func (r *running) reloadCert(cfg config.Config) {
	if r.cert == nil {
		return
	}
	certFile, keyFile, _ := cfg.TLSCertFiles()
	var err error
	if certFile == r.cert.CertFile && keyFile == r.cert.KeyFile {
		err = r.cert.Reload()
	} else {
		err = r.cert.Switch(certFile, keyFile)
	}
	if err != nil {
		r.logger.Error("TLS certificate not reloaded: the one in use stays", "err", err)
	} else {
		r.logger.Info("TLS certificate reloaded", "sha256", r.cert.Fingerprint())
	}
}

// reloadListeners closes the listeners the configuration no longer has
// (their sessions go on) and opens the new ones.
func (r *running) reloadListeners(cfg config.Config) {
	want := map[string]config.Listener{}
	for _, l := range cfg.AllListeners() {
		want[listenerKey(l)] = l
	}
	r.mu.Lock()
	var gone []net.Listener
	for key, l := range r.lns {
		if _, ok := want[key]; !ok {
			delete(r.lns, key)
			gone = append(gone, l.ln)
		}
	}
	have := map[string]bool{}
	for key := range r.lns {
		have[key] = true
	}
	r.mu.Unlock()
	for _, ln := range gone {
		r.logger.Info("listener closed", "address", ln.Addr().String())
		ln.Close()
	}
	for key, l := range want {
		if have[key] {
			continue
		}
		ln, err := listen(l.Address)
		if err != nil {
			r.logger.Error("listener not opened", "err", err)
			continue
		}
		r.logger.Info("listening", "address", ln.Addr().String())
		r.serve(key, ln, l.Options())
	}
}

// sources are what the metrics read at each scrape.
func (r *running) sources() admin.Sources {
	return admin.Sources{
		Sessions: r.srv.Sessions,
		Bans: func() int {
			if r.def == nil {
				return 0
			}
			return r.def.Bans()
		},
		HookQueue: func() int { return r.obs.events.Load().Len() },
		Quotas: func() map[string]admin.QuotaUse {
			m := map[string]admin.QuotaUse{}
			r.st.store.QuotaUse(func(user string, used, limit int64) { m[user] = admin.QuotaUse{Used: used, Limit: limit} })
			return m
		},
	}
}

// listenAdmin listens on admin_listen (none when unset).
func (r *running) listenAdmin(cfg config.Config) ([]net.Listener, error) {
	if cfg.AdminListen == "" {
		return nil, nil
	}
	addr, err := cfg.AdminAddr()
	if err != nil {
		return nil, err
	}
	ln, err := listen(addr)
	if err != nil {
		return nil, fmt.Errorf("admin_listen: %v", err)
	}
	if cfg.TLSCert != "" && r.cert != nil {
		ln = tls.NewListener(ln, &tls.Config{GetCertificate: r.cert.GetCertificate, MinVersion: tls.VersionTLS12})
	}
	return []net.Listener{ln}, nil
}

// serveAdmin serves /metrics, /healthz and /readyz on lns (at most one).
func (r *running) serveAdmin(lns []net.Listener) {
	if len(lns) == 0 {
		return
	}
	if r.obs.metrics.Load() == nil {
		r.obs.metrics.Store(admin.NewMetrics(r.sources()))
	}
	ready := func() error {
		if r.closing.Load() {
			return errors.New("shutting down")
		}
		return nil
	}
	mux := http.NewServeMux()
	admin.Register(mux, r.obs.metrics.Load(), ready)
	a := api.New(r.apiNode(), r.adminAuth(), r.logger)
	if old := r.obs.api.Swap(a); old != nil {
		old.Close()
	}
	a.Register(mux)
	console.Register(mux, a, r.logger)
	// Requests end when the listener shuts down: the console's event
	// streams do not hold it up.
	base, cancel := context.WithCancel(context.Background())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return base },
		ErrorLog:    slog.NewLogLogger(r.logger.Handler(), slog.LevelWarn)}
	hs.RegisterOnShutdown(cancel)
	r.mu.Lock()
	r.admin = hs
	r.mu.Unlock()
	go hs.Serve(lns[0])
}

func (r *running) stopAdmin() {
	r.mu.Lock()
	hs := r.admin
	r.admin = nil
	r.mu.Unlock()
	if a := r.obs.api.Swap(nil); a != nil {
		a.Close()
	}
	if hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
	}
}

// reloadAdmin moves the admin listener when admin_listen changed.
func (r *running) reloadAdmin(cfg config.Config) {
	if cfg.AdminListen == r.cfg.AdminListen && (cfg.TLSCert != "") == (r.cfg.TLSCert != "") {
		return
	}
	r.stopAdmin()
	lns, err := r.listenAdmin(cfg)
	if err != nil {
		r.logger.Error("admin listener not opened", "err", err)
		return
	}
	r.serveAdmin(lns)
}
