// Package bench holds Go benchmarks that put Ferry beside a baseline doing
// the same I/O in the same run; bench/load drives any server from outside.
package bench

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferryftp/ferry/ftptest"
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
				c.Read()
				d.Write(payload)
				d.Close()
				c.Read()
				d = c.Passive()
				c.Send("RETR " + name)
				c.Read()
				io.Copy(io.Discard, d)
				d.Close()
				c.Read()
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(2*per*clients)/b.Elapsed().Seconds(), "files/s")
}

var _ = net.Dial
var _ = os.Open
var _ = filepath.Join

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
				c.Read()
				n, _ := io.Copy(io.Discard, d)
				d.Close()
				c.Read()
				b.SetBytes(n)
			}
		})
	}
}
