package limits

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/localfs"
)

// BenchmarkSmallUpload: the storage side of a 4 KiB upload (Create, the
// copy io.Copy makes, Commit) with and without a quota far above what is
// stored, on FERRY_BENCH_DIR (default the system's temporary directory).
// The two run in alternation within one benchmark, so a slow spell of the
// machine hits both; quota/none is their ratio of time per upload.
func BenchmarkSmallUpload(b *testing.B) {
	dir, err := os.MkdirTemp(os.Getenv("FERRY_BENCH_DIR"), "ferry-quota-bench")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	plain, err := localfs.New(dir, localfs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	quota := WithQuota(plain, NewLedger(State{}, LedgerOptions{Quota: Quota{Bytes: 1 << 40, Files: 1 << 40}}))
	data := strings.Repeat("x", 4096)
	upload := func(f storage.FS, i int) {
		u, err := f.Create(ctx, fmt.Sprintf("f%d", i%1000), storage.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(u, io.LimitReader(strings.NewReader(data), 1<<20)); err != nil {
			b.Fatal(err)
		}
		if err := u.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 1000 { // the files exist: each upload replaces one
		upload(plain, i)
	}
	var tNone, tQuota int64
	for i := 0; b.Loop(); i++ {
		f, t := storage.FS(plain), &tNone
		if i%2 == 1 {
			f, t = quota, &tQuota
		}
		start := time.Now()
		upload(f, i)
		*t += int64(time.Since(start))
	}
	if tNone > 0 {
		b.ReportMetric(float64(tQuota)/float64(tNone), "quota/none")
	}
}

// BenchmarkPacer: what a rate limit far above the link adds to a small
// transfer: the pacer made at its start and one wait for its 4 KiB,
// against a user's and the server's bucket.
func BenchmarkPacer(b *testing.B) {
	user, server := NewLimiter(1<<40), NewLimiter(1<<40)
	for b.Loop() {
		pace, _ := Pacer(ctx, user, server)
		if err := pace(4096); err != nil {
			b.Fatal(err)
		}
	}
}
