// Command cluster measures Ferry as a cluster beside one node, round by
// round: three nodes on PostgreSQL behind HAProxy (PROXY protocol), one
// node with the users file directly, that same node behind HAProxy (the
// balancer's own cost), and one node on PostgreSQL directly (the
// database's own cost). Each round runs every side
// once, in a rotating order; the figure is the median over rounds of the
// per-round ratios. Everything listens on 127.0.0.x.
//
//	go build -o /tmp/ferry ./cmd/ferry && go build -o /tmp/load ./bench/load
//	go run ./bench/cluster -ferry /tmp/ferry -load /tmp/load -rounds 5
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/internal/pgtest"
	"github.com/ferryftp/ferry/internal/stat"
)

var (
	ferryBin = flag.String("ferry", "", "the ferry binary (required)")
	loadBin  = flag.String("load", "", "the bench/load binary (required)")
	rounds   = flag.Int("rounds", 5, "rounds")
	dir      = flag.String("dir", "/dev/shm/ferry-cluster", "working directory")
	big      = flag.Int64("big", 1<<30, "size of the file of the RETR workload")
)

const (
	lbHost   = "127.0.0.10"
	pass     = "bench-pw"
	pasvBase = 52000
)

func nodeHost(i int) string { return fmt.Sprintf("127.0.0.%d", 11+i) }

func freePort(host string) int {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// side is one way of reaching the server under test.
type side struct {
	name string
	addr string
}

var (
	procs   []*exec.Cmd
	cleanup []func()
)

// fatalf ends the run, stopping what it started first.
func fatalf(format string, args ...any) {
	stopAll()
	for _, f := range cleanup {
		f()
	}
	log.Fatalf(format, args...)
}

func startProc(logFile string, name string, args []string, env ...string) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	f, err := os.Create(logFile)
	if err != nil {
		fatalf("%v", err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		fatalf("%v", err)
	}
	procs = append(procs, cmd)
}

func stopAll() {
	for _, p := range procs {
		p.Process.Signal(syscall.SIGTERM)
		p.Wait()
	}
}

func awaitGreeting(addr string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "220") {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	fatalf("%s does not greet", addr)
}

func main() {
	flag.Parse()
	if *ferryBin == "" || *loadBin == "" {
		log.Fatal("-ferry and -load are required")
	}
	os.RemoveAll(*dir)
	root := filepath.Join(*dir, "root")
	os.MkdirAll(root, 0o755)
	makeFile(filepath.Join(root, "big.bin"), *big)
	pg, err := pgtest.Launch("127.0.0.20", freePort("127.0.0.20"))
	if err != nil {
		log.Fatal(err)
	}
	cleanup = append(cleanup, pg.Stop)
	defer pg.Stop()
	defer stopAll()
	sides := setup(root, pg.URL)
	report(sides, measure(sides, root))
}

// workload is one of bench/load's modes and how to read its rate.
type workload struct {
	name, unit string
	args       []string
	re         *regexp.Regexp
}

var work = []workload{
	{"logins, 32 clients", "logins/s", []string{"logins", "-c", "32", "-d", "2s"}, regexp.MustCompile(`([0-9.]+) logins/s`)},
	{"4 KiB uploads, 4 clients", "files/s", []string{"small", "-op", "up", "-c", "4", "-n", "500", "-size", "4096"}, regexp.MustCompile(`([0-9.]+) files/s`)},
	{"RETR 1 GiB", "MB/s", []string{"retr", "-path", "big.bin"}, regexp.MustCompile(`([0-9.]+) MB/s`)},
}

// setup adds the user to the users file and the database, starts the
// nodes and HAProxy, and returns the sides.
func setup(root, dbURL string) []side {
	user := func(args ...string) {
		cmd := exec.Command(*ferryBin, append([]string{"user", "add", "bench", "--home", root}, args...)...)
		cmd.Env = append(os.Environ(), "FERRY_PASSWORD="+pass)
		if out, err := cmd.CombinedOutput(); err != nil {
			fatalf("ferry user add: %v\n%s", err, out)
		}
	}
	usersFile := filepath.Join(*dir, "users.toml")
	user("--users", usersFile)
	user("--database", dbURL)
	var haproxy strings.Builder
	fmt.Fprintf(&haproxy, "global\n    maxconn 4000\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 2m\n    timeout server 2m\n")
	oneDirect, oneProxied := startNode(&haproxy, 0, "--users", usersFile)
	var clusterNodes []string
	for i := 1; i <= 3; i++ {
		_, p := startNode(&haproxy, i, "--database", dbURL)
		clusterNodes = append(clusterNodes, p)
	}
	pgDirect, _ := startNode(&haproxy, 4, "--database", dbURL)
	oneLB := net.JoinHostPort(lbHost, strconv.Itoa(freePort(lbHost)))
	clusterLB := net.JoinHostPort(lbHost, strconv.Itoa(freePort(lbHost)))
	fmt.Fprintf(&haproxy, "frontend one\n    bind %s\n    default_backend one\nbackend one\n    server n0 %s send-proxy-v2 source %s\n", oneLB, oneProxied, lbHost)
	fmt.Fprintf(&haproxy, "frontend cluster\n    bind %s\n    default_backend cluster\nbackend cluster\n    balance roundrobin\n", clusterLB)
	for i, n := range clusterNodes {
		fmt.Fprintf(&haproxy, "    server n%d %s send-proxy-v2 source %s\n", i+1, n, lbHost)
	}
	cfg := filepath.Join(*dir, "haproxy.cfg")
	os.WriteFile(cfg, []byte(haproxy.String()), 0o644)
	startProc(filepath.Join(*dir, "haproxy.log"), "haproxy", []string{"-db", "-f", cfg})
	for _, a := range []string{oneDirect, pgDirect, oneLB, clusterLB} {
		awaitGreeting(a)
	}
	return []side{{"one node, users file", oneDirect}, {"one node on PostgreSQL", pgDirect},
		{"one node behind HAProxy", oneLB}, {"3 nodes on PostgreSQL behind HAProxy", clusterLB}}
}

// startNode starts node i: a plain listener, a PROXY listener behind the
// balancer and a passive range of its own routed to it (added to the
// HAProxy configuration).
func startNode(haproxy *strings.Builder, i int, extra ...string) (direct, proxied string) {
	host := nodeHost(i)
	direct = net.JoinHostPort(host, strconv.Itoa(freePort(host)))
	proxied = net.JoinHostPort(host, strconv.Itoa(freePort(host)))
	lo, hi := pasvBase+i*100, pasvBase+i*100+99
	wd := filepath.Join(*dir, "node"+strconv.Itoa(i))
	os.MkdirAll(wd, 0o755)
	conf := filepath.Join(wd, "ferry.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("passive_ports = %q\nlog_level = \"warn\"\nmax_sessions = 0\n[[listener]]\naddress = %q\nproxy_protocol = true\nproxy_trusted = [%q]\n",
		fmt.Sprintf("%d-%d", lo, hi), proxied, lbHost)), 0o644)
	startProc(filepath.Join(wd, "log"), *ferryBin, append([]string{"serve", "--config", conf, "--listen", direct, "--data-dir", wd}, extra...))
	fmt.Fprintf(haproxy, "frontend pasv%d\n    bind %s:%d-%d\n    default_backend pasv%d\nbackend pasv%d\n    server n%d %s source %s\n", i, lbHost, lo, hi, i, i, i, host, lbHost)
	return direct, proxied
}

// measure runs every workload on every side, a round at a time, the order
// of the sides rotating; rates[work][round][side].
func measure(sides []side, root string) map[string][][]float64 {
	rates := map[string][][]float64{}
	for r := range *rounds {
		fmt.Fprintf(os.Stderr, "== round %d/%d\n", r+1, *rounds)
		for _, w := range work {
			row := make([]float64, len(sides))
			for k := range sides {
				i := (k + r) % len(sides)
				s := sides[i]
				cmd := exec.Command(*loadBin, append([]string{"-addr", s.addr, "-user", "bench", "-pass", pass}, w.args...)...)
				out, err := cmd.CombinedOutput()
				m := w.re.FindSubmatch(out)
				if err != nil || m == nil {
					fatalf("%s on %s: %v\n%s", w.name, s.name, err, out)
				}
				row[i], _ = strconv.ParseFloat(string(m[1]), 64)
				cleanUploads(root)
			}
			rates[w.name] = append(rates[w.name], row)
		}
	}
	return rates
}

// report prints the median rates and the median per-round ratios to the
// first side.
func report(sides []side, rates map[string][][]float64) {
	fmt.Printf("\n%d rounds; ratio = the side's rate / one node's in the same round: median (min–max)\n\n", *rounds)
	fmt.Println("| workload | side | median rate | ratio to one node |")
	fmt.Println("|---|---|---|---|")
	for _, w := range work {
		for i, s := range sides {
			var rs, ratios []float64
			for _, row := range rates[w.name] {
				rs = append(rs, row[i])
				ratios = append(ratios, row[i]/row[0])
			}
			ratio := ""
			if i > 0 {
				ratio = fmt.Sprintf("**%.2f** (%.2f–%.2f)", stat.Median(ratios), slices.Min(ratios), slices.Max(ratios))
			}
			fmt.Printf("| %s | %s | %.0f %s | %s |\n", w.name, s.name, stat.Median(rs), w.unit, ratio)
		}
	}
}

// cleanUploads removes what the uploads left, keeping big.bin.
func cleanUploads(root string) {
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if e.Name() != "big.bin" {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

func makeFile(path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		fatalf("%v", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	for w := int64(0); w < size; w += int64(len(buf)) {
		f.Write(buf[:min(int64(len(buf)), size-w)])
	}
}
