// Command s3rounds measures Ferry on an object store beside what a user
// would pick instead, round by round: each round moves the same bytes
// through Ferry into versitygw (FTP STOR and RETR with Ferry's client
// library), directly with the AWS SDK's transfer manager (same part size
// and concurrency) and, when given, through fclairamb/ftpserver with its
// S3 driver on the same gateway. The figure is the median over rounds of
// Ferry's rate divided by the other's in the same round.
//
// It also reports Ferry's CPU seconds per GiB, its peak RSS during an
// upload against part_size × (concurrency + 2) + 32 MiB, the time from
// the client's last byte to the 226 reply, and the first entry and total
// time of a listing of many objects against the SDK's own listing.
//
//	go run ./bench/s3rounds -rounds 5 -ftpserver /tmp/fcl/ftpserver
//	go run ./bench/s3rounds -ferry NEW -base OLD   # a change, before and after
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/internal/bytesize"
	"github.com/ferryftp/ferry/internal/procstat"
	"github.com/ferryftp/ferry/internal/s3test"
	"github.com/ferryftp/ferry/internal/stat"
)

var (
	rounds      = flag.Int("rounds", 5, "rounds")
	sizeFlag    = flag.String("size", "1GiB", "bytes per transfer")
	partFlag    = flag.String("part", "16MiB", "part size, for Ferry and the transfer manager")
	concurrency = flag.Int("concurrency", 4, "parts in flight, for Ferry and the transfer manager")
	work        = flag.String("work", "/dev/shm/ferry-s3rounds", "work directory (tmpfs keeps the disk out of the figures)")
	ftpserver   = flag.String("ftpserver", "", "fclairamb/ftpserver binary, to compare with its S3 driver")
	listN       = flag.Int("list", 100000, "objects in the listing workload (0: none)")
	ferryBin    = flag.String("ferry", "", "ferry binary (default: built from this tree)")
	baseBin     = flag.String("base", "", "another ferry binary, run as the side ferry-base (a before/after of a change)")
	readFlag    = flag.String("read", "", "the downloading FTP client's (and the bare forward's receiver's) read size, e.g. 32KiB as the transfer manager's io.Copy reads (default: Ferry's client's own, 256 KiB)")
)

const (
	access = s3test.AccessKey
	secret = s3test.SecretKey
	user   = "bench"
	pass   = "bench-pw"
)

func main() {
	flag.Parse()
	size, err := bytesize.Parse(*sizeFlag)
	check(err)
	part, err := bytesize.Parse(*partFlag)
	check(err)
	if *readFlag != "" {
		readSize, err = bytesize.Parse(*readFlag)
		check(err)
	}
	check(os.RemoveAll(*work))
	check(os.MkdirAll(*work, 0o755))
	cleanups = append(cleanups, func() { os.RemoveAll(*work) })
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	gw := startGateway()
	sdk := gw.Client()
	ctx := context.Background()
	for _, b := range []string{"ferry", "fcl"} {
		_, err := sdk.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)})
		check(err)
	}
	fy := startFerry("ferry", *ferryBin, gw.Endpoint, part)
	sides := []*side{fy}
	if *baseBin != "" {
		sides = append(sides, startFerry("ferry-base", *baseBin, gw.Endpoint, part))
	}
	if *ftpserver != "" {
		fc := startFCL(gw.Endpoint)
		sides = append(sides, fc)
	}
	// A first login hashes the password (argon2id, 19 MiB given back half
	// a second later): done here, so that no upload's peak RSS holds it.
	for _, s := range sides {
		s.dial(ctx).Close()
	}
	time.Sleep(time.Second)
	tm := transfermanager.New(sdk, func(o *transfermanager.Options) {
		o.PartSizeBytes, o.Concurrency = part, *concurrency
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.DisableChecksumValidation = true
		o.GetObjectBufferSize = part * int64(*concurrency)
	})
	data := make([]byte, size)
	rand.Read(data)

	res := map[string][]float64{}
	for r := 1; r <= *rounds; r++ {
		oneRound(ctx, r, sides, tm, sdk, data, res)
	}
	if *listN > 0 {
		listRounds(ctx, gw, sdk, fy, res)
	}
	report(res, size, part)
}

// oneRound moves data up and down once through every side, the SDK's
// transfer manager and the bare forward, and records Ferry's ratios.
func oneRound(ctx context.Context, r int, sides []*side, tm *transfermanager.Client, sdk *s3.Client, data []byte, res map[string][]float64) {
	size := int64(len(data))
	up := map[string]float64{"sdk": sdkUpload(ctx, tm, data)}
	for _, s := range sides {
		up[s.name] = s.upload(ctx, data, res)
	}
	down := map[string]float64{
		"sdk":  machineCost(res, "sdk", size, func() float64 { return sdkDownload(ctx, tm, size) }),
		"bare": machineCost(res, "bare", size, func() float64 { return bareForward(ctx, sdk, size) }),
	}
	for _, s := range sides {
		down[s.name] = machineCost(res, s.name, size, func() float64 { return s.download(ctx, size, res) })
	}
	line := fmt.Sprintf("round %d:", r)
	for _, s := range sides {
		line += fmt.Sprintf(" %s STOR %.0f RETR %.0f MB/s;", s.name, up[s.name]/1e6, down[s.name]/1e6)
	}
	log.Printf("%s sdk up %.0f down %.0f MB/s; bare forward %.0f MB/s", line, up["sdk"]/1e6, down["sdk"]/1e6, down["bare"]/1e6)
	res["RETR bare/sdk"] = append(res["RETR bare/sdk"], down["bare"]/down["sdk"])
	res["RETR ferry/bare"] = append(res["RETR ferry/bare"], down["ferry"]/down["bare"])
	for _, other := range []string{"sdk", "ftpserver", "ferry-base"} {
		if _, ok := up[other]; ok {
			res["STOR ferry/"+other] = append(res["STOR ferry/"+other], up["ferry"]/up[other])
			res["RETR ferry/"+other] = append(res["RETR ferry/"+other], down["ferry"]/down[other])
		}
	}
}

// cleanups stop what main started; die runs them, as a return from main
// runs its defers.
var cleanups []func()

func die(format string, args ...any) {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	die(format, args...)
}

func check(err error) {
	if err != nil {
		die("%v", err)
	}
}

func startGateway() *s3test.Server {
	bin := s3test.Find()
	if bin == "" {
		die("versitygw not found: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
	}
	dir := filepath.Join(*work, "gw")
	check(os.MkdirAll(dir, 0o755))
	g, err := s3test.Launch(bin, dir)
	check(err)
	cleanups = append(cleanups, g.Stop)
	return g
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().String()
}

func waitListen(addr string) {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	die("nothing listens on %s", addr)
}

// side is an FTP server on the gateway.
type side struct {
	name, addr string
	cmd        *exec.Cmd
}

func (s *side) stop() { s.cmd.Process.Kill(); s.cmd.Wait() }

func startSide(name, addr string, cmd *exec.Cmd) *side {
	check(cmd.Start())
	s := &side{name: name, addr: addr, cmd: cmd}
	cleanups = append(cleanups, s.stop)
	waitListen(addr)
	return s
}
func (s *side) pid() int { return s.cmd.Process.Pid }

// ferry reports a side of Ferry's (ferry, ferry-base), whose CPU, peak
// RSS and tail are recorded.
func (s *side) ferry() bool { return strings.HasPrefix(s.name, "ferry") }

// startFerry starts bin (built from this tree when "") as the side name,
// under a prefix and a data directory of its own.
func startFerry(name, bin, endpoint string, part int64) *side {
	if bin == "" {
		bin = filepath.Join(*work, "ferry")
		out, err := exec.Command("go", "build", "-o", bin, "./cmd/ferry").CombinedOutput()
		if err != nil {
			die("build ferry (run from the repository): %v\n%s", err, out)
		}
	}
	addr := freeAddr()
	prefix := "f"
	if name != "ferry" {
		prefix = name
	}
	url := fmt.Sprintf("s3://ferry/%s?endpoint=%s&part_size=%d&concurrency=%d", prefix, endpoint, part, *concurrency)
	cmd := exec.Command(bin, "serve", "--listen", addr, "--storage", url, "--user", user,
		"--data-dir", filepath.Join(*work, name+"-data"), "--tls", "off", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "FERRY_PASSWORD="+pass, "AWS_ACCESS_KEY_ID="+access, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true")
	cmd.Stderr = os.Stderr
	return startSide(name, addr, cmd)
}

func startFCL(endpoint string) *side {
	addr := freeAddr()
	conf := fmt.Sprintf(`{"version": 1, "listen_address": %q,
 "passive_transfer_port_range": {"start": 41000, "end": 41999},
 "accesses": [{"user": %q, "pass": %q, "fs": "s3", "params": {"endpoint": %q, "region": "us-east-1",
   "bucket": "fcl", "access_key_id": %q, "secret_access_key": %q, "disable_ssl": "true", "path_style": "true"}}]}`,
		addr, user, pass, endpoint, access, secret)
	cf := filepath.Join(*work, "ftpserver.json")
	check(os.WriteFile(cf, []byte(conf), 0o600))
	cmd := exec.Command(*ftpserver, "-conf", cf)
	return startSide("ftpserver", addr, cmd)
}

func (s *side) dial(ctx context.Context) *client.Client {
	c, err := client.Dial(ctx, s.addr, &client.Config{User: user, Password: pass, Retries: -1, Timeout: 5 * time.Minute})
	check(err)
	return c
}

// eofReader notes when the last byte was handed to the client.
type eofReader struct {
	r   io.Reader
	eof time.Time
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && e.eof.IsZero() {
		e.eof = time.Now()
	}
	return n, err
}

// upload stores data; for Ferry's sides it records CPU per GiB, the peak
// RSS and the time from the last byte to the 226 reply, under keys ending
// in the side's name.
func (s *side) upload(ctx context.Context, data []byte, res map[string][]float64) float64 {
	name, measure := s.name, s.ferry()
	c := s.dial(ctx)
	defer c.Close()
	if measure {
		procstat.ResetPeak(s.pid())
	}
	cpu := procstat.TreeCPU(s.pid())
	r := &eofReader{r: bytes.NewReader(data)}
	start := time.Now()
	if _, err := c.Store(ctx, "big.bin", r, nil); err != nil {
		die("%s STOR: %v", s.name, err)
	}
	end := time.Now()
	if measure {
		gib := float64(len(data)) / (1 << 30)
		res["cpu STOR "+name] = append(res["cpu STOR "+name], (procstat.TreeCPU(s.pid())-cpu).Seconds()/gib)
		res["rss STOR "+name] = append(res["rss STOR "+name], float64(procstat.PeakRSS(s.pid())))
		res["tail STOR "+name] = append(res["tail STOR "+name], end.Sub(r.eof).Seconds())
	}
	return float64(len(data)) / end.Sub(start).Seconds()
}

func (s *side) download(ctx context.Context, size int64, res map[string][]float64) float64 {
	name, measure := s.name, s.ferry()
	c := s.dial(ctx)
	defer c.Close()
	cpu := procstat.TreeCPU(s.pid())
	start := time.Now()
	d, err := c.Retrieve(ctx, "big.bin", nil)
	check(err)
	n, err := discard(d, 0)
	d.Close()
	if err != nil || n != size {
		die("%s RETR: %d bytes, %v", s.name, n, err)
	}
	el := time.Since(start)
	if measure {
		res["cpu RETR "+name] = append(res["cpu RETR "+name], (procstat.TreeCPU(s.pid())-cpu).Seconds()/(float64(size)/(1<<30)))
	}
	return float64(size) / el.Seconds()
}

func sdkUpload(ctx context.Context, tm *transfermanager.Client, data []byte) float64 {
	start := time.Now()
	_, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: aws.String("ferry"), Key: aws.String("sdk.bin"), Body: bytes.NewReader(data)})
	check(err)
	return float64(len(data)) / time.Since(start).Seconds()
}

// sdkDownload fetches the object with the transfer manager's ranged
// parallel download (its GetObject stream was far slower here).
func sdkDownload(ctx context.Context, tm *transfermanager.Client, size int64) float64 {
	start := time.Now()
	var w discardAt
	out, err := tm.DownloadObject(ctx, &transfermanager.DownloadObjectInput{Bucket: aws.String("ferry"), Key: aws.String("sdk.bin"), WriterAt: &w})
	check(err)
	if n := aws.ToInt64(out.ContentLength); n != size || w.n.Load() != size {
		die("sdk DownloadObject: %d bytes (%d written), want %d", n, w.n.Load(), size)
	}
	return float64(size) / time.Since(start).Seconds()
}

// bareForward is the limit a server approaches: one GetObject streamed by
// the SDK into a loopback TCP connection whose other end discards, as a
// server forwards a download to its FTP client, with nothing else.
func bareForward(ctx context.Context, sdk *s3.Client, size int64) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := discard(c, 256<<10) // as the client reads a download
		c.Close()
		got <- n
	}()
	start := time.Now()
	c, err := net.Dial("tcp", ln.Addr().String())
	check(err)
	out, err := sdk.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("ferry"), Key: aws.String("sdk.bin")})
	check(err)
	buf := make([]byte, 4<<20) // as Ferry's streamBuffer: its best size here
	_, err = io.CopyBuffer(struct{ io.Writer }{c}, out.Body, buf)
	check(err)
	out.Body.Close()
	c.Close()
	if n := <-got; n != size {
		die("bare forward: %d bytes, want %d", n, size)
	}
	return float64(size) / time.Since(start).Seconds()
}

// machineCost runs a download and records what the whole machine spent
// on it (versitygw, the server and the client together): busy core
// seconds per GiB, and the busy share of both cores. A side that keeps
// the cores busy is bound by that cost; one that leaves them idle waits.
func machineCost(res map[string][]float64, name string, size int64, download func() float64) float64 {
	m0 := procstat.Machine()
	rate := download()
	m1 := procstat.Machine()
	busy := m1.Busy - m0.Busy
	res["machine "+name] = append(res["machine "+name], busy.Seconds()/(float64(size)/(1<<30)))
	res["busy "+name] = append(res["busy "+name], float64(busy)/float64(m1.All-m0.All))
	return rate
}

// readSize is -read: 0 leaves a download's reads to Ferry's client.
var readSize int64

// discard reads r to its end and counts its bytes, in reads of -read
// bytes when it is set, else of size; size 0 leaves the reads to r, through
// io.Copy to io.Discard (a download's WriteTo reads 256 KiB at a time).
func discard(r io.Reader, size int64) (int64, error) {
	if readSize > 0 {
		size = readSize
	}
	if size == 0 {
		return io.Copy(io.Discard, r)
	}
	return io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{r}, make([]byte, size))
}

// discardAt is an io.WriterAt that counts what it is given.
type discardAt struct{ n atomic.Int64 }

func (d *discardAt) WriteAt(p []byte, off int64) (int, error) {
	d.n.Add(int64(len(p)))
	return len(p), nil
}

// listRounds lists a directory of many objects through Ferry (MLSD) and
// with the SDK (ListObjectsV2 by pages, delimiter "/"), round by round.
func listRounds(ctx context.Context, gw *s3test.Server, sdk *s3.Client, fy *side, res map[string][]float64) {
	dir := filepath.Join(gw.Dir, "ferry", "f", "many")
	check(os.MkdirAll(dir, 0o755))
	for i := range *listN {
		check(os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%07d", i)), []byte("x"), 0o644))
	}
	for r := 1; r <= *rounds; r++ {
		ff, ft := ftpList(fy.addr, "many")
		sf, st := sdkList(ctx, sdk)
		log.Printf("list round %d: ferry first %v total %v; sdk first %v total %v", r, ff, ft, sf, st)
		res["list first ferry"] = append(res["list first ferry"], ff.Seconds())
		res["list total ferry"] = append(res["list total ferry"], ft.Seconds())
		res["list first sdk"] = append(res["list first sdk"], sf.Seconds())
		res["list total sdk"] = append(res["list total sdk"], st.Seconds())
		res["LIST ferry/sdk"] = append(res["LIST ferry/sdk"], st.Seconds()/ft.Seconds())
	}
}

// ftpList runs MLSD on a plain connection and times the first line and
// the whole listing, counted from the MLSD command.
func ftpList(addr, dir string) (first, total time.Duration) {
	c, err := net.Dial("tcp", addr)
	check(err)
	defer c.Close()
	br := bufio.NewReader(c)
	reply := func() string {
		for {
			l, err := br.ReadString('\n')
			check(err)
			if len(l) >= 4 && l[3] == ' ' {
				return l
			}
		}
	}
	cmd := func(s string) string { fmt.Fprintf(c, "%s\r\n", s); return reply() }
	reply()
	cmd("USER " + user)
	cmd("PASS " + pass)
	r := cmd("EPSV")
	i, j := strings.Index(r, "(|||"), strings.LastIndex(r, "|)")
	if i < 0 || j < i {
		die("EPSV: %s", r)
	}
	port, _ := strconv.Atoi(r[i+4 : j])
	host, _, _ := net.SplitHostPort(addr)
	dc, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	check(err)
	start := time.Now()
	fmt.Fprintf(c, "MLSD %s\r\n", dir)
	dr := bufio.NewReader(dc)
	lines := 0
	for {
		l, err := dr.ReadString('\n')
		if errors.Is(err, io.EOF) {
			break
		}
		check(err)
		if lines == 0 {
			first = time.Since(start)
		}
		if !strings.Contains(l, "type=cdir") && !strings.Contains(l, "type=pdir") {
			lines++
		}
	}
	dc.Close()
	reply() // 150
	if r := reply(); !strings.HasPrefix(r, "226") {
		die("MLSD: %s", r)
	}
	total = time.Since(start)
	if lines != *listN {
		die("MLSD: %d lines, want %d", lines, *listN)
	}
	return first, total
}

func sdkList(ctx context.Context, sdk *s3.Client) (first, total time.Duration) {
	start := time.Now()
	pages := s3.NewListObjectsV2Paginator(sdk, &s3.ListObjectsV2Input{Bucket: aws.String("ferry"), Prefix: aws.String("f/many/"), Delimiter: aws.String("/")})
	n := 0
	for pages.HasMorePages() {
		p, err := pages.NextPage(ctx)
		check(err)
		if n == 0 {
			first = time.Since(start)
		}
		n += len(p.Contents)
	}
	if n != *listN {
		die("sdk list: %d, want %d", n, *listN)
	}
	return first, time.Since(start)
}

func report(res map[string][]float64, size, part int64) {
	reads := "the client's own (256 KiB)"
	if readSize > 0 {
		reads = fmt.Sprintf("%d KiB", readSize>>10)
	}
	fmt.Printf("\n%d rounds, %d MiB per transfer, part size %d MiB, concurrency %d, versitygw on %s, FTP download reads %s\n\n", *rounds, size>>20, part>>20, *concurrency, *work, reads)
	fmt.Println("| figure | median of per-round ratios (spread, rounds) |")
	fmt.Println("|---|---|")
	for _, k := range []string{"STOR ferry/sdk", "RETR ferry/sdk", "RETR bare/sdk", "RETR ferry/bare", "STOR ferry/ftpserver", "RETR ferry/ftpserver", "STOR ferry/ferry-base", "RETR ferry/ferry-base", "LIST ferry/sdk"} {
		if v, ok := res[k]; ok {
			fmt.Printf("| %s | %s |\n", k, stat.Ratios(v))
		}
	}
	bound := float64(part*int64(*concurrency+2) + 32<<20)
	fmt.Println()
	for _, n := range []string{"ferry", "ferry-base"} {
		if _, ok := res["rss STOR "+n]; !ok {
			continue
		}
		fmt.Printf("%s CPU: STOR %.2f s/GiB, RETR %.2f s/GiB (medians)\n", n, stat.Median(res["cpu STOR "+n]), stat.Median(res["cpu RETR "+n]))
		fmt.Printf("%s peak RSS during STOR: %.0f MiB (most %.0f), bound part×(concurrency+2)+32 MiB = %.0f MiB\n", n,
			stat.Median(res["rss STOR "+n])/(1<<20), slices.Max(res["rss STOR "+n])/(1<<20), bound/(1<<20))
		fmt.Printf("%s last byte to 226: %.0f ms median (%.0f–%.0f)\n", n, stat.Median(res["tail STOR "+n])*1e3, slices.Min(res["tail STOR "+n])*1e3, slices.Max(res["tail STOR "+n])*1e3)
	}
	fmt.Println("RETR, the whole machine (medians): busy core-s per GiB, and the busy share of its cores")
	for _, k := range []string{"sdk", "bare", "ferry", "ferry-base", "ftpserver"} {
		if v, ok := res["machine "+k]; ok {
			fmt.Printf("  %-9s %.2f core-s/GiB, busy %.2f\n", k, stat.Median(v), stat.Median(res["busy "+k]))
		}
	}
	if f := stat.Median(res["machine ferry"]); f > 0 {
		fmt.Printf("  a forward as costly as Ferry's, with the cores full, reaches at most %.2f of the SDK's rate\n", stat.Median(res["machine sdk"])/f)
	}
	if _, ok := res["list total ferry"]; ok {
		fmt.Printf("LIST of %d objects: Ferry first entry %.0f ms, total %.2f s; SDK first page %.0f ms, total %.2f s (medians)\n", *listN,
			stat.Median(res["list first ferry"])*1e3, stat.Median(res["list total ferry"]),
			stat.Median(res["list first sdk"])*1e3, stat.Median(res["list total sdk"]))
	}
}
