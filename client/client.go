// Package client is an FTP client: a pool of control connections to one
// server, safe for concurrent use, with passive and active data connections
// over IPv4 and IPv6, streaming transfers with resume, listings in MLSD or
// the common LIST formats, and server-to-server (FXP) copies.
//
// Every blocking call takes a context; cancelling it aborts the transfer
// (ABOR) and closes the data connection. The wire format comes from package
// ftp, which the server shares.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/tlscert"
)

// Config configures a Client. The zero value logs in anonymously, uses
// passive mode and up to four control connections.
type Config struct {
	// User and Password log in. An empty User logs in as "anonymous" with
	// the password "anonymous@" unless Password is set.
	User     string
	Password string

	// Host is sent in a HOST command (RFC 7151) before USER, for servers
	// that serve several virtual hosts on one address.
	Host string

	// Active makes the server connect to the client for data (EPRT, or
	// PORT when EPRT is refused) instead of the client connecting to the
	// server (EPSV, or PASV when EPSV is refused).
	Active bool
	// ActiveAddr is the address the client listens on and advertises in
	// active mode; default: the local address of the control connection.
	ActiveAddr netip.Addr
	// ActivePorts bounds the ports the client listens on in active mode;
	// zero: any port the system gives.
	ActivePorts PortRange

	// TrustPassiveAddress makes the client connect to the address a server
	// gives in a 227 reply. By default that address is ignored and the
	// port is used with the control connection's peer address, so a hostile
	// server cannot aim the client at another host (curl CVE-2020-8284,
	// Python CVE-2021-4189).
	TrustPassiveAddress bool
	// DisableEPSV uses PASV from the start.
	DisableEPSV bool

	// MaxConns is the number of control connections the pool opens at most
	// (default 4). Each running transfer or listing holds one.
	MaxConns int

	// Timeout bounds the connection set-up and each wait for a reply or for
	// data (default 30s). Contexts bound whole operations.
	Timeout time.Duration

	// Retries is how many times a transfer is tried again (default 3;
	// negative: never): a download resumed (REST STREAM) after its
	// connection drops, and an upload or download the server refuses for
	// now before any data moves (425, 450 busy, 451 storage unavailable),
	// asked again after a wait.
	Retries int

	// RetryWait is the wait before a refused transfer is asked again
	// (default 1s), doubled after each refusal up to 30s.
	RetryWait time.Duration

	// Transcript, when set, receives every command and reply, with the
	// password replaced by "****".
	Transcript io.Writer

	// DialContext, when set, opens control and passive data connections.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// TLS, when set, secures the session (RFC 4217): explicit TLS (AUTH TLS
	// before login) unless ImplicitTLS, then PBSZ 0 and PROT P so that data
	// connections are encrypted too. Every connection of the client shares
	// one session cache and the server's name, so data connections resume
	// the control connection's TLS session, as servers that require it
	// (vsftpd require_ssl_reuse, ProFTPD, Ferry) expect. ServerName
	// defaults to the host of the address.
	TLS *tls.Config
	// ImplicitTLS starts TLS as soon as the connection is open (ftps://,
	// port 990 by convention) instead of with AUTH TLS.
	ImplicitTLS bool
	// ClearControl sends CCC after login (RFC 4217 §6): commands go on in
	// the clear, so a NAT device can rewrite PORT, while data connections
	// stay protected. The login itself is always protected.
	ClearControl bool
}

// PortRange is a range of ports, both ends included.
type PortRange struct{ Min, Max uint16 }

// Client is a pool of control connections to one server. Methods may be
// called from several goroutines at once. Relative paths are taken from the
// client's working directory (see ChangeDir), not each connection's.
type Client struct {
	addr string
	cfg  Config

	slots chan struct{} // one per connection in use

	mu     sync.Mutex
	idle   []*conn
	cwd    string
	feat   map[string]string
	noEPSV bool
	noEPRT bool
	closed bool
	nextID int
	tls    *tls.Config // the prepared TLS configuration, when TLS is on

	transcriptMu sync.Mutex
}

// Dial connects to addr ("host:port"; the port defaults to 21), logs in and
// reads the server's features.
func Dial(ctx context.Context, addr string, cfg *Config) (*Client, error) {
	c := &Client{addr: withPort(addr)}
	if cfg != nil {
		c.cfg = *cfg
	}
	if c.cfg.MaxConns <= 0 {
		c.cfg.MaxConns = 4
	}
	if c.cfg.Timeout <= 0 {
		c.cfg.Timeout = 30 * time.Second
	}
	if c.cfg.Retries == 0 {
		c.cfg.Retries = 3
	}
	if c.cfg.RetryWait <= 0 {
		c.cfg.RetryWait = time.Second
	}
	if c.cfg.User == "" {
		c.cfg.User = "anonymous"
		if c.cfg.Password == "" {
			c.cfg.Password = "anonymous@"
		}
	}
	c.noEPSV = c.cfg.DisableEPSV
	if err := checkArg(c.cfg.User); err != nil {
		return nil, err
	}
	if err := checkArg(c.cfg.Password); err != nil {
		return nil, err
	}
	if err := checkArg(c.cfg.Host); err != nil {
		return nil, err
	}
	if c.cfg.TLS != nil {
		c.tls = c.cfg.TLS.Clone()
		if c.tls.ServerName == "" {
			c.tls.ServerName, _, _ = net.SplitHostPort(c.addr)
		}
		if c.tls.ClientSessionCache == nil {
			c.tls.ClientSessionCache = tls.NewLRUClientSessionCache(64)
		}
		if c.tls.MinVersion < tls.VersionTLS12 {
			c.tls.MinVersion = tls.VersionTLS12
		}
		if len(c.tls.NextProtos) == 0 {
			c.tls.NextProtos = []string{"ftp"}
		}
	}
	c.slots = make(chan struct{}, c.cfg.MaxConns)
	cn, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	c.put(cn)
	return c, nil
}

func withPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	if strings.Count(addr, ":") > 1 && !strings.HasPrefix(addr, "[") {
		return net.JoinHostPort(addr, "21")
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), "21")
}

// Addr returns the server's address.
func (c *Client) Addr() string { return c.addr }

// Features returns the server's FEAT reply (RFC 2389): upper-case feature
// names mapped to their parameters.
func (c *Client) Features() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.feat
}

// HasFeature reports whether the server announced name in FEAT.
func (c *Client) HasFeature(name string) bool {
	_, ok := c.Features()[strings.ToUpper(name)]
	return ok
}

// canResume reports REST STREAM (RFC 3659 §5).
func (c *Client) canResume() bool {
	return strings.EqualFold(c.Features()["REST"], "STREAM")
}

// Close closes every idle connection with QUIT; connections in use close
// when they are released.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.closed = true
	c.mu.Unlock()
	for _, cn := range idle {
		cn.quit()
	}
	return nil
}

// Dir returns the client's working directory.
func (c *Client) Dir() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cwd
}

// abs resolves p against the working directory.
func (c *Client) abs(p string) string {
	if p == "" {
		return c.Dir()
	}
	if strings.HasPrefix(p, "/") {
		return p
	}
	return path.Join(c.Dir(), p)
}

// get takes a connection from the pool, or opens one when fewer than
// MaxConns are open; it waits when all are in use.
func (c *Client) get(ctx context.Context) (*conn, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			<-c.slots
			return nil, ErrClosed
		}
		var cn *conn
		if n := len(c.idle); n > 0 {
			cn = c.idle[n-1]
			c.idle = c.idle[:n-1]
		}
		c.mu.Unlock()
		if cn == nil {
			break
		}
		// A connection idle for a while may have been closed by the server.
		if time.Since(cn.lastUse) < 15*time.Second {
			return cn, nil
		}
		if r, err := cn.cmd(ctx, "NOOP", ""); err == nil && r.Class() == 2 {
			return cn, nil
		}
		cn.close()
	}
	cn, err := c.dial(ctx)
	if err != nil {
		<-c.slots
		return nil, err
	}
	return cn, nil
}

// put returns a connection to the pool, or closes it when it is broken.
func (c *Client) put(cn *conn) {
	cn.lastUse = time.Now()
	c.mu.Lock()
	if cn.broken || c.closed {
		c.mu.Unlock()
		if cn.broken {
			cn.close()
		} else {
			cn.quit()
		}
	} else {
		c.idle = append(c.idle, cn)
		c.mu.Unlock()
	}
	<-c.slots
}

// do runs f on a pooled connection.
func (c *Client) do(ctx context.Context, f func(*conn) error) error {
	cn, err := c.get(ctx)
	if err != nil {
		return err
	}
	defer c.put(cn)
	return f(cn)
}

// simple sends one command and expects a reply of class 2 (or of the codes
// given), returning the reply.
func (c *Client) simple(ctx context.Context, verb, arg string, codes ...int) (ftp.Reply, error) {
	var r ftp.Reply
	err := c.do(ctx, func(cn *conn) error {
		var err error
		r, err = cn.expect(ctx, verb, arg, codes...)
		return err
	})
	return r, err
}

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("ftp client closed")

// ErrBadArgument is returned, before anything is sent, for a path or
// argument that holds CR, LF or NUL, which would end the command line early
// and let the rest be read as another command.
var ErrBadArgument = errors.New("argument holds a line break")

func checkArg(s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return fmt.Errorf("%w: %q", ErrBadArgument, s)
	}
	return nil
}

// PinnedTLS returns a TLS configuration that accepts exactly the server
// certificate whose SHA-256 fingerprint is fp (hex, with or without
// colons, as `ferry serve` prints it), whoever signed it: trust on first
// use for self-signed servers.
func PinnedTLS(fp string) (*tls.Config, error) {
	want, err := hex.DecodeString(strings.ReplaceAll(strings.ReplaceAll(fp, ":", ""), " ", ""))
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("fingerprint %q: want 64 hex digits (SHA-256)", fp)
	}
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no server certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if !bytes.Equal(sum[:], want) {
				return fmt.Errorf("the server's certificate has SHA-256 fingerprint %s, not the pinned %s", tlscert.Fingerprint(cs.PeerCertificates[0].Raw), fp)
			}
			return nil
		},
	}, nil
}
