// Package s3fs is the object-storage backend: files live as objects of an
// S3-compatible bucket (AWS S3, Ceph RGW, MinIO, versitygw, R2, B2, Wasabi),
// under a key prefix that confines the backend as os.Root confines localfs.
//
// The mapping, and what S3 cannot do:
//   - A name is the key Prefix + "/" + name. Names are checked with
//     fs.ValidPath before anything else, so no name reaches a key outside
//     the prefix.
//   - A directory exists when its marker object ("dir/", made by Mkdir) or
//     any key below it exists.
//   - Uploads stream into a multipart upload (one PutObject when the whole
//     upload fits in one part); the object appears only on Commit. An
//     aborted upload keeps its stored parts, and a later Create with an
//     Offset at the end of them continues it, on any process that shares
//     the bucket. Sweep aborts parts nobody resumed.
//   - Append copies the existing object into a new upload on the store's
//     side and commits it whole: appended bytes appear on Commit, not as
//     they arrive, and an aborted append changes nothing.
//   - Rename copies, then deletes; a directory is renamed key by key.
//   - Chtimes stores the time as object metadata ("mtime"), which Stat
//     reports; listings show the store's Last-Modified.
//   - There are no permission bits (no Chmoder) and no free-space figure.
package s3fs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"maps"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryftp/ferry/storage"
)

// MinPartSize is the smallest part S3 accepts but for the last one.
const MinPartSize = 5 << 20

// Defaults of Options.
const (
	DefaultPartSize    = 16 << 20
	DefaultConcurrency = 4
)

// maxCopy is the largest object one CopyObject or UploadPartCopy copies,
// and the largest part.
const maxCopy = 5 << 30

// singleCopy is the largest object Rename copies with one CopyObject;
// larger ones are copied part by part (a variable for the tests).
var singleCopy int64 = maxCopy

// Metadata keys: a time set by Chtimes, and the SHA-256 of an object
// uploaded in one piece (hex).
const (
	mtimeKey  = "mtime"
	sha256Key = "sha256"
)

// FS is a storage.FS on a bucket. It is safe for concurrent use.
type FS struct {
	client      *s3.Client
	bucket      string
	prefix      string // "" or "a/b/" (with the slash)
	partSize    int64
	concurrency int
	claims      Claims
}

var (
	_ storage.FS             = (*FS)(nil)
	_ storage.Chtimeser      = (*FS)(nil)
	_ storage.PartialSizer   = (*FS)(nil)
	_ storage.NameLister     = (*FS)(nil)
	_ storage.PartialDropper = (*FS)(nil)
	_ storage.Keeper         = (*upload)(nil)
)

// Config is what an FS needs besides its client.
type Config struct {
	Bucket string
	// Prefix confines the FS to the keys below it ("" is the whole bucket).
	Prefix string
	// PartSize is the size of the parts of a multipart upload, at least
	// MinPartSize; 0 means DefaultPartSize. An upload holds at most
	// PartSize × (Concurrency + 1) bytes in memory.
	PartSize int64
	// Concurrency is how many parts of one upload are sent at once; 0
	// means DefaultConcurrency.
	Concurrency int
	// Claims, when set, marks the running uploads for every server on the
	// bucket (a cluster); nil: this process's.
	Claims Claims
}

// New returns an FS on an existing bucket. It checks that the bucket is
// reachable, so a wrong name or endpoint fails at start-up.
func New(ctx context.Context, client *s3.Client, c Config) (*FS, error) {
	f, err := newFS(client, c)
	if err != nil {
		return nil, err
	}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &f.bucket}); err != nil {
		switch err = mapErr(err); {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("s3 bucket %q does not exist: %w", f.bucket, err)
		case errors.Is(err, fs.ErrPermission):
			return nil, fmt.Errorf("s3 bucket %q: access denied; check the credentials (AWS_ACCESS_KEY_ID, the shared credentials file): %w", f.bucket, err)
		}
		return nil, fmt.Errorf("s3 bucket %q: cannot use it (wrong name, endpoint, region or credentials?): %w", f.bucket, err)
	}
	return f, nil
}

func newFS(client *s3.Client, c Config) (*FS, error) {
	if c.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	f := &FS{client: client, bucket: c.Bucket, partSize: c.PartSize, concurrency: c.Concurrency, claims: c.Claims}
	if f.claims == nil {
		f.claims = processClaims
	}
	if f.partSize == 0 {
		f.partSize = DefaultPartSize
	}
	if f.partSize < MinPartSize || f.partSize > maxCopy {
		return nil, fmt.Errorf("s3: part size %d is outside 5 MiB to 5 GiB", f.partSize)
	}
	if f.concurrency == 0 {
		f.concurrency = DefaultConcurrency
	}
	if f.concurrency < 1 || f.concurrency > 64 {
		return nil, fmt.Errorf("s3: concurrency %d is outside 1 to 64", f.concurrency)
	}
	if p := strings.Trim(c.Prefix, "/"); p != "" && p != "." {
		if !fs.ValidPath(p) {
			return nil, fmt.Errorf("s3: prefix %q is not a clean path", c.Prefix)
		}
		f.prefix = p + "/"
	}
	return f, nil
}

// key is the object key of a valid name; "." is the prefix itself.
func (f *FS) key(name string) string {
	if name == "." {
		return f.prefix
	}
	return f.prefix + name
}

// dirKey is the prefix of the keys in directory name ("" or ends in "/").
func (f *FS) dirKey(name string) string {
	if name == "." {
		return f.prefix
	}
	return f.prefix + name + "/"
}

func check(name string) error {
	if !fs.ValidPath(name) {
		return storage.ErrBadName
	}
	return nil
}

// info describes an object or a directory.
type info struct {
	name  string
	size  int64
	dir   bool
	mtime time.Time
	key   string
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) ModTime() time.Time { return i.mtime }
func (i info) IsDir() bool        { return i.dir }
func (i info) Sys() any           { return ident(i.key) }
func (i info) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

// ident is the full key, whose hash is the MLSx unique fact.
type ident string

func (k ident) UniqueID() string {
	h := sha256.Sum256([]byte(k))
	return "s3" + hex.EncodeToString(h[:8])
}

// Stat describes name: an object, else a directory (a marker or keys below).
func (f *FS) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	if err := check(name); err != nil {
		return nil, err
	}
	if name == "." {
		return info{name: ".", dir: true, key: f.prefix}, nil
	}
	if fi, err := f.statObject(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		return fi, err
	}
	return f.statDir(ctx, name)
}

// head is HeadObject of a valid name other than ".".
func (f *FS) head(ctx context.Context, name string) (*s3.HeadObjectOutput, error) {
	if name == "." {
		return nil, fs.ErrNotExist
	}
	key := f.key(name)
	out, err := f.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.bucket, Key: &key})
	return out, mapErr(err)
}

func (f *FS) statObject(ctx context.Context, name string) (fs.FileInfo, error) {
	out, err := f.head(ctx, name)
	if err != nil {
		return nil, err
	}
	key := f.key(name)
	mtime := aws.ToTime(out.LastModified)
	if s, ok := out.Metadata[mtimeKey]; ok {
		if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
			mtime = time.Unix(0, ns)
		}
	}
	return info{name: path.Base(name), size: aws.ToInt64(out.ContentLength), mtime: mtime, key: key}, nil
}

// statDir finds the directory name by its first key.
func (f *FS) statDir(ctx context.Context, name string) (fs.FileInfo, error) {
	dk := f.dirKey(name)
	out, err := f.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &f.bucket, Prefix: &dk, MaxKeys: aws.Int32(1)})
	if err != nil {
		return nil, mapErr(err)
	}
	if len(out.Contents) == 0 {
		return nil, fs.ErrNotExist
	}
	var mtime time.Time
	if aws.ToString(out.Contents[0].Key) == dk {
		mtime = aws.ToTime(out.Contents[0].LastModified)
	}
	return info{name: path.Base(name), dir: true, mtime: mtime, key: dk}, nil
}

// isDir reports whether name is a directory ("." always is).
func (f *FS) isDir(ctx context.Context, name string) (bool, error) {
	if name == "." {
		return true, nil
	}
	_, err := f.statDir(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// ReadDir lists name page by page: the first entries are yielded before
// the next page is fetched, so memory stays constant however many keys.
func (f *FS) ReadDir(ctx context.Context, name string) iter.Seq2[fs.FileInfo, error] {
	return func(yield func(fs.FileInfo, error) bool) {
		for e, err := range f.list(ctx, name) {
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// ReadDirNames lists the names in name, for NLST.
func (f *FS) ReadDirNames(ctx context.Context, name string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for e, err := range f.list(ctx, name) {
			if err != nil {
				yield("", err)
				return
			}
			if !yield(e.name, nil) {
				return
			}
		}
	}
}

func (f *FS) list(ctx context.Context, name string) iter.Seq2[info, error] {
	return func(yield func(info, error) bool) {
		if err := check(name); err != nil {
			yield(info{}, err)
			return
		}
		dk := f.dirKey(name)
		pages := s3.NewListObjectsV2Paginator(f.client, &s3.ListObjectsV2Input{Bucket: &f.bucket, Prefix: &dk, Delimiter: aws.String("/")})
		seen := false
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				yield(info{}, mapErr(err))
				return
			}
			for _, p := range page.CommonPrefixes {
				seen = true
				k := aws.ToString(p.Prefix)
				if !yield(info{name: strings.TrimSuffix(k[len(dk):], "/"), dir: true, key: k}, nil) {
					return
				}
			}
			for _, o := range page.Contents {
				seen = true
				k := aws.ToString(o.Key)
				if k == dk {
					continue // the directory's own marker
				}
				if !yield(info{name: k[len(dk):], size: aws.ToInt64(o.Size), mtime: aws.ToTime(o.LastModified), key: k}, nil) {
					return
				}
			}
		}
		if seen || name == "." {
			return
		}
		// Nothing below name: a file, or nothing at all.
		if _, err := f.statObject(ctx, name); err == nil {
			yield(info{}, storage.ErrNotDir)
		} else {
			yield(info{}, err)
		}
	}
}

// Open streams name from offset (a ranged GET for offset > 0).
func (f *FS) Open(ctx context.Context, name string, offset int64) (io.ReadCloser, error) {
	if err := check(name); err != nil {
		return nil, err
	}
	if name == "." {
		return nil, storage.ErrIsDir
	}
	key := f.key(name)
	in := &s3.GetObjectInput{Bucket: &f.bucket, Key: &key}
	if offset > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := f.client.GetObject(ctx, in)
	if err == nil {
		return out.Body, nil
	}
	err = mapErr(err)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if dir, derr := f.isDir(ctx, name); derr == nil && dir {
			return nil, storage.ErrIsDir
		}
	case errors.Is(err, storage.ErrBadOffset):
		// A range that starts at the end is no error: nothing to send.
		if fi, serr := f.statObject(ctx, name); serr == nil && fi.Size() == offset {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
	}
	return nil, err
}

// Mkdir makes the marker object of name; its parent must exist.
func (f *FS) Mkdir(ctx context.Context, name string) error {
	if err := check(name); err != nil {
		return err
	}
	if name == "." {
		return fs.ErrExist
	}
	if err := f.needParent(ctx, name); err != nil {
		return err
	}
	if _, err := f.Stat(ctx, name); err == nil {
		return fs.ErrExist
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return f.putMarker(ctx, f.dirKey(name))
}

// putMarker makes the empty object that marks a directory.
func (f *FS) putMarker(ctx context.Context, key string) error {
	_, err := f.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &f.bucket, Key: &key, Body: bytes.NewReader(nil), ContentLength: aws.Int64(0)})
	return mapErr(err)
}

// needParent checks that the directory holding name exists.
func (f *FS) needParent(ctx context.Context, name string) error {
	dir := path.Dir(name)
	ok, err := f.isDir(ctx, dir)
	if err != nil {
		return err
	}
	if !ok {
		if _, err := f.statObject(ctx, dir); err == nil {
			return storage.ErrNotDir
		}
		return fs.ErrNotExist
	}
	return nil
}

// Remove deletes the object name.
func (f *FS) Remove(ctx context.Context, name string) error {
	if err := check(name); err != nil {
		return err
	}
	if name == "." {
		return storage.ErrIsDir
	}
	if _, err := f.statObject(ctx, name); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if dir, derr := f.isDir(ctx, name); derr == nil && dir {
				return storage.ErrIsDir
			}
		}
		return err
	}
	key := f.key(name)
	_, err := f.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &key})
	return mapErr(err)
}

// RemoveDir deletes the empty directory name (its marker).
func (f *FS) RemoveDir(ctx context.Context, name string) error {
	if err := check(name); err != nil {
		return err
	}
	if name == "." {
		return fs.ErrPermission
	}
	dk := f.dirKey(name)
	out, err := f.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &f.bucket, Prefix: &dk, MaxKeys: aws.Int32(2)})
	if err != nil {
		return mapErr(err)
	}
	switch {
	case len(out.Contents) == 0:
		if _, err := f.statObject(ctx, name); err == nil {
			return storage.ErrNotDir
		}
		return fs.ErrNotExist
	case len(out.Contents) > 1 || aws.ToString(out.Contents[0].Key) != dk:
		return storage.ErrNotEmpty
	}
	_, err = f.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &dk})
	return mapErr(err)
}

// Rename copies from to to and deletes from; a directory moves key by key
// (not atomically: a failure part-way leaves both, never neither).
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
	if from == to {
		_, err := f.Stat(ctx, from)
		return err
	}
	if err := f.needParent(ctx, to); err != nil {
		return err
	}
	fi, err := f.Stat(ctx, from)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		if dir, err := f.isDir(ctx, to); err != nil || dir {
			return errors.Join(err, storage.ErrIsDir)
		}
		if err := f.copyObject(ctx, f.key(from), f.key(to), fi.Size()); err != nil {
			return err
		}
		key := f.key(from)
		_, err := f.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &key})
		return mapErr(err)
	}
	if strings.HasPrefix(to+"/", from+"/") {
		return fs.ErrInvalid // into itself
	}
	if _, err := f.Stat(ctx, to); err == nil {
		return fs.ErrExist
	}
	return f.renameDir(ctx, f.dirKey(from), f.dirKey(to))
}

func (f *FS) renameDir(ctx context.Context, from, to string) error {
	pages := s3.NewListObjectsV2Paginator(f.client, &s3.ListObjectsV2Input{Bucket: &f.bucket, Prefix: &from})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return mapErr(err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			var err error
			if strings.HasSuffix(k, "/") { // a directory marker
				err = f.putMarker(ctx, to+k[len(from):])
			} else {
				err = f.copyObject(ctx, k, to+k[len(from):], aws.ToInt64(o.Size))
			}
			if err != nil {
				return err
			}
			if _, err := f.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &k}); err != nil {
				return mapErr(err)
			}
		}
	}
	return nil
}

// copySource is the x-amz-copy-source of key.
func (f *FS) copySource(key string) string {
	return url.PathEscape(f.bucket) + "/" + escapeKey(key)
}

func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// copyObject copies src to dst on the store's side: one CopyObject up to
// 5 GiB, a multipart copy above.
func (f *FS) copyObject(ctx context.Context, src, dst string, size int64) error {
	if size <= singleCopy {
		_, err := f.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &f.bucket, Key: &dst, CopySource: aws.String(f.copySource(src))})
		return mapErr(err)
	}
	u, err := f.startMultipart(ctx, dst, storage.Truncate)
	if err != nil {
		return err
	}
	if err := u.copyRange(ctx, src, size); err != nil {
		u.Abort(err)
		return err
	}
	return u.Commit()
}

// Chtimes stores mtime as metadata: the object is copied onto itself,
// keeping its other metadata.
func (f *FS) Chtimes(ctx context.Context, name string, mtime time.Time) error {
	if err := check(name); err != nil {
		return err
	}
	key := f.key(name)
	out, err := f.head(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		if dir, derr := f.isDir(ctx, name); derr == nil && dir {
			return storage.ErrUnsupported
		}
	}
	if err != nil {
		return err
	}
	if aws.ToInt64(out.ContentLength) > maxCopy {
		return storage.ErrUnsupported
	}
	meta := maps.Clone(out.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[mtimeKey] = strconv.FormatInt(mtime.UnixNano(), 10)
	_, err = f.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: &f.bucket, Key: &key, CopySource: aws.String(f.copySource(key)),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: meta,
	})
	return mapErr(err)
}

// Checksum reports the SHA-256 stored with an object uploaded in one
// piece (storage.Checksummer). Objects of a multipart upload have none:
// S3 cannot add metadata once the upload has begun.
func (f *FS) Checksum(ctx context.Context, name, alg string) (string, bool, error) {
	if alg != "SHA-256" {
		return "", false, nil
	}
	if err := check(name); err != nil {
		return "", false, err
	}
	out, err := f.head(ctx, name)
	if err != nil {
		return "", false, err
	}
	sum, ok := out.Metadata[sha256Key]
	return sum, ok && len(sum) == 64, nil
}
