package doctor

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/ferryftp/ferry/ftp"
)

// security checks what a careful administrator closes: anonymous login,
// a login in the clear while TLS is offered, PORT to a third address
// (the FTP bounce), and a passive connection from another address (data
// theft).
func (d *run) security(ctx context.Context) {
	d.anonymous(ctx)
	d.cleartext(ctx)
	d.bounce()
	d.theft(ctx)
}

// session opens another session as the main one was (TLS included),
// for a check of its own.
func (d *run) session(ctx context.Context) (*conn, error) {
	c, greet, err := dial(ctx, d.o, false)
	if err != nil {
		return nil, err
	}
	if greet.Code != 220 {
		c.close()
		return nil, fmt.Errorf("greeting: %s", firstLine(greet))
	}
	if d.o.Scheme == "ftpes" {
		if r, err := c.cmd("AUTH TLS"); err != nil || r.Code != 234 {
			c.close()
			return nil, fmt.Errorf("AUTH TLS: %s", replyOr(r, err))
		}
		// A session cache of its own: its tickets must not replace the
		// main session's, which its data connections resume.
		if err := c.handshake(ctx, d.o.tlsConfig(true)); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

func (d *run) anonymous(ctx context.Context) {
	if d.o.User == "" || d.o.User == "anonymous" || d.o.User == "ftp" {
		d.r.add("sec.anonymous", "Anonymous login", Skipped, "this run logs in anonymously", "")
		return
	}
	c, err := d.session(ctx)
	if err != nil {
		return
	}
	defer c.close()
	r, err := c.login("anonymous", "doctor@ferry")
	if err == nil && r.Code == 230 {
		d.r.add("sec.anonymous", "Anonymous login", Warning, "anonymous logs in: "+firstLine(r),
			"turn anonymous access off unless the server is meant to be public")
		return
	}
	d.r.add("sec.anonymous", "Anonymous login", OK, "refused: "+replyOr(r, err), "")
}

// cleartext sends USER (never PASS) on a connection without TLS.
func (d *run) cleartext(ctx context.Context) {
	if !d.tlsOffered || d.o.Scheme == "ftps" {
		return
	}
	c, greet, err := dial(ctx, &Options{Addr: d.o.Addr, Scheme: "ftp", Timeout: d.o.Timeout, Transcript: d.o.Transcript}, false)
	if err != nil || greet.Code != 220 {
		return
	}
	defer c.close()
	user := d.o.User
	if user == "" {
		user = "anonymous"
	}
	r, err := c.cmd("USER " + user)
	if err == nil && (r.Code == 331 || r.Code == 230) {
		d.r.add("sec.cleartext", "Login in the clear", Warning, "USER without TLS: "+firstLine(r)+" (the password would follow in the clear)",
			"require TLS for logins (Ferry tls = \"required\", vsftpd force_local_logins_ssl=YES, ProFTPD TLSRequired on)")
		return
	}
	d.r.add("sec.cleartext", "Login in the clear", OK, "USER without TLS refused: "+replyOr(r, err), "")
}

// bounce asks for PORT to an address that is not the client's; only the
// reply is read, so the server connects nowhere.
func (d *run) bounce() {
	third := d.thirdAddress()
	if !third.IsValid() {
		return
	}
	arg, err := ftp.FormatPORT(netip.AddrPortFrom(third, bouncePort))
	if err != nil {
		return
	}
	r, err := d.c.cmd("PORT " + arg)
	if err == nil && r.Code == 200 {
		d.r.add("sec.bounce", "PORT to another host (bounce)", Problem, fmt.Sprintf("PORT %s accepted: %s", netip.AddrPortFrom(third, bouncePort), firstLine(r)),
			"refuse PORT and EPRT to any address but the client's (vsftpd port_promiscuous=NO, ProFTPD AllowForeignAddress off)")
		d.c.cmd("PASV") // no transfer follows: the address is dropped
		return
	}
	d.r.add("sec.bounce", "PORT to another host (bounce)", OK, fmt.Sprintf("PORT %s refused: %s", netip.AddrPortFrom(third, bouncePort), replyOr(r, err)), "")
}

// bouncePort is the port of the bounce check's PORT: not a privileged
// one, which servers refuse for that reason alone.
const bouncePort = 40999

// thirdAddress is an IPv4 address that is neither end of the control
// connection: another loopback address on loopback, else the server's.
func (d *run) thirdAddress() netip.Addr {
	local, peer := d.c.local.Addr(), d.c.remote.Addr()
	if !local.Is4() {
		return netip.Addr{}
	}
	if local.IsLoopback() {
		for _, a := range []string{"127.0.0.3", "127.0.0.4"} {
			if x := netip.MustParseAddr(a); x != local && x != peer {
				return x
			}
		}
	}
	if peer != local {
		return peer
	}
	return netip.Addr{}
}

// fromAddress is the second local address the theft check connects
// from.
func (d *run) fromAddress() netip.Addr {
	if d.o.From.IsValid() {
		return d.o.From
	}
	if l := d.c.local.Addr(); l.IsLoopback() && l.Is4() {
		if x := netip.MustParseAddr("127.0.0.2"); x != l {
			return x
		}
		return netip.MustParseAddr("127.0.0.3")
	}
	return netip.Addr{}
}

// theft connects to a passive port from another local address before
// the client: the server must not send the data there.
func (d *run) theft(ctx context.Context) {
	from := d.fromAddress()
	if !from.IsValid() || !d.pasvWorks {
		d.r.add("sec.theft", "Passive data from elsewhere (theft)", Skipped, "no second local address to test from (--from)", "")
		return
	}
	ap, err := d.passivePort()
	if err != nil {
		return
	}
	thief, err := d.c.dialData(ctx, ap, from)
	if err != nil {
		d.r.add("sec.theft", "Passive data from elsewhere (theft)", OK, "a connection from "+from.String()+" is refused: "+short(err), "")
		return
	}
	defer thief.Close()
	verdict, ev := d.watchThief(ctx, thief, ap, from)
	fix := ""
	if verdict == Problem {
		fix = "accept passive data connections only from the client's address (vsftpd pasv_promiscuous=NO, ProFTPD AllowForeignAddress off)"
	}
	d.r.add("sec.theft", "Passive data from elsewhere (theft)", verdict, ev, fix)
}

// watchThief sends NLST with the thief connected and tells whether the
// server used that connection.
func (d *run) watchThief(ctx context.Context, thief net.Conn, ap netip.AddrPort, from netip.Addr) (Verdict, string) {
	if _, err := d.c.cmd0("NLST"); err != nil {
		return Skipped, err.Error()
	}
	d.c.nc.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	if d.c.rr.Ready() == nil {
		// A reply while only the thief is connected.
		_, r, _ := d.c.finish(thief, nil, 1<<20, false)
		if r.Class() == 2 {
			return Problem, fmt.Sprintf("the server used the connection from %s for the listing (%s)", from, firstLine(r))
		}
		return OK, "the connection from " + from.String() + " was refused: " + firstLine(r)
	}
	// No reply: the server waits for the client's own connection.
	dc, err := d.c.dialData(ctx, ap, netip.Addr{})
	if err != nil {
		d.c.read()
		return OK, "the connection from " + from.String() + " was not used"
	}
	_, r, err := d.c.finish(dc, nil, 1<<20, false)
	if err == nil && r.Class() == 2 {
		return OK, "the connection from " + from.String() + " was not used; the client's own carried the listing"
	}
	return OK, "the connection from " + from.String() + " was not used (" + replyOr(r, err) + ")"
}
