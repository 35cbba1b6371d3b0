// Command rounds compares Ferry's per-transfer cost with the servers a user
// would pick instead — pure-ftpd, ProFTPD and vsftpd (unpacked from Debian
// as in the integration suite, $FERRY_PEERS) and fclairamb/ftpserver, another
// Go server on the same crypto/tls — in one interleaved run.
//
// Every round runs every workload on every server once, one after the
// other, driven by bench/load; the report gives, per workload and peer, the
// median of the per-round ratios Ferry/peer and their spread, beside the
// medians of each side's rate and of the server's CPU per file or per GiB
// (the CPU of the server's whole process tree, forked children included).
// Everything runs on loopback, in DIR (a tmpfs keeps disks out of it),
// and every server started here is stopped by PID at the end.
//
//	go build -o /tmp/ferry ./cmd/ferry && go build -o /tmp/load ./bench/load
//	go run ./bench/rounds -ferry /tmp/ferry -load /tmp/load -rounds 5
//
// It runs as root: the C servers chroot and drop privileges.
package main

import (
	"flag"
	"fmt"
	"github.com/ferryftp/ferry/internal/procstat"
	"github.com/ferryftp/ferry/internal/stat"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	ferryBin  = flag.String("ferry", "", "the ferry binary to measure (required)")
	loadBin   = flag.String("load", "", "the bench/load binary (required)")
	baseBin   = flag.String("base", "", "another ferry binary, run as the server ferry-base (a before/after comparison)")
	ftpserver = flag.String("ftpserver", "", "fclairamb/ftpserver binary (optional; see bench/README.md)")
	peersDir  = flag.String("peers", os.Getenv("FERRY_PEERS"), "directory of the unpacked Debian servers (default $FERRY_PEERS)")
	dir       = flag.String("dir", "/dev/shm/ferry-rounds", "working directory; every server's files live under it")
	rounds    = flag.Int("rounds", 5, "rounds")
	only      = flag.String("work", "", "comma-separated workloads to run (default all; see -list)")
	servers   = flag.String("servers", "ferry,pure-ftpd,ProFTPD,vsftpd,ftpserver,bare", "comma-separated servers, ferry first; bare: the minimal Go programs of bench/load doing a large transfer's I/O (sendfile, splice, io.Copy over crypto/tls); bare-ftpd: the least Go FTP server the small-file workloads need (bench/load bare-ftpd), their limit; ferry-base: the -base binary; ferry-rated: ferry with rate limits far above the link; ferry-quota: its user under a quota far above what it stores; ferry-metrics: metrics served and a transfer log (ferry-xferlog: the transfer log alone; ferry-admin: the metrics alone); ferry-hooks: that and an HTTP hook on every upload, download and login; ferry-batch: ferry-hooks with batch = 100")
	bigSize   = flag.Int64("big", 1<<30, "size of the large file, bytes")
	files     = flag.Int("files", 1000, "small files per client")
	list      = flag.Bool("list", false, "list the workloads and exit")
	verbose   = flag.Bool("v", false, "print every run as it ends")
	steps     = flag.Bool("steps", false, "with -v, print how long each step of a small transfer took, as the client saw it")
	loginsFor = flag.Duration("logins-for", 2*time.Second, "how long logins-32 runs (each login takes an ephemeral port for a minute of TIME_WAIT)")
)

// A workload is one bench/load run: its arguments, and how many units
// (files or GiB) it moves, for the CPU per unit.
type workload struct {
	name   string
	tls    bool
	args   func(s *server) []string
	bare   []string // the load mode and flags of the minimal program doing the same I/O, if any
	upload bool     // it writes w.per GiB on the server
	unit   string   // "file" or "GiB"
	per    float64  // units moved
}

func workloads() []workload {
	var w []workload
	for _, op := range []string{"up", "down", "mixed"} {
		for _, c := range []int{1, 4, 32} {
			n := c * *files
			if c == 32 {
				n = 32 * max(*files/4, 1) // 32 clients: the same order of total work
			}
			// CPU per file moved: mixed moves each file twice, and down's
			// CPU counts the uploads that make its files (not timed).
			units := float64(n)
			if op != "up" {
				units *= 2
			}
			w = append(w, workload{name: fmt.Sprintf("4KiB-%s-%d", op, c), unit: "file", per: units,
				args: func(*server) []string {
					return []string{"small", "-op", op, "-c", strconv.Itoa(c), "-n", strconv.Itoa(n), "-size", "4096", "-steps=" + strconv.FormatBool(*steps)}
				}})
		}
	}
	// Not per-transfer costs, but run beside them to show no regression:
	// logins (Ferry answers from its cache of verified passwords after the
	// first) and a listing of a 10,000-entry directory.
	w = append(w,
		workload{name: "logins-32", unit: "login", args: func(*server) []string { return []string{"logins", "-c", "32", "-d", loginsFor.String()} }},
		workload{name: "LIST-10k", unit: "list", per: 1, args: func(*server) []string { return []string{"list", "-path", "many"} }},
	)
	gib := float64(*bigSize) / (1 << 30)
	w = append(w,
		workload{name: "RETR-big", unit: "GiB", per: gib, args: func(*server) []string { return []string{"retr", "-path", "big.bin"} },
			bare: []string{"baseline-retr", "-listening", "-file", "big.bin"}},
		workload{name: "STOR-big", upload: true, unit: "GiB", per: gib, args: func(*server) []string {
			return []string{"stor", "-path", "up.bin", "-size", strconv.FormatInt(*bigSize, 10)}
		}, bare: []string{"baseline-stor", "-listening", "-dir", "."}},
		workload{name: "TLS-RETR-big", tls: true, unit: "GiB", per: gib, args: func(*server) []string { return []string{"tls-retr", "-path", "big.bin"} },
			bare: []string{"baseline-tls-retr", "-file", "big.bin"}},
		workload{name: "TLS-STOR-big", tls: true, upload: true, unit: "GiB", per: gib, args: func(*server) []string {
			return []string{"tls-stor", "-path", "up.bin", "-size", strconv.FormatInt(*bigSize, 10)}
		}, bare: []string{"baseline-tls-stor", "-dir", "."}},
	)
	return w
}

// sample is one run of one workload on one server.
type sample struct {
	rate   float64 // files/s or MB/s
	cpu    float64 // server CPU seconds per unit
	client float64 // small files: the load client's CPU µs per transfer it timed
	busy   float64 // the share of the machine's cores busy during the run
	kernel float64 // the share of the server's CPU spent in the kernel
	// switches is the machine's context switches during the run, per unit
	switches float64
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	ws := chosen(workloads())
	if ws == nil {
		return // -list
	}
	src, cert, err := prepare()
	if err != nil {
		log.Fatal(err)
	}
	var all []*server
	stopAll := func() {
		for _, s := range all {
			s.stop()
		}
	}
	defer stopAll()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		stopAll()
		os.Exit(1)
	}()
	all = startAll(cert)
	warmUp(all, src)
	report(ws, all, runRounds(ws, all, src))
	if n := sinkPosts.Load(); n > 0 {
		fmt.Printf("\nThe hook endpoint took %d POSTs.\n", n)
	}
}

// chosen is the workloads -work names (all by default); with -list it
// prints their names and returns nil.
func chosen(ws []workload) []workload {
	if *list {
		for _, w := range ws {
			fmt.Println(w.name)
		}
		return nil
	}
	if *only != "" {
		keep := strings.Split(*only, ",")
		ws = slices.DeleteFunc(ws, func(w workload) bool { return !slices.Contains(keep, w.name) })
	}
	if *ferryBin == "" || *loadBin == "" || len(ws) == 0 {
		log.Fatal("rounds: -ferry and -load are required, and at least one workload")
	}
	return ws
}

// prepare empties -dir and writes in it the file uploads send and the
// certificate every server uses.
func prepare() (src string, cert certFiles, err error) {
	if err := os.RemoveAll(*dir); err != nil {
		return "", cert, err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return "", cert, err
	}
	src = filepath.Join(*dir, "src.bin")
	if err := writeRandom(src, *bigSize); err != nil {
		return "", cert, err
	}
	cert, err = makeCert(*dir)
	return src, cert, err
}

// startAll starts the -servers, each with its large file and its
// 10,000-entry directory; a server that does not start is left out.
func startAll(cert certFiles) []*server {
	var all []*server
	fail := func(err any) { // the servers started are not left running on their ports
		for _, s := range all {
			s.stop()
		}
		log.Fatal(err)
	}
	for i, name := range strings.Split(*servers, ",") {
		// Control ports and passive ranges of 5,000 ports each, below the
		// ephemeral ports (32768 on): thousands of data connections a
		// second leave their ports in TIME_WAIT.
		s, err := start(name, filepath.Join(*dir, name), 2000+i*5000, cert)
		if err != nil {
			log.Printf("%s: not measured: %v", name, err)
			continue
		}
		all = append(all, s)
		big := filepath.Join(s.disk, "big.bin")
		if err := writeRandom(big, *bigSize); err != nil {
			fail(err)
		}
		s.own(big)
		if err := s.many(10000); err != nil {
			fail(err)
		}
	}
	if len(all) == 0 || all[0].name != "ferry" {
		fail("rounds: ferry did not start (it comes first in -servers)")
	}
	return all
}

// warmUp runs, not counted, a first login on each server (Ferry's pays one
// argon2id run, then its verified-password cache answers) and the first
// transfers.
func warmUp(all []*server, src string) {
	warm := workload{name: "warm-up", unit: "file", per: 1, args: func(*server) []string {
		return []string{"small", "-op", "mixed", "-c", "4", "-n", "40", "-size", "4096"}
	}}
	for _, s := range all {
		if _, err := s.run(warm, src); err != nil {
			log.Printf("warm-up %s: %v", s.name, err)
		}
	}
}

// runRounds runs every workload on every server, -rounds times; the
// samples are by workload and server, a failed run nil.
func runRounds(ws []workload, all []*server, src string) map[string]map[string][]*sample {
	samples := map[string]map[string][]*sample{}
	for _, w := range ws {
		samples[w.name] = map[string][]*sample{}
	}
	for r := 1; r <= *rounds; r++ {
		log.Printf("== round %d/%d", r, *rounds)
		for _, w := range ws {
			for _, s := range all {
				sm, err := s.run(w, src)
				if err != nil {
					log.Printf("%s %s: %v", w.name, s.name, err)
				} else if *verbose && sm != nil {
					log.Printf("%s %s: %.0f, server CPU %.6f s per %s", w.name, s.name, sm.rate, sm.cpu, w.unit)
				}
				samples[w.name][s.name] = append(samples[w.name][s.name], sm)
			}
		}
	}
	return samples
}

// run runs w against s once and cleans up what it left. A server's CPU is
// read from /proc around the run; a bare program reports its own.
func (s *server) run(w workload, src string) (*sample, error) {
	if w.tls && !s.tls || s.cmd == nil && w.bare == nil || s.smallOnly && w.unit != "file" {
		return nil, nil
	}
	defer s.clean()
	if w.upload {
		warmMemory()
	}
	if s.cmd == nil {
		rate, out, err := s.load(append([]string{"-src", src}, w.bare...))
		if err != nil {
			return nil, err
		}
		sm := &sample{rate: rate}
		if mbPerCPU, ok := parseUnit(out, "MB/CPU-s"); ok && mbPerCPU > 0 {
			sm.cpu = float64(1<<30) / 1e6 / mbPerCPU // CPU-seconds per GiB
		}
		return sm, nil
	}
	args := []string{"-addr", s.addr, "-user", s.user, "-pass", s.pass, "-src", src}
	if s.cwd != "" {
		args = append(args, "-cwd", s.cwd)
	}
	user, sys := procstat.TreeTimes(s.pid())
	m := procstat.Machine()
	rate, out, err := s.load(append(args, w.args(s)...))
	m2 := procstat.Machine()
	// A forking server's children end after the client's QUIT; wait (with
	// a bound) until they are gone so that their CPU is counted.
	s.settle()
	user2, sys2 := procstat.TreeTimes(s.pid())
	if err != nil {
		return nil, err
	}
	cpu := user2 + sys2 - user - sys
	sm := &sample{rate: rate}
	if cpu > 0 {
		sm.kernel = float64(sys2-sys) / float64(cpu)
	}
	sm.client, _ = parseUnit(out, "µs/file")
	if m2.All > m.All {
		sm.busy = float64(m2.Busy-m.Busy) / float64(m2.All-m.All)
	}
	if *verbose {
		for line := range strings.Lines(out) {
			if strings.HasPrefix(line, "steps") {
				log.Printf("%s %s: %s", w.name, s.name, strings.TrimSpace(line))
			}
		}
	}
	if w.per > 0 {
		sm.cpu = cpu.Seconds() / w.per
		sm.switches = float64(m2.Switches-m.Switches) / w.per
	}
	return sm, nil
}

// load runs bench/load with args (a bare program in s's directory) and
// returns the rate it reports and the whole report.
func (s *server) load(args []string) (float64, string, error) {
	cmd := exec.Command(*loadBin, args...)
	if s.cmd == nil {
		cmd.Dir = s.disk
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, "", fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	rate, ok := parseRate(string(out))
	if !ok {
		return 0, "", fmt.Errorf("no rate in %q", out)
	}
	return rate, string(out), nil
}

// warmMemory writes and deletes a file of the large size, so that the
// upload after it gets memory just freed, as every side does.
//
// In a virtual machine that reports free memory to its host (free page
// reporting, virtio-balloon), pages freed some seconds ago are no longer
// backed: the first write to each faults into the hypervisor, and a 1 GiB
// upload into tmpfs then costs 2–4 CPU-seconds in memcpy instead of 0.6.
// Which server of a round meets such memory depends on its place in the
// round (the one after a long download does; the one right after another
// upload's file was deleted does not), so without this the comparison
// measures the host, not the servers.
func warmMemory() {
	p := filepath.Join(*dir, "warm.bin")
	f, err := os.Create(p)
	if err != nil {
		return
	}
	buf := make([]byte, 1<<20)
	for n := int64(0); n < *bigSize; n += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	os.Remove(p)
}

// parseUnit finds the number before unit in a load report.
func parseUnit(out, unit string) (float64, bool) {
	f := strings.Fields(out)
	for i := 1; i < len(f); i++ {
		if strings.TrimRight(f[i], ";,") == unit {
			v, err := strconv.ParseFloat(f[i-1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// parseRate finds the number before "files/s" or "MB/s" in a load report.
func parseRate(out string) (float64, bool) {
	for _, unit := range []string{"files/s", "logins/s", "lists/s"} {
		if v, ok := parseUnit(out, unit); ok {
			return v, true
		}
	}
	return parseUnit(out, "MB/s")
}

func report(ws []workload, all []*server, samples map[string]map[string][]*sample) {
	fmt.Printf("\n%d rounds; ratio = Ferry's rate / the peer's in the same round: median (min–max, rounds)\n\n", *rounds)
	fmt.Printf("| workload | server | median rate | server CPU per unit | Ferry / server | server CPU / Ferry's |\n|---|---|---|---|---|---|\n")
	for _, w := range ws {
		ferry := samples[w.name]["ferry"]
		for _, s := range all {
			got := samples[w.name][s.name]
			var rates, cpus, clients, busy, kernel, switches, ratios, cpuRatios []float64
			for i, sm := range got {
				if sm == nil {
					continue
				}
				rates = append(rates, sm.rate)
				cpus = append(cpus, sm.cpu)
				clients = append(clients, sm.client)
				busy = append(busy, sm.busy)
				kernel = append(kernel, sm.kernel)
				switches = append(switches, sm.switches)
				if ferry[i] != nil && s.name != "ferry" {
					ratios = append(ratios, ferry[i].rate/sm.rate)
					if ferry[i].cpu > 0 && sm.cpu > 0 {
						cpuRatios = append(cpuRatios, sm.cpu/ferry[i].cpu)
					}
				}
			}
			if len(rates) == 0 {
				continue
			}
			// Beside a small file's server CPU, the client's per transfer
			// and how busy the cores were: what is left for the server.
			unit, cpuUnit := "files/s", fmt.Sprintf("%.0f µs/file, %.0f%% kernel (client %.0f µs; cores %.0f%% busy; %.1f switches/file)",
				stat.Median(cpus)*1e6, 100*stat.Median(kernel), stat.Median(clients), 100*stat.Median(busy), stat.Median(switches))
			switch w.unit {
			case "GiB":
				// The best run beside the median: a 1 GiB upload's CPU
				// swings with the host's memory (bench/README.md).
				unit, cpuUnit = "MB/s", fmt.Sprintf("%.2f s/GiB (best %.2f)", stat.Median(cpus), slices.Min(cpus))
			case "login":
				unit, cpuUnit = "logins/s", ""
			case "list":
				unit, cpuUnit = "lists/s", fmt.Sprintf("%.0f ms/list (LIST and MLSD)", stat.Median(cpus)*1e3)
			}
			ratio, cpuRatio := "", ""
			if len(ratios) > 0 {
				ratio = stat.Ratios(ratios)
			}
			if len(cpuRatios) > 0 {
				cpuRatio = stat.Ratios(cpuRatios)
			}
			fmt.Printf("| %s | %s | %.4g %s | %s | %s | %s |\n", w.name, s.name, stat.Median(rates), unit, cpuUnit, ratio, cpuRatio)
		}
	}
}

// settle waits, at most two seconds, until s has no more children than it
// had at rest (forking servers end a session's process after QUIT).
func (s *server) settle() {
	deadline := time.Now().Add(2 * time.Second)
	for len(procstat.Descendants(s.pid())) > s.rest && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}
