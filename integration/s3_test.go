package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/internal/s3test"
)

// seeded returns n pseudo-random bytes from seed.
func seeded(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

// fileSum is the SHA-256 of a file.
func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return [32]byte(h.Sum(nil))
}

// objectSum is the SHA-256 of an object, read straight from the store.
func objectSum(t *testing.T, gw *s3test.Server, bucket, key string) [32]byte {
	t.Helper()
	out, err := gw.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	io.Copy(h, out.Body)
	return [32]byte(h.Sum(nil))
}

// TestS3Clients: curl, lftp and Ferry's own client upload and download
// 1 GiB through a server on versitygw, the SHA-256 equal both ways.
func TestS3Clients(t *testing.T) {
	gw := s3test.Start(t)
	curl, lftp := need(t, "curl"), need(t, "lftp")
	bucket := gw.Bucket(t)
	gw.SetEnv(t)
	f := startFerry(t, "127.0.0.1:0", "--storage", gw.URL(bucket, "files", ""))
	size := 1 << 30
	if testing.Short() {
		size = 40 << 20
	}
	local := t.TempDir()
	src := filepath.Join(local, "src.bin")
	if err := os.WriteFile(src, seeded(1, size), 0o644); err != nil {
		t.Fatal(err)
	}
	want := fileSum(t, src)
	userURL := func(scheme string) string {
		return scheme + "://" + f.User + ":" + f.Password + "@" + f.Addr
	}
	for _, tc := range []struct {
		name     string
		up, down func(name, dst string)
	}{
		{"curl",
			func(name, _ string) { run(t, curl, "-sS", "--fail", "-T", src, userURL("ftp")+"/"+name) },
			func(name, dst string) { run(t, curl, "-sS", "--fail", "-o", dst, userURL("ftp")+"/"+name) }},
		{"lftp",
			// The 226 of a 1 GiB upload waits for the last parts and the
			// completion, which a loaded machine's versitygw has taken
			// more than lftp's usual 10 s of silence to finish.
			func(name, _ string) { run(t, lftp, "-c", lftpScript(f, "set net:timeout 50", "put "+src+" -o "+name)) },
			func(name, dst string) { run(t, lftp, "-c", lftpScript(f, "get "+name+" -o "+dst)) }},
		{"ferry",
			func(name, _ string) { run(t, ferryBin, "put", src, userURL("ftp")+"/"+name) },
			func(name, dst string) { run(t, ferryBin, "get", userURL("ftp")+"/"+name, dst) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.name + ".bin"
			tc.up(name, "")
			if got := objectSum(t, gw, bucket, "files/"+name); got != want {
				t.Fatal("the stored object differs from the upload")
			}
			dst := filepath.Join(local, "got-"+name)
			tc.down(name, dst)
			if got := fileSum(t, dst); got != want {
				t.Fatal("the download differs")
			}
			os.Remove(dst)
		})
	}
}

// cutReader hands out data up to cut bytes, then blocks until release
// is closed and fails: an upload that stops mid-way.
type cutReader struct {
	data    []byte
	cut     int
	off     int
	release chan struct{}
}

func (r *cutReader) Read(p []byte) (int, error) {
	if r.off >= r.cut {
		<-r.release
		return 0, errors.New("cut")
	}
	n := copy(p[:min(len(p), r.cut-r.off)], r.data[r.off:])
	r.off += n
	return n, nil
}

// storedParts is the bytes in the stored parts of key's pending upload.
func storedParts(t *testing.T, gw *s3test.Server, bucket, key string) int64 {
	t.Helper()
	ctx := context.Background()
	ups, err := gw.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket, Prefix: &key})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, u := range ups.Uploads {
		parts, err := gw.Client().ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: u.Key, UploadId: u.UploadId})
		if ae, ok := errors.AsType[smithy.APIError](err); ok && ae.ErrorCode() == "NoSuchUpload" {
			continue // aborted since it was listed
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts.Parts {
			n += aws.ToInt64(p.Size)
		}
	}
	return n
}

// waitStored waits until key's pending upload has stored n bytes.
func waitStored(t *testing.T, gw *s3test.Server, bucket, key string, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for storedParts(t, gw, bucket, key) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d bytes stored after a minute, want %d", key, storedParts(t, gw, bucket, key), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestS3ResumeAcrossServers: a 200 MiB upload is cut by SIGKILL on one
// server (beside an overwrite of another file, which leaves the old object
// byte for byte), resumed on a second server sharing the bucket and cut
// again, then finished on the first one restarted; each resume (SIZE,
// REST, STOR) re-sends less than one part, and the final object's SHA-256
// is the file's.
func TestS3ResumeAcrossServers(t *testing.T) {
	gw := s3test.Start(t)
	bucket := gw.Bucket(t)
	gw.SetEnv(t)
	const part = 8 << 20
	url := gw.URL(bucket, "site", "part_size=8MiB&concurrency=3")
	servers := make([]*server, 2)
	for i := range servers {
		wd := t.TempDir()
		servers[i] = &server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1"))), storage: url, wd: wd}
		servers[i].start()
		defer servers[i].stop()
	}
	a, b := servers[0], servers[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dial := func(s *server) *client.Client {
		c, err := client.Dial(ctx, s.addr, &client.Config{User: "crash", Password: "crash-pw", Retries: -1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := seeded(2, 3<<20)
	c := dial(a)
	if _, err := c.Store(ctx, "old.bin", bytes.NewReader(old), nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	oldSum, data := sha256.Sum256(old), seeded(3, 200<<20)
	sameOld := func(when string) {
		if got := objectSum(t, gw, bucket, "site/old.bin"); got != oldSum {
			t.Fatalf("%s: the old object changed", when)
		}
	}

	// upload sends data from offset through the server until cut bytes
	// are sent, then returns what to call to cut it (and waits for the
	// upload's end).
	upload := func(s *server, name string, offset, cut int, stored int64) (cutNow func(kill bool)) {
		c := dial(s)
		r := &cutReader{data: data[offset:], cut: cut - offset, release: make(chan struct{})}
		done := make(chan error, 1)
		go func() {
			_, err := c.Store(ctx, name, r, &client.TransferOptions{Offset: int64(offset)})
			done <- err
		}()
		waitStored(t, gw, bucket, "site/"+name, stored)
		sameOld("during the uploads")
		return func(kill bool) {
			if kill {
				s.kill()
			}
			close(r.release)
			if err := <-done; err == nil {
				t.Fatal("the cut upload succeeded")
			}
			c.Close()
		}
	}
	resumeAt := func(s *server, sent int) int {
		c := dial(s)
		defer c.Close()
		n, err := c.Size(ctx, "big.bin")
		if err != nil {
			t.Fatal(err)
		}
		if n > int64(sent) || int64(sent)-n >= part {
			t.Fatalf("SIZE says %d stored of %d sent: want less than one part (%d) to re-send", n, sent, part)
		}
		return int(n)
	}

	sent := 100<<20 + 3<<20
	overwrite := upload(a, "old.bin", 0, 50<<20, 6*part)
	upload(a, "big.bin", 0, sent, 12*part)(true) // SIGKILL with 103 MiB sent
	overwrite(false)
	sameOld("after the kill")
	off := resumeAt(b, sent)
	sent = 160 << 20
	upload(b, "big.bin", off, sent, 20*part)(false) // the connection drops
	a.start()
	off = resumeAt(a, sent)
	c = dial(a)
	defer c.Close()
	if _, err := c.Store(ctx, "big.bin", bytes.NewReader(data[off:]), &client.TransferOptions{Offset: int64(off)}); err != nil {
		t.Fatalf("final resume: %v", err)
	}
	if got := objectSum(t, gw, bucket, "site/big.bin"); got != sha256.Sum256(data) {
		t.Fatal("the resumed object differs")
	}
	if n := storedParts(t, gw, bucket, "site/big.bin"); n != 0 {
		t.Errorf("%d bytes of parts left pending", n)
	}
	sameOld("at the end")
}

// TestS3Hostile: a user confined to a prefix cannot read, list, write,
// rename or delete any key outside it, whatever the path says.
func TestS3Hostile(t *testing.T) {
	gw := s3test.Start(t)
	curl := need(t, "curl")
	bucket := gw.Bucket(t)
	gw.SetEnv(t)
	ctx := context.Background()
	outside := map[string]string{"secret": "top secret", "home/bob/secret": "bob's secret", "home/alicex/secret": "sibling"}
	for k, v := range outside {
		if _, err := gw.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: strings.NewReader(v)}); err != nil {
			t.Fatal(err)
		}
	}
	f := startFerry(t, "127.0.0.1:0", "--storage", gw.URL(bucket, "home/alice", ""))
	c, err := client.Dial(ctx, f.Addr, &client.Config{User: f.User, Password: f.Password, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Store(ctx, "mine.txt", strings.NewReader("mine"), nil); err != nil {
		t.Fatal(err)
	}
	paths := []string{"../bob/secret", "../../secret", "/../../secret", `..\..\secret`, `..\bob\secret`,
		"a/../../../secret", "%2E%2E/bob/secret", "..%2Fbob%2Fsecret", "../alicex/secret", "/home/bob/secret"}
	for _, p := range paths {
		if d, err := c.Retrieve(ctx, p, nil); err == nil {
			got, _ := io.ReadAll(d)
			d.Close()
			for _, v := range outside {
				if strings.Contains(string(got), v) {
					t.Errorf("RETR %q read a key outside the prefix", p)
				}
			}
		}
		for _, cmd := range []string{"DELE " + p, "MKD " + p + "x", "RNFR mine.txt", "RNTO " + p + "x", "CWD " + p, "SIZE " + p} {
			c.Quote(ctx, cmd)
		}
		c.Store(ctx, p+"-new", strings.NewReader("evil"), nil)
		if es, err := c.List(ctx, p); err == nil {
			for _, e := range es {
				if e.Name == "secret" {
					t.Errorf("LIST %q listed a key outside the prefix", p)
				}
			}
		}
		// curl sends the path as it is, one CWD per element.
		args := []string{"-sS", "--user", f.User + ":" + f.Password, f.URL + "/" + strings.ReplaceAll(p, `\`, "%5C")}
		if out, _ := runOut(curl, args...); strings.Contains(out, "secret") && !strings.Contains(p, "alicex") {
			t.Errorf("curl %q: %q", p, out)
		}
	}
	keys := gw.Keys(t, bucket)
	for _, k := range keys {
		if _, ok := outside[k]; !ok && !strings.HasPrefix(k, "home/alice/") {
			t.Errorf("a key outside the prefix: %q", k)
		}
	}
	for k, v := range outside {
		out, err := gw.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(k)})
		if err != nil {
			t.Fatalf("%s is gone: %v", k, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(got) != v {
			t.Errorf("%s changed: %q", k, got)
		}
	}
	t.Logf("%d keys in the bucket after %d hostile paths", len(keys), len(paths))
}

// runOut runs a command and returns its standard output, whatever the exit.
func runOut(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &out
	err := cmd.Run()
	return out.String(), err
}

// TestS3Commands: the FTP commands on an object store, each mapped to
// what S3 can do, or refused with a clear reply.
func TestS3Commands(t *testing.T) {
	gw := s3test.Start(t)
	bucket := gw.Bucket(t)
	gw.SetEnv(t)
	f := startFerry(t, "127.0.0.1:0", "--storage", gw.URL(bucket, "", ""))
	ctx := context.Background()
	c, err := client.Dial(ctx, f.Addr, &client.Config{User: f.User, Password: f.Password, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	code := func(line string) int {
		t.Helper()
		r, _ := c.Quote(ctx, line)
		return r.Code
	}
	get := func(p string, off int64) string {
		t.Helper()
		d, err := c.Retrieve(ctx, p, &client.TransferOptions{Offset: off})
		must("RETR "+p, err)
		defer d.Close()
		b, err := io.ReadAll(d)
		must("RETR "+p, err)
		return string(b)
	}
	must("MKD", c.Mkdir(ctx, "dir"))
	if n := code("MKD dir"); n != 550 {
		t.Errorf("MKD of an existing directory: %d", n)
	}
	_, err = c.Store(ctx, "dir/a.txt", strings.NewReader("hello"), nil)
	must("STOR", err)
	_, err = c.Store(ctx, "dir/a.txt", strings.NewReader(" world"), &client.TransferOptions{Append: true})
	must("APPE", err)
	if got := get("dir/a.txt", 0); got != "hello world" {
		t.Errorf("after APPE: %q", got)
	}
	if got := get("dir/a.txt", 6); got != "world" {
		t.Errorf("REST 6 + RETR: %q", got)
	}
	if n, err := c.Size(ctx, "dir/a.txt"); err != nil || n != 11 {
		t.Errorf("SIZE: %d %v", n, err)
	}
	sum := sha256.Sum256([]byte("hello world"))
	if alg, h, err := c.Hash(ctx, "dir/a.txt", "SHA-256"); err != nil || h != fmt.Sprintf("%x", sum) {
		t.Errorf("HASH: %s %s %v", alg, h, err)
	}
	when := time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC)
	must("MFMT", c.SetModTime(ctx, "dir/a.txt", when))
	if mt, err := c.ModTime(ctx, "dir/a.txt"); err != nil || !mt.Equal(when) {
		t.Errorf("MDTM after MFMT: %v %v", mt, err)
	}
	if n := code("SITE CHMOD 600 dir/a.txt"); n != 502 && n != 504 {
		t.Errorf("SITE CHMOD: %d, want 502 or 504", n)
	}
	if n := code("RMD dir"); n != 550 {
		t.Errorf("RMD of a non-empty directory: %d", n)
	}
	must("RNFR/RNTO", c.Rename(ctx, "dir", "moved"))
	es, err := c.List(ctx, "moved")
	must("MLSD", err)
	if len(es) != 1 || es[0].Name != "a.txt" || es[0].Size != 11 {
		t.Errorf("listing after rename: %+v", es)
	}
	if n := code("SIZE nothing"); n != 550 {
		t.Errorf("SIZE of nothing: %d", n)
	}
	if _, err := c.Retrieve(ctx, "nothing", nil); err == nil {
		t.Error("RETR of nothing: no error")
	}
	must("DELE", c.Delete(ctx, "moved/a.txt"))
	must("RMD", c.Rmdir(ctx, "moved"))
	if keys := gw.Keys(t, bucket); len(keys) != 0 {
		t.Errorf("keys left: %v", keys)
	}
}

// TestS3Unavailable: a user whose bucket does not exist gets 421 at login
// (not "Login incorrect"), and a store that goes down mid-session turns
// commands into 451 replies, the session alive.
func TestS3Unavailable(t *testing.T) {
	gw := s3test.Start(t)
	bucket := gw.Bucket(t)
	gw.SetEnv(t)
	wd := t.TempDir()
	usersFile := filepath.Join(wd, "users.toml")
	for name, url := range map[string]string{"alice": gw.URL(bucket, "alice", ""), "bob": gw.URL("no-such-bucket", "", "")} {
		ferryUser(t, usersFile, name+"-pw", "add", name, "--storage", url)
	}
	f := startFerry(t, "127.0.0.1:0", "--users", usersFile)
	ctx := context.Background()
	_, err := client.Dial(ctx, f.Addr, &client.Config{User: "bob", Password: "bob-pw", Retries: -1})
	if err == nil || !strings.Contains(err.Error(), "421") {
		t.Fatalf("bob's login: %v, want 421", err)
	}
	// The log arrives through a pipe: give it a moment.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(f.stderr.String(), `s3 bucket \"no-such-bucket\" does not exist`); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say the bucket is missing:\n%s", f.stderr)
		}
	}
	c, err := client.Dial(ctx, f.Addr, &client.Config{User: "alice", Password: "alice-pw", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Store(ctx, "a.txt", strings.NewReader("a"), nil); err != nil {
		t.Fatal(err)
	}
	gw.Stop()
	start := time.Now()
	r, err := c.Quote(ctx, "SIZE a.txt")
	if err != nil || r.Code != 451 {
		t.Fatalf("SIZE with the store down: %v %v, want 451", r, err)
	}
	t.Logf("451 after %v of the SDK's retries", time.Since(start).Round(time.Millisecond))
	if err := c.NoOp(ctx); err != nil {
		t.Fatalf("the session ended: %v", err)
	}
}

// TestS3SweepAtStart: the parts of an upload nobody resumed within
// partial_max_age are aborted when the server starts, for a user of the
// users file who does not log in.
func TestS3SweepAtStart(t *testing.T) {
	gw := s3test.Start(t)
	bucket := gw.Bucket(t)
	gw.SetEnv(t)
	ctx := context.Background()
	key := "carol/cut.bin"
	up, err := gw.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	_, err = gw.Client().UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(seeded(4, 1<<20))})
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(t.TempDir(), "users.toml")
	ferryUser(t, usersFile, "carol-pw", "add", "carol", "--storage", gw.URL(bucket, "carol", ""))
	// The upload is older than 5 ms by the time the server has started.
	startFerry(t, "127.0.0.1:0", "--users", usersFile, "--partial-max-age", "5ms")
	for deadline := time.Now().Add(10 * time.Second); storedParts(t, gw, bucket, key) != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stale upload was not aborted at start")
		}
	}
}

// holdingProxy passes requests to the gateway, but holds each
// CompleteMultipartUpload until release is closed: a store slow to
// complete a large upload, as a loaded one is.
type holdingProxy struct {
	held    chan struct{} // a completion is being held
	release chan struct{}
	rp      *httputil.ReverseProxy
}

func (p *holdingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Query().Has("uploadId") {
		select {
		case p.held <- struct{}{}:
		default:
		}
		<-p.release
	}
	p.rp.ServeHTTP(w, r)
}

// TestS3SlowCommit: a client that gives up waiting for the 226 of an
// upload whose completion the store delays, and closes the session (lftp
// does, after net:timeout), does not make it a failure: the object is
// published whole and the transfer logged ok (so hooks get upload, not
// upload_failed). Meanwhile a second session sees the stored size, and
// its resume of the same name is refused 450 (busy) rather than racing
// the completion.
func TestS3SlowCommit(t *testing.T) {
	gw := s3test.Start(t)
	bucket := gw.Bucket(t)
	gw.SetEnv(t)
	target, err := neturl.Parse(gw.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &holdingProxy{held: make(chan struct{}, 1), release: make(chan struct{}), rp: httputil.NewSingleHostReverseProxy(target)}
	hs := httptest.NewServer(proxy)
	defer hs.Close()
	release := sync.OnceFunc(func() { close(proxy.release) })
	defer release() // before hs.Close: a held request ends first
	url := "s3://" + bucket + "/site?endpoint=" + hs.URL + "&part_size=5MiB&concurrency=2"
	s := &server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1"))), storage: url, wd: t.TempDir()}
	s.start()
	defer s.stop()

	data := seeded(7, 12<<20) // three parts
	a := ftptest.Dial(t, s.addr)
	a.Read()
	a.Expect("USER crash", 331)
	a.Expect("PASS crash-pw", 230)
	a.Expect("TYPE I", 200)
	d := a.Passive()
	a.Expect("STOR slow.bin", 150)
	if _, err := d.Write(data); err != nil {
		t.Fatal(err)
	}
	d.Close()
	select {
	case <-proxy.held:
	case <-time.After(60 * time.Second):
		t.Fatal("no completion reached the store")
	}
	a.C.Close() // the client gives up on the 226

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := client.Dial(ctx, s.addr, &client.Config{User: "crash", Password: "crash-pw", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n, err := b.Size(ctx, "slow.bin"); err != nil || n != int64(len(data)) {
		t.Fatalf("SIZE during the commit: %d, %v; want the %d bytes stored", n, err, len(data))
	}
	_, err = b.Store(ctx, "slow.bin", bytes.NewReader(nil), &client.TransferOptions{Offset: int64(len(data))})
	if ce, ok := errors.AsType[*client.Error](err); !ok || ce.Code != 450 {
		t.Fatalf("a resume during the commit: %v, want 450", err)
	}

	release()
	line := waitLog(t, s, "path=/slow.bin")
	if !strings.Contains(line, "op=STOR") || !strings.Contains(line, "result=ok") {
		t.Errorf("the committed upload is logged as %q, want op=STOR … result=ok", line)
	}
	if got := objectSum(t, gw, bucket, "site/slow.bin"); got != sha256.Sum256(data) {
		t.Error("the published object differs")
	}
	if n := storedParts(t, gw, bucket, "site/slow.bin"); n != 0 {
		t.Errorf("%d bytes of parts left pending", n)
	}
	if n, err := b.Size(ctx, "slow.bin"); err != nil || n != int64(len(data)) {
		t.Errorf("SIZE after the commit: %d, %v", n, err)
	}
}

// waitLog waits up to a minute for the server's first transfer log line
// that contains sub, and returns it.
func waitLog(t *testing.T, s *server, sub string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for line := range strings.Lines(s.logs.String()) {
			if strings.Contains(line, "msg=transfer") && strings.Contains(line, sub) {
				return strings.TrimSpace(line)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no transfer logged with %q:\n%s", sub, s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
