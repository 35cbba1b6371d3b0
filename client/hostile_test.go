package client_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftp"
)

// fakeSession is one session of the scripted, hostile FTP server newFake
// starts: its handler answers each command after the login, which it
// grants to anyone.
type fakeSession struct {
	t    *testing.T
	done chan struct{} // closed when the test ends
	c    net.Conn
	r    *bufio.Reader
	data net.Listener // the passive listener, when one is open
}

func (s *fakeSession) send(text string) { io.WriteString(s.c, text) }

// passive opens a data listener on the loopback and returns its port.
func (s *fakeSession) passive() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Error(err)
		return 0
	}
	s.data = ln
	return ln.Addr().(*net.TCPAddr).Port
}

func (s *fakeSession) acceptData() net.Conn {
	s.data.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	dc, err := s.data.Accept()
	s.data.Close()
	if err != nil {
		s.t.Error(err)
		return nil
	}
	return dc
}

func newFake(t *testing.T, feat string, handle func(s *fakeSession, verb, arg string) bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				s := &fakeSession{t: t, done: done, c: c, r: bufio.NewReader(c)}
				s.send("220 hostile\r\n")
				for {
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					line, err := s.r.ReadString('\n')
					if err != nil {
						return
					}
					verb, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
					switch verb {
					case "USER":
						s.send("331 go on\r\n")
						continue
					case "PASS":
						s.send("230 in\r\n")
						continue
					case "FEAT":
						s.send("211-Features:\r\n" + feat + "211 End\r\n")
						continue
					case "PWD":
						s.send("257 \"/\"\r\n")
						continue
					case "TYPE", "OPTS":
						s.send("200 ok\r\n")
						continue
					case "QUIT":
						s.send("221 bye\r\n")
						return
					}
					if !handle(s, verb, arg) {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// TestForeignPASVAddress: a 227 reply naming another host is not followed;
// the client connects to the server it talks to, on the given port.
func TestForeignPASVAddress(t *testing.T) {
	addr := newFake(t, "", func(s *fakeSession, verb, arg string) bool {
		switch verb {
		case "EPSV":
			s.send("500 what is EPSV\r\n")
		case "PASV":
			p := s.passive()
			s.send(fmt.Sprintf("227 Entering Passive Mode (10,255,255,1,%d,%d).\r\n", p>>8, p&255))
		case "RETR":
			s.send("150 here\r\n")
			if dc := s.acceptData(); dc != nil {
				io.WriteString(dc, "payload")
				dc.Close()
			}
			s.send("226 done\r\n")
		default:
			s.send("502 no\r\n")
		}
		return true
	})
	var mu sync.Mutex
	var dialed []string
	c := dial(t, addr, client.Config{User: "u", Password: "p", DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, a)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}})
	if got := string(get(t, c, "f", nil)); got != "payload" {
		t.Fatalf("got %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range dialed {
		if strings.HasPrefix(a, "10.") {
			t.Fatalf("client dialed the foreign address %s", a)
		}
	}
	if len(dialed) != 2 {
		t.Fatalf("dialed %v", dialed)
	}
}

// TestHostileReplies: malformed replies and a server that says nothing end
// in clear errors within the context, never a hang.
func TestHostileReplies(t *testing.T) {
	addr := newFake(t, " SIZE\r\n MDTM\r\n", func(s *fakeSession, verb, arg string) bool {
		switch strings.TrimPrefix(arg, "/") {
		case "garbage":
			s.send("this is not a reply\r\n")
		case "unended":
			s.send("213-start\r\nand then nothing\r\n")
			return false
		case "long":
			s.send("213 " + strings.Repeat("x", 20000) + "\r\n")
		case "silent":
			<-s.done
		case "badsize":
			s.send("213 -5\r\n")
		case "badtime":
			s.send("213 yesterday\r\n")
		default:
			s.send("213 42\r\n")
		}
		return true
	})
	ctx := context.Background()
	for _, tc := range []struct {
		arg  string
		want error
	}{
		{"garbage", ftp.ErrBadReply},
		{"unended", io.ErrUnexpectedEOF},
		{"long", ftp.ErrBadReply},
		{"badsize", nil},
	} {
		c := dial(t, addr, client.Config{User: "u"})
		_, err := c.Size(ctx, tc.arg)
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("SIZE %s: %v, want %v", tc.arg, err, tc.want)
		}
		// The client recovers: a new connection replaces a broken one.
		if n, err := c.Size(ctx, "fine"); err != nil || n != 42 {
			t.Errorf("after %s: %d, %v", tc.arg, n, err)
		}
	}
	c := dial(t, addr, client.Config{User: "u"})
	if _, err := c.ModTime(ctx, "badtime"); err == nil {
		t.Error("MDTM with a bad time: no error")
	}
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Size(tctx, "silent"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("silent server: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("silent server held the call %v past its context", d)
	}
}

// TestHostileData: a LIST with garbage lines gives the good entries only;
// a data connection dropped mid-file is an error (no REST STREAM to resume
// with), not a short file taken for whole.
func TestHostileData(t *testing.T) {
	addr := newFake(t, "", func(s *fakeSession, verb, arg string) bool {
		switch verb {
		case "EPSV":
			s.send(fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)\r\n", s.passive()))
		case "LIST":
			s.send("150 listing\r\n")
			if dc := s.acceptData(); dc != nil {
				io.WriteString(dc, "total 3\r\n"+
					"-rw-r--r-- 1 u g 12 Jan 01 2024 good.txt\r\n"+
					"\x00\x01\x02 binary junk\r\n"+
					strings.Repeat("z", 100000)+"\r\n"+
					"drwxr-xr-x 2 u g 4096 Jan 01 2024 dir\r\n"+
					"-rw-r--r-- 1 u g notanumber Jan 01 2024 bad\r\n"+
					"drwxr-xr-x 2 u g 4096 Jan 01 2024 ..\r\n")
				dc.Close()
			}
			s.send("226 ok\r\n")
		case "RETR":
			s.send("150 sending 1000000 bytes\r\n")
			if dc := s.acceptData(); dc != nil {
				io.WriteString(dc, strings.Repeat("d", 1000))
				dc.(*net.TCPConn).SetLinger(0)
				dc.Close() // a reset, mid-file
			}
			s.send("426 Connection closed; transfer aborted.\r\n")
		case "ABOR":
			s.send("226 nothing to abort\r\n")
		default:
			s.send("502 no\r\n")
		}
		return true
	})
	c := dial(t, addr, client.Config{User: "u"})
	ctx := context.Background()
	es, err := c.List(ctx, "/")
	if err != nil || len(es) != 2 || es[0].Name != "dir" || es[0].Type != ftp.TypeDir || es[1].Name != "good.txt" { // sorted by name
		t.Fatalf("List: %+v, %v", es, err)
	}
	d, err := c.Retrieve(ctx, "f", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(d)
	if err == nil || len(b) > 1000 {
		t.Fatalf("dropped transfer: %d bytes, %v", len(b), err)
	}
	if !errors.As(err, new(*client.Error)) && !errors.As(err, new(*client.NetError)) {
		t.Fatalf("dropped transfer: unexpected error type %T %v", err, err)
	}
	d.Close()
}

// TestFallbacks: EPSV refused → PASV; EPRT refused → PORT.
func TestFallbacks(t *testing.T) {
	addr := newFake(t, "", func(s *fakeSession, verb, arg string) bool {
		switch verb {
		case "EPSV", "EPRT":
			s.send("502 not here\r\n")
		case "PASV":
			p := s.passive()
			s.send(fmt.Sprintf("227 Entering Passive Mode (127,0,0,1,%d,%d)\r\n", p>>8, p&255))
		case "PORT":
			ap, err := ftp.ParsePORT(arg)
			if err != nil {
				s.send("501 bad\r\n")
				break
			}
			dc, err := net.Dial("tcp", ap.String())
			if err != nil {
				s.send("425 cannot connect\r\n")
				break
			}
			s.data = &oneConn{dc}
			s.send("200 PORT ok\r\n")
		case "NLST":
			s.send("150 names\r\n")
			var dc net.Conn
			if oc, ok := s.data.(*oneConn); ok {
				dc = oc.c
			} else {
				dc = s.acceptData()
			}
			if dc != nil {
				io.WriteString(dc, "a\r\nb\r\n")
				dc.Close()
			}
			s.send("226 ok\r\n")
		default:
			s.send("502 no\r\n")
		}
		return true
	})
	for _, active := range []bool{false, true} {
		c := dial(t, addr, client.Config{User: "u", Active: active})
		names, err := c.NameList(context.Background(), "/")
		if err != nil || strings.Join(names, ",") != "a,b" {
			t.Fatalf("active=%v: %v, %v", active, names, err)
		}
	}
}

// oneConn is an already connected data connection posing as a listener.
type oneConn struct{ c net.Conn }

func (o *oneConn) Accept() (net.Conn, error) { return o.c, nil }
func (o *oneConn) Close() error              { return nil }
func (o *oneConn) Addr() net.Addr            { return o.c.LocalAddr() }

// TestTrustPassiveAddress: with the option, the 227 address is used.
func TestTrustPassiveAddress(t *testing.T) {
	addr := newFake(t, "", func(s *fakeSession, verb, arg string) bool {
		switch verb {
		case "EPSV":
			s.send("500 no\r\n")
		case "PASV":
			s.send("227 Entering Passive Mode (10,255,255,1,4,1).\r\n")
		default:
			s.send("502 no\r\n")
		}
		return true
	})
	var mu sync.Mutex
	var dialed []string
	c := dial(t, addr, client.Config{User: "u", TrustPassiveAddress: true, DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, a)
		mu.Unlock()
		if strings.HasPrefix(a, "10.") {
			return nil, errors.New("not dialing out in a test")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}})
	if _, err := c.Retrieve(context.Background(), "f", nil); err == nil {
		t.Fatal("no error")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialed) != 2 || dialed[1] != "10.255.255.1:1025" {
		t.Fatalf("dialed %v", dialed)
	}
}

// TestXHash: a server without HASH but with XSHA256/XCRC in FEAT is asked
// with those commands.
func TestXHash(t *testing.T) {
	addr := newFake(t, " XSHA256\r\n XCRC\r\n", func(s *fakeSession, verb, arg string) bool {
		switch verb {
		case "XSHA256":
			s.send("250 ABCDEF0123\r\n")
		case "XCRC":
			s.send("250 1234ABCD\r\n")
		default:
			s.send("502 no\r\n")
		}
		return true
	})
	c := dial(t, addr, client.Config{User: "u"})
	if got := c.HashAlgorithms(); strings.Join(got, ",") != "SHA-256,CRC32" {
		t.Fatalf("algorithms %v", got)
	}
	if alg, sum, err := c.Hash(context.Background(), "f", ""); err != nil || alg != client.SHA256 || sum != "abcdef0123" {
		t.Fatalf("Hash: %s %s %v", alg, sum, err)
	}
	if _, sum, err := c.Hash(context.Background(), "f", "crc32"); err != nil || sum != "1234abcd" {
		t.Fatalf("Hash CRC32: %s %v", sum, err)
	}
	if _, _, err := c.Hash(context.Background(), "f", client.MD5); !errors.Is(err, client.ErrUnsupported) {
		t.Fatalf("Hash MD5: %v", err)
	}
}
