package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/ferryftp/ferry/client"
)

// remote is a file or directory on a server, from a URL as curl and lftp
// take them: ftp://user:pass@host:port/path.
type remote struct {
	scheme   string
	host     string // host:port
	user     string
	pass     string
	hasPass  bool
	path     string // relative to the login directory unless it starts with "/"
	trailing bool   // the URL ended in "/": a directory
}

func isURL(s string) bool {
	for _, p := range []string{"ftp://", "ftpes://", "ftps://"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			return true
		}
	}
	return false
}

// parseRemote parses an FTP URL. As RFC 1738 §3.2.2 has it, the path is
// taken from the login directory: ftp://host/dir/file is dir/file there,
// and ftp://host//etc (or %2Fetc) is /etc.
func parseRemote(s string) (*remote, error) {
	if !isURL(s) {
		return nil, fmt.Errorf("%q is not an ftp:// URL", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad URL: %v", err)
	}
	r := &remote{scheme: strings.ToLower(u.Scheme)}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q names no host", s)
	}
	port := u.Port()
	if port == "" {
		port = "21"
		if r.scheme == "ftps" {
			port = "990"
		}
	}
	r.host = net.JoinHostPort(u.Hostname(), port)
	if u.User != nil {
		r.user = u.User.Username()
		r.pass, r.hasPass = u.User.Password()
	}
	if strings.ContainsAny(u.Path, "\r\n\x00") || strings.ContainsAny(r.user+r.pass, "\r\n\x00") {
		return nil, fmt.Errorf("the URL holds a line break")
	}
	p := strings.TrimPrefix(u.Path, "/")
	r.trailing = strings.HasSuffix(p, "/") && p != "/"
	if p != "/" {
		p = strings.TrimSuffix(p, "/")
	}
	// RFC 1738's ";type=i|a" belongs to the path (a fuzzer found that
	// "ftp://;type=a" has it in the host instead).
	if strings.HasSuffix(p, ";type=i") || strings.HasSuffix(p, ";type=a") {
		p = p[:len(p)-len(";type=i")]
	}
	r.path = p
	return r, nil
}

// String is the URL without the password.
func (r *remote) String() string {
	u := url.URL{Scheme: r.scheme, Host: r.host}
	if r.user != "" && r.user != "anonymous" {
		u.User = url.User(r.user)
	}
	if r.scheme != "ftps" && strings.HasSuffix(r.host, ":21") || r.scheme == "ftps" && strings.HasSuffix(r.host, ":990") {
		u.Host = r.host[:strings.LastIndexByte(r.host, ':')]
	}
	p := "/" + r.path
	if r.trailing {
		p += "/"
	}
	u.Path = p
	return u.String()
}

// with returns r pointing at another path on the same server.
func (r *remote) with(p string) *remote {
	c := *r
	c.path, c.trailing = p, false
	return &c
}

// credentials fills in the user and password: the URL's, then ~/.netrc,
// then FERRY_PASSWORD, then a prompt on the terminal (never echoed).
func (r *remote) credentials() error {
	host, _, _ := net.SplitHostPort(r.host)
	if r.user == "" || !r.hasPass {
		if m, ok := netrcLookup(host, r.user); ok {
			if r.user == "" {
				r.user = m.login
			}
			if !r.hasPass && m.login == r.user {
				r.pass, r.hasPass = m.password, m.password != ""
			}
		}
	}
	if r.user == "" {
		r.user = "anonymous"
		if !r.hasPass {
			r.pass, r.hasPass = "ferry@", true
		}
	}
	if !r.hasPass {
		if p, ok := os.LookupEnv("FERRY_PASSWORD"); ok {
			r.pass, r.hasPass = p, true
		}
	}
	if !r.hasPass {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil || !term.IsTerminal(int(tty.Fd())) {
			return usageError{fmt.Errorf("no password for %s@%s: give it in the URL, in ~/.netrc or in FERRY_PASSWORD", r.user, host)}
		}
		defer tty.Close()
		p, err := promptPassword(tty, fmt.Sprintf("Password for %s@%s: ", r.user, host))
		if err != nil {
			return err
		}
		r.pass, r.hasPass = p, true
	}
	return nil
}

// promptPassword asks for a password on the terminal tty without echo.
// Echo goes off before the prompt shows, so a password typed the moment
// it appears is never echoed (ReadPassword alone turns it off only after).
func promptPassword(tty *os.File, prompt string) (string, error) {
	fd := int(tty.Fd())
	if old, err := term.MakeRaw(fd); err == nil {
		defer term.Restore(fd, old)
	}
	fmt.Fprint(tty, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprint(tty, "\r\n") // the terminal may still be raw: no newline translation
	return string(b), err
}

// dial logs in to the server of r.
func (r *remote) dial(ctx context.Context, fl *clientFlags, conns int) (*client.Client, error) {
	if err := r.credentials(); err != nil {
		return nil, err
	}
	cfg := &client.Config{
		User:     r.user,
		Password: r.pass,
		Active:   fl.active,
		MaxConns: conns,
		Timeout:  fl.timeout,
	}
	if fl.verbose {
		cfg.Transcript = os.Stderr
	}
	// ftpes://: explicit TLS (AUTH TLS); ftps://: implicit TLS.
	if r.scheme != "ftp" {
		tc, err := tlsConfig(fl)
		if err != nil {
			return nil, usageError{err}
		}
		cfg.TLS = tc
		cfg.ImplicitTLS = r.scheme == "ftps"
	}
	c, err := client.Dial(ctx, r.host, cfg)
	if err != nil {
		return nil, explain("connect to", r.String(), err)
	}
	return c, nil
}

// tlsConfig builds the client's TLS settings from the flags: a pinned
// fingerprint, a CA file, or (with --insecure) no verification.
func tlsConfig(fl *clientFlags) (*tls.Config, error) {
	tc := &tls.Config{InsecureSkipVerify: fl.insecure}
	if fl.fingerprint != "" {
		var err error
		if tc, err = client.PinnedTLS(fl.fingerprint); err != nil {
			return nil, err
		}
	}
	if fl.certFile != "" || fl.keyFile != "" {
		pair, err := tls.LoadX509KeyPair(fl.certFile, fl.keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %v", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	if fl.fingerprint != "" {
		return tc, nil
	}
	if fl.caFile != "" {
		pem, err := os.ReadFile(fl.caFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", fl.caFile)
		}
	}
	return tc, nil
}

// netrcMachine is one entry of ~/.netrc.
type netrcMachine struct{ machine, login, password string }

// netrcLookup finds the entry for host (and user, when given) in the file
// named by $NETRC or ~/.netrc, falling back to its "default" entry.
func netrcLookup(host, user string) (netrcMachine, bool) {
	name := os.Getenv("NETRC")
	if name == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return netrcMachine{}, false
		}
		name = filepath.Join(home, ".netrc")
	}
	f, err := os.Open(name)
	if err != nil {
		return netrcMachine{}, false
	}
	defer f.Close()
	var def *netrcMachine
	for _, m := range parseNetrc(io.LimitReader(f, 1<<20)) {
		if m.machine == "" && def == nil {
			d := m
			def = &d
		}
		if strings.EqualFold(m.machine, host) && (user == "" || m.login == user) {
			return m, true
		}
	}
	if def != nil && (user == "" || def.login == user) {
		return *def, true
	}
	return netrcMachine{}, false
}

// parseNetrc reads the entries of a .netrc file (the format of ftp(1)):
// tokens separated by white space; "machine NAME" or "default" starts an
// entry; "login", "password" and "account" take a value; "macdef" skips to
// the next empty line.
func parseNetrc(r io.Reader) []netrcMachine {
	var out []netrcMachine
	var cur *netrcMachine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	var tokens []string
	inMacro := false
	for sc.Scan() {
		line := sc.Text()
		if inMacro {
			if strings.TrimSpace(line) == "" {
				inMacro = false
			}
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		f := strings.Fields(line)
		for i := 0; i < len(f); i++ {
			if f[i] == "macdef" {
				inMacro = true
				tokens = append(tokens, f[:i]...)
				break
			}
			if i == len(f)-1 {
				tokens = append(tokens, f...)
			}
		}
	}
	flush := func() {
		if cur != nil {
			out = append(out, *cur)
		}
	}
	for i := 0; i < len(tokens); i++ {
		next := func() string {
			if i+1 < len(tokens) {
				i++
				return tokens[i]
			}
			return ""
		}
		switch tokens[i] {
		case "machine":
			flush()
			cur = &netrcMachine{machine: next()}
		case "default":
			flush()
			cur = &netrcMachine{}
		case "login":
			if v := next(); cur != nil {
				cur.login = v
			}
		case "password":
			if v := next(); cur != nil {
				cur.password = v
			}
		case "account":
			next()
		}
	}
	flush()
	return out
}

// usageError is a mistake in how ferry was called (exit code 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }
