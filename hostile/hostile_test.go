// Package hostile drives a real Ferry server over sockets with the hostile
// inputs of PROTOCOL.md's last section and the attacks of the hardening
// issue. Each case asserts the reply codes; after every case a fresh client
// must still log in and transfer, and the file tree outside the user's root
// must be byte-for-byte what it was.
package hostile

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage/localfs"
)

// world is a server on a local-disk root with a tree beside it that no
// client may read, change or learn about.
type world struct {
	*ftptest.Server
	base, root, outside string
	before              string // snapshot of everything outside root
}

func newWorld(t *testing.T, config func(*server.Server)) *world {
	t.Helper()
	base := t.TempDir()
	w := &world{base: base, root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(w.outside, "dir"), 0o755))
	must(os.WriteFile(filepath.Join(w.outside, "secret.txt"), []byte("outside the root\n"), 0o644))
	must(os.WriteFile(filepath.Join(w.outside, "dir", "victim"), []byte("do not touch\n"), 0o644))
	must(os.MkdirAll(filepath.Join(w.root, "pub", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(w.root, "pub", "file.txt"), []byte("hello\r\nworld\r\n"), 0o644))
	must(os.WriteFile(filepath.Join(w.root, "keep"), []byte("keep me"), 0o644))
	// Links out of the root, by relative and absolute path, to a file and
	// to a directory; and one inside it.
	must(os.Symlink("../outside", filepath.Join(w.root, "escape")))
	must(os.Symlink(filepath.Join(w.outside, "secret.txt"), filepath.Join(w.root, "abs-secret")))
	must(os.Symlink("../../outside/dir", filepath.Join(w.root, "pub", "up")))
	must(os.Symlink("pub/file.txt", filepath.Join(w.root, "inside")))
	// A deep tree for LIST -R and globs.
	deep := w.root
	for i := 0; i < 40; i++ {
		deep = filepath.Join(deep, fmt.Sprintf("d%d", i))
	}
	must(os.MkdirAll(deep, 0o755))
	w.before = snapshot(t, base, w.root)
	fsys, err := localfs.New(w.root, localfs.Options{})
	must(err)
	t.Cleanup(func() { fsys.Close() })
	w.Server = ftptest.NewServer(t, ftptest.Options{FS: fsys, Config: func(s *server.Server) {
		s.DataConnectTimeout = 2 * time.Second
		s.DataStallTimeout = 2 * time.Second
		if config != nil {
			config(s)
		}
	}})
	return w
}

// snapshot describes every entry under base except root: path, type,
// mode, link target, and a hash of the content.
func snapshot(t *testing.T, base, root string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			return nil
		}
		if p == root {
			return filepath.SkipDir
		}
		fi, _ := os.Lstat(p)
		fmt.Fprintf(&b, "%s %v", p, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", l)
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteByte('\n')
		return nil
	})
	return b.String()
}

// check is run after every case: the server still serves a fresh client
// in full, and nothing outside the root changed.
func (w *world) check(t *testing.T) {
	t.Helper()
	c := w.Dial(t).Login(ftptest.Writer)
	data := []byte(fmt.Sprintf("fresh client after %s", t.Name()))
	d := c.Passive()
	c.Expect("STOR fresh.txt", 150)
	d.Write(data)
	d.Close()
	if code, text := c.Read(); code != 226 {
		t.Fatalf("fresh client: STOR %d %s", code, text)
	}
	d = c.Passive()
	c.Expect("RETR fresh.txt", 150)
	got := ftptest.ReadAll(t, d)
	if code, _ := c.Read(); code != 226 || !bytes.Equal(got, data) {
		t.Fatalf("fresh client: RETR %d %q", code, got)
	}
	c.Expect("QUIT", 221)
	if after := snapshot(t, w.base, w.root); after != w.before {
		t.Fatalf("the tree outside the root changed:\nbefore:\n%s\nafter:\n%s", w.before, after)
	}
}

// list runs a listing command in passive mode and returns its data and
// final code (0 when the command was refused before any data).
func list(t *testing.T, c *ftptest.Conn, cmd string) (string, int) {
	t.Helper()
	d := c.Passive()
	c.Send(cmd)
	code, text := c.Read()
	if code != 150 && code != 125 {
		d.Close()
		return text, code
	}
	data := ftptest.ReadAll(t, d)
	code, _ = c.Read()
	return string(data), code
}

// waitSessions waits (up to 5 s) until the server counts n sessions.
func waitSessions(t *testing.T, w *world, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for w.Sessions() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions, want %d", w.Sessions(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func expectClosed(t *testing.T, c *ftptest.Conn) {
	t.Helper()
	c.C.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c.R)
	if err != nil {
		t.Fatalf("connection not closed: %q %v", b, err)
	}
}

func TestLines(t *testing.T) {
	w := newWorld(t, nil)
	c := w.Dial(t)
	// Over-long line with no CRLF, then a normal command on the same session.
	c.C.Write(bytes.Repeat([]byte("A"), 64<<10))
	c.C.Write([]byte("\r\n"))
	if code, _ := c.Read(); code != 500 {
		t.Fatalf("64 KiB line: %d", code)
	}
	c.Login(ftptest.Writer)
	for _, tc := range []struct {
		line string
		code int
	}{
		{"NOOP\x00", 500},                   // NUL in a verb
		{"\xff\xf4\xff\xf2NOOP", 200},       // Telnet IP, DM
		{"NO\xffOP", 500},                   // a lone IAC inside a verb
		{"\x80\x81\xfe NOOP", 500},          // bytes >= 0x80 as a verb
		{"MKD caf\xc3\xa9", 257},            // UTF-8 names work
		{"MKD bad\x00name", 553},            // NUL inside a path
		{"MKD a\rSITE CHMOD 777 keep", 553}, // bare CR: one line, refused
		{"DELE keep\r", 553},
		{"MKD x\x1b[31m", 553}, // terminal escapes
	} {
		c.C.Write([]byte(tc.line + "\r\n"))
		if code, text := c.Read(); code != tc.code {
			t.Errorf("%q: %d %s, want %d", tc.line, code, text, tc.code)
		}
	}
	// Bare LF ends a line too; the next command is read normally.
	c.C.Write([]byte("NOOP\nNOOP\r\n"))
	for i := 0; i < 2; i++ {
		if code, _ := c.Read(); code != 200 {
			t.Fatalf("bare LF: %d", code)
		}
	}
	if _, err := os.Stat(filepath.Join(w.root, "keep")); err != nil {
		t.Fatal("keep was deleted")
	}
	w.check(t)
}

func TestPaths(t *testing.T) {
	w := newWorld(t, nil)
	c := w.Dial(t).Login(ftptest.Writer)
	for _, p := range []string{
		"../outside/secret.txt", "/../outside/secret.txt", "../../../../../../etc/passwd",
		`..\outside\secret.txt`, `\..\outside\secret.txt`, "pub/../../outside/secret.txt",
		"//outside/secret.txt", "%2e%2e/outside/secret.txt", "..%2foutside%2fsecret.txt",
		"escape/secret.txt", "abs-secret", "pub/up/victim", "/etc/passwd",
	} {
		d := c.Passive()
		c.Send("RETR " + p)
		code, text := c.Read()
		if code == 150 {
			data := ftptest.ReadAll(t, d)
			c.Read()
			t.Errorf("RETR %s was served: %q", p, data)
			continue
		}
		d.Close()
		if code != 550 && code != 553 {
			t.Errorf("RETR %s: %d %s", p, code, text)
		}
		if strings.Contains(text, w.base) || strings.Contains(text, "outside the root") {
			t.Errorf("RETR %s: the reply reveals %q", p, text)
		}
	}
	for _, cmd := range []string{"DELE escape/secret.txt", "DELE pub/up/victim", "RMD escape/dir", "MKD escape/x",
		"RNFR escape/secret.txt", "CWD escape", "CWD /..", "SIZE abs-secret", "MDTM escape/secret.txt",
		"MFMT 20000101000000 abs-secret", "SITE CHMOD 777 escape", "HASH abs-secret", "MLST escape/secret.txt"} {
		code, text := c.Cmd(cmd)
		if code < 400 && !(cmd == "CWD /.." && code == 250) {
			t.Errorf("%s: %d %s", cmd, code, text)
		}
		if strings.Contains(text, w.base) {
			t.Errorf("%s: the reply reveals %q", cmd, text)
		}
	}
	// "CWD /.." stays at the root.
	if text := c.Expect("PWD", 257); !strings.HasPrefix(text, `"/"`) {
		t.Errorf("PWD after CWD /..: %s", text)
	}
	// Listings show no way out: the escaping links are left out, the
	// inside one is there.
	for _, cmd := range []string{"LIST", "LIST -la", "NLST", "MLSD", "LIST pub", "NLST pub"} {
		data, code := list(t, c, cmd)
		if code != 226 {
			t.Fatalf("%s: %d", cmd, code)
		}
		for _, out := range []string{"escape", "abs-secret", " up", "\nup", "secret"} {
			if strings.Contains(data, out) {
				t.Errorf("%s lists %q:\n%s", cmd, strings.TrimSpace(out), data)
			}
		}
		if (cmd == "LIST" || cmd == "NLST" || cmd == "MLSD") && !strings.Contains(data, "inside") {
			t.Errorf("%s leaves out the link inside the root:\n%s", cmd, data)
		}
	}
	for _, cmd := range []string{"LIST escape", "NLST escape", "MLSD escape", "STAT escape", "LIST ../outside", "MLSD pub/up"} {
		data, code := "", 0
		if strings.HasPrefix(cmd, "STAT") {
			code, data = c.Cmd(cmd)
		} else {
			data, code = list(t, c, cmd)
		}
		if strings.Contains(data, "secret") || strings.Contains(data, "victim") {
			t.Errorf("%s lists the outside (%d):\n%s", cmd, code, data)
		}
	}
	// Writes through the same ways out. A STOR onto a link replaces the
	// link (the upload is renamed over it); the outside is untouched.
	for _, p := range []string{"../outside/new", "escape/new", "pub/up/victim", "abs-secret", `..\outside\new`} {
		store(t, c, p, []byte("pwned"))
	}
	w.check(t)
}

func TestHiddenUploadFiles(t *testing.T) {
	w := newWorld(t, nil)
	c := w.Dial(t).Login(ftptest.Writer)
	// An upload cut midway leaves a hidden partial file.
	d := c.Passive()
	c.Expect("STOR big", 150)
	d.Write(bytes.Repeat([]byte("x"), 100000))
	d.(*net.TCPConn).SetLinger(0)
	d.Close()
	c.Read()
	ents, _ := os.ReadDir(w.root)
	var hidden []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), localfs.Prefix) {
			hidden = append(hidden, e.Name())
		}
	}
	if len(hidden) == 0 {
		t.Fatal("no hidden partial file to attack")
	}
	for _, h := range hidden {
		for _, cmd := range []string{"RETR " + h, "DELE " + h, "SIZE " + h, "RNFR " + h, "MDTM " + h, "CWD " + h} {
			if code, text := c.Cmd(cmd); code != 550 && code != 553 {
				t.Errorf("%s: %d %s", cmd, code, text)
			}
		}
		d := c.Passive()
		c.Send("STOR " + h)
		if code, _ := c.Read(); code == 150 {
			t.Errorf("STOR over the hidden file %s accepted", h)
			d.Close()
			c.Read()
		}
		d.Close()
		if code, _ := c.Cmd("RNFR keep"); code == 350 {
			if code, _ := c.Cmd("RNTO " + h); code < 400 {
				t.Errorf("RNTO onto the hidden file %s accepted", h)
			}
		}
	}
	for _, cmd := range []string{"LIST -a", "NLST", "MLSD", "NLST .ferry-*", "LIST .ferry*"} {
		if data, _ := list(t, c, cmd); strings.Contains(data, localfs.Prefix) {
			t.Errorf("%s lists hidden files:\n%s", cmd, data)
		}
	}
	if code, text := c.Cmd("STAT ."); strings.Contains(text, localfs.Prefix) {
		t.Errorf("STAT lists hidden files (%d):\n%s", code, text)
	}
	w.check(t)
}

func TestGlobsAndRecursion(t *testing.T) {
	w := newWorld(t, nil)
	c := w.Dial(t).Login(ftptest.Writer)
	for _, pat := range []string{"*/../*/../*", "a*a*a*a*a*a*a*a*a*b", "*/*/*/*/*/*/*/*/*/*/*/*", "[", "[]-]", "**", "*\\"} {
		for _, cmd := range []string{"LIST ", "NLST ", "STAT "} {
			start := time.Now()
			var code int
			if cmd == "STAT " {
				code, _ = c.Cmd(cmd + pat)
			} else {
				_, code = list(t, c, cmd+pat)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("%s%s took %v", cmd, pat, d)
			}
			if code >= 500 && code != 550 && code != 501 {
				t.Errorf("%s%s: %d", cmd, pat, code)
			}
		}
	}
	// LIST -R is not recursion here: one directory, in bounded time.
	start := time.Now()
	data, code := list(t, c, "LIST -R /")
	if code != 226 || strings.Contains(data, "d39") || time.Since(start) > 2*time.Second {
		t.Fatalf("LIST -R /: %d in %v:\n%s", code, time.Since(start), data)
	}
	w.check(t)
}

func TestDataCommands(t *testing.T) {
	w := newWorld(t, func(s *server.Server) { s.PassivePorts = server.PortRange{Lo: 0, Hi: 0} })
	c := w.Dial(t).Login(ftptest.Writer)
	// 501 (syntax, or refused by policy as vsftpd and pure-ftpd answer) or
	// 504 (parameter not implemented) are both right by RFC 959; what
	// matters is that none is accepted.
	for _, cmd := range []string{
		"PORT 127,0,0,1,0,21",      // privileged port (bounce to FTP)
		"PORT 127,0,0,1,0,0",       // port 0
		"PORT 10,0,0,1,200,10",     // not the client's address
		"PORT 127,0,0,1,300,1",     // field > 255
		"PORT 127,0,0,1,1",         // too few fields
		"PORT 127,0,0,1,4,1,7",     // too many
		"PORT -1,0,0,1,4,1",        // negative
		"PORT a,b,c,d,e,f",         // not numbers
		"EPRT |1|10.0.0.1|5000|",   // foreign address
		"EPRT |1|127.0.0.1|25|",    // SMTP
		"EPRT |2|::1|5000|",        // IPv6 on an IPv4 session
		"EPRT |3|127.0.0.1|5000|",  // unknown protocol (522)
		"EPRT |1|127.0.0.1|70000|", // port out of range
		"EPRT |1|127.0.0.1|",
		"EPRT ||||",
		"REST -1",
		"REST 99999999999999999999",
		"REST 9223372036854775808",
		"REST 1e9",
		"TYPE X",
		"MODE Q",
		"STRU Q",
	} {
		if code, text := c.Cmd(cmd); code != 501 && code != 504 && code != 522 {
			t.Errorf("%s: %d %s", cmd, code, text)
		}
	}
	// SIZE in ASCII mode is the size on disk: no scan for line ends (a
	// converted size would need to read the whole file).
	os.WriteFile(filepath.Join(w.root, "lf.txt"), bytes.Repeat([]byte("line\n"), 200000), 0o644)
	c.Expect("TYPE A", 200)
	if text := c.Expect("SIZE lf.txt", 213); text != "1000000" {
		t.Errorf("SIZE in ASCII mode: %s", text)
	}
	c.Expect("TYPE I", 200)
	// REST beyond the end, then RETR: refused, no data.
	c.Expect("REST 9223372036854775807", 350)
	d := c.Passive()
	c.Send("RETR keep")
	if code, _ := c.Read(); code == 150 {
		if data := ftptest.ReadAll(t, d); len(data) > 0 {
			t.Errorf("RETR after REST 2^63-1 sent %q", data)
		}
		c.Read()
	}
	d.Close()
	w.check(t)
}

// TestPassiveFlood: thousands of PASV/EPSV in a row hold at most one port,
// so a small passive range stays usable for everyone.
func TestPassiveFlood(t *testing.T) {
	// Eight ports below the ephemeral range (no client port can sit on
	// them); 2,000 PASV would use them up many times over if each held one.
	lo := 20000 + uint16(time.Now().UnixNano()%1000)*8
	w := newWorld(t, func(s *server.Server) { s.PassivePorts = server.PortRange{Lo: lo, Hi: lo + 7} })
	c := w.Dial(t).Login(ftptest.Writer)
	for i := 0; i < 2000; i++ {
		cmd := "PASV"
		if i%2 == 1 {
			cmd = "EPSV"
		}
		c.Send(cmd)
	}
	for i := 0; i < 2000; i++ {
		if code, text := c.Read(); code != 227 && code != 229 {
			t.Fatalf("PASV %d: %d %s", i, code, text)
		}
	}
	// Five more sessions at once each get a port from the eight.
	for i := 0; i < 5; i++ {
		o := w.Dial(t).Login(ftptest.Writer)
		d := o.Passive()
		o.Send("RETR keep")
		if code, _ := o.Read(); code != 150 {
			t.Fatalf("session %d after the flood: %d", i, code)
		}
		if data := ftptest.ReadAll(t, d); string(data) != "keep me" {
			t.Fatalf("session %d got %q", i, data)
		}
		o.Read()
	}
	c.Expect("QUIT", 221)
	w.check(t)
}

// TestDuringTransfer: ABOR, STAT, NOOP, REIN, USER and QUIT while a
// transfer runs; and a data connection opened and left idle.
func TestDuringTransfer(t *testing.T) {
	w := newWorld(t, nil)
	for _, cmd := range []string{"ABOR", "QUIT", "REIN", "USER alice", "STAT", "NOOP"} {
		c := w.Dial(t).Login(ftptest.Writer)
		d := c.Passive()
		c.Expect("STOR during-"+strings.Fields(cmd)[0], 150)
		d.Write(bytes.Repeat([]byte("y"), 64<<10))
		c.Send(cmd)
		code, _ := c.Read()
		switch cmd {
		case "ABOR":
			if code != 426 && code != 226 {
				t.Errorf("ABOR: %d", code)
			}
			if code == 426 {
				if code, _ := c.Read(); code != 226 {
					t.Errorf("ABOR second reply: %d", code)
				}
			}
		case "STAT":
			if code != 213 && code != 211 {
				t.Errorf("STAT: %d", code)
			}
		case "NOOP":
			if code != 200 {
				t.Errorf("NOOP: %d", code)
			}
		}
		d.Close()
	}
	// A data connection opened and left idle: the stall timeout ends it
	// with 426 and the session goes on.
	c := w.Dial(t).Login(ftptest.Writer)
	d := c.Passive()
	c.Expect("STOR idle", 150)
	start := time.Now()
	if code, _ := c.Read(); code != 426 && code != 451 {
		t.Fatalf("idle data connection: %d", code)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("idle data connection cut after %v", el)
	}
	d.Close()
	c.Expect("NOOP", 200)
	if _, err := os.Stat(filepath.Join(w.root, "idle")); err == nil {
		t.Error("an upload that sent nothing and stalled was committed")
	}
	// A passive port nobody connects to: 425 after the connect timeout.
	c.Expect("EPSV", 229)
	c.Send("RETR keep")
	if code, _ := c.Read(); code != 425 && code != 150 {
		t.Fatalf("no data connection: %d", code)
	} else if code == 150 {
		if code, _ := c.Read(); code != 425 {
			t.Fatalf("no data connection after 150: %d", code)
		}
	}
	w.check(t)
}

// TestCrossProtocolAndPipelinedAuth: HTTP on the control port, and
// commands pipelined behind AUTH TLS, are never executed.
func TestCrossProtocolAndPipelinedAuth(t *testing.T) {
	conf, _ := ftptest.TLS(t)
	w := newWorld(t, func(s *server.Server) { s.TLS = conf })
	c := w.Dial(t)
	c.C.Write([]byte("POST / HTTP/1.1\r\nHost: ftp\r\nContent-Length: 60\r\n\r\nUSER alice\r\nPASS " + ftptest.Password + "\r\nDELE keep\r\n"))
	if code, _ := c.Read(); code != 421 {
		t.Fatalf("POST: %d", code)
	}
	expectClosed(t, c)
	a := w.Dial(t)
	a.C.Write([]byte("AUTH TLS\r\nUSER alice\r\nPASS " + ftptest.Password + "\r\nDELE keep\r\n"))
	if code, _ := a.Read(); code != 234 {
		t.Fatalf("AUTH TLS: %d", code)
	}
	// What follows must be a TLS handshake; the pipelined text is dropped,
	// so the server answers nothing in clear.
	a.C.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if b, _ := a.R.Peek(1); len(b) > 0 {
		t.Fatalf("the server answered pipelined commands: %q", b)
	}
	a.C.Close()
	if _, err := os.Stat(filepath.Join(w.root, "keep")); err != nil {
		t.Fatal("a pipelined DELE ran")
	}
	w.check(t)
}

// TestFloodAndGuessing: a flood of short connections and a password
// guesser; the guesser is banned, everyone else is served.
func TestFloodAndGuessing(t *testing.T) {
	def := defender.New(defender.Config{Threshold: 6, Logger: slog.New(slog.DiscardHandler), AllowList: []netip.Prefix{}})
	w := newWorld(t, func(s *server.Server) {
		s.Defender = def
		s.MaxUnauthenticatedPerIP = 50
	})
	// 500 connections from 127.0.0.7 that say nothing and hang up. Faster
	// than the server ends them, they pass the per-address cap, and the
	// refusals score: the flooder may end up banned.
	for i := 0; i < 500; i++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 7)}}
		nc, err := d.Dial("tcp", w.Addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.Close()
	}
	waitSessions(t, w, 0)
	// 100 more held open at once from one address: 50 are admitted.
	var refused int
	for i := 0; i < 100; i++ {
		c := ftptest.DialFrom(t, w.Addr, "127.0.0.9")
		if code, _ := c.Read(); code == 421 {
			refused++
		}
	}
	if refused != 50 {
		t.Fatalf("%d of 100 refused, want 50", refused)
	}
	// Guessing from 127.0.0.8 (the refusals above scored 127.0.0.9),
	// reconnecting each time the server hangs up after three failures,
	// until the greeting is a refusal.
	for tries := 0; ; tries++ {
		if tries > 10 {
			t.Fatal("still greeted after 10 connections of guessing")
		}
		g := ftptest.DialFrom(t, w.Addr, "127.0.0.8")
		if code, _ := g.Read(); code == 421 {
			break
		}
		for i := 0; ; i++ {
			g.Expect("USER alice", 331)
			code, _ := g.Cmd("PASS guess" + fmt.Sprint(tries, i))
			if code == 421 {
				expectClosed(t, g)
				break
			}
			if code != 530 {
				t.Fatalf("PASS: %d", code)
			}
		}
	}
	if _, b := def.Banned(netip.MustParseAddr("127.0.0.8")); !b {
		t.Fatal("the guesser was not banned")
	}
	if code, _ := ftptest.DialFrom(t, w.Addr, "127.0.0.8").Read(); code != 421 {
		t.Fatal("the banned guesser was greeted")
	}
	w.check(t)
}

// TestSwappedDirectory: a directory swapped for a link out of the root
// between calls (check-then-use) cannot redirect a write or a read: every
// access resolves beneath the root at the moment it happens.
func TestSwappedDirectory(t *testing.T) {
	w := newWorld(t, nil)
	race := filepath.Join(w.root, "race")
	os.Mkdir(race, 0o755)
	stop := make(chan struct{})
	swapped := make(chan int)
	pause, resume := make(chan struct{}), make(chan struct{})
	go func() {
		n := 0
		defer func() { swapped <- n }()
		for {
			select {
			case <-stop:
				return
			case <-pause: // leave race a directory until resumed
				pause <- struct{}{}
				<-resume
			default:
			}
			// dir -> link to the outside -> dir, as fast as it goes.
			os.RemoveAll(race)
			os.Symlink("../outside/dir", race)
			os.Remove(race)
			os.Mkdir(race, 0o755)
			n++
		}
	}()
	c := w.Dial(t).Login(ftptest.Writer)
	reads := 0
	for i := 0; i < 300; i++ {
		name := "race/victim" // the name of the file outside, too
		if i%3 == 1 {
			name = fmt.Sprintf("race/new%d", i)
		}
		if i%10 == 0 {
			// A quiet moment: race is a directory; the upload and the read
			// of victim must work, so the read check below can fail.
			pause <- struct{}{}
			<-pause
			store(t, c, "race/victim", []byte("pwned"))
			if data, ok := tryRetrieve(c, "race/victim"); !ok || string(data) != "pwned" {
				t.Errorf("read of race/victim with no swap: %q %v", data, ok)
			}
			resume <- struct{}{}
		}
		store(t, c, name, []byte("pwned"))
		// The file outside has the same name: a read through the link
		// would return its content. (Reads that find no file are fine.)
		if data, ok := tryRetrieve(c, "race/victim"); ok && strings.Contains(string(data), "do not touch") {
			t.Fatal("read the file outside through the swapped link")
		} else if ok {
			reads++
		}
		c.Cmd("MKD race/sub")
		c.Cmd("DELE race/victim")
	}
	close(stop)
	t.Logf("%d swaps during 300 uploads; %d reads of race/victim succeeded during the swaps", <-swapped, reads)
	os.RemoveAll(race)
	w.check(t)
}
