package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ferryftp/ferry/admin/admintest"
	"github.com/ferryftp/ferry/client"
)

// scrape reads admin's /metrics.
func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	return admintest.Scrape(t, "http://"+admin+"/metrics")
}

// metric is the value of the metric of fam with labels (name, value
// pairs), -1 when there is none.
func metric(t *testing.T, admin, fam string, labels ...string) float64 {
	return admintest.Value(scrape(t, admin), fam, labels...)
}

// xferlogLine is a line of the transfer log by the field definitions of
// xferlog(5): time (five fields), transfer-time, remote-host, file-size,
// filename, transfer-type, special-action-flag, direction, access-mode,
// username, service-name, authentication-method, authenticated-user-id,
// completion-status.
var xferlogLine = regexp.MustCompile(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\d \d\d:\d\d:\d\d \d{4} (\d+) (\S+) (\d+) (\S+) ([ab]) ([CUT_]) ([oid]) ([agr]) (\S+) ftp ([01]) (\S+) ([ci])$`)

// TestMetricsLogs: a scrape of /metrics parsed with the Prometheus parser
// counts the logins and transfers the test made, and no label takes a
// value the client chose; the transfer log follows xferlog(5); with
// --log-format json every log line is a JSON object.
func TestMetricsLogs(t *testing.T) {
	wd := t.TempDir()
	admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	xlog := filepath.Join(wd, "xferlog")
	s := &server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1"))), root: filepath.Join(wd, "root"), wd: wd}
	os.Mkdir(s.root, 0o755)
	s.start("--admin-listen", admin, "--transfer-log", xlog, "--log-format", "json", "--login-fail-delay", "-1s")
	defer s.stop()
	ctx := context.Background()
	if _, err := client.Dial(ctx, s.addr, &client.Config{User: "evil-{{user}}", Password: "x", Retries: -1}); err == nil {
		t.Fatal("a wrong password logged in")
	}
	c, err := client.Dial(ctx, s.addr, &client.Config{User: "crash", Password: "crash-pw", Retries: -1, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, n := range []int{1000, 2000, 3000} {
		if _, err := c.Store(ctx, fmt.Sprintf("/client chose this %d.bin", i), bytes.NewReader(make([]byte, n)), nil); err != nil {
			t.Fatal(err)
		}
	}
	r := &cutReader{data: make([]byte, 1<<20), cut: 100 << 10, release: make(chan struct{})}
	close(r.release)
	c.Store(ctx, "/cut.bin", r, nil)
	got := fetch(t, c, "/client chose this 1.bin")
	if len(got) != 2000 {
		t.Fatalf("download: %d bytes", len(got))
	}
	if _, err := c.List(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "/client chose this 0.bin"); err != nil {
		t.Fatal(err)
	}
	var f map[string]*dto.MetricFamily
	deadline := time.Now().Add(10 * time.Second)
	for {
		f = scrape(t, admin)
		if admintest.Value(f, "ferry_transfers_total", "direction", "listing", "result", "ok") == 1 {
			break // the last transfer is counted
		}
		if time.Now().After(deadline) {
			t.Fatal("the listing was not counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, w := range []struct {
		fam    string
		labels []string
		want   float64
	}{
		{"ferry_logins_total", []string{"result", "ok"}, 1},
		{"ferry_logins_total", []string{"result", "failed"}, 1},
		{"ferry_sessions_active", nil, 1},
		{"ferry_transfers_total", []string{"direction", "upload", "result", "ok"}, 3},
		{"ferry_transfers_total", []string{"direction", "download", "result", "ok"}, 1},
		{"ferry_transfer_bytes_total", []string{"direction", "download"}, 2000},
		{"ferry_transfer_duration_seconds", []string{"direction", "upload"}, 4},
		{"ferry_bans_active", nil, 0},
	} {
		if got := admintest.Value(f, w.fam, w.labels...); got != w.want {
			t.Errorf("%s%v = %v, want %v", w.fam, w.labels, got, w.want)
		}
	}
	if up := admintest.Value(f, "ferry_transfer_bytes_total", "direction", "upload"); up < 6000 || up > 6000+(1<<20) {
		t.Errorf("upload bytes %v", up)
	}
	allowed := map[string][]string{
		"result":    {"ok", "failed", "aborted", "connection_lost", "error", "no_data_connection", "tls_refused", "panic"},
		"direction": {"upload", "download", "listing"},
	}
	for name, fam := range f {
		if !strings.HasPrefix(name, "ferry_") {
			continue
		}
		for _, m := range fam.Metric {
			for _, l := range m.Label {
				if ok := allowed[l.GetName()]; ok == nil || !slices.Contains(ok, l.GetValue()) {
					t.Errorf("%s: label %s=%q is not one of the server's words", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + admin + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", path, resp.Status, err)
		}
		resp.Body.Close()
	}
	c.Close()
	s.stop()

	b, err := os.ReadFile(xlog)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		m := xferlogLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not an xferlog line: %q", line)
		}
		if m[4] != "127.0.0.1" || m[11] != "crash" || m[10] != "r" || m[7] != "b" || m[12] != "0" || m[13] != "*" {
			t.Errorf("fields of %q", line)
		}
		dirs = append(dirs, m[9]+m[14]+" "+m[5]+" "+m[6])
	}
	want := []string{"ic 1000 /client_chose_this_0.bin", "ic 2000 /client_chose_this_1.bin", "ic 3000 /client_chose_this_2.bin",
		"ii", "oc 2000 /client_chose_this_1.bin", "dc 0 /client_chose_this_0.bin"}
	if len(dirs) != len(want) {
		t.Fatalf("xferlog lines %q", dirs)
	}
	for i, w := range want {
		if !strings.HasPrefix(dirs[i], w) {
			t.Errorf("line %d: %q, want %q", i, dirs[i], w)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	lines := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m["msg"] == nil || m["level"] == nil {
			t.Fatalf("not a JSON log line: %q", sc.Text())
		}
		lines++
	}
	if lines < 5 {
		t.Fatalf("%d log lines", lines)
	}
}

// TestReloadSIGHUP: SIGHUP with a changed limit, a new hook, another
// certificate and another listener: new sessions get all of them while a
// transfer in flight finishes; an invalid file is logged and the running
// configuration kept.
func TestReloadSIGHUP(t *testing.T) {
	wd := t.TempDir()
	certA, keyA, _, _ := testCert(t)
	certB, keyB, _, _ := testCert(t)
	ep := newHookEndpoint(t)
	second := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	conf := filepath.Join(wd, "ferry.toml")
	write := func(text string) {
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("max_rate_down = \"1MiB\"\ntls_cert = %q\ntls_key = %q\n", certA, keyA))
	s := &server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1"))), root: filepath.Join(wd, "root"), wd: wd}
	os.Mkdir(s.root, 0o755)
	os.WriteFile(filepath.Join(s.root, "big.bin"), seeded(9, 3<<20), 0o644)
	s.start("--config", conf)
	defer s.stop()
	ctx := context.Background()
	dial := func(addr string) *client.Client {
		c, err := client.Dial(ctx, addr, &client.Config{User: "crash", Password: "crash-pw", Retries: -1, MaxConns: 1,
			TLS: &tls.Config{InsecureSkipVerify: true}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := dial(s.addr)
	defer old.Close()
	d, err := old.Retrieve(ctx, "/big.bin", nil) // 3 s at 1 MiB/s
	if err != nil {
		t.Fatal(err)
	}
	var inFlight bytes.Buffer
	head := make([]byte, 256<<10)
	n, _ := d.Read(head)
	inFlight.Write(head[:n])
	reloaded := func(mark string, count int) {
		t.Helper()
		s.cmd.Process.Signal(syscall.SIGHUP)
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(s.logs.String(), mark) < count {
			if time.Now().After(deadline) {
				t.Fatalf("no %q logged:\n%s", mark, s.logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	write(fmt.Sprintf("tls_cert = %q\ntls_key = %q\n[[listener]]\naddress = %q\n[[hook]]\non = [\"login\"]\nurl = %q\n", certB, keyB, second, ep.URL))
	reloaded("configuration reloaded", 1)

	// New sessions: no rate limit, the login hook, the other certificate,
	// and the new listener.
	c := dial(second)
	defer c.Close()
	start := time.Now()
	if got := fetch(t, c, "/big.bin"); len(got) != 3<<20 {
		t.Fatalf("download after the reload: %d bytes", len(got))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("3 MiB took %v after the limit of 1 MiB/s was removed", took)
	}
	waitEvents(t, "login hook", 1, ep.events)
	if !bytes.Equal(servedCert(t, second), pemCert(t, certB)) || !bytes.Equal(servedCert(t, s.addr), pemCert(t, certB)) {
		t.Error("after the reload the new certificate is not served")
	}
	// The transfer that began before the reload finishes whole.
	rest := new(bytes.Buffer)
	if _, err := rest.ReadFrom(d); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if inFlight.Len()+rest.Len() != 3<<20 {
		t.Fatalf("the download in flight: %d bytes", inFlight.Len()+rest.Len())
	}

	// An invalid file: logged, and the running configuration stays.
	write("max_rate_down = \"fast\"\n")
	reloaded("configuration not reloaded", 1)
	c2 := dial(second) // the second listener is still open
	c2.Close()
	waitEvents(t, "login hook after a bad reload", 2+2, ep.events) // c, servedCert twice, c2: the hook stays

	// The listener removed from the file closes; its session goes on.
	write(fmt.Sprintf("tls_cert = %q\ntls_key = %q\n", certB, keyB))
	reloaded("configuration reloaded", 2)
	if conn, err := net.DialTimeout("tcp", second, 5*time.Second); err == nil {
		conn.Close()
		t.Fatal("the removed listener still accepts")
	}
	if _, err := c.List(ctx, "/"); err != nil {
		t.Fatalf("a session of the removed listener: %v", err)
	}
}

// servedCert is the certificate addr shows after AUTH TLS.
func servedCert(t *testing.T, addr string) []byte {
	t.Helper()
	var der []byte
	cfg := &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		der = cs.PeerCertificates[0].Raw
		return nil
	}}
	c, err := client.Dial(context.Background(), addr, &client.Config{User: "crash", Password: "crash-pw", Retries: -1, MaxConns: 1, TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	return der
}

// pemCert is the certificate of a PEM file.
func pemCert(t *testing.T, file string) []byte {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	return blk.Bytes
}

// TestAdminTLS: with a certificate configured the admin listener speaks
// HTTPS with it, and a port alone listens on loopback.
func TestAdminTLS(t *testing.T) {
	cert, key, _, pool := testCert(t)
	e := &adminEnv{t: t, admins: filepath.Join(t.TempDir(), "admins.toml")}
	e.ferryAdmin("root-pw", "add", "root")
	var f *ferry
	var port string
	for try := 1; f == nil; try++ {
		// Another test may take the probed port before ferry does.
		port = strconv.Itoa(freePort(t, "127.0.0.1"))
		var err error
		f, err = launchFerry(t, "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--admin-listen", port, "--admins", e.admins, "--user", "u", "--password", "pw", "--root", t.TempDir())
		if err != nil && (try == 3 || !strings.Contains(err.Error(), "address already in use")) {
			t.Fatal(err)
		}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://127.0.0.1:" + port + "/healthz")
	if err != nil {
		t.Fatalf("%v\n%s", err, f.stderr)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("/healthz over TLS: %s", resp.Status)
	}
	// The console's cookie is Secure over TLS.
	resp, err = c.Post("https://127.0.0.1:"+port+"/api/v1/login", "application/json", strings.NewReader(`{"name": "root", "password": "root-pw"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); resp.StatusCode != 200 || len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login over TLS: %s %+v", resp.Status, resp.Cookies())
	}
	if conn, err := net.Dial("tcp", "127.0.0.2:"+port); err == nil {
		conn.Close()
		t.Fatal("a port alone listened beyond 127.0.0.1")
	}
	if resp, err := http.Get("http://127.0.0.1:" + port + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("the admin listener answered in the clear with a certificate configured")
		}
	}
}
