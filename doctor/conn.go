package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ferryftp/ferry/ftp"
)

// conn is one control connection of the doctor: commands one at a time,
// each bounded by the options' timeout, and data connections opened by
// hand so that every step can be observed.
type conn struct {
	o      *Options
	nc     net.Conn // raw, or TLS over it
	raw    net.Conn
	rr     *ftp.ReplyReader
	local  netip.AddrPort
	remote netip.AddrPort
	tls    *tls.ConnectionState
	protP  bool
}

// dial connects, with TLS at once for ftps://, and reads the greeting.
// Only the main session shares the TLS session cache (main): its data
// connections resume its session, which another session's tickets must
// not replace.
func dial(ctx context.Context, o *Options, main bool) (*conn, ftp.Reply, error) {
	d := net.Dialer{Timeout: o.Timeout}
	nc, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, ftp.Reply{}, err
	}
	c := &conn{o: o, nc: nc, raw: nc, local: addrPort(nc.LocalAddr()), remote: addrPort(nc.RemoteAddr())}
	c.rr = ftp.NewReplyReader(nc)
	if o.Scheme == "ftps" {
		if err := c.handshake(ctx, o.tlsConfig(!main)); err != nil {
			nc.Close()
			return nil, ftp.Reply{}, err
		}
	}
	r, err := c.read()
	if err != nil {
		nc.Close()
		return nil, ftp.Reply{}, err
	}
	return c, r, nil
}

func addrPort(a net.Addr) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (c *conn) close() { c.nc.Close() }

// handshake secures the control connection with cfg.
func (c *conn) handshake(ctx context.Context, cfg *tls.Config) error {
	tc := tls.Client(c.raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return err
	}
	st := tc.ConnectionState()
	c.nc, c.tls = tc, &st
	c.rr = ftp.NewReplyReader(tc)
	return nil
}

// read reads one reply within the timeout.
func (c *conn) read() (ftp.Reply, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.o.Timeout))
	r, err := c.rr.ReadReply()
	if err == nil && c.o.Transcript != nil {
		fmt.Fprintf(c.o.Transcript, "<- %s\n", strings.ReplaceAll(r.String(), "\n", "\n<- "))
	}
	return r, err
}

// cmd sends line and reads its reply (a 1xx reply is returned as it is).
func (c *conn) cmd(line string) (ftp.Reply, error) {
	if c.o.Transcript != nil {
		shown := line
		if strings.HasPrefix(strings.ToUpper(line), "PASS ") {
			shown = "PASS ****"
		}
		fmt.Fprintf(c.o.Transcript, "-> %s\n", shown)
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.o.Timeout))
	if _, err := io.WriteString(c.nc, line+"\r\n"); err != nil {
		return ftp.Reply{}, err
	}
	return c.read()
}

// login sends USER and PASS.
func (c *conn) login(user, pass string) (ftp.Reply, error) {
	r, err := c.cmd("USER " + user)
	if err != nil || r.Code != 331 {
		return r, err
	}
	return c.cmd("PASS " + pass)
}

// pasv asks for a passive address: the one the 227 reply names.
func (c *conn) pasv() (netip.AddrPort, ftp.Reply, error) {
	r, err := c.cmd("PASV")
	if err != nil || r.Code != 227 {
		return netip.AddrPort{}, r, err
	}
	ap, err := ftp.ParsePASV(r.Text)
	return ap, r, err
}

// epsv asks for an extended passive port.
func (c *conn) epsv() (uint16, ftp.Reply, error) {
	r, err := c.cmd("EPSV")
	if err != nil || r.Code != 229 {
		return 0, r, err
	}
	p, err := ftp.ParseEPSV(r.Text)
	return p, r, err
}

// dialData opens a data connection to ap, from the address from when it
// is valid.
func (c *conn) dialData(ctx context.Context, ap netip.AddrPort, from netip.Addr) (net.Conn, error) {
	d := net.Dialer{Timeout: c.o.Timeout}
	if from.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
	}
	return d.DialContext(ctx, "tcp", ap.String())
}

// errNoData is a transfer whose data connection never carried it.
var errNoData = errors.New("no data connection")

// transfer runs verb over the data connection dc (secured when PROT P is
// on, resuming the control connection's TLS session unless fresh): the
// 150, the data (at most max bytes read), then the final reply.
func (c *conn) transfer(verb string, dc net.Conn, send []byte, max int64, fresh bool) ([]byte, ftp.Reply, error) {
	if _, err := c.cmd0(verb); err != nil {
		dc.Close()
		return nil, ftp.Reply{}, err
	}
	return c.finish(dc, send, max, fresh)
}

// finish completes a transfer whose command was sent: its 1xx reply, the
// data over dc, the final reply.
func (c *conn) finish(dc net.Conn, send []byte, max int64, fresh bool) ([]byte, ftp.Reply, error) {
	defer dc.Close()
	r, err := c.read()
	if err != nil || r.Class() != 1 {
		return nil, r, err
	}
	if c.protP {
		tc := tls.Client(dc, c.o.tlsConfig(fresh))
		tc.SetDeadline(time.Now().Add(c.o.Timeout))
		if err := tc.Handshake(); err != nil {
			dc.Close()
			final, _ := c.read()
			return nil, final, fmt.Errorf("TLS on the data connection: %w", err)
		}
		dc = tc
	}
	var data []byte
	dc.SetDeadline(time.Now().Add(c.o.Timeout * 4))
	if send != nil {
		_, err = dc.Write(send)
	} else {
		data, err = io.ReadAll(io.LimitReader(dc, max))
	}
	dc.Close()
	final, rerr := c.read()
	if rerr != nil {
		return data, final, rerr
	}
	return data, final, err
}

// cmd0 sends line without reading a reply.
func (c *conn) cmd0(line string) (ftp.Reply, error) {
	if c.o.Transcript != nil {
		fmt.Fprintf(c.o.Transcript, "-> %s\n", line)
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.o.Timeout))
	_, err := io.WriteString(c.nc, line+"\r\n")
	return ftp.Reply{}, err
}
