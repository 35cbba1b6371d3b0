// Package memfs is an in-memory storage backend: the reference
// implementation of storage.FS, used by tests and examples. Uploads are
// atomic, like localfs: the target changes only on Commit, and an aborted
// upload's bytes are kept for a resume.
package memfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"iter"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferryftp/ferry/storage"
)

// FS is an in-memory storage.FS. The zero value is not usable; call New.
type FS struct {
	mu       sync.RWMutex
	nodes    map[string]*node // by name; "." is the root
	partials map[string][]byte
	seq      uint64
	now      func() time.Time
}

type node struct {
	name  string
	dir   bool
	data  []byte
	mode  fs.FileMode
	mtime time.Time
	id    uint64
}

var (
	_ storage.FS        = (*FS)(nil)
	_ storage.Chtimeser = (*FS)(nil)
	_ storage.Chmoder   = (*FS)(nil)
)

// New returns an empty file system.
func New() *FS {
	f := &FS{nodes: map[string]*node{}, partials: map[string][]byte{}, now: time.Now}
	f.nodes["."] = &node{name: ".", dir: true, mode: fs.ModeDir | 0o755, mtime: f.now(), id: 1}
	f.seq = 1
	return f
}

type info struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
	id    uint64
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return i.mode }
func (i info) ModTime() time.Time { return i.mtime }
func (i info) IsDir() bool        { return i.mode.IsDir() }
func (i info) Sys() any           { return ident(i.id) }

type ident uint64

func (i ident) UniqueID() string {
	return "m" + strings.ToLower(strings.TrimLeft(hex16(uint64(i)), "0"))
}

func hex16(v uint64) string {
	const d = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = d[v&15]
		v >>= 4
	}
	return string(b[:])
}

func (n *node) info() fs.FileInfo {
	return info{name: path.Base(n.name), size: int64(len(n.data)), mode: n.mode, mtime: n.mtime, id: n.id}
}

func check(name string) error {
	if !fs.ValidPath(name) {
		return storage.ErrBadName
	}
	return nil
}

func (f *FS) lookup(name string) (*node, error) {
	if err := check(name); err != nil {
		return nil, err
	}
	n, ok := f.nodes[name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return n, nil
}

func (f *FS) parentDir(name string) error {
	p, ok := f.nodes[path.Dir(name)]
	if !ok || !p.dir {
		return fs.ErrNotExist
	}
	return nil
}

func (f *FS) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return n.info(), nil
}

func (f *FS) ReadDir(ctx context.Context, name string) iter.Seq2[fs.FileInfo, error] {
	return func(yield func(fs.FileInfo, error) bool) {
		f.mu.RLock()
		n, err := f.lookup(name)
		if err == nil && !n.dir {
			err = storage.ErrNotDir
		}
		if err != nil {
			f.mu.RUnlock()
			yield(nil, err)
			return
		}
		var infos []fs.FileInfo
		for k, c := range f.nodes {
			if k != "." && path.Dir(k) == name {
				infos = append(infos, c.info())
			}
		}
		f.mu.RUnlock()
		sort.Slice(infos, func(i, j int) bool { return infos[i].Name() < infos[j].Name() })
		for _, i := range infos {
			if !yield(i, nil) {
				return
			}
		}
	}
}

// PartialSize reports the bytes kept from an aborted upload of name.
func (f *FS) PartialSize(ctx context.Context, name string) (int64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := check(name); err != nil {
		return 0, err
	}
	b, ok := f.partials[name]
	if !ok {
		return 0, fs.ErrNotExist
	}
	return int64(len(b)), nil
}

func (f *FS) Open(ctx context.Context, name string, offset int64) (io.ReadCloser, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, storage.ErrIsDir
	}
	if offset > int64(len(n.data)) {
		return nil, storage.ErrBadOffset
	}
	return io.NopCloser(bytes.NewReader(n.data[offset:])), nil
}

func (f *FS) Create(ctx context.Context, name string, opts storage.CreateOptions) (storage.Upload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := check(name); err != nil {
		return nil, err
	}
	if name == "." {
		return nil, storage.ErrIsDir
	}
	if err := f.parentDir(name); err != nil {
		return nil, err
	}
	old, exists := f.nodes[name]
	if exists && old.dir {
		return nil, storage.ErrIsDir
	}
	u := &upload{fs: f, name: name, mode: opts.Mode}
	switch opts.Mode {
	case storage.Append:
		if exists {
			u.buf.Write(old.data)
		}
	case storage.Exclusive:
		if exists {
			return nil, fs.ErrExist
		}
	default:
		if opts.Offset > 0 {
			src, ok := f.partials[name]
			if ok {
				delete(f.partials, name)
			} else if exists {
				src = old.data
			}
			if int64(len(src)) < opts.Offset {
				if ok {
					f.partials[name] = src
				}
				return nil, storage.ErrBadOffset
			}
			u.buf.Write(src[:opts.Offset])
		}
	}
	return u, nil
}

type upload struct {
	fs   *FS
	name string
	mode storage.CreateMode
	buf  bytes.Buffer
	kept int64
	done bool
}

// Kept is how many bytes Abort kept for a resume (storage.Keeper).
func (u *upload) Kept() int64 { return u.kept }

// DropPartial forgets the kept part of name (storage.PartialDropper).
func (f *FS) DropPartial(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.partials, name)
	return nil
}

func (u *upload) Write(p []byte) (int, error) { return u.buf.Write(p) }

func (u *upload) Commit() error {
	f := u.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if u.done {
		return nil
	}
	u.done = true
	if err := f.parentDir(u.name); err != nil {
		return err
	}
	if old, ok := f.nodes[u.name]; ok && old.dir {
		return storage.ErrIsDir
	}
	f.seq++
	f.nodes[u.name] = &node{name: u.name, data: bytes.Clone(u.buf.Bytes()), mode: 0o644, mtime: f.now(), id: f.seq}
	return nil
}

func (u *upload) Abort(cause error) error {
	f := u.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if u.done {
		return nil
	}
	u.done = true
	full := errors.Is(cause, storage.ErrQuota) || errors.Is(cause, storage.ErrNoSpace)
	switch u.mode {
	case storage.Truncate:
		if u.buf.Len() > 0 && !full {
			f.partials[u.name] = bytes.Clone(u.buf.Bytes())
			u.kept = int64(u.buf.Len())
		}
	case storage.Append:
		// Appended bytes are kept, as on disk.
		f.seq++
		f.nodes[u.name] = &node{name: u.name, data: bytes.Clone(u.buf.Bytes()), mode: 0o644, mtime: f.now(), id: f.seq}
	}
	return nil
}

func (f *FS) Mkdir(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := check(name); err != nil {
		return err
	}
	if _, ok := f.nodes[name]; ok {
		return fs.ErrExist
	}
	if err := f.parentDir(name); err != nil {
		return err
	}
	f.seq++
	f.nodes[name] = &node{name: name, dir: true, mode: fs.ModeDir | 0o755, mtime: f.now(), id: f.seq}
	return nil
}

func (f *FS) Remove(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup(name)
	if err != nil {
		return err
	}
	if n.dir {
		return storage.ErrIsDir
	}
	delete(f.nodes, name)
	return nil
}

func (f *FS) RemoveDir(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup(name)
	if err != nil {
		return err
	}
	if name == "." {
		return fs.ErrPermission
	}
	if !n.dir {
		return storage.ErrNotDir
	}
	for k := range f.nodes {
		if k != "." && path.Dir(k) == name {
			return storage.ErrNotEmpty
		}
	}
	delete(f.nodes, name)
	return nil
}

func (f *FS) Rename(ctx context.Context, from, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup(from)
	if err != nil {
		return err
	}
	if err := check(to); err != nil {
		return err
	}
	if from == "." || to == "." || strings.HasPrefix(to+"/", from+"/") {
		return fs.ErrPermission
	}
	if err := f.parentDir(to); err != nil {
		return err
	}
	if t, ok := f.nodes[to]; ok {
		if t.dir != n.dir {
			if t.dir {
				return storage.ErrIsDir
			}
			return storage.ErrNotDir
		}
		if t.dir {
			for k := range f.nodes {
				if k != "." && path.Dir(k) == to {
					return storage.ErrNotEmpty
				}
			}
		}
	}
	moved := map[string]*node{}
	for k, c := range f.nodes {
		if k == from || strings.HasPrefix(k, from+"/") {
			moved[to+k[len(from):]] = c
			delete(f.nodes, k)
		}
	}
	for k, c := range moved {
		c.name = k
		f.nodes[k] = c
	}
	return nil
}

func (f *FS) Chtimes(ctx context.Context, name string, mtime time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup(name)
	if err != nil {
		return err
	}
	n.mtime = mtime
	return nil
}

func (f *FS) Chmod(ctx context.Context, name string, mode fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup(name)
	if err != nil {
		return err
	}
	n.mode = n.mode&^fs.ModePerm | mode&fs.ModePerm
	return nil
}
