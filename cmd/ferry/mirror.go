package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftp"
)

// partialError: some files of a mirror failed (exit code 6).
type partialError struct {
	failed, total int
	first         error
}

func (p partialError) Error() string {
	return fmt.Sprintf("%d of %d transfers failed; the first: %v", p.failed, p.total, p.first)
}

// mirrorJob is one file to transfer.
type mirrorJob struct {
	rel   string // slash-separated, relative to both roots
	entry client.Entry
	local os.FileInfo
}

// cmdMirror copies the contents of src into dst, like lftp's mirror: a
// download when src is a URL, an upload when dst is. Only files whose size
// (or, where the server gives exact times, modification time) differs are
// sent; fl.parallel transfers run at once; with --delete, files in dst that
// are not in src are removed.
func cmdMirror(ctx context.Context, fl *clientFlags, src, dst string, out *output) error {
	switch {
	case isURL(src) && isURL(dst):
		return usageError{errors.New("mirror copies between a server and a local directory; for server to server use ferry cp")}
	case isURL(src):
		return mirrorDown(ctx, fl, src, dst, out)
	case isURL(dst):
		return mirrorUp(ctx, fl, src, dst, out)
	}
	return usageError{errors.New("mirror needs an ftp:// URL as SRC or DST")}
}

// same reports whether a remote entry and a local file match: same size,
// and same time to the second where the listing gives exact times.
func same(e client.Entry, fi os.FileInfo) bool {
	if e.Size != fi.Size() {
		return false
	}
	if !e.Precise || e.ModTime.IsZero() {
		return true
	}
	return e.ModTime.Truncate(time.Second).Equal(fi.ModTime().Truncate(time.Second))
}

func remoteTree(ctx context.Context, c *client.Client, root string) (map[string]client.Entry, error) {
	tree := map[string]client.Entry{}
	err := c.Walk(ctx, root, func(p string, e client.Entry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		if rel != "" {
			tree[rel] = e
		}
		return nil
	})
	return tree, err
}

func mirrorDown(ctx context.Context, fl *clientFlags, src, dst string, out *output) error {
	r, c, err := open(ctx, fl, src, fl.parallel)
	if err != nil {
		return err
	}
	defer c.Close()
	root := c.Dir()
	if r.path != "" {
		root = path.Join(root, r.path)
		if strings.HasPrefix(r.path, "/") {
			root = r.path
		}
	}
	start := time.Now()
	tree, err := remoteTree(ctx, c, root)
	if err != nil {
		return explain("list", r.String(), err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	var jobs []mirrorJob
	skipped := 0
	for _, rel := range sortedKeys(tree) {
		e := tree[rel]
		local := filepath.Join(dst, filepath.FromSlash(rel))
		switch e.Type {
		case ftp.TypeDir:
			if err := os.MkdirAll(local, 0o755); err != nil {
				return err
			}
		case ftp.TypeFile:
			if fi, err := os.Stat(local); err == nil && fi.Mode().IsRegular() && same(e, fi) {
				skipped++
				continue
			}
			jobs = append(jobs, mirrorJob{rel: rel, entry: e})
		}
	}
	deleted := 0
	if fl.delete {
		filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == dst {
				return nil
			}
			rel, _ := filepath.Rel(dst, p)
			if _, ok := tree[filepath.ToSlash(rel)]; !ok {
				if os.RemoveAll(p) == nil {
					deleted++
				}
				if d.IsDir() {
					return filepath.SkipDir
				}
			}
			return nil
		})
	}
	bytes, failed, first := runJobs(ctx, fl.parallel, jobs, func(j mirrorJob) (int64, error) {
		local := filepath.Join(dst, filepath.FromSlash(j.rel))
		return download(ctx, c, path.Join(root, j.rel), j.entry, local, fl, out, r.with(path.Join(r.path, j.rel)).String())
	})
	return mirrorResult(out, len(jobs), skipped, deleted, failed, bytes, time.Since(start), first)
}

func mirrorUp(ctx context.Context, fl *clientFlags, src, dst string, out *output) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return usageError{fmt.Errorf("%s is not a directory (use ferry put)", src)}
	}
	r, c, err := open(ctx, fl, dst, fl.parallel)
	if err != nil {
		return err
	}
	defer c.Close()
	root := path.Join(c.Dir(), r.path)
	if strings.HasPrefix(r.path, "/") {
		root = r.path
	}
	start := time.Now()
	if err := c.MkdirAll(ctx, root); err != nil {
		return explain("make directory", r.String(), err)
	}
	tree, err := remoteTree(ctx, c, root)
	if err != nil {
		return explain("list", r.String(), err)
	}
	jobs, seen, skipped, err := planUpload(ctx, c, r, root, src, tree)
	if err != nil {
		return err
	}
	deleted := 0
	if fl.delete {
		deleted = deleteRemote(ctx, c, root, tree, seen)
	}
	var noSetTime atomic.Bool // the server has neither MFMT nor MDTM with a time
	bytes, failed, first := runJobs(ctx, fl.parallel, jobs, func(j mirrorJob) (int64, error) {
		target := path.Join(root, j.rel)
		n, err := upload(ctx, c, filepath.Join(src, filepath.FromSlash(j.rel)), j.local, target, fl, out, r.with(path.Join(r.path, j.rel)).String())
		if err != nil {
			return n, err
		}
		// The server's time of the file becomes the local one, so the next
		// mirror sees it unchanged.
		if !noSetTime.Load() {
			if err := c.SetModTime(ctx, target, j.local.ModTime()); errors.Is(err, client.ErrUnsupported) {
				noSetTime.Store(true)
			}
		}
		return n, nil
	})
	return mirrorResult(out, len(jobs), skipped, deleted, failed, bytes, time.Since(start), first)
}

// planUpload walks the local tree src against the remote tree under root:
// it makes the missing directories, and returns the files to send, every
// relative path seen (for --delete) and how many files were unchanged.
func planUpload(ctx context.Context, c *client.Client, r *remote, root, src string, tree map[string]client.Entry) (jobs []mirrorJob, seen map[string]bool, skipped int, err error) {
	seen = map[string]bool{}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == src {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		seen[rel] = true
		if d.IsDir() {
			if e, ok := tree[rel]; !ok || e.Type != ftp.TypeDir {
				if err := c.Mkdir(ctx, path.Join(root, rel)); err != nil {
					return explain("make directory", r.with(path.Join(r.path, rel)).String(), err)
				}
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symbolic links and devices are not sent
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if e, ok := tree[rel]; ok && e.Type == ftp.TypeFile && same(e, info) {
			skipped++
			return nil
		}
		jobs = append(jobs, mirrorJob{rel: rel, local: info})
		return nil
	})
	return jobs, seen, skipped, err
}

// deleteRemote removes the entries of tree under root that the local
// side does not have (mirror --delete) and returns how many it removed.
func deleteRemote(ctx context.Context, c *client.Client, root string, tree map[string]client.Entry, seen map[string]bool) int {
	var gone []string
	for rel := range tree {
		if !seen[rel] {
			gone = append(gone, rel)
		}
	}
	sort.Strings(gone)
	deleted := 0
	for i, rel := range gone {
		if i > 0 && strings.HasPrefix(rel, gone[i-1]+"/") {
			continue // inside a directory removed already
		}
		if err := c.RemoveAll(ctx, path.Join(root, rel)); err == nil {
			deleted++
		}
	}
	return deleted
}

// runJobs runs do on every job, n at a time.
func runJobs(ctx context.Context, n int, jobs []mirrorJob, do func(mirrorJob) (int64, error)) (int64, int, error) {
	var bytes atomic.Int64
	var mu sync.Mutex
	failed := 0
	var first error
	ch := make(chan mirrorJob)
	var wg sync.WaitGroup
	for range min(n, max(len(jobs), 1)) {
		wg.Go(func() {
			for j := range ch {
				b, err := do(j)
				bytes.Add(b)
				if err != nil {
					mu.Lock()
					failed++
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		ch <- j
	}
	close(ch)
	wg.Wait()
	if ctx.Err() != nil && first == nil {
		first = ctx.Err()
		failed++
	}
	return bytes.Load(), failed, first
}

func mirrorResult(out *output, n, skipped, deleted, failed int, bytes int64, d time.Duration, first error) error {
	if out.tty {
		out.printf("mirror: %d transferred, %d unchanged, %d deleted, %d failed, %d bytes in %.1fs\n", n-failed, skipped, deleted, failed, bytes, d.Seconds())
	} else {
		out.printf("op=mirror files=%d skipped=%d deleted=%d failed=%d bytes=%d seconds=%.3f\n", n-failed, skipped, deleted, failed, bytes, d.Seconds())
	}
	if failed == 0 {
		return nil
	}
	if errors.Is(first, context.Canceled) {
		return first
	}
	return partialError{failed: failed, total: n, first: first}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
