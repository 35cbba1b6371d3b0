package server_test

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
)

// proxyListener serves srv on a new loopback listener with o.
func proxyListener(t *testing.T, srv *server.Server, o server.ListenerOptions) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeWith(ln, o)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func header(t *testing.T, src, dst string) []byte {
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dialProxied connects as a balancer would: the header, then FTP.
func dialProxied(t *testing.T, addr string, hdr []byte) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if hdr != nil {
		c.Write(hdr)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func expect(t *testing.T, c net.Conn, r *bufio.Reader, cmd string, code string) string {
	t.Helper()
	if cmd != "" {
		fmt.Fprintf(c, "%s\r\n", cmd)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if len(line) >= 4 && line[3] == ' ' {
			if !strings.HasPrefix(line, code) {
				t.Fatalf("%s: %q, want %s", cmd, line, code)
			}
			return line
		}
	}
}

// TestProxyProtocol: behind a trusted balancer the header's client
// address is the session's (hooks, PASV names the address the client
// connected to, passive data from the balancer is accepted); an
// untrusted peer is refused, and so is a trusted one without a header.
func TestProxyProtocol(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var remotes []string
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) {
		s.Hooks.Action = func(c *server.Conn, a server.Action) {
			mu.Lock()
			remotes = append(remotes, a.Kind.String()+" "+c.RemoteAddr().Addr().String())
			mu.Unlock()
		}
	}})
	lb := proxyListener(t, srv.Server, server.ListenerOptions{ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	c, r := dialProxied(t, lb, header(t, "192.0.2.9:40000", "198.51.100.1:21"))
	expect(t, c, r, "", "220")
	expect(t, c, r, "USER "+ftptest.Writer, "331")
	expect(t, c, r, "PASS "+ftptest.Password, "230")
	pasv := expect(t, c, r, "PASV", "227")
	if !strings.Contains(pasv, "(198,51,100,1,") {
		t.Errorf("PASV behind the balancer: %q, want the address the client connected to", pasv)
	}
	epsv := expect(t, c, r, "EPSV", "229")
	var port int
	fmt.Sscanf(epsv[strings.Index(epsv, "|||")+3:], "%d", &port)
	d, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)) // from the balancer
	if err != nil {
		t.Fatal(err)
	}
	expect(t, c, r, "STOR via.txt", "150")
	d.Write([]byte("through the balancer"))
	d.Close()
	expect(t, c, r, "", "226")
	mu.Lock()
	if len(remotes) != 1 || remotes[0] != "login 192.0.2.9" {
		t.Errorf("actions %v, want a login from 192.0.2.9", remotes)
	}
	mu.Unlock()

	// No header from the balancer: closed without a greeting.
	c, r = dialProxied(t, lb, []byte("USER x\r\n"))
	if line, err := r.ReadString('\n'); err == nil {
		t.Errorf("without a header: %q", line)
	}
	// A peer that is not a trusted balancer, header or not: 421.
	other := proxyListener(t, srv.Server, server.ListenerOptions{ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}})
	c, r = dialProxied(t, other, header(t, "192.0.2.9:40000", "198.51.100.1:21"))
	expect(t, c, r, "", "421")
}

// TestPassiveProxy: with PassiveProxy, a passive data connection from the
// balancer opens with a header naming the client; one naming another
// address is dropped as theft.
func TestPassiveProxy(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{})
	lb := proxyListener(t, srv.Server, server.ListenerOptions{ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, PassiveProxy: true})
	c, r := dialProxied(t, lb, header(t, "192.0.2.9:40000", "127.0.0.1:21"))
	expect(t, c, r, "", "220")
	expect(t, c, r, "USER "+ftptest.Writer, "331")
	expect(t, c, r, "PASS "+ftptest.Password, "230")
	epsv := expect(t, c, r, "EPSV", "229")
	var port int
	fmt.Sscanf(epsv[strings.Index(epsv, "|||")+3:], "%d", &port)
	dial := func(client string) net.Conn {
		d, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		d.Write(header(t, client, "127.0.0.1:21"))
		return d
	}
	thief := dial("203.0.113.66:1") // first in the queue
	defer thief.Close()

	d := dial("192.0.2.9:40001")
	expect(t, c, r, "STOR p.txt", "150")
	d.Write([]byte("hello"))
	d.Close()
	expect(t, c, r, "", "226")
	thief.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := thief.Read(make([]byte, 1)); err == nil {
		t.Error("the connection naming another client was served")
	}
}
