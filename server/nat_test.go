package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
)

type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c addrConn) LocalAddr() net.Addr  { return c.local }
func (c addrConn) RemoteAddr() net.Addr { return c.remote }

func testSession(srv *Server, local, remote string) *session {
	a, _ := net.Pipe()
	c := addrConn{a, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(local)), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(remote))}
	s := newSession(context.Background(), srv, c, connAddrs{remote: addrPort(c.RemoteAddr())})
	return s
}

// TestPublicAddress: the PASV address for NAT, per client network, with a
// host name, and the warning for a private address sent to a public client.
func TestPublicAddress(t *testing.T) {
	var logs bytes.Buffer
	srv := &Server{Options: Options{PublicHost: PublicHost{
		Host: "192.0.2.10",
		Networks: []NetworkHost{
			{Network: netip.MustParsePrefix("10.0.0.0/8"), Host: "10.0.0.1"},
			{Network: netip.MustParsePrefix("172.16.0.0/12"), Host: "localhost"},
		},
	}}}
	srv.init()
	ctx := context.Background()
	for _, tc := range []struct{ remote, want string }{
		{"203.0.113.5:4000", "192.0.2.10"},
		{"10.9.8.7:4000", "10.0.0.1"},
		{"172.16.1.1:4000", "127.0.0.1"},
	} {
		s := testSession(srv, "10.0.0.2:21", tc.remote)
		got, err := s.publicAddr(ctx)
		if err != nil || got.String() != tc.want {
			t.Errorf("client %s: %v %v, want %s", tc.remote, got, err, tc.want)
		}
	}
	// No public host: the address the client connected to.
	logged := &Server{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	s := testSession(logged, "10.0.0.2:21", "203.0.113.5:4000")
	if got, _ := s.publicAddr(ctx); got.String() != "10.0.0.2" {
		t.Errorf("default %v", got)
	}
	s.warnPrivate(netip.MustParseAddr("10.0.0.2"))
	if !strings.Contains(logs.String(), "set public-host") {
		t.Errorf("no warning: %q", logs.String())
	}
	logs.Reset()
	s = testSession(logged, "10.0.0.2:21", "10.1.1.1:4000")
	s.warnPrivate(netip.MustParseAddr("10.0.0.2"))
	if logs.Len() != 0 {
		t.Errorf("warned for a private client: %q", logs.String())
	}
}

// TestRemoteHost: the text of the client's address that events carry, an
// IPv4-mapped address as IPv4, the same string every time.
func TestRemoteHost(t *testing.T) {
	for _, c := range []struct{ remote, want string }{
		{"[::ffff:192.0.2.7]:40000", "192.0.2.7"},
		{"192.0.2.8:40000", "192.0.2.8"},
		{"[2001:db8::1]:40000", "2001:db8::1"},
	} {
		s := testSession(&Server{}, "127.0.0.1:21", c.remote)
		if h := s.hook.RemoteHost(); h != c.want || s.hook.RemoteHost() != h {
			t.Errorf("%s: RemoteHost %q, want %q", c.remote, h, c.want)
		}
	}
}
