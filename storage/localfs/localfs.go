// Package localfs is the local-disk storage backend. Every access goes
// through an os.Root, so no name — with "..", an absolute path, a backslash
// or a symbolic link that points out — reaches outside the root directory.
//
// Uploads in Truncate mode are written to a hidden temporary file beside the
// target and renamed over it on Commit, so an interrupted upload never
// destroys or half-overwrites an existing file. On Abort the received bytes
// are kept in a hidden partial file (".ferry-part.NAME") that a later upload
// with an offset resumes. Hidden files of this backend start with ".ferry-"
// and are neither listed nor reachable by clients.
package localfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/internal/running"
	"github.com/ferryftp/ferry/storage"
)

// Prefix starts the name of every hidden file of this backend.
const Prefix = ".ferry-"

// Options configure a backend. The zero value is a valid configuration.
type Options struct {
	// Sync makes Commit fsync the file (and its directory after the rename),
	// so a committed upload survives power loss. It costs one or two disk
	// flushes per upload.
	Sync bool
	// FileMode and DirMode are the permission bits of new files and
	// directories, before the umask. Zero means 0644 and 0755.
	FileMode, DirMode fs.FileMode
}

// FS is a storage.FS on a local directory.
type FS struct {
	root *os.Root
	fast fastPath
	opts Options
}

// Interface guards.
var (
	_ storage.FS             = (*FS)(nil)
	_ storage.Chtimeser      = (*FS)(nil)
	_ storage.Chmoder        = (*FS)(nil)
	_ storage.SpaceReporter  = (*FS)(nil)
	_ storage.NameLister     = (*FS)(nil)
	_ storage.PartialSizer   = (*FS)(nil)
	_ storage.PartialDropper = (*FS)(nil)
	_ storage.Keeper         = (*upload)(nil)
)

// New opens dir as the root of a backend. dir must exist and be a directory.
func New(dir string, opts Options) (*FS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if _, err := r.Stat("."); err != nil {
		r.Close()
		return nil, err
	}
	if opts.FileMode == 0 {
		opts.FileMode = 0o644
	}
	if opts.DirMode == 0 {
		opts.DirMode = 0o755
	}
	f := &FS{root: r, opts: opts}
	f.fast.init(r)
	return f, nil
}

// Close releases the root directory.
func (f *FS) Close() error {
	f.fast.close()
	return f.root.Close()
}

// openFile opens name beneath the root: with openat2 where it can, else
// through os.Root.
func (f *FS) openFile(name string, flags int, mode fs.FileMode) (*os.File, error) {
	if fh, ok, err := f.fast.open(name, flags, mode); ok {
		return fh, err
	}
	return f.root.OpenFile(name, flags, mode)
}

// rename renames within the root.
func (f *FS) rename(from, to string) error {
	if ok, err := f.fast.rename(from, to); ok {
		return err
	}
	return f.root.Rename(from, to)
}

// Dir returns the root directory's path.
func (f *FS) Dir() string { return f.root.Name() }

func hidden(name string) bool {
	return strings.HasPrefix(path.Base(name), Prefix)
}

// check refuses names that are not valid storage names or that name one of
// this backend's hidden files.
func check(name string) error {
	if !fs.ValidPath(name) {
		return storage.ErrBadName
	}
	if hidden(name) {
		return storage.ErrBadName
	}
	return nil
}

func (f *FS) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	if err := check(name); err != nil {
		return nil, err
	}
	fi, err := f.root.Stat(name)
	return fileInfo(fi), mapErr(err)
}

// PartialSize reports the size of the kept part of an interrupted upload
// of name (storage.PartialSizer).
func (f *FS) PartialSize(ctx context.Context, name string) (int64, error) {
	if err := check(name); err != nil {
		return 0, err
	}
	if name == "." {
		return 0, fs.ErrNotExist
	}
	fi, err := f.root.Lstat(partName(name))
	if err != nil {
		return 0, mapErr(err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fs.ErrNotExist
	}
	return fi.Size(), nil
}

// fileInfo wraps fi so that its unique identity is available.
func fileInfo(fi fs.FileInfo) fs.FileInfo {
	if fi == nil {
		return nil
	}
	return info{fi}
}

type info struct{ fs.FileInfo }

type ident struct{ dev, ino uint64 }

func (i ident) UniqueID() string { return fmt.Sprintf("%xg%x", i.dev, i.ino) }

func (i info) Sys() any { return sysIdent(i.FileInfo) }

func (f *FS) ReadDir(ctx context.Context, name string) iter.Seq2[fs.FileInfo, error] {
	return func(yield func(fs.FileInfo, error) bool) {
		infos := make([]fs.FileInfo, 0, batch)
		err := f.dirBatches(ctx, name, func(dir *os.Root, ents []dirent) bool {
			infos = statBatch(dir, ents, infos[:0])
			for _, fi := range infos {
				if fi != nil && !yield(fi, nil) {
					return false
				}
			}
			return true
		})
		if err != nil {
			yield(nil, err)
		}
	}
}

// ReadDirNames streams the names in the directory name without a stat per
// entry (NLST); links that lead out of the root are left out as in ReadDir.
func (f *FS) ReadDirNames(ctx context.Context, name string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		err := f.dirBatches(ctx, name, func(dir *os.Root, ents []dirent) bool {
			for _, e := range ents {
				if e.typ == fs.ModeSymlink || e.typ == modeUnknown {
					if fi, err := dir.Stat(e.name); err != nil || !(fi.Mode().IsRegular() || fi.IsDir()) {
						continue
					}
				}
				if !yield(e.name, nil) {
					return false
				}
			}
			return true
		})
		if err != nil {
			yield("", err)
		}
	}
}

const batch = 512

// dirBatches calls fn with the visible entries of a directory, a batch at
// a time, and the directory opened as an os.Root, so that each entry can be
// stat-ed with one fstatat(2) and links are followed only inside it. fn
// returns false to stop.
func (f *FS) dirBatches(ctx context.Context, name string, fn func(dir *os.Root, ents []dirent) bool) error {
	if err := check(name); err != nil {
		return err
	}
	dir := f.root
	if name != "." {
		fi, err := f.root.Stat(name)
		if err != nil {
			return mapErr(err)
		}
		if !fi.IsDir() {
			return storage.ErrNotDir
		}
		if dir, err = f.root.OpenRoot(name); err != nil {
			return mapErr(err)
		}
		defer dir.Close()
	}
	d, err := dir.Open(".")
	if err != nil {
		return mapErr(err)
	}
	defer d.Close()
	rd := newDirentReader(d)
	ents := make([]dirent, 0, batch)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err = rd.next(batch, ents[:0])
		vis := ents[:0]
		for _, e := range ents {
			if !strings.HasPrefix(e.name, Prefix) {
				vis = append(vis, e)
			}
		}
		if len(vis) > 0 && !fn(dir, vis) {
			return nil
		}
		if err != nil {
			return mapErr(err)
		}
		if len(ents) == 0 {
			return nil
		}
	}
}

// statBatch describes ents, in order, stat-ing them on several goroutines:
// one stat per entry is what a large listing spends its time on. Entries
// that vanished, and links that lead out of the root or nowhere, are nil.
func statBatch(dir *os.Root, ents []dirent, out []fs.FileInfo) []fs.FileInfo {
	out = append(out, make([]fs.FileInfo, len(ents))...)
	one := func(i int) {
		e := ents[i]
		var fi fs.FileInfo
		var err error
		if e.typ == fs.ModeSymlink || e.typ == modeUnknown {
			fi, err = dir.Stat(e.name) // follows links, inside dir only
		} else {
			fi, err = dir.Lstat(e.name)
		}
		if err != nil {
			return
		}
		out[i] = fileInfo(fi)
	}
	workers := min(runtime.GOMAXPROCS(0), 4)
	if workers < 2 || len(ents) < 128 {
		for i := range ents {
			one(i)
		}
		return out
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(64)) - 64
				if i >= len(ents) {
					return
				}
				for j := i; j < min(i+64, len(ents)); j++ {
					one(j)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func (f *FS) Open(ctx context.Context, name string, offset int64) (io.ReadCloser, error) {
	if err := check(name); err != nil {
		return nil, err
	}
	fh, err := f.openFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, mapErr(err)
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, mapErr(err)
	}
	if fi.IsDir() {
		fh.Close()
		return nil, storage.ErrIsDir
	}
	if !fi.Mode().IsRegular() {
		fh.Close()
		return nil, fs.ErrPermission
	}
	if offset > 0 {
		if _, err := fh.Seek(offset, io.SeekStart); err != nil {
			fh.Close()
			return nil, storage.ErrBadOffset
		}
	}
	// The *os.File itself is returned so that the server's copy to a TCP
	// connection uses sendfile(2).
	return fh, nil
}

func partName(name string) string {
	dir, base := path.Split(name)
	p := Prefix + "part." + base
	if len(p) > 255 {
		p = Prefix + "part." + base[len(base)-(255-len(Prefix)-5):]
	}
	return dir + p
}

func tempName(name string) string {
	var b [8]byte
	rand.Read(b[:])
	dir, _ := path.Split(name)
	return dir + Prefix + "tmp." + hex.EncodeToString(b[:])
}

func (f *FS) Create(ctx context.Context, name string, opts storage.CreateOptions) (storage.Upload, error) {
	if err := check(name); err != nil {
		return nil, err
	}
	if fi, err := f.root.Stat(name); err == nil && fi.IsDir() {
		return nil, storage.ErrIsDir
	}
	switch opts.Mode {
	case storage.Append:
		// Not O_APPEND: splice(2) refuses such files. The upload is the
		// only writer at the end offset it seeks to.
		fh, err := f.openFile(name, os.O_WRONLY|os.O_CREATE, f.opts.FileMode)
		if err != nil {
			return nil, mapErr(err)
		}
		if _, err := fh.Seek(0, io.SeekEnd); err != nil {
			fh.Close()
			return nil, mapErr(err)
		}
		return &upload{fs: f, f: fh, name: name}, nil
	case storage.Exclusive:
		fh, err := f.openFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.opts.FileMode)
		if err != nil {
			return nil, mapErr(err)
		}
		return &upload{fs: f, f: fh, name: name, removeOnAbort: true}, nil
	}
	key := f.runKey(name)
	u, err := running.Create(&uploads, key, opts.Offset > 0, func() (*upload, error) { return f.createTemp(name, opts) })
	if err != nil {
		return nil, err
	}
	u.run = key
	return u, nil
}

// uploads counts the uploads to a temporary file in progress in this
// process, by file (see runKey): a resume of a file that one still
// writes is busy, its partial file not made yet.
var uploads running.Set

// runKey names the file name of f for uploads: the root's directory
// joined with it, so two roots that overlap share it.
func (f *FS) runKey(name string) string {
	return filepath.Join(f.root.Name(), filepath.FromSlash(name))
}

// createTemp starts an upload of name to a temporary file: new, the
// partial file of an earlier upload, or a copy of the first opts.Offset
// bytes of name.
func (f *FS) createTemp(name string, opts storage.CreateOptions) (*upload, error) {
	tmp := tempName(name)
	part := partName(name)
	if opts.Offset > 0 {
		// Claim the partial file of an earlier upload by renaming it, so
		// that two resumes cannot write the same file.
		if err := f.rename(part, tmp); err == nil {
			fh, err := f.openFile(tmp, os.O_WRONLY, 0)
			if err != nil {
				return nil, mapErr(err)
			}
			if fi, err := fh.Stat(); err != nil || fi.Size() < opts.Offset {
				// Too short: put it back for a later try.
				fh.Close()
				f.rename(tmp, part)
				return nil, storage.ErrBadOffset
			}
			if err := fh.Truncate(opts.Offset); err != nil {
				fh.Close()
				return nil, mapErr(err)
			}
			fh.Seek(opts.Offset, io.SeekStart)
			return &upload{fs: f, f: fh, name: name, tmp: tmp}, nil
		}
		// No partial: copy the first Offset bytes of the existing file.
		src, err := f.openFile(name, os.O_RDONLY, 0)
		if err != nil {
			return nil, storage.ErrBadOffset
		}
		defer src.Close()
		if fi, err := src.Stat(); err != nil || fi.Size() < opts.Offset || !fi.Mode().IsRegular() {
			return nil, storage.ErrBadOffset
		}
		fh, err := f.openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.opts.FileMode)
		if err != nil {
			return nil, mapErr(err)
		}
		if _, err := io.Copy(fh, io.LimitReader(src, opts.Offset)); err != nil {
			fh.Close()
			f.root.Remove(tmp)
			return nil, mapErr(err)
		}
		return &upload{fs: f, f: fh, name: name, tmp: tmp}, nil
	}
	fh, err := f.openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.opts.FileMode)
	if err != nil {
		return nil, mapErr(err)
	}
	return &upload{fs: f, f: fh, name: name, tmp: tmp}, nil
}

type upload struct {
	fs            *FS
	f             *os.File
	name          string
	tmp           string // "" when writing in place (Append, Exclusive)
	removeOnAbort bool
	run           string // its key in uploads, when counted there
	n             int64
	kept          int64 // bytes Abort kept for a resume
	done          bool
}

func (u *upload) Write(p []byte) (int, error) {
	n, err := u.f.Write(p)
	u.n += int64(n)
	return n, mapErr(err)
}

// ReadFrom lets io.Copy from a TCP connection use splice(2).
func (u *upload) ReadFrom(r io.Reader) (int64, error) {
	n, err := u.f.ReadFrom(r)
	u.n += n
	return n, mapErr(err)
}

// SyscallConn offers the descriptor of the file the upload writes
// (storage.ZeroCopy): the server splices into it.
func (u *upload) SyscallConn() (syscall.RawConn, error) { return u.f.SyscallConn() }

func (u *upload) Commit() error {
	if u.done {
		return errors.New("localfs: upload already finished")
	}
	u.done = true
	defer u.endRun()
	if u.fs.opts.Sync {
		if err := u.f.Sync(); err != nil {
			u.f.Close()
			u.discard()
			return mapErr(err)
		}
	}
	if err := u.f.Close(); err != nil {
		u.discard()
		return mapErr(err)
	}
	if u.tmp == "" {
		return nil
	}
	if err := u.fs.rename(u.tmp, u.name); err != nil {
		u.fs.root.Remove(u.tmp)
		return mapErr(err)
	}
	if u.fs.opts.Sync {
		if d, err := u.fs.root.Open(path.Dir(u.name)); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return nil
}

func (u *upload) endRun() {
	if u.run != "" {
		uploads.End(u.run)
	}
}

func (u *upload) discard() {
	if u.tmp != "" {
		u.fs.root.Remove(u.tmp)
	}
}

func (u *upload) Abort(cause error) error {
	if u.done {
		return nil
	}
	u.done = true
	defer u.endRun()
	u.f.Close()
	switch {
	case u.tmp == "":
		if u.removeOnAbort {
			u.fs.root.Remove(u.name)
		}
	case errors.Is(cause, storage.ErrNoSpace) || errors.Is(cause, storage.ErrQuota):
		// Out of space: give it back rather than keep a partial file that
		// holds the disk full.
		u.fs.root.Remove(u.tmp)
	default:
		// Keep what arrived for a resume, replacing an older kept part.
		if size := u.fileSize(); size > 0 && u.fs.rename(u.tmp, partName(u.name)) == nil {
			u.kept = size
		} else {
			u.fs.root.Remove(u.tmp)
		}
	}
	return nil
}

// Kept is how many bytes Abort kept for a resume (storage.Keeper).
func (u *upload) Kept() int64 { return u.kept }

// DropPartial removes the kept part of an interrupted upload of name
// (storage.PartialDropper).
func (f *FS) DropPartial(ctx context.Context, name string) error {
	if err := check(name); err != nil {
		return err
	}
	if err := f.root.Remove(partName(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return mapErr(err)
	}
	return nil
}

func (u *upload) fileSize() int64 {
	fi, err := u.fs.root.Stat(u.tmp)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (f *FS) Mkdir(ctx context.Context, name string) error {
	if err := check(name); err != nil {
		return err
	}
	return mapErr(f.root.Mkdir(name, f.opts.DirMode))
}

func (f *FS) Remove(ctx context.Context, name string) error {
	if err := check(name); err != nil {
		return err
	}
	fi, err := f.root.Lstat(name)
	if err != nil {
		return mapErr(err)
	}
	if fi.IsDir() {
		return storage.ErrIsDir
	}
	return mapErr(f.root.Remove(name))
}

func (f *FS) RemoveDir(ctx context.Context, name string) error {
	if err := check(name); err != nil {
		return err
	}
	if name == "." {
		return fs.ErrPermission
	}
	fi, err := f.root.Lstat(name)
	if err != nil {
		return mapErr(err)
	}
	if !fi.IsDir() {
		return storage.ErrNotDir
	}
	// Hidden partial files do not keep a directory alive.
	if d, err := f.root.Open(name); err == nil {
		ents, _ := d.ReadDir(-1)
		d.Close()
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), Prefix) {
				return storage.ErrNotEmpty
			}
		}
		for _, e := range ents {
			f.root.Remove(path.Join(name, e.Name()))
		}
	}
	return mapErr(f.root.Remove(name))
}

func (f *FS) Rename(ctx context.Context, from, to string) error {
	if err := check(from); err != nil {
		return err
	}
	if err := check(to); err != nil {
		return err
	}
	if from == "." || to == "." {
		return fs.ErrPermission
	}
	if _, err := f.root.Lstat(from); err != nil {
		return mapErr(err)
	}
	return mapErr(f.root.Rename(from, to))
}

func (f *FS) Chtimes(ctx context.Context, name string, mtime time.Time) error {
	if err := check(name); err != nil {
		return err
	}
	return mapErr(f.root.Chtimes(name, time.Time{}, mtime))
}

func (f *FS) Chmod(ctx context.Context, name string, mode fs.FileMode) error {
	if err := check(name); err != nil {
		return err
	}
	return mapErr(f.root.Chmod(name, mode&fs.ModePerm))
}

// Available reports the bytes free to unprivileged users on the root's
// file system (statfs(2) on Unix, GetDiskFreeSpaceEx on Windows).
func (f *FS) Available(ctx context.Context, name string) (uint64, error) {
	n, err := available(f.root)
	return n, mapErr(err)
}

// mapErr turns OS errors into the storage vocabulary; the server maps that
// to reply codes. Details (paths, errno text) stay in the wrapped error for
// the log and never reach a client.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOSPC, syscall.EDQUOT:
			return storage.FileError(err)
		case syscall.ENOTEMPTY, syscall.EEXIST:
			if errors.Is(err, fs.ErrExist) {
				return err
			}
			return fmt.Errorf("%w: %v", storage.ErrNotEmpty, err)
		case syscall.EISDIR:
			return fmt.Errorf("%w: %v", storage.ErrIsDir, err)
		case syscall.ENOTDIR:
			return fmt.Errorf("%w: %v", fs.ErrNotExist, err)
		case syscall.ENAMETOOLONG, syscall.EINVAL:
			return fmt.Errorf("%w: %v", storage.ErrBadName, err)
		case syscall.ELOOP:
			return fmt.Errorf("%w: %v", storage.ErrOutOfRoot, err)
		}
	}
	if esc := rootEscapeErr(); esc != nil && errors.Is(err, esc) || errors.Is(err, errBeneath) {
		return fmt.Errorf("%w: %v", storage.ErrOutOfRoot, err)
	}
	return err
}

// rootEscapeErr is the (unexported) error os.Root returns for a name that
// leads out of the root, captured once so it is matched by identity.
var rootEscapeErr = sync.OnceValue(func() error {
	r, err := os.OpenRoot(os.TempDir())
	if err != nil {
		return nil
	}
	defer r.Close()
	_, err = r.Stat("../ferry-probe")
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return nil
})

// RemoveStale deletes the hidden temporary files of uploads that were
// cut short by a crash (kill -9, power loss) rather than aborted: those
// whose last change is before tmpBefore, normally the start of this
// process, so no upload of its own is touched. Partial files kept for
// resumption (".ferry-part.NAME") go when their last change is before
// partBefore; the zero time keeps them all. It walks the whole tree, so run
// it in the background; it stops when ctx ends.
func (f *FS) RemoveStale(ctx context.Context, tmpBefore, partBefore time.Time) (removed int, err error) {
	err = fs.WalkDir(f.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if err != nil {
			return nil // unreadable directory: skip it
		}
		var before time.Time
		switch name := d.Name(); {
		case d.IsDir():
			return nil
		case strings.HasPrefix(name, Prefix+"tmp."):
			before = tmpBefore
		case strings.HasPrefix(name, Prefix+"part."):
			before = partBefore
		default:
			return nil
		}
		if fi, err := d.Info(); err != nil || !fi.ModTime().Before(before) || !fi.Mode().IsRegular() {
			return nil
		}
		if f.root.Remove(p) == nil {
			removed++
		}
		return nil
	})
	return removed, err
}
