package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/limits"
)

// listenPassive opens a passive listener on the control connection's local
// address, in the configured port range. Without a range it picks random
// ports of the system's ephemeral range itself: bind(2) to port 0 scans
// that range in the kernel and becomes slow (milliseconds) when many
// recent data connections sit in TIME_WAIT.
func (s *session) listenPassive() (*net.TCPListener, error) {
	ip := s.local.Addr()
	r := s.srv.o().PassivePorts
	// A configured range is tried port by port from a random start, so a
	// free port is always found; the ephemeral range at 16 random ports.
	tries, stride := int(r.Hi-r.Lo)+1, 1
	if r.Lo == 0 {
		r = ephemeralPorts()
		tries, stride = 16, 7919
	}
	n := int(r.Hi-r.Lo) + 1
	start := rand.IntN(n)
	var lastErr error
	for i := 0; i < tries; i++ {
		port := r.Lo + uint16((start+i*stride)%n)
		ln, err := listenTCP(netip.AddrPortFrom(ip, port))
		if err == nil {
			return ln, nil
		}
		lastErr = err
	}
	if s.srv.o().PassivePorts.Lo == 0 {
		return listenTCP(netip.AddrPortFrom(ip, 0))
	}
	return nil, lastErr
}

// listenTCP opens a plain TCP listener: Go listens with MPTCP by default
// where the kernel has it, which doubles the cost of each short-lived data
// listener and buys nothing for one connection.
// Data connections live for one transfer, guarded by the stall timeout, so
// they get no TCP keep-alive either (four setsockopt calls each).
func listenTCP(ap netip.AddrPort) (*net.TCPListener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", ap.String())
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// ephemeralPorts is the system's ephemeral port range.
var ephemeralPorts = sync.OnceValue(func() PortRange {
	r := PortRange{Lo: 32768, Hi: 60999}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var lo, hi int
		if _, err := fmt.Sscanf(string(b), "%d %d", &lo, &hi); err == nil && lo >= 1024 && hi >= lo && hi <= 65535 {
			r = PortRange{Lo: uint16(lo), Hi: uint16(hi)}
		}
	}
	return r
})

// A session keeps one passive listener for its whole life and hands out
// its port at every PASV/EPSV: a data connection is accepted for each
// transfer, the listener stays. That spares eight system calls per
// transfer (socket, setsockopt, bind, listen, getsockname, two epoll_ctl,
// close), and a session never holds more than one passive port. Before the
// port is handed out again, connections still queued on it are dropped, so
// a late or stray connection can never be taken for the next transfer.

// closePassive cancels a pending PASV/EPSV; the listener stays for reuse.
func (s *session) closePassive() { s.pasv = nil }

// closeListener closes the session's passive listener (session end).
func (s *session) closeListener() {
	s.pasv = nil
	if s.keep != nil {
		s.keep.Close()
		s.keep = nil
	}
}

// passiveListener returns the session's passive listener, opening it on
// first use, with no connection queued on it.
func (s *session) passiveListener() (*net.TCPListener, error) {
	if s.keep != nil && (s.srv.o().PassiveKeep < 0 || !canPoll) {
		s.closeListener()
	}
	if s.keep != nil {
		if drainPending(s.keep) {
			return s.keep, nil
		}
		s.keep.Close() // broken: open another
		s.keep = nil
	}
	ln, err := s.listenPassive()
	if err != nil {
		return nil, err
	}
	s.keep = ln
	return s.keep, nil
}

// drainPending closes connections queued on ln and clears its deadline.
// It reports false when ln no longer works.
func drainPending(ln *net.TCPListener) bool {
	if err := ln.SetDeadline(time.Time{}); err != nil {
		return false
	}
	for i := 0; i < 64 && readable(ln); i++ {
		c, err := ln.Accept()
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// publicAddr is the address advertised by PASV for this client.
func (s *session) publicAddr(ctx context.Context) (netip.Addr, error) {
	ph := s.srv.o().PublicHost
	host := ph.Host
	client := s.remote.Addr()
	for _, n := range ph.Networks {
		if n.Network.Contains(client) {
			host = n.Host
			break
		}
	}
	if host == "" {
		if s.advertise.IsValid() {
			return s.advertise, nil // what the client connected to: the balancer
		}
		return s.local.Addr(), nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, errors.New("cannot resolve public host")
	}
	return addrs[0].Unmap(), nil
}

// warnPrivate logs when a private address is advertised to a public client,
// the usual sign of a NAT that needs PublicHost.
func (s *session) warnPrivate(adv netip.Addr) {
	c := s.remote.Addr()
	if (adv.IsPrivate() || adv.IsLoopback()) && !(c.IsPrivate() || c.IsLoopback() || c.IsLinkLocalUnicast()) {
		s.log().Warn("passive address is private but the client is not: set public-host", "advertised", adv.String(), "client", c.String())
	}
}

// dataAllowed reports whether a data connection with addr is acceptable:
// the control connection's peer, or a network this account may use for
// third-party transfers.
func (s *session) dataAllowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	if addr == s.remote.Addr() {
		return true
	}
	if addr == s.via && !s.passiveProxy {
		return true // the balancer carrying the session, without headers
	}
	return s.acct != nil && s.acct.Perms.AllowsFXP(addr)
}

// transfer is a running data transfer.
type transfer struct {
	verb    string
	path    string
	start   time.Time // when the command was accepted
	bytes   atomic.Int64
	done    chan struct{}
	aborted atomic.Bool
	// committed: the upload is published. An ABOR or a closed control
	// connection that came while it committed changes nothing then: the
	// transfer succeeded, and says so (226, result ok, the upload event).
	committed atomic.Bool

	// pace, when set, waits until n more bytes may move (rate limits);
	// the copy loops then move at most paceMost bytes at a time (piece
	// and paced say both).
	pace     func(n int) error
	paceMost int
	// meter, when set, counts the bytes a splice moves into an upload
	// (a quota): each move takes its size from it first.
	meter limits.Meter
	// code is the reply that ended the transfer; sum the SHA-256 of a
	// committed upload, when the hooks asked for one.
	code  int
	sum   string
	ascii bool  // TYPE A
	size  int64 // the bytes a download will send, when known (0: not)

	mu     sync.Mutex
	conn   io.Closer // the data connection
	ln     *net.TCPListener
	cancel context.CancelFunc
}

// piece is how much of size one move of a copy loop may take: all of it,
// or at most a rate limit's piece.
func (x *transfer) piece(size int64) int64 {
	if x.pace != nil {
		return min(size, int64(x.paceMost))
	}
	return size
}

// paced waits, under a rate limit, until the n bytes just moved may have
// moved.
func (x *transfer) paced(n int64) error {
	if x.pace == nil || n <= 0 {
		return nil
	}
	return x.pace(int(n))
}

// abort stops the transfer: it closes its data connection and listener.
func (x *transfer) abort() {
	x.aborted.Store(true)
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.conn != nil {
		x.conn.Close()
	}
	if x.ln != nil {
		x.ln.SetDeadline(time.Unix(1, 0)) // interrupts Accept; the listener stays
	}
	if x.cancel != nil {
		x.cancel()
	}
}

// abortTransfer aborts x, the session's transfer (ABOR, or the session
// ends).
func (s *session) abortTransfer(x *transfer) {
	x.abort()
	if f := s.srv.abortHook; f != nil {
		f()
	}
}

// dataSource is where a transfer's data connection comes from: a passive
// listener or an active address, taken from the session when the transfer
// starts.
type dataSource struct {
	ln     *net.TCPListener
	active netip.AddrPort
	conn   net.Conn // already accepted (small downloads, see acceptPending)
}

// takeData removes the pending data-connection setup from the session, or
// answers 425 when there is none.
func (s *session) takeData() (dataSource, bool) {
	if s.dataNeedsTLS() {
		return dataSource{}, false
	}
	d := dataSource{ln: s.pasv, active: s.active}
	s.pasv, s.active = nil, netip.AddrPort{}
	if d.ln == nil && !d.active.IsValid() {
		s.reply(ftp.CodeCantOpenData, "Use PORT, EPRT, PASV or EPSV first.")
		return d, false
	}
	return d, true
}

// openData establishes the data connection of x: it accepts on the
// passive listener, dropping connections from any other address than
// allowed, or dials the active address from an unprivileged port.
func (s *session) openData(ctx context.Context, x *transfer, d dataSource) (net.Conn, error) {
	if d.conn != nil {
		return d.conn, nil
	}
	deadline := time.Now().Add(s.srv.dataConnectTimeout())
	if d.ln != nil {
		x.mu.Lock()
		x.ln = d.ln
		aborted := x.aborted.Load()
		x.mu.Unlock()
		if aborted {
			return nil, context.Canceled
		}
		d.ln.SetDeadline(deadline)
		for {
			c, err := d.ln.Accept()
			if err != nil {
				return nil, err
			}
			if ra, ok := s.passivePeer(c); !ok || !s.dataAllowed(ra) {
				// Data-connection theft: drop it, keep waiting for the client.
				s.log().Warn("foreign data connection dropped", "from", c.RemoteAddr().String(), "client", ra.String())
				c.Close()
				continue
			}
			return c, nil
		}
	}
	dialer := net.Dialer{
		Deadline:  deadline,
		KeepAlive: -1,
		LocalAddr: &net.TCPAddr{IP: s.local.Addr().AsSlice()},
	}
	network := "tcp4"
	if d.active.Addr().Is6() {
		network = "tcp6"
		if s.local.Addr().Is4() {
			dialer.LocalAddr = nil
		}
	} else if s.local.Addr().Is6() {
		dialer.LocalAddr = nil
	}
	return dialer.DialContext(ctx, network, d.active.String())
}

// validPort checks a PORT/EPRT target: never a privileged port, and only the
// client's own address unless FXP allows the target. An unspecified address
// (lftp sends "EPRT |2|::|port|" on IPv6) means the client's own.
func (s *session) validPort(ap *netip.AddrPort) bool {
	if ap.Addr().IsUnspecified() {
		*ap = netip.AddrPortFrom(s.remote.Addr(), ap.Port())
	}
	if ap.Port() < 1024 {
		s.reply(ftp.CodeBadArguments, "Refusing to connect to a privileged port (below 1024).")
		return false
	}
	if !s.dataAllowed(ap.Addr()) {
		s.reply(ftp.CodeBadArguments, "Refusing to connect to an address other than yours (third-party transfers are not allowed for this account).")
		return false
	}
	return true
}

func (s *session) cmdPORT(arg string) {
	s.setActive("PORT", arg, ftp.ParsePORT, "h1,h2,h3,h4,p1,p2")
}

func (s *session) cmdEPRT(arg string) {
	s.setActive("EPRT", arg, ftp.ParseEPRT, "|proto|address|port|")
}

// setActive is PORT and EPRT: parse the client's address, check it may be
// connected to, and keep it for the next transfer.
func (s *session) setActive(verb, arg string, parse func(string) (netip.AddrPort, error), syntax string) {
	if s.epsvAll {
		s.reply(ftp.CodeBadSequence, verb+" not allowed after EPSV ALL.")
		return
	}
	ap, err := parse(arg)
	if errors.Is(err, ftp.ErrUnsupportedProtocol) {
		s.reply(ftp.CodeBadProtocol, "Network protocol not supported, use (1,2).")
		return
	}
	if err != nil {
		s.reply(ftp.CodeBadArguments, "Malformed "+verb+" argument, want "+syntax+".")
		return
	}
	if !s.validPort(&ap) {
		return
	}
	s.closePassive()
	s.active = ap
	s.reply(ftp.CodeOK, verb+" command successful.")
}

// openPassive is PASV and EPSV: the session's passive listener, pending
// for the next transfer, or a 425 reply.
func (s *session) openPassive() (*net.TCPListener, bool) {
	s.active = netip.AddrPort{}
	ln, err := s.passiveListener()
	if err != nil {
		s.log().Warn("passive listen", "err", err)
		s.reply(ftp.CodeCantOpenData, "No passive port available, try again later.")
		return nil, false
	}
	s.pasv = ln
	return ln, true
}

func (s *session) cmdPASV(arg string) {
	if s.epsvAll {
		s.reply(ftp.CodeBadSequence, "PASV not allowed after EPSV ALL.")
		return
	}
	adv, err := s.publicAddr(context.Background())
	if err != nil {
		s.log().Warn("public host", "err", err)
		s.reply(ftp.CodeCantOpenData, "Cannot determine the passive address.")
		return
	}
	if !adv.Is4() {
		s.reply(ftp.CodeCantOpenData, "PASV needs IPv4; use EPSV on an IPv6 connection.")
		return
	}
	ln, ok := s.openPassive()
	if !ok {
		return
	}
	s.warnPrivate(adv)
	text, _ := ftp.FormatPASV(netip.AddrPortFrom(adv, addrPort(ln.Addr()).Port()))
	s.reply(ftp.CodePassive, text)
}

func (s *session) cmdEPSV(arg string) {
	switch arg {
	case "ALL", "all", "All":
		s.epsvAll = true
		s.reply(ftp.CodeOK, "EPSV ALL accepted: only EPSV from now on.")
		return
	case "":
	case "1", "2":
		want6 := arg == "2"
		if want6 != s.local.Addr().Is6() {
			if s.local.Addr().Is6() {
				s.reply(ftp.CodeBadProtocol, "Network protocol not supported, use (2).")
			} else {
				s.reply(ftp.CodeBadProtocol, "Network protocol not supported, use (1).")
			}
			return
		}
	default:
		if _, err := strconv.Atoi(arg); err == nil {
			s.reply(ftp.CodeBadProtocol, "Network protocol not supported, use (1,2).")
		} else {
			s.reply(ftp.CodeBadArguments, "EPSV takes 1, 2 or ALL.")
		}
		return
	}
	ln, ok := s.openPassive()
	if !ok {
		return
	}
	s.reply(ftp.CodeExtendedPassive, ftp.FormatEPSV(addrPort(ln.Addr()).Port()))
}
