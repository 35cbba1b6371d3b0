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
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/auth/password"
	"github.com/ferryftp/ferry/auth/users"
	"github.com/ferryftp/ferry/config"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/localfs"
	"github.com/ferryftp/ferry/tlscert"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func serve(args []string) error {
	return runServe(context.Background(), args, os.Stdout, os.Stderr)
}

// runServe runs the server until ctx ends or a SIGTERM/SIGINT arrives.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("ferry serve", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var (
		listen       listFlag
		configFile   = fl.String("config", "", "TOML configuration `file` (flags override it)")
		root         = fl.String("root", "", "directory served to --user and --anonymous (default ./ferry-data/files)")
		user         = fl.String("user", "", "quick-start user `name`, read-write on --root; password from --password or FERRY_PASSWORD")
		pass         = fl.String("password", "", "password of --user (prefer FERRY_PASSWORD: argv is visible to other users)")
		anonymous    = fl.Bool("anonymous", false, "allow read-only anonymous logins to --root")
		passivePorts = fl.String("passive-ports", "", "passive port range `LO-HI`")
		publicHost   = fl.String("public-host", "", "address or host name advertised in PASV replies (NAT)")
		usersFile    = fl.String("users", "", "users `file` (default ./ferry-data/users.toml)")
		maxSess      = fl.Int("max-sessions", 0, "maximum concurrent sessions (0 = unlimited)")
		maxPerIP     = fl.Int("max-sessions-per-ip", 0, "maximum concurrent sessions per client address (0 = unlimited)")
		logLevel     = fl.String("log-level", "", "debug, info, warn or error (default info)")
		dataDir      = fl.String("data-dir", "", "state directory (default ./ferry-data)")
		tlsMode      = fl.String("tls", "", "off, optional (default: AUTH TLS offered), required (for login) or required-data (login and data)")
		tlsCert      = fl.String("tls-cert", "", "TLS certificate PEM `file` (default: a self-signed one in the data directory)")
		tlsKey       = fl.String("tls-key", "", "TLS private key PEM `file`")
		tlsReuse     = fl.String("tls-session-reuse", "", "on (default): TLS data connections must resume the control session; off for clients that cannot")
		clientCA     = fl.String("tls-client-ca", "", "PEM `file` of CAs for TLS client certificates (users file: client_cert = \"login\" or \"required\")")
		implicit     listFlag
		runAs        = fl.String("run-as", "", "unprivileged `user` to become after binding the ports when started as root")
		allowWW      = fl.Bool("allow-world-writable", false, "serve a root directory every local user may write to")
	)
	fl.Var(&listen, "listen", "control `address` to listen on, e.g. :2121 or [::1]:2121 (repeatable)")
	fl.Var(&implicit, "implicit-listen", "`address` for implicit TLS (ftps://), e.g. :990 (repeatable)")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fl.Arg(0))
	}
	cfg := config.Default()
	if *configFile != "" {
		var err error
		if cfg, err = config.Load(*configFile); err != nil {
			return fmt.Errorf("config: %v", err)
		}
	}
	set := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if len(listen) > 0 {
		cfg.Listen = listen
	}
	if set["root"] {
		cfg.Root = *root
	}
	if set["anonymous"] {
		cfg.Anonymous = *anonymous
	}
	if set["passive-ports"] {
		cfg.PassivePorts = *passivePorts
	}
	if set["public-host"] {
		cfg.PublicHost = *publicHost
	}
	if set["users"] {
		cfg.Users = *usersFile
	}
	if set["max-sessions"] {
		cfg.MaxSessions = *maxSess
	}
	if set["max-sessions-per-ip"] {
		cfg.MaxSessionsPerIP = *maxPerIP
	}
	if set["log-level"] {
		cfg.LogLevel = *logLevel
	}
	if set["data-dir"] {
		cfg.DataDir = *dataDir
	}
	if set["tls"] {
		cfg.TLS = *tlsMode
	}
	if set["tls-cert"] || set["tls-key"] {
		cfg.TLSCert, cfg.TLSKey = *tlsCert, *tlsKey
	}
	if len(implicit) > 0 {
		cfg.ImplicitListen = implicit
	}
	if set["run-as"] {
		cfg.RunAs = *runAs
	}
	if set["allow-world-writable"] {
		cfg.AllowWorldWritable = *allowWW
	}
	if set["tls-client-ca"] {
		cfg.TLSClientCA = *clientCA
	}
	if set["tls-session-reuse"] {
		switch *tlsReuse {
		case "on", "true", "yes":
			v := true
			cfg.TLSSessionReuse = &v
		case "off", "false", "no":
			v := false
			cfg.TLSSessionReuse = &v
		default:
			return fmt.Errorf("--tls-session-reuse %q: want on or off", *tlsReuse)
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if *pass == "" {
		*pass = os.Getenv("FERRY_PASSWORD")
	}
	if *user != "" && *pass == "" {
		return errors.New("--user needs a password: set FERRY_PASSWORD (or --password)")
	}

	var level slog.Level
	level.UnmarshalText([]byte(cmp.Or(cfg.LogLevel, "info")))
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	// Storage and users.
	rootDir := cfg.RootDir()
	if cfg.Root == "" {
		if err := os.MkdirAll(rootDir, 0o755); err != nil {
			return fmt.Errorf("data directory: %v", err)
		}
	}
	if fi, err := os.Stat(rootDir); err != nil {
		return fmt.Errorf("root %s: %v", rootDir, errors.Unwrap(err))
	} else if !fi.IsDir() {
		return fmt.Errorf("root %s: not a directory", rootDir)
	} else if fi.Mode().Perm()&0o002 != 0 && !cfg.AllowWorldWritable {
		return fmt.Errorf("root %s is writable by every local user (mode %04o), who could plant or swap files in it: chmod o-w %s, or pass --allow-world-writable", rootDir, fi.Mode().Perm(), rootDir)
	}
	drop, err := privilegeDrop(cfg.RunAs)
	if err != nil {
		return err
	}
	if f, err := os.Open(rootDir); err != nil {
		return fmt.Errorf("root %s: not readable", rootDir)
	} else {
		_, rerr := f.Readdirnames(1)
		f.Close()
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("root %s: not readable", rootDir)
		}
	}
	store := &users.Store{Path: cfg.UsersFile()}
	var firstPassword string
	if *user != "" {
		h, err := password.Hash(*pass)
		if err != nil {
			return err
		}
		store.Extra = []users.User{{Name: *user, Password: h, Home: rootDir, Permission: users.ReadWrite}}
		if !set["users"] && cfg.Users == "" {
			store.Path = "" // quick start: only this user
		}
	}
	if cfg.Anonymous {
		anon, err := localfs.New(rootDir, localfs.Options{})
		if err != nil {
			return fmt.Errorf("root %s: %v", rootDir, err)
		}
		store.Anonymous = anon
		if *user == "" && !set["users"] && cfg.Users == "" {
			store.Path = ""
		}
	}
	if store.Path != "" {
		if _, err := os.Stat(store.Path); errors.Is(err, os.ErrNotExist) {
			if set["users"] || cfg.Users != "" {
				return fmt.Errorf("users file %s does not exist (create it with: ferry user add NAME --home DIR --users %s)", store.Path, store.Path)
			}
			// First start of the embedded default: one user with a random password.
			firstPassword = randomPassword()
			h, err := password.Hash(firstPassword)
			if err != nil {
				return err
			}
			home, _ := filepath.Rel(filepath.Dir(store.Path), rootDir)
			if home == "" || strings.HasPrefix(home, "..") {
				home, _ = filepath.Abs(rootDir)
			}
			if err := users.Save(store.Path, []users.User{{Name: "ferry", Password: h, Home: home, Permission: users.ReadWrite}}); err != nil {
				return fmt.Errorf("users file: %v", err)
			}
		}
	}
	if err := store.Reload(); err != nil {
		return fmt.Errorf("users: %v", err)
	}
	open := localfs.Options{Sync: cfg.SyncUploads}
	// Each home, when first opened and then once a day, is swept of the
	// temporary files of uploads a crash cut short (older than this
	// process) and of partial files nobody resumed within partial_max_age.
	started := time.Now()
	partCutoff := func() time.Time {
		if cfg.PartialMaxAge < 0 {
			return time.Time{}
		}
		return time.Now().Add(-cmp.Or(time.Duration(cfg.PartialMaxAge), 7*24*time.Hour))
	}
	var dirs sync.Map // absolute directory -> struct{}: swept once, then daily
	sweepNew := func(dir string) {
		if abs, err := filepath.Abs(dir); err == nil {
			if _, seen := dirs.LoadOrStore(abs, struct{}{}); !seen {
				go sweep(ctx, logger, abs, started, partCutoff())
			}
		}
	}
	store.FS = func(dir string) (storage.FS, error) {
		f, err := localfs.New(dir, open)
		if err == nil {
			sweepNew(dir)
		}
		return f, err
	}
	sweepNew(rootDir) // anonymous and --user homes, before anyone logs in
	go func() {
		daily := time.NewTicker(24 * time.Hour)
		defer daily.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-daily.C:
				dirs.Range(func(dir, _ any) bool {
					sweep(ctx, logger, dir.(string), started, partCutoff())
					return true
				})
			}
		}
	}()

	srv := &server.Server{Auth: store, Logger: logger}
	cfg.Apply(srv)
	var cert *tlscert.Cert
	if cfg.TLS != "off" {
		certFile, keyFile, generated := cfg.TLSCertFiles()
		var err error
		if generated {
			cert, _, err = tlscert.LoadOrCreate(certFile, keyFile)
		} else {
			cert, err = tlscert.Load(certFile, keyFile)
		}
		if err != nil {
			return fmt.Errorf("tls: %v", err)
		}
		srv.TLS = &tls.Config{GetCertificate: cert.GetCertificate}
		if cfg.TLSClientCA != "" {
			pem, err := os.ReadFile(cfg.TLSClientCA)
			if err != nil {
				return fmt.Errorf("tls_client_ca: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("tls_client_ca %s: no PEM certificate in it", cfg.TLSClientCA)
			}
			srv.TLS.ClientCAs = pool
			srv.TLS.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}

	// Listen on every address before serving any, so a bad one fails fast.
	var lns []net.Listener
	for _, a := range cfg.Listen {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			var se *os.SyscallError
			if errors.As(err, &se) && errors.Is(se.Err, syscall.EADDRINUSE) {
				return fmt.Errorf("listen %s: address already in use", a)
			}
			return fmt.Errorf("listen %s: %v", a, err)
		}
		lns = append(lns, ln)
	}
	opts := make([]server.ListenerOptions, len(lns))
	more := make([]config.Listener, 0, len(cfg.ImplicitListen)+len(cfg.Listeners))
	for _, a := range cfg.ImplicitListen {
		more = append(more, config.Listener{Address: a, Implicit: true})
	}
	more = append(more, cfg.Listeners...)
	for _, l := range more {
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			for _, x := range lns {
				x.Close()
			}
			return fmt.Errorf("listen %s: %v", l.Address, err)
		}
		lns = append(lns, ln)
		opts = append(opts, l.Options())
	}
	if drop != nil {
		if err := drop.apply(cfg, store.Path); err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			return err
		}
		logger.Info("privileges dropped", "user", cfg.RunAs, "uid", drop.uid, "gid", drop.gid)
	} else if os.Geteuid() == 0 {
		logger.Warn("running as root: set run_as (--run-as USER) to drop privileges after binding, or run as a user with CAP_NET_BIND_SERVICE")
	}
	printWelcome(stdout, lns, opts, store, *user, firstPassword, cfg, cert)

	errc := make(chan error, len(lns))
	for i, ln := range lns {
		go func() { errc <- srv.ServeWith(ln, opts[i]) }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sig)
wait:
	for {
		select {
		case s := <-sig:
			if s != syscall.SIGHUP {
				break wait
			}
			// SIGHUP: reread the certificate; sessions keep running.
			if cert == nil {
				continue
			}
			if err := cert.Reload(); err != nil {
				logger.Error("TLS certificate not reloaded", "err", err)
			} else {
				logger.Info("TLS certificate reloaded", "sha256", cert.Fingerprint())
			}
		case <-ctx.Done():
			break wait
		case err := <-errc:
			srv.Close()
			return err
		}
	}
	logger.Info("shutting down: waiting for running transfers")
	timeout := time.Duration(cfg.ShutdownTimeout)
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("shutdown deadline passed: closed remaining sessions")
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

func printWelcome(w io.Writer, lns []net.Listener, opts []server.ListenerOptions, store *users.Store, quickUser, firstPassword string, cfg config.Config, cert *tlscert.Cert) {
	fmt.Fprintf(w, "Ferry FTP server serving %s\n", cfg.RootDir())
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
			fmt.Sprintf("ferry ls ftp://%s@%s/", name, hp),
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
		fmt.Sprintf("ferry ls%s ftpes://%s@%s/", ferryCA, name, hp),
	}
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
