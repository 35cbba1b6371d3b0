// Package storage defines the small contract between the FTP server and the
// place files live. Every call takes a context.Context, because a backend may
// block on a network; uploads end with an explicit Commit or Abort so that a
// backend can make them atomic.
//
// Names are slash-separated paths relative to the backend's root, in the
// form io/fs.ValidPath accepts: "." is the root, no leading slash, no "." or
// ".." elements, no empty elements. The server turns a client's virtual path
// into such a name before it calls a backend, and backends confine every name
// to their root (localfs with os.Root).
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"syscall"
	"time"
)

// FS is a storage backend.
type FS interface {
	// Stat describes name. Symbolic links are followed within the root.
	Stat(ctx context.Context, name string) (fs.FileInfo, error)
	// ReadDir streams the entries of the directory name in no particular
	// order, without holding them all in memory. A yielded error ends the
	// listing. The backend's own temporary files are never yielded.
	ReadDir(ctx context.Context, name string) iter.Seq2[fs.FileInfo, error]
	// Open opens name for reading from offset.
	Open(ctx context.Context, name string, offset int64) (io.ReadCloser, error)
	// Create starts an upload to name. Nothing is visible at name until
	// Commit succeeds (for Truncate mode); see CreateOptions.
	Create(ctx context.Context, name string, opts CreateOptions) (Upload, error)
	// Mkdir creates the directory name; its parent must exist.
	Mkdir(ctx context.Context, name string) error
	// Remove deletes the file name (not a directory).
	Remove(ctx context.Context, name string) error
	// RemoveDir deletes the empty directory name.
	RemoveDir(ctx context.Context, name string) error
	// Rename moves from to to, replacing a file at to.
	Rename(ctx context.Context, from, to string) error
}

// CreateMode says how Create treats an existing file.
type CreateMode int

const (
	// Truncate replaces the file atomically on Commit; an upload that ends
	// with Abort leaves the old file untouched and keeps the received bytes
	// so that a later Create with Offset can resume them.
	Truncate CreateMode = iota
	// Append writes after the end of the existing file (APPE). Appended
	// bytes are visible as they arrive; nothing before them changes.
	Append
	// Exclusive creates a new file and fails with fs.ErrExist if name
	// exists (STOU).
	Exclusive
)

// CreateOptions are the options of Create.
type CreateOptions struct {
	Mode CreateMode
	// Offset, in Truncate mode, resumes an upload (REST then STOR): the
	// first Offset bytes come from the partial data of an earlier upload of
	// name, or else from the existing file. ErrBadOffset if neither has that
	// many bytes.
	Offset int64
}

// Upload receives the bytes of one upload. The caller calls exactly one of
// Commit or Abort.
type Upload interface {
	io.Writer
	// Commit makes the upload visible at its name.
	Commit() error
	// Abort ends the upload without replacing the target; cause says why.
	Abort(cause error) error
}

// Optional capabilities. The server checks for them with a type assertion;
// wrappers must forward them.

// ZeroCopy is the zero-copy capability, optional on the reader that Open
// returns and on an Upload: a value that has one offers the descriptor of
// a regular file (it is syscall.Conn, as *os.File is), positioned where
// the next byte is read or written. The server may then move a large plain
// binary transfer between it and the data socket in the kernel
// (sendfile(2) for a download, splice(2) for an upload, on Linux) instead
// of calling Read or Write; for an upload it passes the errors of its own
// writes through FileError, and Commit or Abort still ends the upload.
//
// localfs's readers and uploads have it. A wrapping FS keeps the fast path
// by returning readers and uploads that forward SyscallConn (embedding the
// wrapped value does); one that must see every byte (a checksum, a byte
// quota, a rate limit) leaves it out, and the server copies through
// Read and Write.
type ZeroCopy interface {
	SyscallConn() (syscall.RawConn, error)
}

// Chtimeser sets a modification time (MFMT).
type Chtimeser interface {
	Chtimes(ctx context.Context, name string, mtime time.Time) error
}

// Chmoder changes permission bits (SITE CHMOD).
type Chmoder interface {
	Chmod(ctx context.Context, name string, mode fs.FileMode) error
}

// SpaceReporter reports the bytes available for uploads under name (AVBL).
type SpaceReporter interface {
	Available(ctx context.Context, name string) (uint64, error)
}

// NameLister streams the names in a directory without describing each
// entry, for NLST on large directories.
type NameLister interface {
	ReadDirNames(ctx context.Context, name string) iter.Seq2[string, error]
}

// PartialSizer reports how many bytes of an interrupted upload of name
// are kept for a resume (fs.ErrNotExist when none are). SIZE of a name
// that has no file yet answers with it, so that a client resuming with
// REST + STOR (lftp's put -c) continues where the kept bytes end.
type PartialSizer interface {
	PartialSize(ctx context.Context, name string) (int64, error)
}

// Keeper is optional on an Upload: after Abort (or a failed Commit), how
// many bytes the backend kept for a resume — the size PartialSizer then
// reports — or 0 when it discarded them (and left any older kept part of
// the name as it was). A quota counts kept bytes as stored.
type Keeper interface {
	Kept() int64
}

// PartialDropper removes the kept part of an interrupted upload of name
// (nil when there is none): a quota frees it when a new upload of the
// name commits, since a resume of it can no longer make sense.
type PartialDropper interface {
	DropPartial(ctx context.Context, name string) error
}

// Checksummer reports a checksum the backend stored with a file when it
// was written (alg as HASH names it: "SHA-256"), so that HASH need not
// read the file again. ok is false when it holds none for alg.
type Checksummer interface {
	Checksum(ctx context.Context, name, alg string) (sum string, ok bool, err error)
}

// Identifier is implemented by a FileInfo.Sys() value that carries a unique
// identity for the MLSx unique fact.
type Identifier interface {
	UniqueID() string
}

// Errors beyond those of io/fs (fs.ErrNotExist, fs.ErrExist,
// fs.ErrPermission, fs.ErrInvalid) that backends return, wrapped or not.
var (
	ErrNotEmpty    = errors.New("directory not empty")
	ErrIsDir       = errors.New("is a directory")
	ErrNotDir      = errors.New("not a directory")
	ErrNoSpace     = errors.New("no space left")
	ErrQuota       = errors.New("storage allocation exceeded")
	ErrBadOffset   = errors.New("restart offset beyond available data")
	ErrBadName     = errors.New("name not allowed")
	ErrOutOfRoot   = errors.New("path leads out of the root")
	ErrUnsupported = errors.New("operation not supported by this storage")
	// ErrUnavailable is a storage that cannot answer now (an object
	// store throttling or down, after its own retries); the client may
	// try again later.
	ErrUnavailable = errors.New("storage temporarily unavailable")
	// ErrBusy is a name another operation holds now (an upload of it
	// still running or committing, which a resume would race); the client
	// may try again once it ends.
	ErrBusy = errors.New("file busy")
)

// FileError maps an error of writing a local file to this package's
// errors: ENOSPC to ErrNoSpace and EDQUOT to ErrQuota. Others are
// returned as they are.
func FileError(err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: %v", ErrNoSpace, err)
	case errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %v", ErrQuota, err)
	}
	return err
}
