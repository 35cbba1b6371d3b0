package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/internal/pgtest"
	"github.com/ferryftp/ferry/internal/s3test"
)

// Addresses of the balancer test: the balancer, the nodes, and a client
// address of its own, all on loopback.
const (
	lbHost     = "127.0.0.10"
	clientHost = "127.0.0.3"
)

func nodeHost(i int) string { return fmt.Sprintf("127.0.0.%d", 11+i) }

// cluster is three ferry nodes on one bucket and one PostgreSQL behind
// HAProxy.
type cluster struct {
	lb     string // the balancer's control address
	nodes  []*server
	ports  []int // each node's PROXY listener port
	gw     *s3test.Server
	bucket string
}

// startCluster starts versitygw, three nodes sharing a bucket, each with
// a PROXY protocol listener and a passive range of its own, and HAProxy
// in front: control balanced round-robin with send-proxy-v2 and health
// checks, each passive range routed to its node.
func startCluster(t *testing.T) *cluster {
	haproxy := need(t, "haproxy")
	pg := pgtest.Start(t, "127.0.0.25")
	gw := s3test.Start(t)
	gw.SetEnv(t)
	cl := &cluster{lb: net.JoinHostPort(lbHost, strconv.Itoa(freePort(t, lbHost))), gw: gw, bucket: gw.Bucket(t)}
	url := gw.URL(cl.bucket, "site", "part_size=8MiB")
	pasvBase := 41000 + int(time.Now().UnixNano()%200)*50
	var backend, passive strings.Builder
	for i := range 3 {
		host := nodeHost(i)
		port := freePort(t, host)
		lo, hi := pasvBase+i*10, pasvBase+i*10+9
		wd := t.TempDir()
		conf := filepath.Join(wd, "node.toml")
		// Nodes 0 and 1 take PROXY headers on passive connections too.
		passiveProxy := i < 2
		os.WriteFile(conf, []byte(fmt.Sprintf(`passive_ports = "%d-%d"
login_fail_delay = "-1s"
[defender]
allow = []
threshold = 1000
[[listener]]
address = %q
proxy_protocol = true
proxy_trusted = [%q]
passive_proxy_protocol = %v
`, lo, hi, net.JoinHostPort(host, strconv.Itoa(port)), lbHost, passiveProxy)), 0o644)
		s := &server{t: t, addr: net.JoinHostPort(host, strconv.Itoa(freePort(t, host))), storage: url, wd: wd}
		s.start("--config", conf, "--database", pg.URL)
		t.Cleanup(s.stop)
		cl.nodes, cl.ports = append(cl.nodes, s), append(cl.ports, port)
		fmt.Fprintf(&backend, "    server node%d %s:%d send-proxy-v2 check check-send-proxy inter 500ms source %s\n", i, host, port, lbHost)
		sendProxy := ""
		if passiveProxy {
			sendProxy = " send-proxy-v2"
		}
		fmt.Fprintf(&passive, "frontend pasv%d\n    bind %s:%d-%d\n    default_backend pasv%d\nbackend pasv%d\n    server node%d %s source %s%s\n", i, lbHost, lo, hi, i, i, i, host, lbHost, sendProxy)
	}
	cfg := fmt.Sprintf(`global
    maxconn 2000
defaults
    mode tcp
    timeout connect 5s
    timeout client 2m
    timeout server 2m
frontend control
    bind %s
    default_backend nodes
backend nodes
    balance roundrobin
    option tcp-check
    tcp-check expect string 220
%s%s`, cl.lb, backend.String(), passive.String())
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(cfgFile, []byte(cfg), 0o644)
	cmd := exec.Command(haproxy, "-db", "-f", cfgFile)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", cl.lb); err == nil {
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "220") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not forward:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cl
}

// fromClient dials from the client's address.
func fromClient(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientHost)}}
	return d.DialContext(ctx, network, addr)
}

// TestBehindHAProxy: three nodes behind HAProxy on one bucket. Logins
// spread over the nodes, each logged with the client's real address;
// passive transfers go through the balancer to the node holding the
// session (on two nodes with PROXY headers of their own, checked against
// the client); a node killed during a 200 MiB upload loses only its session,
// and the client finishes the upload through the balancer on another
// node with the right SHA-256; lftp's put -c continues a cut upload
// through the balancer; the nodes refuse a PROXY header from a
// peer they do not trust, and a trusted peer that sends none.
func TestBehindHAProxy(t *testing.T) {
	cl := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dial := func() *client.Client {
		c, err := client.Dial(ctx, cl.lb, &client.Config{User: "crash", Password: "crash-pw", Retries: -1, MaxConns: 1, DialContext: fromClient})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for i := range 6 {
		c := dial()
		name := fmt.Sprintf("/spread-%d.txt", i)
		if _, err := c.Store(ctx, name, strings.NewReader(name), nil); err != nil {
			t.Fatalf("upload through the balancer: %v", err)
		}
		if got := fetch(t, c, name); string(got) != name {
			t.Fatalf("download through the balancer: %q", got)
		}
		c.Close()
	}
	for i, n := range cl.nodes {
		logs := n.logs.String()
		if !strings.Contains(logs, "remote="+clientHost+":") || !strings.Contains(logs, "via="+lbHost) {
			t.Errorf("node %d: no session of %s through %s in its log:\n%s", i, clientHost, lbHost, logs)
		}
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, "msg=login") && !strings.Contains(line, "remote="+clientHost+":") {
				t.Errorf("node %d: a login not from the client's address: %s", i, line)
			}
		}
	}

	// A PROXY header from a peer the nodes do not trust: refused; a
	// trusted peer without a header: closed.
	node0 := net.JoinHostPort(nodeHost(0), strconv.Itoa(cl.ports[0]))
	c, err := fromClient(ctx, "tcp", node0)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("192.0.2.66"), Port: 1}, &net.TCPAddr{IP: net.ParseIP(lbHost), Port: 21}).Format()
	c.Write(hdr)
	if line, _ := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(line, "421") {
		t.Errorf("a header from an untrusted peer: %q", line)
	}
	c.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(lbHost)}, Timeout: 5 * time.Second}
	c, err = d.DialContext(ctx, "tcp", node0)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("USER crash\r\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Errorf("a trusted peer without a header: %q", line)
	}
	c.Close()

	// SIGKILL of the node carrying an upload; the client continues it
	// through the balancer, on another node.
	data := seeded(77, 200<<20)
	var control string // the upload session's client address, as the nodes log it
	up, err := client.Dial(ctx, cl.lb, &client.Config{User: "crash", Password: "crash-pw", Retries: -1, MaxConns: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := fromClient(ctx, network, addr)
			if err == nil && control == "" {
				control = c.LocalAddr().String()
			}
			return c, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	r := &cutReader{data: data, cut: 120 << 20, release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := up.Store(ctx, "/big.bin", r, nil)
		done <- err
	}()
	waitStored(t, cl.gw, cl.bucket, "site/big.bin", 96<<20)
	var carrier *server
	for _, n := range cl.nodes {
		if strings.Contains(n.logs.String(), "remote="+control) {
			carrier = n
		}
	}
	if carrier == nil {
		t.Fatalf("no node logged the session of %s", control)
	}
	carrier.kill()
	close(r.release)
	if err := <-done; err == nil {
		t.Fatal("the upload to a killed node succeeded")
	}
	up.Close()
	c2 := dial()
	defer c2.Close()
	off, err := c2.Size(ctx, "/big.bin")
	if err != nil || off <= 0 || off > 120<<20 {
		t.Fatalf("SIZE after the kill: %d %v", off, err)
	}
	t.Logf("node %s killed; %d of 200 MiB kept, resumed through the balancer", carrier.addr, off)
	// The dead node's claim on the upload lapses within 15 s: until then
	// a resume is answered 450 (file busy), and a client tries again.
	for start := time.Now(); ; time.Sleep(time.Second) {
		_, err := c2.Store(ctx, "/big.bin", bytes.NewReader(data[off:]), &client.TransferOptions{Offset: off})
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "450") || time.Since(start) > 30*time.Second {
			t.Fatalf("resume through the balancer at %d: %v", off, err)
		}
	}
	// lftp's put -c through the balancer continues an upload cut on one
	// node (the node lives: its claim went with the cut).
	lftp := need(t, "lftp")
	part := seeded(78, 40<<20)
	cutUp := dial()
	cr := &cutReader{data: part, cut: 30 << 20, release: make(chan struct{})}
	cutDone := make(chan error, 1)
	go func() {
		_, err := cutUp.Store(ctx, "/lftp.bin", cr, nil)
		cutDone <- err
	}()
	waitStored(t, cl.gw, cl.bucket, "site/lftp.bin", 24<<20)
	close(cr.release)
	<-cutDone
	cutUp.Close()
	local := filepath.Join(t.TempDir(), "lftp.bin")
	os.WriteFile(local, part, 0o644)
	host, port, _ := net.SplitHostPort(cl.lb)
	script := strings.Join([]string{"set cmd:fail-exit yes", "set ftp:ssl-allow no", "set net:max-retries 2", "set net:timeout 10",
		"set net:socket-bind-ipv4 " + clientHost, fmt.Sprintf("open -u crash,crash-pw ftp://%s:%s", host, port),
		"put -c " + local + " -o lftp.bin"}, "; ")
	if out, err := exec.Command(lftp, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("lftp put -c through the balancer: %v\n%s", err, out)
	}
	if got := fetch(t, c2, "/lftp.bin"); !bytes.Equal(got, part) {
		t.Fatal("the file lftp continued differs")
	}

	sum := sha256.Sum256(data)
	rd, err := c2.Retrieve(ctx, "/big.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	io.Copy(h, rd)
	rd.Close()
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatal("the resumed upload's SHA-256 differs")
	}
	// A download resumed (REST + RETR) through the balancer, on whichever
	// node it lands.
	c3 := dial()
	defer c3.Close()
	rd, err = c3.Retrieve(ctx, "/big.bin", &client.TransferOptions{Offset: 150 << 20})
	if err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || !bytes.Equal(tail, data[150<<20:]) {
		t.Fatalf("REST + RETR through the balancer: %d bytes, %v", len(tail), err)
	}
}
