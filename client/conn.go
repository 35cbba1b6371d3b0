package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/tlscert"
)

// conn is one control connection.
type conn struct {
	c       *Client
	id      int
	nc      net.Conn
	rr      *ftp.ReplyReader
	peer    netip.Addr // the server, as the control connection reaches it
	local   netip.Addr
	broken  bool // out of step with the server: close, do not reuse
	binary  bool // TYPE I sent
	lastUse time.Time
}

func (c *Client) dialNet(ctx context.Context, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if c.cfg.DialContext != nil {
		return c.cfg.DialContext(ctx, "tcp", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// dial opens a control connection, reads the greeting, logs in and, on
// the first connection, reads FEAT and PWD.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	nc, err := c.dialNet(ctx, c.addr)
	if err != nil {
		return nil, &NetError{Op: "connect", Addr: c.addr, Err: err}
	}
	if c.tls != nil && c.cfg.ImplicitTLS {
		tc, err := c.handshake(ctx, nc)
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	c.mu.Lock()
	c.nextID++
	cn := &conn{c: c, id: c.nextID, nc: nc, rr: ftp.NewReplyReader(nc), lastUse: time.Now()}
	c.mu.Unlock()
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		cn.peer = ap.Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(nc.LocalAddr().String()); err == nil {
		cn.local = ap.Addr().Unmap()
	}
	if err := cn.login(ctx); err != nil {
		cn.close()
		return nil, err
	}
	return cn, nil
}

// login takes a new control connection from the greeting to a session
// ready for commands: HOST, AUTH TLS, USER/PASS, FEAT and PWD (first
// connection only), PBSZ/PROT (and CCC), OPTS UTF8.
func (cn *conn) login(ctx context.Context) error {
	if err := cn.greeting(ctx); err != nil {
		return err
	}
	if err := cn.secure(ctx); err != nil {
		return err
	}
	if err := cn.authenticate(ctx); err != nil {
		return err
	}
	if err := cn.learn(ctx); err != nil {
		return err
	}
	if err := cn.protect(ctx); err != nil {
		return err
	}
	if cn.c.HasFeature("UTF8") {
		if _, err := cn.cmd(ctx, "OPTS", "UTF8 ON"); err != nil {
			return err
		}
	}
	return nil
}

// greeting reads the 220 (after any 120s) and sends HOST when configured.
func (cn *conn) greeting(ctx context.Context) error {
	cfg := &cn.c.cfg
	r, err := cn.read(ctx)
	for err == nil && r.Code == ftp.CodeReadyInMinutes {
		r, err = cn.read(ctx)
	}
	if err != nil {
		return err
	}
	if r.Code != ftp.CodeServiceReady {
		return cn.replyError("connect", "", r)
	}
	if cfg.Host != "" {
		// Servers without HOST answer 500/502; that is no reason to stop.
		if r, err := cn.cmd(ctx, "HOST", cfg.Host); err != nil {
			return err
		} else if r.Class() == 4 || r.Code == ftp.CodeParamNotImpl || r.Code == ftp.CodeNotLoggedIn {
			return cn.replyError("HOST", cfg.Host, r)
		}
	}
	return nil
}

// secure runs AUTH TLS and the handshake (explicit TLS).
func (cn *conn) secure(ctx context.Context) error {
	if cn.c.tls == nil || cn.c.cfg.ImplicitTLS {
		return nil
	}
	if _, err := cn.expect(ctx, "AUTH", "TLS", ftp.CodeAuthOK); err != nil {
		return err
	}
	if cn.rr.Buffered() > 0 {
		// Anything after 234 in the clear could be an attacker's
		// injection into the session about to be secured.
		cn.broken = true
		return &NetError{Op: "AUTH TLS", Addr: cn.c.addr, Err: errors.New("the server sent data after 234, before the TLS handshake")}
	}
	tc, err := cn.c.handshake(ctx, cn.nc)
	if err != nil {
		return err
	}
	cn.nc, cn.rr = tc, ftp.NewReplyReader(tc)
	return nil
}

// authenticate sends USER and, when asked, PASS.
func (cn *conn) authenticate(ctx context.Context) error {
	cfg := &cn.c.cfg
	r, err := cn.cmd(ctx, "USER", cfg.User)
	if err != nil {
		return err
	}
	if r.Code == ftp.CodeNeedPassword {
		if r, err = cn.cmd(ctx, "PASS", cfg.Password); err != nil {
			return err
		}
	}
	if r.Code != ftp.CodeLoggedIn && r.Code != ftp.CodeSuperfluous && r.Code != ftp.CodeLoggedInBySecurity {
		e := cn.replyError("login", cfg.User, r)
		e.Login = true
		return e
	}
	return nil
}

// learn reads the server's features and login directory on the client's
// first connection.
func (cn *conn) learn(ctx context.Context) error {
	cn.c.mu.Lock()
	first := cn.c.feat == nil
	cn.c.mu.Unlock()
	if !first {
		return nil
	}
	feat := map[string]string{}
	if r, err := cn.cmd(ctx, "FEAT", ""); err != nil {
		return err
	} else if r.Code == ftp.CodeSystemStatus {
		feat = ftp.ParseFeat(r.Text)
	}
	cwd := "/"
	if r, err := cn.cmd(ctx, "PWD", ""); err != nil {
		return err
	} else if p, ok := ftp.ParsePathReply(r.Text); r.Code == ftp.CodePathCreated && ok {
		cwd = p
	}
	cn.c.mu.Lock()
	if cn.c.feat == nil {
		cn.c.feat, cn.c.cwd = feat, cwd
	}
	cn.c.mu.Unlock()
	return nil
}

// protect secures data connections (PBSZ 0, PROT P) and, when asked,
// clears the control connection (CCC).
func (cn *conn) protect(ctx context.Context) error {
	if cn.c.tls == nil {
		return nil
	}
	if _, err := cn.expect(ctx, "PBSZ", "0"); err != nil {
		return err
	}
	if _, err := cn.expect(ctx, "PROT", "P"); err != nil {
		return err
	}
	if cn.c.cfg.ClearControl {
		return cn.clearControl(ctx)
	}
	return nil
}

// clearControl runs CCC: after 200, both sides close TLS (close_notify)
// and the connection goes on in the clear.
func (cn *conn) clearControl(ctx context.Context) error {
	if _, err := cn.expect(ctx, "CCC", ""); err != nil {
		return err
	}
	tc, ok := cn.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	if err := tc.CloseWrite(); err != nil {
		cn.broken = true
		return cn.netErr("CCC", err)
	}
	// The server's close_notify ends the TLS stream; nothing follows it
	// until the next command.
	tc.SetReadDeadline(time.Now().Add(cn.c.cfg.Timeout))
	if _, err := io.Copy(io.Discard, tc); err != nil {
		cn.broken = true
		return cn.netErr("CCC", err)
	}
	raw := tc.NetConn()
	cn.nc, cn.rr = raw, ftp.NewReplyReader(raw)
	return nil
}

// cmd sends "verb arg" and reads the reply. The argument is refused before
// anything is sent when it holds CR, LF or NUL.
func (cn *conn) cmd(ctx context.Context, verb, arg string) (ftp.Reply, error) {
	if err := cn.send(ctx, verb, arg); err != nil {
		return ftp.Reply{}, err
	}
	return cn.read(ctx)
}

// expect runs cmd and turns a reply of another class than 2 (or a code not
// in codes, when given) into an *Error.
func (cn *conn) expect(ctx context.Context, verb, arg string, codes ...int) (ftp.Reply, error) {
	r, err := cn.cmd(ctx, verb, arg)
	if err != nil {
		return r, err
	}
	if len(codes) == 0 && r.Class() == 2 {
		return r, nil
	}
	for _, c := range codes {
		if r.Code == c {
			return r, nil
		}
	}
	return r, cn.replyError(verb, arg, r)
}

func (cn *conn) send(ctx context.Context, verb, arg string) error {
	if err := checkArg(arg); err != nil {
		return err
	}
	if cn.broken {
		return &NetError{Op: verb, Addr: cn.c.addr, Err: errors.New("connection is out of step")}
	}
	line := verb
	if arg != "" {
		line += " " + arg
	}
	shown := line
	if verb == "PASS" {
		shown = "PASS ****"
	}
	cn.c.transcript(cn.id, "> "+shown)
	stop := cn.watch(ctx)
	cn.nc.SetWriteDeadline(time.Now().Add(cn.c.cfg.Timeout))
	_, err := cn.nc.Write([]byte(line + "\r\n"))
	if err = cn.unwatch(ctx, stop, err); err != nil {
		cn.broken = true
		return cn.netErr(verb, err)
	}
	return nil
}

// read reads one reply, within the timeout and the context.
func (cn *conn) read(ctx context.Context) (ftp.Reply, error) {
	return cn.readWithin(ctx, cn.c.cfg.Timeout)
}

func (cn *conn) readWithin(ctx context.Context, d time.Duration) (ftp.Reply, error) {
	stop := cn.watch(ctx)
	cn.nc.SetReadDeadline(time.Now().Add(d))
	r, err := cn.rr.ReadReply()
	if err = cn.unwatch(ctx, stop, err); err != nil {
		cn.broken = true
		return r, cn.netErr("read reply", err)
	}
	for _, l := range r.Lines() {
		cn.c.transcript(cn.id, fmt.Sprintf("< %d %s", r.Code, l))
	}
	if r.Code == ftp.CodeNotAvailable {
		// 421: the server is closing the connection.
		cn.broken = true
	}
	return r, nil
}

// watch makes a cancelled context interrupt the connection's I/O.
func (cn *conn) watch(ctx context.Context) func() bool {
	if ctx.Done() == nil {
		return func() bool { return true }
	}
	return context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })
}

func (cn *conn) unwatch(ctx context.Context, stop func() bool, err error) error {
	if !stop() {
		cn.broken = true
		return ctx.Err()
	}
	return err
}

func (cn *conn) netErr(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrBadArgument) {
		return err
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("no reply within %v", cn.c.cfg.Timeout)
	}
	return &NetError{Op: op, Addr: cn.c.addr, Err: err}
}

func (cn *conn) replyError(verb, arg string, r ftp.Reply) *Error {
	if verb == "PASS" {
		arg = ""
	}
	return &Error{Server: cn.c.addr, Cmd: verb, Arg: arg, Code: r.Code, Msg: r.Text}
}

func (cn *conn) close() {
	cn.broken = true
	cn.nc.Close()
}

// quit says goodbye politely, without waiting long.
func (cn *conn) quit() {
	cn.nc.SetDeadline(time.Now().Add(time.Second))
	if cn.send(context.Background(), "QUIT", "") == nil {
		cn.rr.ReadReply()
	}
	cn.nc.Close()
}

func (c *Client) transcript(id int, line string) {
	if c.cfg.Transcript == nil {
		return
	}
	c.transcriptMu.Lock()
	fmt.Fprintf(c.cfg.Transcript, "[%s #%d] %s\n", c.addr, id, line)
	c.transcriptMu.Unlock()
}

// typeBinary sends TYPE I once per connection.
func (cn *conn) typeBinary(ctx context.Context) error {
	if cn.binary {
		return nil
	}
	if _, err := cn.expect(ctx, "TYPE", "I"); err != nil {
		return err
	}
	cn.binary = true
	return nil
}

// dataSetup is a data connection being prepared: either one already
// connected (passive) or a listener the server will connect to (active).
type dataSetup struct {
	conn net.Conn
	ln   net.Listener
}

func (d *dataSetup) close() {
	if d.conn != nil {
		d.conn.Close()
	}
	if d.ln != nil {
		d.ln.Close()
	}
}

// prepareData opens the data connection of the next transfer in the
// configured mode.
func (cn *conn) prepareData(ctx context.Context) (*dataSetup, error) {
	if cn.c.cfg.Active {
		ln, err := cn.activeListen(ctx)
		if err != nil {
			return nil, err
		}
		return &dataSetup{ln: ln}, nil
	}
	ap, err := cn.passiveAddr(ctx)
	if err != nil {
		return nil, err
	}
	dc, err := cn.c.dialNet(ctx, ap.String())
	if err != nil {
		return nil, &NetError{Op: "data connection to " + ap.String(), Addr: cn.c.addr, Err: err}
	}
	return &dataSetup{conn: dc}, nil
}

// passiveAddr asks for a passive port: EPSV, or PASV when the server does
// not know EPSV. The address is the control connection's peer unless the
// caller trusts the 227 reply.
func (cn *conn) passiveAddr(ctx context.Context) (netip.AddrPort, error) {
	c := cn.c
	c.mu.Lock()
	noEPSV := c.noEPSV
	c.mu.Unlock()
	if !noEPSV {
		r, err := cn.cmd(ctx, "EPSV", "")
		if err != nil {
			return netip.AddrPort{}, err
		}
		if r.Code == ftp.CodeExtendedPassive {
			port, err := ftp.ParseEPSV(r.Text)
			if err != nil {
				return netip.AddrPort{}, cn.replyError("EPSV", "", r)
			}
			return netip.AddrPortFrom(cn.peer, port), nil
		}
		if r.Class() != 5 || !cn.peer.Is4() {
			return netip.AddrPort{}, cn.replyError("EPSV", "", r)
		}
		c.mu.Lock()
		c.noEPSV = true
		c.mu.Unlock()
	}
	r, err := cn.expect(ctx, "PASV", "", ftp.CodePassive)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap, err := ftp.ParsePASV(r.Text)
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, cn.replyError("PASV", "", r)
	}
	if c.cfg.TrustPassiveAddress && !ap.Addr().IsUnspecified() {
		return ap, nil
	}
	return netip.AddrPortFrom(cn.peer, ap.Port()), nil
}

// activeListen listens for the server's data connection and tells the
// server where (EPRT, or PORT when the server does not know EPRT).
func (cn *conn) activeListen(ctx context.Context) (net.Listener, error) {
	c := cn.c
	ip := c.cfg.ActiveAddr
	if !ip.IsValid() {
		ip = cn.local
	}
	ln, err := listenRange(ip, c.cfg.ActivePorts)
	if err != nil {
		return nil, &NetError{Op: "listen for active data connection", Addr: c.addr, Err: err}
	}
	ap := netip.AddrPortFrom(ip, uint16(ln.Addr().(*net.TCPAddr).Port))
	c.mu.Lock()
	noEPRT := c.noEPRT
	c.mu.Unlock()
	if !noEPRT || !ip.Is4() {
		r, err := cn.cmd(ctx, "EPRT", ftp.FormatEPRT(ap))
		if err != nil || r.Class() == 2 {
			if err != nil {
				ln.Close()
			}
			return ln, err
		}
		if r.Class() != 5 || !ip.Is4() || !slices.Contains([]int{ftp.CodeSyntaxError, ftp.CodeNotImplemented, ftp.CodeParamNotImpl, ftp.CodeBadProtocol}, r.Code) {
			ln.Close()
			return nil, cn.replyError("EPRT", ftp.FormatEPRT(ap), r)
		}
		c.mu.Lock()
		c.noEPRT = true
		c.mu.Unlock()
	}
	arg, _ := ftp.FormatPORT(ap)
	if _, err := cn.expect(ctx, "PORT", arg); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func listenRange(ip netip.Addr, pr PortRange) (net.Listener, error) {
	if pr.Min == 0 && pr.Max == 0 {
		return net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	}
	if pr.Max < pr.Min {
		return nil, fmt.Errorf("bad port range %d-%d", pr.Min, pr.Max)
	}
	n := int(pr.Max-pr.Min) + 1
	start := rand.IntN(n)
	var err error
	for i := 0; i < n; i++ {
		port := pr.Min + uint16((start+i)%n)
		var ln net.Listener
		if ln, err = net.Listen("tcp", netip.AddrPortFrom(ip, port).String()); err == nil {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("no free port in %d-%d: %w", pr.Min, pr.Max, err)
}

// startTransfer sends "verb arg" (after REST when offset > 0) on a fresh
// data connection and returns that connection once the server has
// accepted the command with a 1xx reply.
func (cn *conn) startTransfer(ctx context.Context, verb, arg string, offset int64) (net.Conn, error) {
	if err := cn.typeBinary(ctx); err != nil {
		return nil, err
	}
	d, err := cn.prepareData(ctx)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		if _, err := cn.expect(ctx, "REST", strconv.FormatInt(offset, 10), ftp.CodePending); err != nil {
			d.close()
			return nil, err
		}
	}
	r, err := cn.cmd(ctx, verb, arg)
	if err != nil {
		d.close()
		return nil, err
	}
	if r.Class() != 1 {
		d.close()
		if r.Class() == 2 {
			// A server that answers at once without data has nothing to
			// send (some do this for empty listings).
			return nil, errNoData
		}
		return nil, cn.replyError(verb, arg, r)
	}
	dc := d.conn
	if dc == nil {
		if dc, err = cn.accept(ctx, d.ln); err != nil {
			return nil, err
		}
	}
	if cn.c.tls != nil {
		// The FTP client is the TLS client whichever side connected; the
		// handshake, resuming the control session, runs on first use.
		dc = tls.Client(dc, cn.c.tls)
	}
	return dc, nil
}

// handshake secures nc as a TLS client, within the timeout and ctx. A
// certificate that does not verify is reported with its fingerprint.
func (c *Client) handshake(ctx context.Context, nc net.Conn) (*tls.Conn, error) {
	tc := tls.Client(nc, c.tls)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		var ve *tls.CertificateVerificationError
		if errors.As(err, &ve) && len(ve.UnverifiedCertificates) > 0 {
			err = fmt.Errorf("the certificate of %s does not verify (%v); its SHA-256 fingerprint is %s", c.tls.ServerName, ve.Err, tlscert.Fingerprint(ve.UnverifiedCertificates[0].Raw))
		}
		return nil, &NetError{Op: "TLS handshake", Addr: c.addr, Err: err}
	}
	return tc, nil
}

var errNoData = errors.New("no data connection")

// accept waits for the server's active data connection, refusing
// connections from any address but the server's.
func (cn *conn) accept(ctx context.Context, ln net.Listener) (net.Conn, error) {
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	tl := ln.(*net.TCPListener)
	tl.SetDeadline(time.Now().Add(cn.c.cfg.Timeout))
	for {
		dc, err := tl.Accept()
		if err != nil {
			cn.broken = true
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &NetError{Op: "accept active data connection", Addr: cn.c.addr, Err: err}
		}
		ap, _ := netip.ParseAddrPort(dc.RemoteAddr().String())
		if ap.Addr().Unmap() == cn.peer || cn.c.cfg.TrustPassiveAddress {
			return dc, nil
		}
		dc.Close()
	}
}

// finish reads the final reply of a transfer.
func (cn *conn) finish(ctx context.Context, verb, arg string) error {
	r, err := cn.read(ctx)
	if err != nil {
		return err
	}
	if r.Class() != 2 {
		return cn.replyError(verb, arg, r)
	}
	return nil
}

// dataFailed ends a transfer whose data connection failed with err. The
// server has often said why on the control connection (a 522 for a TLS
// data connection it refused, a 426, a 451): that reply, when it comes
// within a moment, is the error, and the connection stays in step.
// Otherwise the transfer is aborted and err reported.
func (cn *conn) dataFailed(verb, arg string, err error) error {
	if !cn.broken {
		cn.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if cn.rr.Ready() == nil {
			if r, rerr := cn.readWithin(context.Background(), 5*time.Second); rerr == nil {
				if r.Class() == 4 || r.Class() == 5 {
					return cn.replyError(verb, arg, r)
				}
				if r.Class() == 2 {
					return err // the server finished; the failure is ours
				}
			}
		}
	}
	cn.abort()
	return err
}

// abort stops a running transfer with ABOR. Servers answer it in several
// ways (426 then 226, 226 alone, 225, 500, and pure-ftpd with one more 226
// after those), so once ABOR's own replies are in, a PWD follows: every
// reply before PWD's 257, which nothing else sends, belongs to the aborted
// transfer, and the connection is back in step. (PWD is not sent together
// with ABOR: pure-ftpd discards what was pipelined behind ABOR.) A server
// that does not get there in time loses the connection.
func (cn *conn) abort() {
	if cn.broken {
		return
	}
	ctx := context.Background()
	if err := cn.send(ctx, "ABOR", ""); err != nil {
		return
	}
	for i := 0; ; i++ {
		r, err := cn.readWithin(ctx, 5*time.Second)
		if err != nil {
			return
		}
		if i >= 8 {
			cn.broken = true
			return
		}
		if r.Class() == 1 || r.Code == ftp.CodeTransferAborted || r.Code == ftp.CodeFileUnavailable || r.Code == ftp.CodeLocalError {
			continue
		}
		break
	}
	if err := cn.send(ctx, "PWD", ""); err != nil {
		return
	}
	for i := 0; i < 8; i++ {
		r, err := cn.readWithin(ctx, 5*time.Second)
		if err != nil {
			return
		}
		if r.Code == ftp.CodePathCreated {
			return
		}
	}
	cn.broken = true
}

// Error is a reply of failure from a server.
type Error struct {
	Server string // host:port
	Cmd    string // the command that failed
	Arg    string // its argument (never a password)
	Code   int
	Msg    string
	Login  bool // the login was refused
}

func (e *Error) Error() string {
	s := e.Cmd
	if e.Arg != "" {
		s += " " + e.Arg
	}
	return fmt.Sprintf("%s: %s: %d %s", e.Server, s, e.Code, strings.ReplaceAll(e.Msg, "\n", " "))
}

// Temporary reports a 4xx reply: trying again later may work.
func (e *Error) Temporary() bool { return ftp.Reply{Code: e.Code}.Class() == 4 }

// Is lets errors.Is match os.ErrNotExist for a 550 reply to a command on a
// path, and os.ErrPermission for a 530 or a 550 that says so.
func (e *Error) Is(target error) bool {
	msg := strings.ToLower(e.Msg)
	switch target {
	case os.ErrNotExist:
		return (e.Code == ftp.CodeNoFile || e.Code == ftp.CodeFileUnavailable) && !strings.Contains(msg, "denied") && !strings.Contains(msg, "permission")
	case os.ErrPermission:
		return e.Code == ftp.CodeNotLoggedIn || e.Code == ftp.CodeNeedAccountStore || (e.Code == ftp.CodeNoFile || e.Code == ftp.CodeBadFileName) && (strings.Contains(msg, "denied") || strings.Contains(msg, "permission"))
	}
	return false
}

// NetError is a failure to reach or keep talking to a server.
type NetError struct {
	Op   string
	Addr string
	Err  error
}

func (e *NetError) Error() string { return fmt.Sprintf("%s: %s: %v", e.Addr, e.Op, e.Err) }
func (e *NetError) Unwrap() error { return e.Err }
