package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/storage/localfs"
)

// server is a `ferry serve` process that can be killed and started again
// on the same port and root.
type server struct {
	t       *testing.T
	addr    string
	root    string
	storage string // when set, served instead of root
	wd      string
	cmd     *exec.Cmd
	done    chan struct{}
	logs    ftptest.SyncBuffer
	starts  int
}

func (s *server) start(args ...string) {
	s.t.Helper()
	for try := 0; ; try++ {
		files := []string{"--root", s.root}
		if s.storage != "" {
			files = []string{"--storage", s.storage}
		}
		cmd := exec.Command(ferryBin, append(append([]string{"serve", "--listen", s.addr, "--user", "crash"}, files...), args...)...)
		cmd.Dir = s.wd
		cmd.Env = append(os.Environ(), "FERRY_PASSWORD=crash-pw")
		cmd.Stderr = &s.logs
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			s.t.Fatal(err)
		}
		s.cmd, s.done = cmd, make(chan struct{})
		go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
		sc := bufio.NewScanner(out)
		up := false
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				up = true
				break
			}
		}
		go io.Copy(io.Discard, out)
		if up {
			s.starts++
			return
		}
		<-s.done
		if try == 20 {
			s.t.Fatalf("ferry did not start:\n%s", s.logs.String())
		}
		if s.starts == 0 && strings.Contains(s.logs.String(), "address already in use") {
			// Another test took the probed port before the first start:
			// any free port will do until the server has clients.
			host, _, _ := net.SplitHostPort(s.addr)
			s.addr = net.JoinHostPort(host, strconv.Itoa(freePort(s.t, host)))
		}
		time.Sleep(50 * time.Millisecond) // the port may still be held a moment
	}
}

func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.kill()
	}
}

// pacedReader hands out 64 KiB at a time with a millisecond between, so
// that an upload lasts long enough for the kills to land inside it.
type pacedReader struct{ r io.Reader }

func (p *pacedReader) Read(b []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return p.r.Read(b[:min(len(b), 64<<10)])
}

// content is version v of file name: a size and bytes that depend on both.
func content(name string, v int) []byte {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", name, v)
	seed := h.Sum64()
	r := rand.New(rand.NewPCG(seed, seed>>7))
	b := make([]byte, 16<<10+r.IntN(512<<10))
	for i := 0; i+8 <= len(b); i += 8 {
		x := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return b
}

// TestCrashDuringUploads kills the server with SIGKILL at random moments
// while 1,000 uploads and overwrites run from 8 clients, restarts it each
// time, and checks that every file is one complete version (old or new),
// that no upload's temporary file outlives the next start, and that no
// other file appeared or vanished.
func TestCrashDuringUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a server many times")
	}
	const files, uploads, workers, kills = 40, 1000, 8, 6
	wd := t.TempDir()
	s := &server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1"))), root: filepath.Join(wd, "root"), wd: wd}
	os.MkdirAll(s.root, 0o755)
	names := make([]string, files)
	var mu sync.Mutex
	sums := map[string]map[[32]byte]int{} // name -> content hash -> version
	for i := range names {
		names[i] = fmt.Sprintf("f%02d.bin", i)
		c := content(names[i], 0)
		os.WriteFile(filepath.Join(s.root, names[i]), c, 0o644)
		sums[names[i]] = map[[32]byte]int{sha256.Sum256(c): 0}
	}
	// Partial files of interrupted uploads wait 7 days for a resume.
	month, hour := time.Now().Add(-30*24*time.Hour), time.Now().Add(-time.Hour)
	for name, mtime := range map[string]time.Time{"part.old": month, "part.recent": hour} {
		p := filepath.Join(s.root, localfs.Prefix+name)
		os.WriteFile(p, []byte("partial"), 0o644)
		os.Chtimes(p, mtime, mtime)
	}
	s.start()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("ferry logs:\n%s", s.logs.String())
		}
	})

	var next atomic.Int64 // upload number
	var ok, failed atomic.Int64
	progress := make(chan struct{}, uploads) // a completed upload each
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *client.Client
			for {
				// A refused connection while the server restarts is no
				// upload: it takes no upload number.
				for c == nil && ctx.Err() == nil && next.Load() < uploads {
					var err error
					c, err = client.Dial(ctx, s.addr, &client.Config{User: "crash", Password: "crash-pw"})
					if err != nil {
						time.Sleep(20 * time.Millisecond) // the server is restarting
					}
				}
				n := int(next.Add(1))
				if n > uploads || ctx.Err() != nil {
					break
				}
				name := names[rand.IntN(files)]
				data := content(name, n)
				mu.Lock()
				sums[name][sha256.Sum256(data)] = n
				mu.Unlock()
				if _, err := c.Store(ctx, name, &pacedReader{r: bytes.NewReader(data)}, nil); err != nil {
					failed.Add(1)
					c.Close()
					c = nil
					continue
				}
				ok.Add(1)
				progress <- struct{}{}
			}
			if c != nil {
				c.Close()
			}
		}()
	}
	// Kill while uploads run, after a random share of them completed
	// (counted, not timed, so a slow machine gets the same mix).
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
kills:
	for k := 0; k < kills; k++ {
		for range uploads/(kills+2) - 20 + rand.IntN(40) {
			select {
			case <-progress:
			case <-workersDone:
				break kills
			}
		}
		s.kill()
		s.start()
	}
	<-workersDone
	if ctx.Err() != nil {
		t.Fatal("uploads did not finish in time")
	}
	// One more crash and start, then the sweep must leave no temporary file.
	s.kill()
	s.start()
	deadline := time.Now().Add(10 * time.Second)
	var tmp []string
	for {
		tmp = tmp[:0]
		filepath.WalkDir(s.root, func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), localfs.Prefix+"tmp.") {
				tmp = append(tmp, p)
			}
			return nil
		})
		if len(tmp) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(tmp) > 0 {
		t.Fatalf("temporary files left after a restart: %v", tmp)
	}
	removed := 0
	for _, m := range regexp.MustCompile(`removed temporary files of interrupted uploads.* files=(\d+)`).FindAllStringSubmatch(s.logs.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		removed += n
	}
	if _, err := os.Stat(filepath.Join(s.root, localfs.Prefix+"part.old")); !os.IsNotExist(err) {
		t.Errorf("a month-old partial file outlived partial_max_age: %v", err)
	} else {
		removed-- // counted among the sweeps' removals: not a crash's leftover
	}
	if _, err := os.Stat(filepath.Join(s.root, localfs.Prefix+"part.recent")); err != nil {
		t.Errorf("an hour-old partial file was removed: %v", err)
	}
	// Every file is one whole version; nothing else is there.
	ents, _ := os.ReadDir(s.root)
	seen := 0
	changed := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), localfs.Prefix) {
			continue // resumable partial files are allowed
		}
		set, known := sums[e.Name()]
		if !known {
			t.Errorf("unexpected file %s", e.Name())
			continue
		}
		seen++
		b, _ := os.ReadFile(filepath.Join(s.root, e.Name()))
		v, whole := set[sha256.Sum256(b)]
		if !whole {
			t.Errorf("%s (%d bytes) is no complete version of itself", e.Name(), len(b))
		}
		if v > 0 {
			changed++
		}
	}
	if seen != files {
		t.Errorf("%d of %d files remain", seen, files)
	}
	t.Logf("%d uploads: %d completed, %d cut by %d kills (%d starts); %d files changed; %d temporary files removed at start",
		uploads, ok.Load(), failed.Load(), s.starts-1, s.starts, changed, removed)
	if ok.Load() < uploads/2 || failed.Load() == 0 || removed == 0 {
		t.Fatalf("the run did not exercise what it should: %d ok, %d failed", ok.Load(), failed.Load())
	}
}

// TestRunAs: started as root on a privileged port, the server binds it,
// becomes nobody (every thread), and serves as nobody: its uploads belong
// to nobody and it can still reload its own state on SIGHUP.
func TestRunAs(t *testing.T) {
	needRoot(t, "run_as")
	nobody, err := user.Lookup("nobody")
	if err != nil {
		ftptest.Missing(t, "no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	wd := t.TempDir()
	os.Chmod(wd, 0o755) // nobody must reach its data directory
	os.Chmod(filepath.Dir(wd), 0o755)
	root := filepath.Join(wd, "root")
	os.Mkdir(root, 0o755)
	os.Chown(root, uid, -1)
	// A free privileged port.
	var addr string
	for p := 990; p > 900 && addr == ""; p-- {
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			addr = ln.Addr().String()
			ln.Close()
		}
	}
	if addr == "" {
		ftptest.Missing(t, "no free port below 1024")
	}
	s := &server{t: t, addr: addr, root: root, wd: wd}
	s.start("--run-as", "nobody")
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("ferry logs:\n%s", s.logs.String())
		}
	})
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	want := fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d", uid, uid, uid, uid)
	if !strings.Contains(string(status), want) {
		t.Fatalf("not running as nobody:\n%s", status)
	}
	// Every thread, not only the main one.
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", s.cmd.Process.Pid))
	for _, task := range tasks {
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", s.cmd.Process.Pid, task.Name()))
		if !strings.Contains(string(st), want) {
			t.Fatalf("thread %s is not nobody", task.Name())
		}
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.logs.String(), "privileges dropped"); {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the drop")
		}
		time.Sleep(10 * time.Millisecond) // stderr arrives through a pipe
	}
	c, err := client.Dial(context.Background(), s.addr, &client.Config{User: "crash", Password: "crash-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Store(context.Background(), "by-nobody", strings.NewReader("hello"), nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "by-nobody"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Sys().(*syscall.Stat_t).Uid != uint32(uid) {
		t.Fatalf("upload owned by uid %d", fi.Sys().(*syscall.Stat_t).Uid)
	}
	// Its own TLS certificate was handed over: SIGHUP reloads it.
	s.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.logs.String(), "reloaded") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(s.logs.String(), "level=ERROR") || !strings.Contains(s.logs.String(), "reloaded") {
		t.Fatalf("SIGHUP after the drop:\n%s", s.logs.String())
	}
}

// TestServeDefender: the defender of `ferry serve` (on by default) bans a
// guesser after the configured score, logs one fail2ban line to stderr, and
// spares an allow-listed address.
func TestServeDefender(t *testing.T) {
	wd := t.TempDir()
	conf := filepath.Join(wd, "ferry.toml")
	os.WriteFile(conf, []byte("login_fail_delay = \"-1ns\"\n[defender]\nthreshold = 4\nallow = [\"127.0.0.3\"]\n"), 0o644)
	// 0.0.0.0: reachable from 127.0.0.2 and .3; the port is probed on the
	// address it is bound to, since one free on 127.0.0.1 may be held on another.
	s := &server{t: t, addr: net.JoinHostPort("0.0.0.0", strconv.Itoa(freePort(t, "0.0.0.0"))), root: filepath.Join(wd, "root"), wd: wd}
	os.Mkdir(s.root, 0o755)
	s.start("--config", conf)
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("ferry logs:\n%s", s.logs.String())
		}
	})
	addr := strings.Replace(s.addr, "0.0.0.0", "127.0.0.1", 1)
	guess := func(from string) (greeted bool) {
		c := ftptest.DialFrom(t, addr, from)
		if code, _ := c.Read(); code != 220 {
			return false
		}
		for {
			c.Expect("USER crash", 331)
			if code, _ := c.Cmd("PASS guess"); code != 530 {
				return true // 421: too many attempts, or banned
			}
		}
	}
	for i := 0; i < 2; i++ { // 3 + 1 failures: the fourth bans
		if !guess("127.0.0.2") {
			t.Fatalf("connection %d from the guesser refused too early", i)
		}
	}
	if guess("127.0.0.2") {
		t.Fatal("the guesser is still greeted after 4 failures")
	}
	for i := 0; i < 3; i++ { // allow-listed: 9 failures, never banned
		if !guess("127.0.0.3") {
			t.Fatal("the allow-listed address was banned")
		}
	}
	for deadline := time.Now().Add(5 * time.Second); strings.Count(s.logs.String(), `msg="defender ban" ip=127.0.0.2 `) != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("want one ban line for 127.0.0.2 in the log")
		}
		time.Sleep(10 * time.Millisecond) // stderr arrives through a pipe
	}
	// Everyone else is served.
	c, err := client.Dial(context.Background(), addr, &client.Config{User: "crash", Password: "crash-pw"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestServeLoopbackNotBanned: `ferry serve` with its default defender
// (threshold 10) never bans loopback: after 15 failed logins from
// 127.0.0.1, or from ::1, the client is still greeted; with `allow = []`
// the same guessing from 127.0.0.1 is banned.
func TestServeLoopbackNotBanned(t *testing.T) {
	for _, tc := range []struct {
		name, listen string
		allowNone    bool
	}{{"127.0.0.1", "127.0.0.1:0", false}, {"::1", "[::1]:0", false}, {"allow=[]", "127.0.0.1:0", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.listen, "[") {
				ftptest.NeedIPv6(t)
			}
			args := []string{"--login-fail-delay", "-1ns"}
			if tc.allowNone {
				conf := filepath.Join(t.TempDir(), "ferry.toml")
				os.WriteFile(conf, []byte("[defender]\nallow = []\n"), 0o644)
				args = append(args, "--config", conf)
			}
			f := startFerry(t, tc.listen, args...)
			for i := 0; i < 5; i++ { // 3 failures a connection, then 421
				c := ftptest.Dial(t, f.Addr)
				if code, _ := c.Read(); code != 220 {
					break // banned
				}
				for code := 0; code != 421; {
					c.Expect("USER ferry", 331)
					code, _ = c.Cmd("PASS wrong")
				}
			}
			code, _ := ftptest.Dial(t, f.Addr).Read()
			if tc.allowNone && code != 421 {
				t.Errorf("with allow = [], loopback greeted with %d after 15 failed logins", code)
			}
			if !tc.allowNone && code != 220 {
				t.Errorf("loopback refused with %d after 15 failed logins", code)
			}
		})
	}
}
