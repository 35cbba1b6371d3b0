package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/auth/password"
	"github.com/ferryftp/ferry/auth/users"
	"github.com/ferryftp/ferry/config"
	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/state/pgstate"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/backend"
	"github.com/ferryftp/ferry/storage/localfs"
	"github.com/ferryftp/ferry/storage/s3fs"
	"github.com/ferryftp/ferry/tlscert"
)

func serve(args []string) error {
	slackTimers() // may execute ferry again, with the slack set
	return runServe(context.Background(), args, os.Stdout, os.Stderr)
}

// serveArgs is what `ferry serve` is told: the configuration (file, then
// flags over it) and the quick-start user, which is no setting of a file.
type serveArgs struct {
	cfg         config.Config
	configFile  string
	user, pass  string
	printConfig bool
}

// runServe runs the server until ctx ends or a SIGTERM/SIGINT arrives:
// load the configuration, open the users and files, build TLS, listen,
// run.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a, err := parseServe(args, stderr)
	if err != nil || a == nil {
		return err
	}
	if a.printConfig {
		return a.cfg.Encode(stdout)
	}
	level := new(slog.LevelVar)
	logger := newLogger(a.cfg, level, stderr)
	st, err := openStore(ctx, a, logger)
	if err != nil {
		return err
	}
	obs := &observer{logger: logger, db: st.db}
	srv := &server.Server{Auth: st.store, Logger: logger, Hooks: obs.hooks()}
	if st.db != nil {
		srv.UserSessions = st.db.Sessions()
	}
	a.cfg.Apply(srv)
	def, err := buildDefender(ctx, a.cfg, st, obs, logger)
	if err != nil {
		return err
	}
	if def != nil {
		srv.Defender = def
	}
	cert, err := buildTLS(a.cfg, srv)
	if err != nil {
		return err
	}
	if err := obs.setTransferLog(a.cfg.TransferLog); err != nil {
		return fmt.Errorf("transfer_log: %v", err)
	}
	r := &running{srv: srv, st: st, def: def, cert: cert, obs: obs, args: args, cfg: a.cfg, level: level,
		logger: logger, errc: make(chan error, 16), lns: map[string]*listening{}}
	lns, opts, err := listenAll(a.cfg)
	if err != nil {
		return err
	}
	adminLn, err := r.listenAdmin(a.cfg)
	if err != nil {
		closeAll(lns)
		return err
	}
	if err := dropPrivileges(a.cfg, st, append(lns, adminLn...), logger); err != nil {
		return err
	}
	if err := obs.setHooks(a.cfg); err != nil { // the queue is the run_as user's
		closeAll(lns)
		closeAll(adminLn)
		return fmt.Errorf("hooks: %v", err)
	}
	defer obs.close()
	printWelcome(stdout, lns, opts, adminLn, st.store, a.user, st.firstPassword, a.cfg, cert)
	defer st.store.Flush() // the quota usage of the last second
	if st.db != nil {
		defer st.db.Close()
	}
	r.serveAdmin(adminLn)
	for i, ln := range lns {
		r.serve(listenerKey(a.cfg.AllListeners()[i]), ln, opts[i])
	}
	return r.run(ctx)
}

// shared is a defender whose settings a reload changes: the process's
// (defender.Memory) or the cluster's (pgstate.Defender).
type shared interface {
	defender.Defender
	Configure(defender.Config)
	Bans() int
	List() []defender.Entry
}

// buildDefender makes the defender, telling obs of its bans: in the
// database with --database, so that a ban holds on every node; nil when
// it is off.
func buildDefender(ctx context.Context, cfg config.Config, st *stores, obs *observer, logger *slog.Logger) (shared, error) {
	d, on := cfg.DefenderSettings(logger)
	if !on {
		return nil, nil
	}
	d.OnBan = obs.ban
	if st.db != nil {
		return st.db.Defender(ctx, d)
	}
	return defender.New(d), nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// parseServe reads the configuration file named by --config, then the
// flags over it. It returns nil, nil for --help.
func parseServe(args []string, stderr io.Writer) (*serveArgs, error) {
	// A first pass finds --config; a second binds the flags to the
	// configuration loaded from it.
	a := &serveArgs{cfg: config.Default()}
	fl, err := a.parse(args)
	if err == nil && a.configFile != "" {
		file := a.configFile
		a = &serveArgs{}
		if a.cfg, err = config.Load(file); err != nil {
			return nil, fmt.Errorf("config: %v", err)
		}
		fl, err = a.parse(args)
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "Usage: ferry serve [flags]\n\nEvery setting of the configuration file is a flag too (docs/CONFIG.md).\n\n")
		config.PrintFlags(stderr, fl)
		return nil, nil
	}
	if err != nil {
		return nil, usageError{err}
	}
	return a, a.check()
}

// parse parses args into a, bound to a.cfg.
func (a *serveArgs) parse(args []string) (*flag.FlagSet, error) {
	fl := flag.NewFlagSet("ferry serve", flag.ContinueOnError)
	fl.SetOutput(io.Discard) // the error is returned; --help prints the flags
	fl.StringVar(&a.configFile, "config", "", "TOML configuration `file` (flags override it; docs/CONFIG.md)")
	fl.BoolVar(&a.printConfig, "print-config", false, "print the effective configuration, defaults included, as TOML that --config reads, and exit")
	fl.StringVar(&a.user, "user", "", "quick-start user `name`, read-write on --root; password from --password or FERRY_PASSWORD")
	fl.StringVar(&a.pass, "password", "", "password of --user (prefer FERRY_PASSWORD: argv is visible to other users)")
	a.cfg.Flags(fl)
	err := fl.Parse(args)
	if err == nil && fl.NArg() > 0 {
		err = fmt.Errorf("serve: unexpected argument %q", fl.Arg(0))
	}
	return fl, err
}

// check fills in the defaults and checks the result.
func (a *serveArgs) check() error {
	a.cfg = a.cfg.Effective()
	if err := a.cfg.Validate(); err != nil {
		return usageError{fmt.Errorf("config: %v", err)}
	}
	if a.pass == "" {
		a.pass = os.Getenv("FERRY_PASSWORD")
	}
	if a.user != "" && a.pass == "" {
		return errors.New("--user needs a password: set FERRY_PASSWORD (or --password)")
	}
	return nil
}

func newLogger(cfg config.Config, level *slog.LevelVar, w io.Writer) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(cfg.LogLevel))
	level.Set(l)
	o := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// stores are the users and files a server runs on.
type stores struct {
	store         *users.Store
	db            *pgstate.DB // with --database
	loc           string      // the served files: a directory or a storage URL
	rootDir       string      // the directory of loc, "" for an object store
	firstPassword string      // of the user made on the embedded default's first start
}

// openStore checks the root directory and opens the users: the
// quick-start user, anonymous, the users file (made with one user on the
// embedded default's first start).
func openStore(ctx context.Context, a *serveArgs, logger *slog.Logger) (*stores, error) {
	cfg := a.cfg
	st := &stores{loc: cfg.StorageURL()}
	if dir, ok := backend.LocalDir(st.loc); ok {
		st.rootDir = dir
		if err := checkRoot(cfg, st.rootDir); err != nil {
			return nil, err
		}
	}
	var claims s3fs.Claims // running uploads: the process's, or the cluster's
	if cfg.Database != "" {
		db, err := pgstate.Open(ctx, cfg.Database, logger)
		if err != nil {
			return nil, err
		}
		st.db, claims = db, db.Uploads()
	}
	homes := sweptHomes(ctx, cfg, claims, logger)
	if st.rootDir == "" {
		// An object store is checked now: a wrong bucket, endpoint or
		// credentials fail the start, not the first login.
		if _, err := homes(ctx, st.loc); err != nil {
			return nil, fmt.Errorf("storage %s: %v", st.loc, err)
		}
	} else if a.user != "" || cfg.Anonymous {
		// The served directory is swept at start (opening it sweeps), not
		// at its first login: what a crash left goes even if no one logs
		// in.
		homes(ctx, st.loc)
	}
	st.store = &users.Store{Path: cfg.UsersFile(), FS: homes, PartialMaxAge: cfg.PartialMaxAge}
	quick := cfg.Users == "" // no users file named: the quick start may go without
	if db := st.db; db != nil {
		st.store.Source, st.store.Path = db, ""
		st.store.Banks = func(user string) users.QuotaBank { return db.Bank(user) }
		st.store.UsageFile = filepath.Join(cfg.DataDir, "usage.json")
		quick = false
	}
	if a.user != "" {
		h, err := password.Hash(a.pass)
		if err != nil {
			return nil, err
		}
		st.store.Extra = []users.User{st.user(users.User{Name: a.user, Password: h, Permission: users.ReadWrite})}
		if quick {
			st.store.Path = "" // quick start: only this user
		}
	}
	if cfg.Anonymous {
		anon, err := homes(ctx, st.loc)
		if err != nil {
			return nil, fmt.Errorf("storage %s: %v", st.loc, err)
		}
		st.store.Anonymous = anon
		if a.user == "" && quick {
			st.store.Path = ""
		}
	}
	if err := st.firstStart(cfg); err != nil {
		return nil, err
	}
	if err := st.store.Reload(); err != nil {
		return nil, fmt.Errorf("users: %v", err)
	}
	go sweepStores(ctx, st.store.Storages(), homes, logger)
	return st, nil
}

// sweepStores opens, and so sweeps, the object stores of the users at
// start, so that the parts of uploads nobody resumes are aborted even for
// users who do not log in again.
func sweepStores(ctx context.Context, locs []string, homes func(context.Context, string) (storage.FS, error), logger *slog.Logger) {
	for _, loc := range locs {
		if _, err := homes(ctx, loc); err != nil {
			logger.Warn("a user's storage cannot be opened", "storage", loc, "err", err)
		}
	}
}

// user gives u the served files: Home for a directory, else Storage.
func (st *stores) user(u users.User) users.User {
	if st.rootDir != "" {
		u.Home = st.rootDir
	} else {
		u.Storage = st.loc
	}
	return u
}

// checkRoot makes the embedded default's root and refuses one that is
// missing, not a directory, unreadable or writable by every local user.
func checkRoot(cfg config.Config, rootDir string) error {
	if cfg.Root == "" && cfg.Storage == "" {
		if err := os.MkdirAll(rootDir, 0o755); err != nil {
			return fmt.Errorf("data directory: %v", err)
		}
	}
	fi, err := os.Stat(rootDir)
	switch {
	case err != nil:
		return fmt.Errorf("root %s: %v", rootDir, errors.Unwrap(err))
	case !fi.IsDir():
		return fmt.Errorf("root %s: not a directory", rootDir)
	case fi.Mode().Perm()&0o002 != 0 && !cfg.AllowWorldWritable:
		return fmt.Errorf("root %s is writable by every local user (mode %04o), who could plant or swap files in it: chmod o-w %s, or pass --allow-world-writable", rootDir, fi.Mode().Perm(), rootDir)
	}
	f, err := os.Open(rootDir)
	if err != nil {
		return fmt.Errorf("root %s: not readable", rootDir)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != nil && err != io.EOF {
		return fmt.Errorf("root %s: not readable", rootDir)
	}
	return nil
}

// firstStart makes the users file of the embedded default, with the user
// ferry and a random password, when it does not exist yet.
func (st *stores) firstStart(cfg config.Config) error {
	if st.store.Path == "" {
		return nil
	}
	if _, err := os.Stat(st.store.Path); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if cfg.Users != "" {
		return fmt.Errorf("users file %s does not exist (create it with: ferry user add NAME --home DIR --users %s)", st.store.Path, st.store.Path)
	}
	st.firstPassword = randomPassword()
	h, err := password.Hash(st.firstPassword)
	if err != nil {
		return err
	}
	u := st.user(users.User{Name: "ferry", Password: h, Permission: users.ReadWrite})
	if u.Home != "" {
		home, _ := filepath.Rel(filepath.Dir(st.store.Path), st.rootDir)
		if home == "" || strings.HasPrefix(home, "..") {
			home, _ = filepath.Abs(st.rootDir)
		}
		u.Home = home
	}
	if err := users.Save(st.store.Path, []users.User{u}); err != nil {
		return fmt.Errorf("users file: %v", err)
	}
	return nil
}

// sweptHomes opens users' files (a directory or a storage URL). Each
// backend, when first opened and then once a day, is swept: on local disk
// of the temporary files of uploads a crash cut short (older than this
// process) and of partial files nobody resumed within partial_max_age; in
// an object store of the multipart uploads nobody resumed in that time.
func sweptHomes(ctx context.Context, cfg config.Config, claims s3fs.Claims, logger *slog.Logger) func(context.Context, string) (storage.FS, error) {
	started := time.Now()
	partCutoff := func() time.Time {
		if cfg.PartialMaxAge < 0 {
			return time.Time{}
		}
		return time.Now().Add(-cfg.PartialMaxAge)
	}
	sweepOne := func(key string, f storage.FS) {
		if b, ok := f.(*s3fs.FS); ok {
			if cutoff := partCutoff(); !cutoff.IsZero() {
				if n, err := b.Sweep(ctx, cutoff); err != nil {
					logger.Warn("sweep of unfinished uploads failed", "storage", key, "err", err)
				} else if n > 0 {
					logger.Info("aborted unfinished uploads nobody resumed", "storage", key, "uploads", n)
				}
			}
			return
		}
		sweep(ctx, logger, key, started, partCutoff())
	}
	var seen sync.Map // absolute directory or URL -> storage.FS: swept once, then daily
	go func() {
		daily := time.NewTicker(24 * time.Hour)
		defer daily.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-daily.C:
				seen.Range(func(key, f any) bool {
					sweepOne(key.(string), f.(storage.FS))
					return true
				})
			}
		}
	}()
	opener := &backend.Opener{Local: localfs.Options{Sync: cfg.SyncUploads}, Claims: claims}
	return func(octx context.Context, loc string) (storage.FS, error) {
		key := loc
		if dir, ok := backend.LocalDir(loc); ok {
			if abs, err := filepath.Abs(dir); err == nil {
				key = abs
			}
		}
		if f, ok := seen.Load(key); ok {
			return f.(storage.FS), nil // opened once (an object store's check is a request)
		}
		f, err := opener.Open(octx, loc)
		if err != nil {
			return nil, err
		}
		if have, dup := seen.LoadOrStore(key, f); dup {
			return have.(storage.FS), nil
		}
		go sweepOne(key, f)
		return f, nil
	}
}

// buildTLS loads (or, for the embedded default, creates) the certificate
// and sets srv.TLS; nil when tls is off.
func buildTLS(cfg config.Config, srv *server.Server) (*tlscert.Cert, error) {
	if cfg.TLS == "off" {
		return nil, nil
	}
	certFile, keyFile, generated := cfg.TLSCertFiles()
	var cert *tlscert.Cert
	var err error
	if generated {
		cert, _, err = tlscert.LoadOrCreate(certFile, keyFile)
	} else {
		cert, err = tlscert.Load(certFile, keyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("tls: %v", err)
	}
	srv.TLS = &tls.Config{GetCertificate: cert.GetCertificate}
	if cfg.TLSClientCA == "" {
		return cert, nil
	}
	pem, err := os.ReadFile(cfg.TLSClientCA)
	if err != nil {
		return nil, fmt.Errorf("tls_client_ca: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls_client_ca %s: no PEM certificate in it", cfg.TLSClientCA)
	}
	srv.TLS.ClientCAs = pool
	srv.TLS.ClientAuth = tls.VerifyClientCertIfGiven
	return cert, nil
}

// listenAll listens on every address before serving any, so a bad one
// fails fast: the plain listeners, then the implicit-TLS ones and the
// [[listener]] tables with their options.
func listenAll(cfg config.Config) ([]net.Listener, []server.ListenerOptions, error) {
	var lns []net.Listener
	var opts []server.ListenerOptions
	for _, l := range cfg.AllListeners() {
		ln, err := listen(l.Address)
		if err != nil {
			closeAll(lns)
			return nil, nil, err
		}
		lns = append(lns, ln)
		opts = append(opts, l.Options())
	}
	return lns, opts, nil
}

// listen listens on addr, saying plainly when it is in use.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var se *os.SyscallError
		if errors.As(err, &se) && errors.Is(se.Err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen %s: address already in use", addr)
		}
		return nil, fmt.Errorf("listen %s: %v", addr, err)
	}
	return ln, nil
}

// dropPrivileges becomes run_as once the ports are bound (or warns about
// running as root).
func dropPrivileges(cfg config.Config, st *stores, lns []net.Listener, logger *slog.Logger) error {
	drop, err := privilegeDrop(cfg.RunAs)
	if err == nil && drop != nil {
		err = drop.apply(cfg, st.store.Path)
	}
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	if drop != nil {
		logger.Info("privileges dropped", "user", cfg.RunAs, "uid", drop.uid, "gid", drop.gid)
	} else if os.Geteuid() == 0 {
		logger.Warn("running as root: set run_as (--run-as USER) to drop privileges after binding, or run as a user with CAP_NET_BIND_SERVICE")
	}
	return nil
}

func randomPassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func printWelcome(w io.Writer, lns []net.Listener, opts []server.ListenerOptions, adminLn []net.Listener, store *users.Store, quickUser, firstPassword string, cfg config.Config, cert *tlscert.Cert) {
	fmt.Fprintf(w, "Ferry FTP server serving %s\n", cfg.StorageURL())
	for i, ln := range lns {
		switch {
		case opts[i].ImplicitTLS:
			fmt.Fprintf(w, "listening on %s (implicit TLS)\n", ln.Addr())
		case opts[i].TLSPolicy != nil:
			fmt.Fprintf(w, "listening on %s (tls %s)\n", ln.Addr(), *opts[i].TLSPolicy)
		default:
			fmt.Fprintf(w, "listening on %s\n", ln.Addr())
		}
	}
	for _, ln := range adminLn {
		scheme := "http"
		if cfg.TLSCert != "" && cert != nil { // as listenAdmin
			scheme = "https"
		}
		fmt.Fprintf(w, "admin on %s://%s (/metrics, /healthz, /readyz)\n", scheme, ln.Addr())
	}
	if cert != nil {
		fmt.Fprintf(w, "TLS %s, certificate %s\n  SHA-256 fingerprint %s\n", cmp.Or(cfg.TLS, "optional"), cert.CertFile, cert.Fingerprint())
	}
	ap := netip.MustParseAddrPort(lns[0].Addr().String())
	host := ap.Addr()
	if host.IsUnspecified() {
		if host.Is4() || host.Is4In6() {
			host = netip.MustParseAddr("127.0.0.1")
		} else {
			host = netip.MustParseAddr("::1")
		}
	}
	hp := net.JoinHostPort(host.String(), strconv.Itoa(int(ap.Port())))
	name := quickUser
	switch {
	case firstPassword != "":
		name = "ferry"
		fmt.Fprintf(w, "\nCreated user %q with password: %s\n(shown once; stored only as a hash in %s — change it with: ferry user passwd ferry)\n", name, firstPassword, store.Path)
	case name == "" && store.Anonymous != nil:
		name = "anonymous"
	case name == "":
		name = "USER"
	}
	fmt.Fprintf(w, "\nConnect: ftp://%s@%s/\n", name, hp)
	for _, hint := range connectHints(name, hp, cert, cfg) {
		fmt.Fprintf(w, "  %s\n", hint)
	}
}

// connectHints are the commands printed to connect, each one working as
// pasted into a shell on this machine: with TLS on, curl, lftp and the
// ferry client use it and trust the generated certificate through its
// file (a certificate given by the operator is left to the system's
// trust store).
func connectHints(name, hp string, cert *tlscert.Cert, cfg config.Config) []string {
	if cert == nil {
		return []string{
			fmt.Sprintf("curl --user %s ftp://%s/", name, hp),
			fmt.Sprintf("lftp -u %s ftp://%s", name, hp),
			fmt.Sprintf("%s ls ftp://%s@%s/", shellQuote(selfName()), name, hp),
		}
	}
	var curlCA, lftpCA, ferryCA string
	if _, _, generated := cfg.TLSCertFiles(); generated {
		ca := cert.CertFile
		if abs, err := filepath.Abs(ca); err == nil {
			ca = abs
		}
		curlCA = " --cacert " + shellQuote(ca)
		lftpCA = " -e " + shellQuote("set ssl:ca-file "+lftpQuote(ca))
		ferryCA = " --ca-file " + shellQuote(ca)
	}
	return []string{
		fmt.Sprintf("curl --ssl-reqd%s --user %s ftp://%s/", curlCA, name, hp),
		fmt.Sprintf("lftp%s -u %s ftp://%s", lftpCA, name, hp),
		fmt.Sprintf("%s ls%s ftpes://%s@%s/", shellQuote(selfName()), ferryCA, name, hp),
	}
}

// selfName is how a shell on this machine runs this binary: "ferry" when
// that is what PATH finds, else its absolute path (go run, ./ferry).
func selfName() string {
	self, err := os.Executable()
	if err != nil {
		return "ferry"
	}
	if p, err := exec.LookPath("ferry"); err == nil && sameFile(p, self) {
		return "ferry"
	}
	return self
}

// sameFile reports whether a and b name one file.
func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,+@%=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// lftpQuote quotes s as one word of an lftp command.
func lftpQuote(s string) string {
	if !strings.ContainsAny(s, " \t\"'\\;&|") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// sweep removes the stale upload files under dir and logs what it did.
func sweep(ctx context.Context, logger *slog.Logger, dir string, tmpBefore, partBefore time.Time) {
	f, err := localfs.New(dir, localfs.Options{})
	if err != nil {
		logger.Warn("sweeping temporary upload files", "dir", dir, "err", err)
		return
	}
	defer f.Close()
	n, err := f.RemoveStale(ctx, tmpBefore, partBefore)
	if n > 0 {
		logger.Info("removed temporary files of interrupted uploads", "dir", dir, "files", n)
	}
	if err != nil && ctx.Err() == nil {
		logger.Warn("sweeping temporary upload files", "dir", dir, "err", err)
	}
}
