package server

import (
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/ferryftp/ferry/proxyhdr"
)

// proxyTimeout bounds the wait for a PROXY header: a balancer sends it at
// once.
const proxyTimeout = 5 * time.Second

// connAddrs are the addresses a session takes from its connection, or
// from the PROXY header before it.
type connAddrs struct {
	remote    netip.AddrPort // the client
	via       netip.Addr     // the balancer that carried it, if any
	advertise netip.Addr     // the address the client connected to, if a header said
}

// trusted says whether ip is in nets.
func trusted(nets []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	return slices.ContainsFunc(nets, func(p netip.Prefix) bool { return p.Contains(ip) })
}

// acceptProxied reads the PROXY header of a connection to a listener
// behind balancers, then admits the client it names. A connection from
// an address that is not a trusted balancer, or one without a valid
// header, is refused.
func (s *Server) acceptProxied(ln net.Listener, c net.Conn, l listenerRules) {
	peer := addrPort(c.RemoteAddr())
	if !trusted(l.proxy, peer.Addr()) {
		s.logger().Warn("session refused", "remote", peer, "reason", "not a trusted proxy on a PROXY protocol listener")
		refuse(c, "Connect through the load balancer.")
		return
	}
	c.SetReadDeadline(time.Now().Add(proxyTimeout))
	h, err := proxyhdr.Read(c)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		s.logger().Warn("session refused", "proxy", peer, "reason", "no valid PROXY header", "err", err)
		c.Close()
		return
	}
	a := connAddrs{remote: peer, via: peer.Addr()}
	if !h.Local { // LOCAL: the balancer's own health check
		a.remote, a.advertise = h.Source, h.Dest.Addr()
	}
	s.accept(ln, c, l, a)
}

// passivePeer is the client of a passive data connection c: its peer,
// or, when the session's passive connections carry PROXY headers and c
// comes from its balancer, the header's source. ok is false for a
// connection whose header is missing or invalid.
func (s *session) passivePeer(c net.Conn) (netip.Addr, bool) {
	peer := addrPort(c.RemoteAddr()).Addr()
	if !s.passiveProxy || peer != s.via {
		return peer, true
	}
	c.SetReadDeadline(time.Now().Add(proxyTimeout))
	h, err := proxyhdr.Read(c)
	c.SetReadDeadline(time.Time{})
	if err != nil || h.Local {
		return netip.Addr{}, false
	}
	return h.Source.Addr(), true
}
