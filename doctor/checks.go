package doctor

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ferryftp/ferry/ftp"
)

// run is one diagnosis in progress: the main session and what the
// checks found that later ones (and the flags) depend on.
type run struct {
	o    *Options
	r    *Report
	c    *conn
	feat map[string]string

	tlsOffered  bool   // AUTH TLS in FEAT before login, or TLS in use
	certTrusted bool   // the chain verified against the roots
	certPin     string // the certificate's SHA-256 fingerprint
	pasvWorks   bool   // a listing over PASV to the control address
	pasvAddrBad bool   // the 227 address is not the control address
	epsvBroken  bool   // EPSV answered, but its port did not connect
	activeWorks bool
	reuseNeeded bool // data connections need the control's TLS session
	loggedIn    bool
}

func (d *run) all(ctx context.Context) {
	if !d.connect(ctx) {
		return
	}
	defer d.c.close()
	if !d.secure(ctx) || !d.login() {
		return
	}
	d.protect()
	d.features(ctx)
	d.passive(ctx)
	d.extended(ctx)
	d.active(ctx)
	d.dataTLS(ctx)
	d.security(ctx)
	d.writes(ctx)
	d.ccc()
}

// connect opens the main session: reachability and greeting.
func (d *run) connect(ctx context.Context) bool {
	start := time.Now()
	c, greet, err := dial(ctx, d.o, true)
	if err != nil {
		d.r.add("connect", "Reachable", Problem, err.Error(),
			"check the host and port, that the server runs, and that a firewall lets the control port through")
		return false
	}
	d.c = c
	d.r.add("connect", "Reachable", OK, fmt.Sprintf("connected to %s in %v", c.remote, time.Since(start).Round(time.Microsecond)), "")
	if greet.Code != 220 {
		d.r.add("greeting", "Greeting", Problem, greet.String(), "the server refuses sessions now (too many, or banned address?)")
		c.close()
		return false
	}
	d.r.add("greeting", "Greeting", OK, firstLine(greet), "")
	return true
}

func firstLine(r ftp.Reply) string {
	return fmt.Sprintf("%d %s", r.Code, strings.SplitN(r.Text, "\n", 2)[0])
}

// secure runs AUTH TLS (ftpes) or looks whether TLS is offered (ftp),
// then checks the certificate and the protocol versions.
func (d *run) secure(ctx context.Context) bool {
	if d.o.Scheme == "ftp" {
		if r, err := d.c.cmd("FEAT"); err == nil && r.Code == 211 {
			_, d.tlsOffered = ftp.ParseFeat(r.Text)["AUTH"]
		}
		if d.tlsOffered {
			d.r.add("tls.auth", "TLS offered", OK, "FEAT lists AUTH; this run is in the clear (use ftpes:// to check TLS)", "")
		} else {
			d.r.add("tls.auth", "TLS offered", Warning, "FEAT lists no AUTH TLS: passwords and files travel in the clear",
				"turn TLS on (a certificate for the server's name)")
		}
		return true
	}
	d.tlsOffered = true
	if d.o.Scheme == "ftpes" {
		r, err := d.c.cmd("AUTH TLS")
		if err != nil || r.Code != 234 {
			d.r.add("tls.auth", "AUTH TLS", Problem, replyOr(r, err), "turn explicit TLS on, or use ftp:// (or ftps:// for implicit TLS)")
			return false
		}
		if err := d.c.handshake(ctx, d.o.tlsConfig(false)); err != nil {
			d.r.add("tls.auth", "AUTH TLS", Problem, "handshake: "+err.Error(), "check the server's certificate and key")
			return false
		}
		d.r.add("tls.auth", "AUTH TLS", OK, "234, then "+tlsVersion(d.c.tls.Version), "")
	} else {
		d.r.add("tls.auth", "Implicit TLS", OK, tlsVersion(d.c.tls.Version), "")
	}
	d.certificate()
	d.versions(ctx)
	return true
}

func replyOr(r ftp.Reply, err error) string {
	if err != nil {
		return err.Error()
	}
	return firstLine(r)
}

func tlsVersion(v uint16) string { return tls.VersionName(v) }

// login logs in on the main session and sets binary mode.
func (d *run) login() bool {
	user, pass := d.o.User, d.o.Password
	if user == "" {
		user, pass = "anonymous", "doctor@ferry"
	}
	r, err := d.c.login(user, pass)
	if err != nil || r.Code != 230 {
		fix := "check the user name and password"
		if d.o.Scheme == "ftp" && (d.tlsOffered || strings.Contains(strings.ToUpper(r.Text), "TLS")) {
			fix += "; the server may require TLS for logins: use ftpes://"
		}
		d.r.add("login", "Login as "+user, Problem, replyOr(r, err), fix)
		return false
	}
	d.r.add("login", "Login as "+user, OK, firstLine(r), "")
	d.loggedIn = true
	d.c.cmd("TYPE I")
	return true
}

// passive checks PASV: the address of the 227 reply, whether the port
// takes a connection and carries a listing, and the ports over a few
// tries.
func (d *run) passive(ctx context.Context) {
	if d.c.remote.Addr().Is6() {
		d.r.add("pasv", "Passive mode (PASV)", Skipped, "PASV is IPv4 only (RFC 2428): clients use EPSV on IPv6", "")
		return
	}
	ap, r, err := d.c.pasv()
	if err != nil || r.Code != 227 {
		d.r.add("pasv", "Passive mode (PASV)", Warning, replyOr(r, err), "clients default to passive: allow PASV, or they need active mode")
		return
	}
	peer := d.c.remote.Addr()
	v, evidence, fix := judgePASV(ap.Addr(), peer)
	d.pasvAddrBad = ap.Addr() != peer
	if d.pasvAddrBad && v != Problem && mayDial(ap.Addr(), peer) {
		// Clients that trust the address (old curl, FileZilla's
		// default, Python's ftplib before 3.x) connect there.
		if dc, err := d.c.dialData(ctx, ap, netip.Addr{}); err != nil {
			v, evidence = Problem, evidence+"; "+ap.String()+" does not accept: "+short(err)
		} else {
			dc.Close()
		}
		ap, _, _ = d.c.pasv() // the first connection used that listener
	}
	d.r.add("pasv.address", "Passive address", v, evidence, fix)
	port := netip.AddrPortFrom(peer, ap.Port())
	d.pasvWorks = d.list(ctx, "pasv.connect", "Passive data connection", port, "LIST",
		"the passive port does not take connections: open the passive port range in the firewall (and on any NAT), or fix the range the server is told")
	d.portRange(ctx)
}

// judgePASV judges the address of a 227 reply against the control
// connection's peer: the classic NAT and container mistakes.
func judgePASV(adv, peer netip.Addr) (Verdict, string, string) {
	switch {
	case adv == peer:
		return OK, "227 names " + adv.String() + ", the address of the control connection", ""
	case adv.IsUnspecified():
		return Problem, "227 names " + adv.String() + ": no client can connect there",
			"set the server's passive address (public_host, pasv_address, ForcePassiveIP, MasqueradeAddress)"
	case isPrivate(adv) && !isPrivate(peer) && !peer.IsLoopback():
		return Problem, "227 names the private address " + adv.String() + " to a client that reached " + peer.String(),
			"the server is behind NAT or in a container: set its passive address to " + peer.String() + " (public_host, pasv_address, ForcePassiveIP, MasqueradeAddress)"
	case adv.IsLoopback() != peer.IsLoopback() && adv.IsLoopback():
		return Problem, "227 names the loopback address " + adv.String() + " to a client that reached " + peer.String(),
			"set the server's passive address to the one clients reach"
	}
	return Warning, "227 names " + adv.String() + ", not " + peer.String() + " (the control connection's)",
		"set the passive address (public_host, pasv_address, ForcePassiveIP, MasqueradeAddress) to the one clients reach, " + peer.String() + "; clients that ignore it (curl, lftp, ferry) still work"
}

// isPrivate is an address of a private network (RFC 1918, shared
// address space, unique local, link local).
func isPrivate(a netip.Addr) bool {
	return a.IsPrivate() || a.IsLinkLocalUnicast() || netip.MustParsePrefix("100.64.0.0/10").Contains(a)
}

// mayDial says whether the doctor may connect to an address a server
// advertises: one of the same kind as the control connection's (loopback
// for loopback, public for public), never into a private network the
// client did not reach.
func mayDial(a, peer netip.Addr) bool {
	switch {
	case a.IsLoopback() || peer.IsLoopback():
		return a.IsLoopback() && peer.IsLoopback()
	case isPrivate(a):
		return isPrivate(peer)
	}
	return !a.IsUnspecified()
}

func short(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "dial tcp") {
		return s[i+2:]
	}
	return s
}

// list runs verb over a data connection to ap and records the check id:
// ok when the listing arrives with 226.
func (d *run) list(ctx context.Context, id, title string, ap netip.AddrPort, verb, fix string) bool {
	dc, err := d.c.dialData(ctx, ap, netip.Addr{})
	if err != nil {
		d.r.add(id, title, Problem, "connect to "+ap.String()+": "+short(err), fix)
		d.c.cmd("ABOR")
		return false
	}
	data, final, err := d.c.transfer(verb, dc, nil, 1<<20, false)
	if err != nil || final.Code != 226 && final.Code != 250 {
		d.r.add(id, title, Problem, fmt.Sprintf("%s over %s: %s", verb, ap, replyOr(final, err)), fix)
		return false
	}
	d.r.add(id, title, OK, fmt.Sprintf("%s over %s: %d bytes, %s", verb, ap, len(data), firstLine(final)), "")
	return true
}

// portRange asks for a few passive ports and reports their spread.
func (d *run) portRange(ctx context.Context) {
	lo, hi := uint16(65535), uint16(0)
	n := 0
	for range 4 {
		ap, r, err := d.c.pasv()
		if err != nil || r.Code != 227 {
			break
		}
		lo, hi, n = min(lo, ap.Port()), max(hi, ap.Port()), n+1
	}
	d.c.cmd("NOOP")
	if n == 0 {
		return
	}
	ev := fmt.Sprintf("ports %d–%d over %d tries", lo, hi, n)
	if lo == hi {
		ev = fmt.Sprintf("port %d each time (the session keeps its listener)", lo)
	}
	d.r.add("pasv.range", "Passive ports", OK, ev+": the firewall must open the server's whole range", "")
}

// extended checks EPSV.
func (d *run) extended(ctx context.Context) {
	port, r, err := d.c.epsv()
	if err != nil || r.Code != 229 {
		d.r.add("epsv", "Extended passive (EPSV)", Warning, replyOr(r, err),
			"clients try EPSV first and fall back to PASV; IPv6 clients need it")
		return
	}
	ap := netip.AddrPortFrom(d.c.remote.Addr(), port)
	if !d.list(ctx, "epsv", "Extended passive (EPSV)", ap, "LIST",
		"EPSV names a port that does not connect (a NAT helper that rewrites only PASV?): clients need EPSV off (curl --disable-epsv)") {
		d.epsvBroken = true
		return
	}
	d.pasvWorks = true // clients try EPSV first: passive mode works

}

// active checks EPRT, and PORT on IPv4: whether the server connects
// back to the client.
func (d *run) active(ctx context.Context) {
	ok := d.activeWith("EPRT", "active")
	if d.c.local.Addr().Is4() {
		ok = d.activeWith("PORT", "active.port") || ok
	}
	d.activeWorks = ok
}

// activeWith runs a LIST after verb (EPRT or PORT) to a port the client
// listens on, and records the check id.
func (d *run) activeWith(verb, id string) bool {
	title := "Active mode (" + verb + ")"
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: d.c.local.Addr().AsSlice()})
	if err != nil {
		d.r.add(id, title, Skipped, "cannot listen here: "+err.Error(), "")
		return false
	}
	defer ln.Close()
	ap := addrPort(ln.Addr())
	arg := ftp.FormatEPRT(ap)
	if verb == "PORT" {
		arg, _ = ftp.FormatPORT(ap)
	}
	const cannot = "the server cannot connect back to the client (a firewall on either side, or a NAT): clients must use passive mode"
	r, err := d.c.cmd(verb + " " + arg)
	if err != nil || r.Code != 200 {
		d.r.add(id, title, Warning, verb+": "+replyOr(r, err), "clients that need active mode cannot use this server")
		return false
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		ln.SetDeadline(time.Now().Add(d.o.Timeout))
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	r, err = d.c.cmd("LIST")
	if err != nil || r.Class() != 1 {
		ln.Close()
		if c, ok := <-accepted; ok {
			c.Close()
		}
		d.r.add(id, title, Warning, "LIST after "+verb+": "+replyOr(r, err), cannot)
		return false
	}
	dc, ok := <-accepted
	if !ok {
		final, _ := d.c.read()
		d.r.add(id, title, Warning, "no connection back to "+ap.String()+": "+firstLine(final), cannot)
		return false
	}
	dc.SetDeadline(time.Now().Add(d.o.Timeout))
	if d.c.protP {
		dc = tls.Client(dc, d.o.tlsConfig(false))
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(dc, 1<<20))
	dc.Close()
	final, err := d.c.read()
	if err != nil || final.Code != 226 {
		d.r.add(id, title, Warning, "LIST: "+replyOr(final, err), "")
		return false
	}
	d.r.add(id, title, OK, fmt.Sprintf("the server connected back to %s: %d bytes, %s", ap, n, firstLine(final)), "")
	return true
}
