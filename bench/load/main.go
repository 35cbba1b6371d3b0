// Command load drives any FTP server with a bounded load and reports
// figures: logins per second, small-file transfers per second, memory per
// idle session, single-stream throughput — and the same I/O done by a
// minimal Go program (sendfile file→socket, socket→file) as the baseline.
// Every run stops by itself (-d, -n).
//
//	go run ./bench/load -addr 127.0.0.1:2121 -user u -pass p logins -c 32 -d 5s
//	go run ./bench/load -addr … small -c 8 -n 4000 -size 4096
//	go run ./bench/load -addr … idle -n 10000 -pid PID
//	go run ./bench/load -addr … retr -path big.bin      (then: baseline-retr -file /path/big.bin)
//	go run ./bench/load -addr … stor -size 1073741824   (then: baseline-stor -size 1073741824 -dir /tmp)
//	go run ./bench/load -addr … tls-retr|tls-stor …     (PROT P; then: baseline-tls-retr|baseline-tls-stor)
//	go run ./bench/load -addr 127.0.0.1:2121 bare-ftpd -dir /tmp/bare -pasv 40000-44999   (the least Go FTP server small files need; until killed)
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	addr = flag.String("addr", "127.0.0.1:2121", "server control address")
	user = flag.String("user", "ferry", "user name")
	pass = flag.String("pass", os.Getenv("FERRY_PASSWORD"), "password (default $FERRY_PASSWORD)")
	src  = flag.String("src", "", "upload modes: send this file (made once, kept) instead of a new one of -size bytes")
	cwd  = flag.String("cwd", "", "directory to change to after login (paths are relative to it)")
)

func main() {
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: load [flags] logins|small|idle|badlogins|list|retr|stor|tls-retr|tls-stor|baseline-retr|baseline-stor|baseline-tls-retr|baseline-tls-stor|bare-ftpd [mode flags]")
		os.Exit(2)
	}
	mode, args := flag.Arg(0), flag.Args()[1:]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	conc := fs.Int("c", 32, "concurrent clients")
	dur := fs.Duration("d", 5*time.Second, "duration")
	n := fs.Int("n", 1000, "count (files, sessions)")
	size := fs.Int64("size", 4096, "bytes per file")
	path := fs.String("path", "big.bin", "remote path")
	file := fs.String("file", "", "local file (baseline-retr)")
	dir := fs.String("dir", os.TempDir(), "local directory (baseline-stor)")
	pid := fs.Int("pid", 0, "server process whose RSS (idle) or CPU time (retr, stor, tls-retr, tls-stor) to read")
	hold := fs.Duration("hold", 2*time.Second, "how long to hold idle sessions")
	listening := fs.Bool("listening", false, "baselines: keep accepting and hold one idle connection meanwhile, as any server does")
	op := fs.String("op", "mixed", "small: up (uploads), down (downloads of files uploaded first, untimed) or mixed (each upload then its download)")
	steps := fs.Bool("steps", false, "small: also report how long each step of a transfer took, as the client saw it (median and 90th percentile)")
	pasvRange := fs.String("pasv", "", "bare-ftpd: passive ports, LO-HI")
	fs.Parse(args)
	var err error
	switch mode {
	case "logins":
		err = logins(*conc, *dur)
	case "small":
		err = small(*conc, *n, int(*size), *op, *steps)
	case "idle":
		err = idle(*n, *pid, *hold)
	case "badlogins":
		err = badLogins(*n, *pid, *hold)
	case "list":
		err = list(*path)
	case "retr":
		err = retr(*path, *pid)
	case "stor":
		err = stor(*path, *size, *pid)
	case "baseline-retr":
		err = baselineRetr(*file, *listening)
	case "baseline-stor":
		err = baselineStor(*dir, *size, *listening)
	case "tls-retr":
		err = tlsRetr(*path, *pid)
	case "tls-stor":
		err = tlsStor(*path, *size, *pid)
	case "baseline-tls-retr":
		err = baselineTLSRetr(*file)
	case "baseline-tls-stor":
		err = baselineTLSStor(*dir, *size)
	case "serve-tls-file":
		err = serveFile(*file, tlsListen, false)
	case "sink-tls-file":
		err = sinkFile(*dir, tlsListen, false)
	case "serve-file":
		err = serveFile(*file, plainListen, *listening)
	case "sink-file":
		err = sinkFile(*dir, plainListen, *listening)
	case "bare-ftpd":
		err = bareFTPD(*dir, *pasvRange)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// conn is a minimal FTP control connection.
type conn struct {
	c     net.Conn
	r     *bufio.Reader
	steps *stepTimes // nil: not timed
}

func dial() (*conn, error) {
	c, err := net.DialTimeout("tcp", *addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	fc := &conn{c: c, r: bufio.NewReaderSize(c, 4096)}
	if code, msg, err := fc.read(); err != nil || code != 220 {
		c.Close()
		return nil, fmt.Errorf("greeting %d %s %v", code, msg, err)
	}
	return fc, nil
}

func (c *conn) read() (int, string, error) {
	c.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		return 0, "", err
	}
	if len(line) < 4 {
		return 0, "", fmt.Errorf("short reply %q", line)
	}
	code, _ := strconv.Atoi(line[:3])
	if line[3] == '-' {
		for {
			l, err := c.r.ReadString('\n')
			if err != nil {
				return 0, "", err
			}
			if strings.HasPrefix(l, line[:3]+" ") {
				break
			}
		}
	}
	return code, strings.TrimSpace(line[4:]), nil
}

func (c *conn) cmd(want int, format string, a ...any) (string, error) {
	fmt.Fprintf(c.c, format+"\r\n", a...)
	code, msg, err := c.read()
	if err != nil {
		return "", err
	}
	if code != want {
		return msg, fmt.Errorf("%s: %d %s", strings.Fields(fmt.Sprintf(format, a...))[0], code, msg)
	}
	return msg, nil
}

func (c *conn) login() error {
	fmt.Fprintf(c.c, "USER %s\r\n", *user)
	code, msg, err := c.read()
	switch {
	case err != nil:
		return err
	case code == 331:
		if _, err := c.cmd(230, "PASS %s", *pass); err != nil {
			return err
		}
	case code != 230: // 230: a server that asks no password (anonymous)
		return fmt.Errorf("USER: %d %s", code, msg)
	}
	if *cwd != "" {
		_, err := c.cmd(250, "CWD %s", *cwd)
		return err
	}
	return nil
}

func (c *conn) close() {
	c.cmd(221, "QUIT")
	c.c.Close()
}

// passive opens a data connection with EPSV.
func (c *conn) passive() (net.Conn, error) {
	msg, err := c.cmd(229, "EPSV")
	if err != nil {
		return nil, err
	}
	return c.dialPassive(msg)
}

// dialPassive connects to the port of an EPSV reply's text.
func (c *conn) dialPassive(msg string) (net.Conn, error) {
	i := strings.Index(msg, "(|||")
	j := strings.LastIndex(msg, "|)")
	if i < 0 || j < i {
		return nil, fmt.Errorf("EPSV reply %q", msg)
	}
	host, _, _ := net.SplitHostPort(*addr)
	return net.DialTimeout("tcp", net.JoinHostPort(host, msg[i+4:j]), 10*time.Second)
}

func logins(conc int, d time.Duration) error {
	var ok, failed atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				c, err := dial()
				if err != nil {
					failed.Add(1)
					continue
				}
				if err := c.login(); err != nil {
					failed.Add(1)
					c.c.Close()
					continue
				}
				c.close()
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("logins: %d ok, %d failed in %v: %.0f logins/s (%d concurrent)\n", ok.Load(), failed.Load(), el.Round(time.Millisecond), float64(ok.Load())/el.Seconds(), conc)
	return nil
}

// small moves n files of size bytes with conc clients, each on one session
// and a passive data connection per file: op "up" uploads them, "down"
// downloads files uploaded first (not timed), "mixed" downloads each file
// right after its upload. The report counts transfers per second.
func small(conc, n, size int, op string, timed bool) error {
	if op != "up" && op != "down" && op != "mixed" {
		return fmt.Errorf("small: -op %q: want up, down or mixed", op)
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	per := max(n/conc, 1)
	run := time.Now().UnixNano() % 1e6
	sessions := make([]*conn, conc)
	for w := range sessions {
		c, err := dial()
		if err == nil {
			err = c.login()
		}
		if err == nil {
			_, err = c.cmd(200, "TYPE I")
		}
		if err != nil {
			return err
		}
		defer c.close()
		sessions[w] = c
	}
	name := func(w, i int) string { return fmt.Sprintf("load-%d-%d-%d.bin", run, w, i) }
	if op == "down" {
		if _, err := eachSession(sessions, per, func(c *conn, w, i int) (int, error) { return 1, c.put(name(w, i), payload) }); err != nil {
			return err
		}
	}
	if timed { // after the untimed uploads of down
		defer reportSteps(sessions)
		for _, c := range sessions {
			c.steps = new(stepTimes)
		}
	}
	cpu := selfCPU()
	start := time.Now()
	done, err := eachSession(sessions, per, func(c *conn, w, i int) (int, error) {
		switch op {
		case "up":
			return 1, c.put(name(w, i), payload)
		case "down":
			return 1, c.get(name(w, i))
		}
		if err := c.put(name(w, i), payload); err != nil {
			return 0, err
		}
		return 2, c.get(name(w, i))
	})
	el, cpu := time.Since(start), selfCPU()-cpu
	fmt.Printf("small files %s: %d transfers of %d B in %v: %.0f files/s (%d clients)",
		op, done, size, el.Round(time.Millisecond), float64(done)/el.Seconds(), conc)
	if cpu > 0 && done > 0 {
		fmt.Printf("; client CPU %.1f µs/file", float64(cpu.Microseconds())/float64(done))
	}
	fmt.Println()
	return err
}

// eachSession runs f for i in [0, per) on every session at once and
// returns the count of transfers f reports; the first error stops all.
func eachSession(sessions []*conn, per int, f func(c *conn, w, i int) (int, error)) (int64, error) {
	var wg sync.WaitGroup
	var done atomic.Int64
	var firstErr atomic.Pointer[error]
	for w, c := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per && firstErr.Load() == nil; i++ {
				k, err := f(c, w, i)
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				done.Add(int64(k))
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return done.Load(), *e
	}
	return done.Load(), nil
}

// transfer runs verb on name over a fresh passive data connection, with
// body moving the bytes, and waits for the 226.
func (c *conn) transfer(verb, name string, body func(d net.Conn) error) error {
	c.steps.mark(-1)
	msg, err := c.cmd(229, "EPSV")
	if err != nil {
		return err
	}
	c.steps.mark(stepEPSV)
	d, err := c.dialPassive(msg)
	if err != nil {
		return err
	}
	defer d.Close()
	c.steps.mark(stepConnect)
	if _, err := c.cmd(150, "%s %s", verb, name); err != nil {
		return err
	}
	c.steps.mark(step150)
	if err := body(d); err != nil {
		return err
	}
	d.Close()
	c.steps.mark(stepData)
	_, err = c.cmd226()
	c.steps.mark(step226)
	return err
}

func (c *conn) put(name string, data []byte) error {
	return c.transfer("STOR", name, func(d net.Conn) error { _, err := d.Write(data); return err })
}

func (c *conn) get(name string) error {
	return c.transfer("RETR", name, func(d net.Conn) error { _, err := io.Copy(io.Discard, d); return err })
}

func (c *conn) cmd226() (string, error) {
	code, msg, err := c.read()
	if err == nil && code != 226 {
		err = fmt.Errorf("transfer: %d %s", code, msg)
	}
	return msg, err
}

func rss(pid int) (int64, error) { return procStatus(pid, "VmRSS:") }

// procStatus reads a size field of /proc/PID/status (VmRSS:, VmHWM: …).
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s for %d", field, pid)
}

// pss sums the proportional set size of pid and its children (forking
// servers) from smaps_rollup.
func pss(pid int) int64 {
	total := int64(0)
	var walk func(p int)
	walk = func(p int) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "Pss:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					total += kb << 10
				}
			}
		}
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p, p))
		for _, k := range strings.Fields(string(kids)) {
			c, _ := strconv.Atoi(k)
			walk(c)
		}
	}
	walk(pid)
	return total
}

func idle(n, pid int, hold time.Duration) error {
	var before, beforePSS int64
	if pid > 0 {
		var err error
		if before, err = rss(pid); err != nil {
			return err
		}
		beforePSS = pss(pid)
	}
	conns := make([]*conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.c.Close()
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		c, err := dial()
		if err == nil {
			err = c.login()
		}
		if err != nil {
			return fmt.Errorf("session %d: %v", i, err)
		}
		// Drop the client's buffer: only the server's memory is measured.
		c.r = bufio.NewReaderSize(c.c, 16)
		conns = append(conns, c)
	}
	fmt.Printf("idle: %d sessions logged in in %v\n", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(hold)
	if pid > 0 {
		after, err := rss(pid)
		if err != nil {
			return err
		}
		afterPSS := pss(pid)
		fmt.Printf("idle: server RSS %d KiB -> %d KiB: %.1f KiB per session counting the whole process (total ÷ sessions), %.1f KiB added per session; PSS (with children) %.1f KiB added per session\n",
			before>>10, after>>10, float64(after)/1024/float64(n), float64(after-before)/1024/float64(n), float64(afterPSS-beforePSS)/1024/float64(n))
	}
	return nil
}

// badLogins sends n wrong passwords at once, each from an address of its
// own (127.0.x.y, so that no per-address limit or ban stops them), and
// reads the server's peak RSS (VmHWM) and its RSS hold later.
func badLogins(n, pid int, hold time.Duration) error {
	if pid <= 0 {
		return fmt.Errorf("badlogins needs -pid")
	}
	before, err := rss(pid)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var refused, failed atomic.Int64
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			from := &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/250), byte(1+i%250))}
			c, err := (&net.Dialer{LocalAddr: from, Timeout: 10 * time.Second}).Dial("tcp", *addr)
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.Close()
			fc := &conn{c: c, r: bufio.NewReaderSize(c, 512)}
			if code, _, err := fc.read(); err != nil || code != 220 {
				failed.Add(1)
				return
			}
			if _, err := fc.cmd(331, "USER %s", *user); err != nil {
				failed.Add(1)
				return
			}
			fmt.Fprintf(c, "PASS wrong-%d\r\n", i)
			if code, _, _ := fc.read(); code == 530 || code == 421 {
				refused.Add(1)
			} else {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	peak, err := procStatus(pid, "VmHWM:")
	if err != nil {
		return err
	}
	after, _ := rss(pid)
	time.Sleep(hold)
	later, _ := rss(pid)
	fmt.Printf("badlogins: %d refused, %d other in %v; server RSS %d KiB before, peak %d KiB, %d KiB at the end, %d KiB %v later\n",
		refused.Load(), failed.Load(), took.Round(time.Millisecond), before>>10, peak>>10, after>>10, later>>10, hold)
	return nil
}

// list times LIST and MLSD of path, each from the command to the 226.
func list(path string) error {
	c, err := dial()
	if err != nil {
		return err
	}
	if err := c.login(); err != nil {
		return err
	}
	defer c.close()
	for _, verb := range []string{"LIST", "MLSD"} {
		d, err := c.passive()
		if err != nil {
			return err
		}
		start := time.Now()
		if msg, err := c.cmd(150, "%s %s", verb, path); err != nil {
			d.Close()
			if verb == "MLSD" && strings.HasPrefix(err.Error(), "MLSD: 50") {
				fmt.Printf("MLSD %s: not offered (%s)\n", path, msg) // vsftpd
				return nil
			}
			return err
		}
		n, err := io.Copy(io.Discard, d)
		if err != nil {
			return err
		}
		d.Close()
		if _, err := c.cmd226(); err != nil {
			return err
		}
		el := time.Since(start)
		fmt.Printf("%s %s: %d bytes in %v: %.2f lists/s\n", verb, path, n, el.Round(time.Millisecond), 1/el.Seconds())
	}
	return nil
}

// single runs one transfer of verb on a fresh session: body moves the
// bytes over the data connection.
func single(verb, path string, pid int, body func(d net.Conn) (int64, error)) error {
	c, err := dial()
	if err != nil {
		return err
	}
	if err := c.login(); err != nil {
		return err
	}
	defer c.close()
	c.cmd(200, "TYPE I")
	d, err := c.passive()
	if err != nil {
		return err
	}
	cpu := startCPU(pid)
	start := time.Now()
	if _, err := c.cmd(150, "%s %s", verb, path); err != nil {
		return err
	}
	// No timer armed while the bytes flow: the baseline's client has none,
	// and an armed Go timer alone slows a process's I/O loop here.
	c.c.SetReadDeadline(time.Time{})
	n, err := body(d)
	if err != nil {
		return err
	}
	d.Close()
	if _, err := c.cmd226(); err != nil {
		return err
	}
	report(verb, n, time.Since(start), cpu.used())
	return nil
}

func retr(path string, pid int) error {
	return single("RETR", path, pid, func(d net.Conn) (int64, error) { return discard(d) })
}

// discard reads r to its end in 1 MiB reads, as the downloads of both
// sides of a comparison do. (io.Copy to io.Discard reads 8 KiB at a time:
// the client, not the server, would then set the pace. So does
// io.CopyBuffer with io.Discard itself as the writer, whose ReadFrom
// ignores the buffer: hidden here.)
func discard(r io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{r}, make([]byte, 1<<20))
}

// report prints a transfer's rate and, when known, the server's CPU time
// for it. On a shared machine the wall-clock rate of one transfer swings
// by a factor of several; the CPU time a server spends per byte barely
// moves, so the two together tell a slow server from a busy machine.
func report(what string, n int64, d time.Duration, cpu time.Duration) {
	fmt.Printf("%s: %d bytes in %v: %.0f MB/s", what, n, d.Round(time.Millisecond), float64(n)/d.Seconds()/1e6)
	if cpu > 0 {
		fmt.Printf("; server CPU %v: %.0f MB/CPU-s", cpu.Round(time.Millisecond), float64(n)/cpu.Seconds()/1e6)
	}
	fmt.Println()
}

// cpuMark is a server process's CPU time at the start of a transfer.
type cpuMark struct {
	pid  int
	at   time.Duration
	exit func() time.Duration // a child's total CPU once it has exited
	kill func()               // ends a child that will not get its client
}

// stop ends a child whose transfer never started.
func (m *cpuMark) stop() {
	if m.kill != nil {
		m.kill()
	}
}

// startCPU marks pid's CPU time now (0: not measured).
func startCPU(pid int) *cpuMark {
	if pid <= 0 {
		return &cpuMark{}
	}
	return &cpuMark{pid: pid, at: threadsCPU(pid)}
}

// used is the CPU time pid spent since the mark: from its threads'
// counters while it runs, from its rusage once a child has exited.
func (m *cpuMark) used() time.Duration {
	if m.pid <= 0 {
		return 0
	}
	if m.exit != nil {
		return m.exit() - m.at
	}
	return threadsCPU(m.pid) - m.at
}

// threadsCPU sums the time on CPU of pid's threads (the first field of
// /proc/PID/task/TID/schedstat, in nanoseconds).
func threadsCPU(pid int) time.Duration {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		var ns int64
		fmt.Sscan(string(b), &ns)
		sum += time.Duration(ns)
	}
	return sum
}

// source is a file of size bytes to send, at its start (sendfile from page
// cache on both sides of the comparison).
//
// A new file is written just before the transfer, and on tmpfs that takes
// the memory the previous transfer freed, still backed by the host, so the
// server's file gets memory the host must fault in again (this VM reports
// freed pages to its host): -src names a file made once and kept.
func source(size int64) (*os.File, error) {
	if *src != "" {
		return os.Open(*src)
	}
	f, err := os.CreateTemp("", "load-src-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for w := int64(0); w < size; w += int64(len(buf)) {
		f.Write(buf[:min(int64(len(buf)), size-w)])
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func stor(path string, size int64, pid int) error {
	src, err := source(size)
	if err != nil {
		return err
	}
	defer src.Close()
	return single("STOR", path, pid, func(d net.Conn) (int64, error) { return io.Copy(d, src) })
}

// The baselines are a minimal Go program doing the same I/O as the server,
// in a process of its own like the server (this binary, run again with the
// hidden modes serve-file and sink-file), driven by this client exactly as
// the server is: that is the comparison the figures need.

// baselineRetr: the minimal server sends file to a TCP socket (sendfile);
// the client discards it.
func baselineRetr(file string, listening bool) error {
	return baseline("baseline RETR (sendfile file->socket)", dialTCP, discardConn,
		"serve-file", "-file", file, fmt.Sprint("-listening=", listening))
}

// baselineStor: the client sends a file (sendfile); the minimal server
// copies the socket into a new file in dir (splice) and closes once it is
// written, which the client waits for.
func baselineStor(dir string, size int64, listening bool) error {
	src, err := source(size)
	if err != nil {
		return err
	}
	defer src.Close()
	return baseline("baseline STOR (socket->file)", dialTCP, func(c net.Conn) (int64, error) {
		return uploaded(c, func() (int64, error) { return io.Copy(c, src) })
	}, "sink-file", "-dir", dir, fmt.Sprint("-listening=", listening))
}

func discardConn(c net.Conn) (int64, error) { return discard(c) }

func dialTCP(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }

// baseline runs one transfer against the minimal server of a child process
// in mode: dial makes the client's connection, body moves the bytes. The
// time runs from the dial to the end of body; the CPU time is the child's.
func baseline(what string, dial func(addr string) (net.Conn, error), body func(net.Conn) (int64, error), mode string, args ...string) error {
	addr, cpu, err := child(mode, args...)
	if err != nil {
		return err
	}
	start := time.Now()
	c, err := dial(addr)
	if err != nil {
		cpu.stop()
		return err
	}
	n, err := body(c)
	c.Close()
	el := time.Since(start)
	report(what, n, el, cpu.used())
	return err
}

// uploaded runs send, half-closes c and waits for the server's EOF, which
// it sends once it has written the file.
func uploaded(c net.Conn, send func() (int64, error)) (int64, error) {
	n, err := send()
	if err != nil {
		return n, err
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		return n, err
	}
	_, err = io.Copy(io.Discard, c)
	return n, err
}

// child starts this binary in a hidden server mode and returns the address
// it listens on, and a mark of its CPU time once listening. The child
// reports its own CPU time (getrusage) at both ends of its copy, before it
// deletes what it wrote: freeing a 1 GiB file is no part of a transfer.
func child(mode string, args ...string) (string, *cpuMark, error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, append([]string{mode}, args...)...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	r := bufio.NewReader(out)
	var addr string
	var at time.Duration
	if _, err := fmt.Fscanln(r, &addr, &at); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return "", nil, fmt.Errorf("%s: %v", mode, err)
	}
	return addr, &cpuMark{pid: cmd.Process.Pid, at: at, exit: func() time.Duration {
		var end time.Duration
		fmt.Fscanln(r, &end)
		cmd.Wait()
		return end
	}, kill: func() { cmd.Process.Kill(); cmd.Wait() }}, nil
}

func plainListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// serveFile is the minimal download server: one connection from listen,
// corked, the file copied to it (sendfile on a plain TCP connection).
func serveFile(file string, listen func() (net.Listener, error), listening bool) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	ln, err := listen()
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr(), int64(selfCPU()))
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	if listening {
		defer serverLike(ln)()
	}
	cork(c) // as Ferry's RETR: full segments; Close sends the rest
	_, err = io.Copy(c, f)
	c.Close()
	fmt.Println(int64(selfCPU()))
	return err
}

// sinkFile is the minimal upload server: one connection from listen into
// a new file (splice from a plain TCP connection).
func sinkFile(dir string, listen func() (net.Listener, error), listening bool) error {
	ln, err := listen()
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr(), int64(selfCPU()))
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	if listening {
		defer serverLike(ln)()
	}
	f, err := os.Create(filepath.Join(dir, "load-baseline.bin"))
	if err != nil {
		return err
	}
	_, err = io.Copy(f, c)
	f.Close()
	c.Close()
	fmt.Println(int64(selfCPU()))
	os.Remove(f.Name())
	return err
}

// serverLike makes a minimal program wait as every server does while it
// moves bytes: a goroutine accepting on ln, and one reading an idle
// connection (a control connection). Those are two more goroutines parked
// in the Go runtime's network poller, and that alone costs the one-stream
// copy 13-18 % here: the goroutine doing the copy is then resumed on
// whichever thread polls, rather than on its own. (A signal handler,
// allocations and goroutines parked elsewhere cost nothing.) It returns
// the function that ends both.
func serverLike(ln net.Listener) func() {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return func() {}
	}
	return func() { a.Close(); ln.Close() }
}
