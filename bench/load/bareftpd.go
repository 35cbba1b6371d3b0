package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// bareFTPD serves dir on *addr as the least a Go FTP server must do for
// the small-file workloads, and nothing else: any USER and PASS, TYPE,
// EPSV on a port of pasv ("LO-HI", a listener per transfer), STOR
// (created in place: not atomic) and RETR (io.Copy, so sendfile), a
// goroutine per session on the net package, sockets without MPTCP or
// keep-alive. It is the limit a Go server approaches on small files, as
// the baselines are for large ones; it is not a server (no paths checked
// beyond the base name, no limits). It runs until killed.
func bareFTPD(dir, pasv string) error {
	lo, hi, ok := strings.Cut(pasv, "-")
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || l < 1 || h < l || h > 65535 {
		return fmt.Errorf("bare-ftpd: -pasv %q: want LO-HI", pasv)
	}
	ln, err := bareListen(*addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go bareSession(c, dir, l, h)
	}
}

// bareListen listens on a without MPTCP, its connections without
// keep-alive.
func bareListen(a string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	lc.SetMultipathTCP(false)
	return lc.Listen(context.Background(), "tcp", a)
}

// bareSession answers one control connection until QUIT or EOF, with
// passive ports from lo to hi.
func bareSession(c net.Conn, dir string, lo, hi int) {
	defer c.Close()
	r := bufio.NewReader(c)
	io.WriteString(c, "220 bare\r\n")
	var pasv net.Listener
	defer func() {
		if pasv != nil {
			pasv.Close()
		}
	}()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		reply := ""
		switch strings.ToUpper(verb) {
		case "USER":
			reply = "331 password"
		case "PASS":
			reply = "230 in"
		case "TYPE", "NOOP":
			reply = "200 ok"
		case "CWD":
			reply = "250 ok"
		case "EPSV":
			if pasv != nil {
				pasv.Close()
			}
			host, _, _ := net.SplitHostPort(c.LocalAddr().String())
			port := lo + rand.IntN(hi-lo+1)
			for range 16 { // a port in use: another
				if pasv, err = bareListen(net.JoinHostPort(host, strconv.Itoa(port))); err == nil {
					break
				}
				port = lo + rand.IntN(hi-lo+1)
			}
			if err != nil {
				reply = "425 " + err.Error()
				break
			}
			reply = fmt.Sprintf("229 passive (|||%d|)", port)
		case "STOR", "RETR":
			reply = bareTransfer(c, pasv, strings.ToUpper(verb), filepath.Join(dir, filepath.Base(arg)))
			pasv = nil
		case "QUIT":
			io.WriteString(c, "221 bye\r\n")
			return
		default:
			reply = "502 not here"
		}
		io.WriteString(c, reply+"\r\n")
	}
}

// bareTransfer accepts the data connection on pasv (closing pasv), sends
// the 150 on c, moves the file and returns the final reply.
func bareTransfer(c net.Conn, pasv net.Listener, verb, path string) string {
	if pasv == nil {
		return "425 EPSV first"
	}
	d, err := pasv.Accept()
	pasv.Close()
	if err != nil {
		return "425 " + err.Error()
	}
	defer d.Close()
	var f *os.File
	if verb == "STOR" {
		f, err = os.Create(path)
	} else {
		f, err = os.Open(path)
	}
	if err != nil {
		return "550 " + err.Error()
	}
	defer f.Close()
	io.WriteString(c, "150 data\r\n")
	if verb == "STOR" {
		_, err = io.Copy(f, d)
	} else {
		_, err = io.Copy(d, f)
	}
	if err == nil {
		err = d.Close()
	}
	if err != nil {
		return "426 " + err.Error()
	}
	return "226 done"
}
