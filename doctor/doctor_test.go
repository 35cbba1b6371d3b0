package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/ftp"
)

// TestJudgePASV: the address of a 227 reply, parsed, against the control
// connection's peer: the NAT and container mistakes, judged without
// connecting anywhere.
func TestJudgePASV(t *testing.T) {
	for _, tc := range []struct {
		reply, peer string
		want        Verdict
		says        string
	}{
		{"227 Entering Passive Mode (203,0,113,7,195,80).", "203.0.113.7", OK, "the address of the control connection"},
		{"227 Entering Passive Mode (10,0,0,5,195,80).", "203.0.113.7", Problem, "private address 10.0.0.5"},
		{"227 Entering Passive Mode (172,17,0,2,195,80).", "198.51.100.1", Problem, "behind NAT or in a container"},
		{"227 Entering Passive Mode (192,168,1,20,195,80).", "192.168.1.10", Warning, "not 192.168.1.10"},
		{"227 Entering Passive Mode (0,0,0,0,195,80).", "203.0.113.7", Problem, "no client can connect there"},
		{"227 Entering Passive Mode (127,0,0,1,195,80).", "203.0.113.7", Problem, "loopback"},
		{"227 Entering Passive Mode (100,64,3,4,195,80).", "203.0.113.7", Problem, "private address"},
		{"227 Entering Passive Mode (198,51,100,9,195,80).", "203.0.113.7", Warning, "not 203.0.113.7"},
		{"227 Entering Passive Mode (127,0,0,2,195,80).", "127.0.0.1", Warning, "not 127.0.0.1"},
	} {
		ap, err := ftp.ParsePASV(strings.TrimPrefix(tc.reply, "227 "))
		if err != nil {
			t.Fatal(err)
		}
		v, ev, fix := judgePASV(ap.Addr(), netip.MustParseAddr(tc.peer))
		if v != tc.want || !strings.Contains(ev+" "+fix, tc.says) || (v != OK) != (fix != "") {
			t.Errorf("%s to %s: %s %q %q, want %s saying %q", tc.reply, tc.peer, v, ev, fix, tc.want, tc.says)
		}
		if ap.Port() != 195*256+80 {
			t.Errorf("port %d", ap.Port())
		}
	}
}

// TestMayDial: the doctor connects to an advertised address only of the
// kind the client reached: never into a private network from a public
// server's reply, never to loopback from a remote one.
func TestMayDial(t *testing.T) {
	for _, tc := range []struct {
		adv, peer string
		want      bool
	}{
		{"127.0.0.2", "127.0.0.1", true},
		{"10.0.0.5", "203.0.113.7", false},
		{"127.0.0.1", "203.0.113.7", false},
		{"203.0.113.8", "127.0.0.1", false},
		{"198.51.100.9", "203.0.113.7", true},
		{"10.0.0.6", "10.0.0.5", true},
		{"0.0.0.0", "203.0.113.7", false},
	} {
		if got := mayDial(netip.MustParseAddr(tc.adv), netip.MustParseAddr(tc.peer)); got != tc.want {
			t.Errorf("mayDial(%s, %s) = %v", tc.adv, tc.peer, got)
		}
	}
}

// TestReport: the text (colours only when asked, a fix under each
// warning and problem, a summary) and the JSON of a report; the flags of
// what the checks found.
func TestReport(t *testing.T) {
	d := &run{o: &Options{Addr: "203.0.113.7:21", Scheme: "ftpes"}, r: &Report{Target: "ftpes://203.0.113.7:21"}}
	d.r.add("login", "Login", OK, "230", "")
	d.r.add("pasv.connect", "Passive data connection", Problem, "refused", "open the range")
	d.r.add("tls.reuse", "TLS session reuse", Warning, "refused", "relax it")
	d.r.add("feat.hash", "HASH", Skipped, "not in FEAT", "")
	d.activeWorks, d.epsvBroken, d.reuseNeeded, d.certPin = true, true, true, "AB"
	d.r.Flags = d.flags()
	var plain, color bytes.Buffer
	d.r.WriteText(&plain, false)
	d.r.WriteText(&color, true)
	p := plain.String()
	for _, want := range []string{"problem  Passive data connection", "→ open the range", "→ relax it", "1 ok, 1 warnings, 1 problems, 1 skipped", "--ftp-port -", "--disable-epsv", "--fingerprint AB"} {
		if !strings.Contains(p, want) {
			t.Errorf("report lacks %q:\n%s", want, p)
		}
	}
	if strings.Contains(p, "\x1b[") || !strings.Contains(color.String(), "\x1b[31;1m") {
		t.Error("colours: off when not asked, on when asked")
	}
	var back Report
	var js bytes.Buffer
	d.r.WriteJSON(&js)
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Problems() != 1 || len(back.Checks) != 4 || back.Flags["lftp"] == "" {
		t.Fatalf("JSON: %v %+v", err, back)
	}
	if c, ok := back.Get("tls.reuse"); !ok || c.Verdict != Warning || c.Fix != "relax it" {
		t.Errorf("Get: %+v %v", c, ok)
	}
}

// TestUnreachable: a closed port is one problem, and no client flags are
// made up without a session.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r := Run(context.Background(), &Options{Addr: addr})
	if c, ok := r.Get("connect"); !ok || c.Verdict != Problem || len(r.Checks) != 1 || r.Flags != nil {
		t.Fatalf("%+v", r)
	}
}
