// Package bench holds Go benchmarks that put Ferry beside a baseline doing
// the same I/O in the same run; bench/load drives any server from outside.
package bench

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryftp/ferry/auth/password"
	"github.com/ferryftp/ferry/auth/users"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage/localfs"
)

func newServer(b *testing.B, dir string) *ftptest.Server {
	fsys, err := localfs.New(dir, localfs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return ftptest.NewServer(b, ftptest.Options{FS: fsys})
}

// BenchmarkSmallFiles: 8 clients each upload and download 4 KiB files.
// One op is one file up and down.
func BenchmarkSmallFiles(b *testing.B) {
	srv := newServer(b, benchDir(b))
	payload := make([]byte, 4096)
	const clients = 8
	conns := make([]*ftptest.Conn, clients)
	for i := range conns {
		conns[i] = srv.Dial(b).Login(ftptest.Writer)
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/clients + 1
	for w, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				name := fmt.Sprintf("f-%d-%d", w, i)
				d := c.Passive()
				c.Send("STOR " + name)
				expectCode(b, c, "STOR", 150)
				d.Write(payload)
				d.Close()
				expectCode(b, c, "STOR", 226)
				d = c.Passive()
				c.Send("RETR " + name)
				expectCode(b, c, "RETR", 150)
				if n, _ := io.Copy(io.Discard, d); n != int64(len(payload)) {
					b.Errorf("RETR %s: %d bytes", name, n)
				}
				d.Close()
				expectCode(b, c, "RETR", 226)
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(2*per*clients)/b.Elapsed().Seconds(), "files/s")
}

// benchSize is the transfer size of the throughput benchmarks:
// $FERRY_BENCH_SIZE bytes, default 1 GiB.
func benchSize() int64 {
	if v, err := strconv.ParseInt(os.Getenv("FERRY_BENCH_SIZE"), 10, 64); err == nil && v > 0 {
		return v
	}
	return 1 << 30
}

func makeFile(b *testing.B, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	for w := int64(0); w < size; w += int64(len(buf)) {
		f.Write(buf[:min(int64(len(buf)), size-w)])
	}
	f.Close()
}

// sideBySide runs the baseline and Ferry alternately, b.N times each,
// swapping which goes first on every round so that neither profits from
// the order, and reports both throughputs and the ratio ferry/baseline
// measured in the same run (a shared, noisy machine makes anything else
// meaningless).
func sideBySide(b *testing.B, size int64, baseline, ferry func(b *testing.B)) {
	sideBySidePrep(b, size, nil, baseline, nil, ferry)
}

// sideBySidePrep is sideBySide with an untimed preparation before each run
// of each side (removing earlier output, so both write a new file into the
// same state and neither pays for freeing pages).
func sideBySidePrep(b *testing.B, size int64, prepBase, baseline, prepFerry, ferry func(b *testing.B)) {
	var tb, tf time.Duration
	timed := func(f func(*testing.B), acc *time.Duration) {
		prep := prepFerry
		if acc == &tb {
			prep = prepBase
		}
		if prep != nil {
			prep(b)
		}
		start := time.Now()
		f(b)
		*acc += time.Since(start)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			timed(baseline, &tb)
			timed(ferry, &tf)
		} else {
			timed(ferry, &tf)
			timed(baseline, &tb)
		}
	}
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/tb.Seconds(), "baseline-MB/s")
	b.ReportMetric(mb/tf.Seconds(), "ferry-MB/s")
	b.ReportMetric(tb.Seconds()/tf.Seconds(), "ferry/baseline")
}

// discard reads r to its end in 1 MiB reads on both sides of a download
// comparison: io.Copy to io.Discard reads 8 KiB at a time, and the
// receiver, not the server, would set the pace.
func discard(r io.Reader) (int64, error) {
	return io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, make([]byte, 1<<20))
}

// BenchmarkRETR downloads one file (from page cache or tmpfs): Ferry's RETR
// beside a minimal Go program doing the same I/O (sendfile file→socket,
// the receiver discarding), alternating in one run.
func BenchmarkRETR(b *testing.B) {
	size := benchSize()
	dir := benchDir(b)
	makeFile(b, filepath.Join(dir, "big"), size)
	srv := newServer(b, dir)
	c := srv.Dial(b).Login(ftptest.Writer)
	sideBySide(b, size, func(b *testing.B) {
		{
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			go func() {
				s, err := ln.Accept()
				if err != nil {
					return
				}
				f, _ := os.Open(filepath.Join(dir, "big"))
				io.Copy(s, f)
				f.Close()
				s.Close()
			}()
			d, _ := net.Dial("tcp", ln.Addr().String())
			n, _ := discard(d)
			d.Close()
			ln.Close()
			if n != size {
				b.Fatalf("baseline got %d", n)
			}
		}
	}, func(b *testing.B) {
		{
			d := c.Passive()
			c.Send("RETR big")
			c.Read()
			n, _ := discard(d)
			d.Close()
			if code, _ := c.Read(); code != 226 || n != size {
				b.Fatalf("RETR %d bytes, %d", n, code)
			}
		}
	})
}

// BenchmarkSTOR uploads one file: Ferry's STOR (atomic: temporary file,
// then rename) beside a minimal Go program receiving socket→file into a new
// file; both senders send a file with sendfile.
func BenchmarkSTOR(b *testing.B) {
	size := benchSize()
	dir := benchDir(b)
	src := filepath.Join(b.TempDir(), "src")
	if base := os.Getenv("FERRY_BENCH_DIR"); base != "" {
		src = filepath.Join(dir, "..", filepath.Base(dir)+"-src")
		b.Cleanup(func() { os.Remove(src) })
	}
	makeFile(b, src, size)
	srv := newServer(b, dir)
	c := srv.Dial(b).Login(ftptest.Writer)
	send := func(d net.Conn) {
		f, _ := os.Open(src)
		io.Copy(d, f)
		f.Close()
		d.Close()
	}
	// Before each run of either side, both sides' earlier files go, so each
	// writes into the same empty directory: a file the other side left
	// behind (1 GiB in tmpfs) slowed whichever side ran beside it.
	clean := func(b *testing.B) {
		os.Remove(filepath.Join(dir, "base"))
		c.Cmd("DELE up")
	}
	sideBySidePrep(b, size, clean, func(b *testing.B) {
		{
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			done := make(chan int64)
			go func() {
				s, err := ln.Accept()
				if err != nil {
					done <- 0
					return
				}
				f, _ := os.Create(filepath.Join(dir, "base"))
				n, _ := io.Copy(f, s)
				f.Close()
				s.Close()
				done <- n
			}()
			d, _ := net.Dial("tcp", ln.Addr().String())
			send(d)
			if n := <-done; n != size {
				b.Fatalf("baseline stored %d", n)
			}
			ln.Close()
		}
	}, clean, func(b *testing.B) {
		{
			d := c.Passive()
			c.Send("STOR up")
			c.Read()
			send(d)
			if code, _ := c.Read(); code != 226 {
				b.Fatalf("STOR %d", code)
			}
		}
	})
}

// expectCode reads a reply and fails the benchmark unless it has code:
// a failing server must not look fast.
func expectCode(b *testing.B, c *ftptest.Conn, what string, code int) {
	b.Helper()
	if got, text := c.Read(); got != code {
		b.Errorf("%s: %d %s, want %d", what, got, text, code)
	}
}

// BenchmarkLogins: 32 clients connect, log in with an argon2id-hashed
// password, and quit.
//
//   - cached: one user logging in again and again. After the first login
//     the users store remembers the verified password (a keyed HMAC), so
//     this measures the session and the protocol, not argon2id. Quote it
//     as such.
//   - first: a different user at every login, so each one pays a full
//     argon2id verification (19 MiB, 2 passes), as a server's first
//     logins after a start and every wrong password do.
func BenchmarkLogins(b *testing.B) {
	dir := benchDir(b)
	h, _ := password.Hash("pw")
	usersFile := filepath.Join(dir, "users.toml")
	os.Mkdir(filepath.Join(dir, "home"), 0o755)
	const many = 2000
	list := []users.User{{Name: "u", Password: h, Home: "home"}}
	for i := range many {
		list = append(list, users.User{Name: fmt.Sprintf("u%d", i), Password: h, Home: "home"})
	}
	users.Save(usersFile, list)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &server.Server{Auth: &users.Store{Path: usersFile}, Logger: slog.New(slog.DiscardHandler)}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()
	login := func(user string) {
		c := ftptest.Dial(b, addr)
		c.Read()
		c.Expect("USER "+user, 331)
		c.Expect("PASS pw", 230)
		c.Expect("QUIT", 221)
		c.C.Close()
	}
	b.Run("cached", func(b *testing.B) {
		b.SetParallelism(16) // 16 × GOMAXPROCS(2) = 32 clients
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				login("u")
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
	var next atomic.Int64
	b.Run("first", func(b *testing.B) {
		if next.Load()+int64(b.N) > many {
			b.Skipf("%d first logins asked for, %d users made", b.N, many)
		}
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				login(fmt.Sprintf("u%d", next.Add(1)-1))
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
}

// benchDir is a fresh directory under $FERRY_BENCH_DIR (e.g. /dev/shm, to
// keep the disk out of a CPU comparison), or under the test's temp dir.
func benchDir(b *testing.B) string {
	base := os.Getenv("FERRY_BENCH_DIR")
	if base == "" {
		return b.TempDir()
	}
	d, err := os.MkdirTemp(base, "ferry-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// BenchmarkList100k lists a directory of 100,000 files with LIST and MLSD.
func BenchmarkList100k(b *testing.B) {
	dir := benchDir(b)
	big := filepath.Join(dir, "big")
	os.Mkdir(big, 0o755)
	for i := 0; i < 100000; i++ {
		f, err := os.Create(filepath.Join(big, fmt.Sprintf("file-%06d.dat", i)))
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	srv := newServer(b, dir)
	c := srv.Dial(b).Login(ftptest.Writer)
	for _, verb := range []string{"LIST", "MLSD", "NLST"} {
		b.Run(verb, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				d := c.Passive()
				c.Send(verb + " big")
				expectCode(b, c, verb, 150)
				n, _ := io.Copy(io.Discard, d)
				d.Close()
				expectCode(b, c, verb, 226)
				if n < 100000*10 {
					b.Fatalf("%s: %d bytes for 100,000 entries", verb, n)
				}
				b.SetBytes(n)
			}
		})
	}
}

// BenchmarkSyncUploads: the cost of localfs Options.Sync (sync_uploads),
// which fsyncs each upload and its directory before the upload counts as
// done. One op is one upload of 4 KiB and one of 8 MiB, with Sync off and
// on alternating in one run, on the file system of FERRY_SYNC_DIR (default
// the system's temporary directory: fsync on tmpfs costs nothing).
func BenchmarkSyncUploads(b *testing.B) {
	base := os.Getenv("FERRY_SYNC_DIR")
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "ferry-sync")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	small, big := make([]byte, 4096), make([]byte, 8<<20)
	var took [2][2]time.Duration // [sync][small, big]
	conns := map[bool]*ftptest.Conn{}
	for _, sync := range []bool{false, true} {
		sub := filepath.Join(dir, fmt.Sprint(sync))
		os.Mkdir(sub, 0o755)
		fsys, err := localfs.New(sub, localfs.Options{Sync: sync})
		if err != nil {
			b.Fatal(err)
		}
		defer fsys.Close()
		srv := ftptest.NewServer(b, ftptest.Options{FS: fsys})
		conns[sync] = srv.Dial(b).Login(ftptest.Writer)
	}
	put := func(c *ftptest.Conn, name string, data []byte) time.Duration {
		start := time.Now()
		d := c.Passive()
		c.Send("STOR " + name)
		c.Read()
		d.Write(data)
		d.Close()
		if code, _ := c.Read(); code != 226 {
			b.Fatalf("STOR: %d", code)
		}
		return time.Since(start)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, sync := range []bool{i%2 == 0, i%2 != 0} { // alternate which goes first
			s := 0
			if sync {
				s = 1
			}
			took[s][0] += put(conns[sync], fmt.Sprintf("small-%d", i), small)
			took[s][1] += put(conns[sync], fmt.Sprintf("big-%d", i), big)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(took[0][0].Microseconds())/n, "µs/4KiB")
	b.ReportMetric(float64(took[1][0].Microseconds())/n, "µs/4KiB-sync")
	b.ReportMetric(float64(took[0][1].Microseconds())/n, "µs/8MiB")
	b.ReportMetric(float64(took[1][1].Microseconds())/n, "µs/8MiB-sync")
}
