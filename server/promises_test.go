package server_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
)

// TestFXPOutsideNetworks: an account's FXP networks open PORT to those
// networks only; any other third address stays refused.
func TestFXPOutsideNetworks(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{})
	srv.FXP = []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}
	c := srv.Dial(t).Login(ftptest.Writer)
	c.Expect("PORT 127,0,0,2,40,0", 501)
	c.Expect("EPRT |1|127.0.0.4|10240|", 501)
	c.Expect("EPRT |2|::1|10240|", 501) // another address family is another host
	c.Expect("PORT 127,0,0,3,40,0", 200)
	c.Expect("EPRT |1|127.0.0.3|10240|", 200)
}

// TestBounceOverIPv6: over IPv6, EPRT to an address other than the
// client's is refused (bounce), as are privileged ports; a passive
// transfer and an active one to the client's own address work.
func TestBounceOverIPv6(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{Network: "tcp6"})
	c := srv.Dial(t).Login(ftptest.Writer)
	c.Expect("EPRT |2|2001:db8::1|10240|", 501)
	c.Expect("EPRT |1|127.0.0.1|10240|", 501)
	c.Expect("EPRT |2|::1|22|", 501)
	c.Expect("PASV", 425) // PASV cannot name an IPv6 address
	upload(t, c, modes[0], "STOR", "f", []byte("six"))
	ln := c.Active(false)
	c.Expect("RETR f", 150)
	if got := ftptest.ReadAll(t, ftptest.Accept(t, ln)); string(got) != "six" {
		t.Fatalf("EPRT to ::1 got %q", got)
	}
	if code, _ := c.Read(); code != 226 {
		t.Fatal(code)
	}
}

// TestTheftOverIPv6: over IPv6, a thief at another address (::2) that
// connects to the passive port first is dropped and the client at ::1 still
// gets the data; EPRT to ::2 is refused (bounce). Without a second IPv6
// address on the machine the test runs in its own network namespace.
func TestTheftOverIPv6(t *testing.T) {
	if !ftptest.WithSecondIPv6(t) {
		return
	}
	srv := ftptest.NewServer(t, ftptest.Options{Network: "tcp6"})
	c := srv.Dial(t).Login(ftptest.Writer)
	upload(t, c, modes[0], "STOR", "f", []byte("six"))
	c.Expect("EPRT |2|"+ftptest.SecondIPv6+"|10240|", 501)

	port, err := ftp.ParseEPSV(c.Expect("EPSV", 229))
	if err != nil {
		t.Fatal(err)
	}
	retrPastThief(t, c, net.JoinHostPort("::1", strconv.Itoa(int(port))), ftptest.SecondIPv6, "f", "six")
}

// TestEPSVAllAndREIN: after EPSV ALL only EPSV sets up a transfer (RFC
// 2428 section 4), and transfers still work; REIN clears it.
func TestEPSVAllAndREIN(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{})
	c := srv.Dial(t).Login(ftptest.Writer)
	c.Expect("EPSV ALL", 200)
	for _, cmd := range []string{"PASV", "PORT 127,0,0,1,40,0", "EPRT |1|127.0.0.1|10240|"} {
		c.Expect(cmd, 503)
	}
	upload(t, c, modes[0], "STOR", "f", []byte("after all"))
	if got := download(t, c, modes[0], "RETR f"); string(got) != "after all" {
		t.Fatalf("RETR after EPSV ALL: %q", got)
	}
	c.Expect("REIN", 220)
	c.Login(ftptest.Writer)
	if got := download(t, c, modes[3], "RETR f"); string(got) != "after all" {
		t.Fatalf("RETR with PORT after REIN: %q", got)
	}
}

// TestRestAndAppendASCII: in TYPE A, APPE converts what it appends, and
// REST + STOR resumes at a byte offset of the stored (LF) file.
func TestRestAndAppendASCII(t *testing.T) {
	t.Parallel()
	srv := ftptest.NewServer(t, ftptest.Options{})
	c := srv.Dial(t).LoginASCII(ftptest.Writer)
	upload(t, c, modes[0], "STOR", "t.txt", []byte("one\r\ntwo\r\n"))
	upload(t, c, modes[0], "APPE", "t.txt", []byte("three\r\n"))
	c.Expect("TYPE I", 200)
	if got := download(t, c, modes[0], "RETR t.txt"); string(got) != "one\ntwo\nthree\n" {
		t.Fatalf("after APPE in TYPE A: %q", got)
	}
	c.Expect("TYPE A", 200)
	c.Expect("REST 4", 350) // after "one\n" in the stored file
	upload(t, c, modes[0], "STOR", "t.txt", []byte("TWO\r\n"))
	c.Expect("TYPE I", 200)
	if got := download(t, c, modes[0], "RETR t.txt"); string(got) != "one\nTWO\n" {
		t.Fatalf("after REST 4 + STOR in TYPE A: %q", got)
	}
	c.Expect("TYPE A", 200)
	c.Expect("REST 4", 350)
	if got := download(t, c, modes[0], "RETR t.txt"); string(got) != "TWO\r\n" {
		t.Fatalf("REST 4 + RETR in TYPE A: %q", got)
	}
}

// TestBansThroughServer: a failed login past the threshold bans the
// client's /64 at connect; the ban expires after BanTime; the next ban of
// the same network lasts twice as long. On the fake clock.
func TestBansThroughServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		def := defender.New(defender.Config{Threshold: 1, BanTime: time.Minute, Logger: slog.New(slog.DiscardHandler), AllowList: []netip.Prefix{}})
		srv, ln := pipeServer(t, func(s *server.Server) { s.Defender = def; s.LoginFailDelay = -1 })
		defer srv.Close()
		greet := func(from string) string {
			c := ln.dialFrom(netip.MustParseAddrPort(from))
			defer c.Close()
			l, _ := bufio.NewReader(c).ReadString('\n')
			return l[:3]
		}
		fail := func(from string) {
			c := ln.dialFrom(netip.MustParseAddrPort(from))
			defer c.Close()
			r := bufio.NewReader(c)
			readLine(t, r)
			io.WriteString(c, "USER alice\r\nPASS wrong\r\n")
			readLine(t, r)
			if got := readLine(t, r); !strings.HasPrefix(got, "421") {
				t.Fatalf("the failure that bans: %q", got)
			}
		}
		a, sameNet, otherNet := "[2001:db8::1]:4000", "[2001:db8::ffff]:4000", "[2001:db8:0:1::1]:4000"
		fail(a)
		if got := greet(sameNet); got != "421" {
			t.Errorf("another address of the banned /64 got %s", got)
		}
		if got := greet(otherNet); got != "220" {
			t.Errorf("the next /64 got %s", got)
		}
		time.Sleep(time.Minute + time.Second)
		if got := greet(a); got != "220" {
			t.Errorf("after BanTime: %s", got)
		}
		fail(a) // second ban: two minutes
		time.Sleep(time.Minute + time.Second)
		if got := greet(a); got != "421" {
			t.Errorf("a second ban lasted no longer than the first: %s", got)
		}
		time.Sleep(time.Minute)
		if got := greet(a); got != "220" {
			t.Errorf("after twice BanTime: %s", got)
		}
	})
}
