package client_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/localfs"
)

func dial(t testing.TB, addr string, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.User == "" {
		cfg.User, cfg.Password = ftptest.Writer, ftptest.Password
	}
	cfg.Timeout = 10 * time.Second
	c, err := client.Dial(context.Background(), addr, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func get(t testing.TB, c *client.Client, p string, opts *client.TransferOptions) []byte {
	t.Helper()
	d, err := c.Retrieve(context.Background(), p, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEveryMode runs the library's operations in each data mode over IPv4
// and IPv6, on local disk (the zero-copy paths) and in memory.
func TestEveryMode(t *testing.T) {
	modes := []struct {
		name string
		cfg  client.Config
	}{
		{"EPSV", client.Config{}},
		{"PASV", client.Config{DisableEPSV: true}},
		{"EPRT", client.Config{Active: true}},
		{"EPRT range", client.Config{Active: true, ActivePorts: client.PortRange{Min: 40000, Max: 40100}}},
	}
	for _, network := range []string{"tcp4", "tcp6"} {
		for _, backend := range []string{"localfs", "memfs"} {
			var fsys storage.FS
			if backend == "localfs" {
				var err error
				if fsys, err = localfs.New(t.TempDir(), localfs.Options{}); err != nil {
					t.Fatal(err)
				}
			}
			srv := ftptest.NewServer(t, ftptest.Options{Network: network, FS: fsys})
			for _, m := range modes {
				if m.cfg.DisableEPSV && network == "tcp6" {
					continue // PASV is IPv4 only
				}
				t.Run(network+"/"+backend+"/"+m.name, func(t *testing.T) {
					exercise(t, dial(t, srv.Addr, m.cfg), strings.ReplaceAll(m.name, " ", "-"))
				})
			}
		}
	}
}

func exercise(t *testing.T, c *client.Client, dir string) {
	ctx := context.Background()
	if err := c.MkdirAll(ctx, dir+"/sub/deeper"); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangeDir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if c.Dir() != "/"+dir {
		t.Fatalf("Dir = %q", c.Dir())
	}
	data := random(3<<20 + 17)
	var last int64
	n, err := c.Store(ctx, "a.bin", bytes.NewReader(data), &client.TransferOptions{Progress: func(d int64) { last = d }})
	if err != nil || n != int64(len(data)) || last != n {
		t.Fatalf("Store: %d, %v, progress %d", n, err, last)
	}
	if got := get(t, c, "a.bin", nil); !bytes.Equal(got, data) {
		t.Fatalf("Retrieve: %d bytes, want %d", len(got), len(data))
	}
	// REST: the tail only.
	if got := get(t, c, "a.bin", &client.TransferOptions{Offset: 1000}); !bytes.Equal(got, data[1000:]) {
		t.Fatal("Retrieve from offset")
	}
	// From and to *os.File: sendfile and splice.
	local := filepath.Join(t.TempDir(), "local")
	os.WriteFile(local, data, 0o644)
	f, _ := os.Open(local)
	if n, err := c.Store(ctx, "sub/b.bin", f, nil); err != nil || n != int64(len(data)) {
		t.Fatalf("Store from file: %d, %v", n, err)
	}
	f.Close()
	out, _ := os.Create(local + ".out")
	d, err := c.Retrieve(ctx, "sub/b.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(out, d); err != nil || n != int64(len(data)) {
		t.Fatalf("Retrieve to file: %d, %v", n, err)
	}
	d.Close()
	out.Close()
	if got, _ := os.ReadFile(local + ".out"); !bytes.Equal(got, data) {
		t.Fatal("Retrieve to file: content differs")
	}
	// Append and a REST store.
	if _, err := c.Store(ctx, "sub/b.bin", strings.NewReader("tail"), &client.TransferOptions{Append: true}); err != nil {
		t.Fatal(err)
	}
	if sz, err := c.Size(ctx, "sub/b.bin"); err != nil || sz != int64(len(data))+4 {
		t.Fatalf("Size after APPE: %d, %v", sz, err)
	}
	if _, err := c.Store(ctx, "c.txt", strings.NewReader("hello"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(ctx, "c.txt", strings.NewReader("LO!"), &client.TransferOptions{Offset: 3}); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, c, "c.txt", nil)); got != "helLO!" {
		t.Fatalf("after REST STOR: %q", got)
	}
	// Listings.
	entries, err := c.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name+":"+e.Type.String())
		if e.Name == "a.bin" && e.Size != int64(len(data)) {
			t.Errorf("a.bin size %d", e.Size)
		}
	}
	slices.Sort(names)
	if want := []string{"a.bin:file", "c.txt:file", "sub:dir"}; !slices.Equal(names, want) {
		t.Fatalf("List: %v, want %v", names, want)
	}
	nl, err := c.NameList(ctx, "sub")
	if err != nil || len(nl) != 2 {
		t.Fatalf("NameList: %v, %v", nl, err)
	}
	// Times and hashes.
	when := time.Date(2020, 2, 29, 12, 34, 56, 0, time.UTC)
	if err := c.SetModTime(ctx, "a.bin", when); err != nil {
		t.Fatal(err)
	}
	if mt, err := c.ModTime(ctx, "a.bin"); err != nil || !mt.Equal(when) {
		t.Fatalf("ModTime: %v, %v", mt, err)
	}
	if e, err := c.Stat(ctx, "a.bin"); err != nil || e.Type != ftp.TypeFile || !e.ModTime.Equal(when) || e.Size != int64(len(data)) {
		t.Fatalf("Stat: %+v, %v", e, err)
	}
	if e, err := c.Stat(ctx, "sub"); err != nil || e.Type != ftp.TypeDir {
		t.Fatalf("Stat dir: %+v, %v", e, err)
	}
	sum := sha256.Sum256(data)
	if alg, h, err := c.Hash(ctx, "a.bin", ""); err != nil || alg != client.SHA256 || h != hex.EncodeToString(sum[:]) {
		t.Fatalf("Hash: %s %s, %v", alg, h, err)
	}
	if _, h, err := c.Hash(ctx, "c.txt", client.MD5); err != nil || h != fmt.Sprintf("%x", md5.Sum([]byte("helLO!"))) {
		t.Fatalf("Hash MD5: %s, %v", h, err)
	}
	// Walk, rename, delete, remove all.
	var walked []string
	err = c.Walk(ctx, "/"+dir, func(p string, e client.Entry, err error) error {
		if err != nil {
			return err
		}
		walked = append(walked, p)
		return nil
	})
	want := []string{"/" + dir, "/" + dir + "/a.bin", "/" + dir + "/c.txt", "/" + dir + "/sub", "/" + dir + "/sub/b.bin", "/" + dir + "/sub/deeper"}
	if err != nil || !slices.Equal(walked, want) {
		t.Fatalf("Walk: %v, %v\nwant %v", walked, err, want)
	}
	if err := c.Rename(ctx, "c.txt", "sub/d.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Size(ctx, "c.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("renamed file still there: %v", err)
	}
	if err := c.Delete(ctx, "sub/d.txt"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rmdir(ctx, "sub"); err == nil {
		t.Fatal("Rmdir of a non-empty directory succeeded")
	}
	if err := c.RemoveAll(ctx, "/"+dir); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stat(ctx, "/"+dir); err == nil {
		t.Fatal("RemoveAll left the directory")
	}
	var fe *client.Error
	if _, err := c.Retrieve(ctx, "/nope", nil); !errors.As(err, &fe) || fe.Code != 550 || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if r, err := c.Quote(ctx, "SYST"); err != nil || r.Code != 215 {
		t.Fatalf("Quote: %v, %v", r, err)
	}
}

// TestConcurrent: many goroutines share a client of three connections.
func TestConcurrent(t *testing.T) {
	srv := ftptest.NewServer(t, ftptest.Options{})
	c := dial(t, srv.Addr, client.Config{MaxConns: 3})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			data := random(100<<10 + i)
			name := fmt.Sprintf("f%d", i)
			if _, err := c.Store(ctx, name, bytes.NewReader(data), nil); err != nil {
				errs <- err
				return
			}
			d, err := c.Retrieve(ctx, name, nil)
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(d)
			d.Close()
			if err != nil || !bytes.Equal(got, data) {
				errs <- fmt.Errorf("%s: %d bytes, %v", name, len(got), err)
				return
			}
			if _, err := c.List(ctx, "/"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.Sessions(); n > 3 {
		t.Fatalf("%d sessions open, MaxConns is 3", n)
	}
}

// TestCancel: cancelling the context aborts a download and an upload
// promptly; the upload leaves the old file as it was, and the client keeps
// working.
func TestCancel(t *testing.T) {
	for _, active := range []bool{false, true} {
		srv := ftptest.NewServer(t, ftptest.Options{})
		c := dial(t, srv.Addr, client.Config{Active: active, MaxConns: 1})
		ctx := context.Background()
		big := random(8 << 20)
		if _, err := c.Store(ctx, "big", bytes.NewReader(big), nil); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		d, err := c.Retrieve(cctx, "big", nil)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1000)
		if _, err := io.ReadFull(d, buf); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := io.ReadAll(d); !errors.Is(err, context.Canceled) {
			t.Fatalf("read after cancel: %v", err)
		}
		d.Close()

		// An upload whose reader stalls: cancelled, the old file stays.
		cctx, cancel = context.WithCancel(ctx)
		pr, pw := io.Pipe()
		go func() {
			pw.Write(random(64 << 10))
			cancel()
		}()
		if _, err := c.Store(cctx, "big", pr, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Store after cancel: %v", err)
		}
		pw.Close()
		if got := get(t, c, "big", nil); !bytes.Equal(got, big) {
			t.Fatalf("old file changed by a cancelled upload: %d bytes", len(got))
		}
		// A context that is already done sends nothing.
		if _, err := c.Size(cctx, "big"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Size with a done context: %v", err)
		}
	}
}

// failingConn drops the connection after limit bytes were read.
type failingConn struct {
	net.Conn
	left int
}

func (f *failingConn) Read(p []byte) (int, error) {
	if f.left <= 0 {
		f.Conn.Close()
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset (test)")}
	}
	if len(p) > f.left {
		p = p[:f.left]
	}
	n, err := f.Conn.Read(p)
	f.left -= n
	return n, err
}

// TestResume: a download whose data connection drops twice still returns
// every byte, resumed with REST.
func TestResume(t *testing.T) {
	srv := ftptest.NewServer(t, ftptest.Options{})
	data := random(5 << 20)
	var transcript bytes.Buffer
	var mu sync.Mutex
	dials := 0
	cfg := client.Config{
		Transcript: &lockedWriter{w: &transcript, mu: &mu},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil || addr == srv.Addr {
				return nc, err
			}
			mu.Lock()
			dials++
			n := dials
			mu.Unlock()
			if n == 2 || n == 3 { // the first two data connections of the download
				return &failingConn{Conn: nc, left: 1 << 20}, nil
			}
			return nc, nil
		},
	}
	c := dial(t, srv.Addr, cfg)
	if _, err := c.Store(context.Background(), "r.bin", bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c, "r.bin", nil); !bytes.Equal(got, data) {
		t.Fatalf("resumed download: %d bytes, want %d", len(got), len(data))
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(transcript.String(), "> REST 1048576") || !strings.Contains(transcript.String(), "> REST 2097152") {
		t.Fatalf("no REST in the transcript:\n%s", transcript.String())
	}
}

// watchWriter passes writes on to w and closes seen at the first write
// holding watch.
type watchWriter struct {
	w     io.Writer
	watch string
	seen  chan struct{}
	once  sync.Once
}

func (w *watchWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(w.watch)) {
		defer w.once.Do(func() { close(w.seen) })
	}
	return w.w.Write(p)
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestArgumentsAndTranscript: CR or LF in a path is refused before
// anything is sent; the transcript never shows the password.
func TestArgumentsAndTranscript(t *testing.T) {
	srv := ftptest.NewServer(t, ftptest.Options{})
	var tr bytes.Buffer
	c := dial(t, srv.Addr, client.Config{Transcript: &tr})
	ctx := context.Background()
	for _, p := range []string{"a\r\nDELE x", "b\nc", "nul\x00"} {
		if err := c.Delete(ctx, p); !errors.Is(err, client.ErrBadArgument) {
			t.Errorf("Delete(%q): %v", p, err)
		}
		if _, err := c.Retrieve(ctx, p, nil); !errors.Is(err, client.ErrBadArgument) {
			t.Errorf("Retrieve(%q): %v", p, err)
		}
		if err := c.Rename(ctx, "x", p); !errors.Is(err, client.ErrBadArgument) {
			t.Errorf("Rename to %q: %v", p, err)
		}
	}
	if strings.Contains(tr.String(), "DELE") || strings.Contains(tr.String(), "RNFR") {
		t.Fatalf("a refused command reached the wire:\n%s", tr.String())
	}
	if strings.Contains(tr.String(), ftptest.Password) || !strings.Contains(tr.String(), "> PASS ****") {
		t.Fatalf("transcript shows the password or no PASS line:\n%s", tr.String())
	}
	if _, err := client.Dial(ctx, srv.Addr, &client.Config{User: "alice", Password: "wrong", Timeout: 5 * time.Second}); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("wrong password: %v", err)
	} else if fe := new(client.Error); !errors.As(err, &fe) || !fe.Login || fe.Code != 530 || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong password: %#v", err)
	}
}

// TestFXP copies between two servers on different loopback addresses,
// driven from a third: refused without the FXP permission (then relayed,
// or refused outright with NoRelay), direct with it.
func TestFXP(t *testing.T) {
	a := ftptest.NewServer(t, ftptest.Options{Addr: "127.0.0.2:0"})
	b := ftptest.NewServer(t, ftptest.Options{Addr: "127.0.0.3:0"})
	cfg := client.Config{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
		return d.DialContext(ctx, network, addr)
	}}
	ca, cb := dial(t, a.Addr, cfg), dial(t, b.Addr, cfg)
	ctx := context.Background()
	data := random(2<<20 + 3)
	if _, err := ca.Store(ctx, "src.bin", bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	src, dst := client.Location{Client: ca, Path: "src.bin"}, client.Location{Client: cb, Path: "dst.bin"}

	if _, err := client.Copy(ctx, src, dst, &client.CopyOptions{NoRelay: true}); !errors.Is(err, client.ErrFXPRefused) {
		t.Fatalf("FXP without permission: %v", err)
	}
	var relayed int64
	res, err := client.Copy(ctx, src, dst, &client.CopyOptions{Progress: func(n int64) { relayed = n }})
	if err != nil || res.Method != client.MethodRelay || res.FXPError == nil || res.Bytes != int64(len(data)) || relayed != res.Bytes {
		t.Fatalf("relay: %+v, %v", res, err)
	}
	if res.HashAlg != client.SHA256 {
		t.Fatalf("relay not verified by hash: %+v", res)
	}
	if got := get(t, cb, "dst.bin", nil); !bytes.Equal(got, data) {
		t.Fatal("relayed copy differs")
	}

	lo := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	a.FXP, b.FXP = lo, lo
	// New sessions pick up the permission.
	ca, cb = dial(t, a.Addr, cfg), dial(t, b.Addr, cfg)
	src, dst = client.Location{Client: ca, Path: "src.bin"}, client.Location{Client: cb, Path: "fxp.bin"}
	res, err = client.Copy(ctx, src, dst, nil)
	if err != nil || res.Method != client.MethodFXP || res.Bytes != int64(len(data)) || res.HashAlg == "" {
		t.Fatalf("FXP: %+v, %v", res, err)
	}
	if got := get(t, cb, "fxp.bin", nil); !bytes.Equal(got, data) {
		t.Fatal("FXP copy differs")
	}
	// And back the other way, into a directory that does not exist: the
	// destination's refusal is reported, not hidden by a relay.
	if _, err := client.Copy(ctx, dst, client.Location{Client: ca, Path: "/no/such/dir/x"}, nil); err == nil {
		t.Fatal("copy into a missing directory succeeded")
	}
}

// TestHost: HOST goes before USER; an unknown host is refused with the
// server's reply, a known one logs in.
func TestHost(t *testing.T) {
	srv := ftptest.NewServer(t, ftptest.Options{Config: func(s *server.Server) { s.Hosts = []string{"files.example"} }})
	var tr bytes.Buffer
	c := dial(t, srv.Addr, client.Config{Host: "files.example", Transcript: &tr})
	if err := c.NoOp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if i, j := strings.Index(tr.String(), "> HOST files.example"), strings.Index(tr.String(), "> USER"); i < 0 || j < i {
		t.Fatalf("HOST not sent before USER:\n%s", tr.String())
	}
	_, err := client.Dial(context.Background(), srv.Addr, &client.Config{Host: "other.example", User: ftptest.Writer, Password: ftptest.Password})
	var fe *client.Error
	if !errors.As(err, &fe) || fe.Cmd != "HOST" || fe.Code != 504 {
		t.Fatalf("unknown host: %v", err)
	}
}

// TestRetryRefused: an upload the server refuses for now (450: a resume
// of a file whose upload is still running) is asked again after a wait,
// and goes through once the other upload has ended; a refusal for good
// (550) is not asked again, nor is anything with Retries negative.
func TestRetryRefused(t *testing.T) {
	root := t.TempDir()
	lfs, err := localfs.New(root, localfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := ftptest.NewServer(t, ftptest.Options{FS: lfs})
	data := random(64 << 10)

	// Another session uploads the first KiB and holds the upload open.
	a := srv.Dial(t).Login(ftptest.Writer)
	adc := a.Passive()
	a.Expect("STOR f.bin", 150)
	if _, err := adc.Write(data[:1024]); err != nil {
		t.Fatal(err)
	}

	var transcript bytes.Buffer
	var mu sync.Mutex
	refused := make(chan struct{})
	tw := &watchWriter{w: &lockedWriter{w: &transcript, mu: &mu}, watch: "< 450 ", seen: refused}
	c := dial(t, srv.Addr, client.Config{Transcript: tw, RetryWait: 20 * time.Millisecond, Retries: 10})
	done := make(chan error, 1)
	go func() {
		_, err := c.Store(context.Background(), "f.bin", bytes.NewReader(data[1024:]), &client.TransferOptions{Offset: 1024})
		done <- err
	}()
	said := func(s string) int {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(transcript.String(), s)
	}
	select {
	case <-refused:
	case err := <-done:
		t.Fatalf("the resume ended before any refusal: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatalf("no 450 for the resume of a running upload:\n%s", transcript.String())
	}
	// The other upload is cut: its first KiB stays for the resume.
	adc.(*net.TCPConn).SetLinger(0)
	adc.Close()
	if err := <-done; err != nil {
		t.Fatalf("the retried resume failed: %v\n%s", err, transcript.String())
	}
	if got, _ := os.ReadFile(filepath.Join(root, "f.bin")); !bytes.Equal(got, data) {
		t.Fatalf("the file after the retried resume: %d bytes, want %d", len(got), len(data))
	}
	if n := said("> STOR /f.bin"); n < 2 {
		t.Fatalf("STOR sent %d times, want a retry:\n%s", n, transcript.String())
	}

	// Refused for good: asked once.
	before := said("> STOR ")
	if _, err := c.Store(context.Background(), "no/such/dir/f.bin", bytes.NewReader(data), nil); err == nil {
		t.Fatal("a store into a missing directory succeeded")
	}
	if n := said("> STOR ") - before; n != 1 {
		t.Fatalf("a 550 was asked %d times", n)
	}

	// Retries negative: a 450 is the answer.
	a2 := srv.Dial(t).Login(ftptest.Writer)
	a2dc := a2.Passive()
	a2.Expect("STOR g.bin", 150)
	a2dc.Write(data[:1024])
	defer a2dc.Close()
	once := dial(t, srv.Addr, client.Config{Retries: -1, RetryWait: time.Hour})
	_, err = once.Store(context.Background(), "g.bin", bytes.NewReader(data[1024:]), &client.TransferOptions{Offset: 1024})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != ftp.CodeFileUnavailable {
		t.Fatalf("with Retries -1: %v, want the 450", err)
	}
}

// TestCopyReadSize: io.Copy from a download to a writer that has a
// ReadFrom of its own (io.Discard reads 8 KiB at a time) still reads the
// data connection in the download's large reads, and passes every byte.
func TestCopyReadSize(t *testing.T) {
	srv := ftptest.NewServer(t, ftptest.Options{})
	c := dial(t, srv.Addr, client.Config{})
	data := random(4 << 20)
	if _, err := c.Store(context.Background(), "big.bin", bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	d, err := c.Retrieve(context.Background(), "big.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	var w smallReaderFrom
	if _, err := io.Copy(&w, d); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	switch {
	case w.readFrom:
		t.Fatal("the download was copied by the writer's ReadFrom")
	case !bytes.Equal(w.got.Bytes(), data):
		t.Fatalf("got %d bytes, want %d", w.got.Len(), len(data))
	case w.most <= 8<<10 || w.most > 256<<10:
		t.Fatalf("largest write %d bytes, want more than 8 KiB and at most 256 KiB", w.most)
	}
}

// smallReaderFrom keeps what it is written and the largest write, and
// notes a call of its ReadFrom (which would read 8 KiB at a time).
type smallReaderFrom struct {
	got      bytes.Buffer
	most     int
	readFrom bool
}

func (w *smallReaderFrom) Write(p []byte) (int, error) {
	w.most = max(w.most, len(p))
	return w.got.Write(p)
}

func (w *smallReaderFrom) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom = true
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, make([]byte, 8<<10))
}
