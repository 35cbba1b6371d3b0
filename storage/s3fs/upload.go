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
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryftp/ferry/internal/bigbuf"
	"github.com/ferryftp/ferry/internal/running"
	"github.com/ferryftp/ferry/storage"
)

// Create starts an upload to name. Truncate and Exclusive uploads publish
// nothing until Commit; see the package comment for Append.
func (f *FS) Create(ctx context.Context, name string, opts storage.CreateOptions) (storage.Upload, error) {
	if err := check(name); err != nil {
		return nil, err
	}
	if name == "." {
		return nil, storage.ErrIsDir
	}
	if err := f.needParent(ctx, name); err != nil {
		return nil, err
	}
	if dir, err := f.isDir(ctx, name); err != nil || dir {
		return nil, errors.Join(err, storage.ErrIsDir)
	}
	key := f.key(name)
	switch opts.Mode {
	case storage.Exclusive:
		if _, err := f.statObject(ctx, name); err == nil {
			return nil, fs.ErrExist
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return f.newUpload(ctx, key, storage.Exclusive), nil
	case storage.Append:
		u := f.newUpload(ctx, key, storage.Append)
		fi, err := f.statObject(ctx, name)
		if errors.Is(err, fs.ErrNotExist) {
			return u, nil
		}
		if err == nil {
			err = u.copyRange(ctx, key, fi.Size())
		}
		if err != nil {
			u.Abort(err)
			return nil, err
		}
		return u, nil
	}
	// Counted in this process: before its first part is stored an
	// upload has no multipart upload, so no claim, and a resume would
	// take the old object's bytes.
	run := runKey(f.bucket, key)
	u, err := running.Create(&uploads, run, opts.Offset > 0, func() (*upload, error) { return f.createTruncate(ctx, name, key, opts.Offset) })
	if err != nil {
		return nil, err
	}
	u.run = run
	return u, nil
}

// uploads counts the Truncate uploads in progress in this process, by
// runKey of bucket and key; between processes, the claims keep a
// multipart upload from being resumed twice.
var uploads running.Set

// createTruncate starts a Truncate upload of key: new when offset is 0,
// else resuming the pending upload or copying the object's first offset
// bytes.
func (f *FS) createTruncate(ctx context.Context, name, key string, offset int64) (*upload, error) {
	if offset == 0 {
		return f.newUpload(ctx, key, storage.Truncate), nil
	}
	if u, err := f.resume(ctx, key, offset); u != nil || err != nil {
		return u, err
	}
	// No stored parts end there: the first Offset bytes of the object.
	fi, err := f.statObject(ctx, name)
	if err != nil || fi.Size() < offset {
		return nil, storage.ErrBadOffset
	}
	u := f.newUpload(ctx, key, storage.Truncate)
	if err := u.copyRange(ctx, key, offset); err != nil {
		u.Abort(err)
		return nil, err
	}
	return u, nil
}

// upload streams parts of PartSize bytes, Concurrency at a time.
type upload struct {
	f    *FS
	key  string
	mode storage.CreateMode
	ctx  context.Context // the upload's calls outlive a cancelled session

	id     string // of the multipart upload; "" until the first part
	next   int32  // the next part's number
	buf    []byte // the part being filled
	free   chan []byte
	sem    chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	parts  []types.CompletedPart // guarded by mu, in any order
	stored int64                 // guarded by mu: the bytes of parts
	err    error                 // guarded by mu: the first failed part
	ended  bool
	kept   int64 // the bytes left stored for a resume when the upload ended
	// claimed: the upload is in running until it ends.
	claimed bool
	run     string // its key in uploads, when counted there
}

// release lets the upload be resumed again.
func (u *upload) release() {
	if u.claimed {
		u.f.claims.Release(runKey(u.f.bucket, u.id))
		u.claimed = false
	}
	if u.run != "" {
		uploads.End(u.run)
		u.run = ""
	}
}

func (f *FS) newUpload(ctx context.Context, key string, mode storage.CreateMode) *upload {
	return &upload{
		f: f, key: key, mode: mode, ctx: context.WithoutCancel(ctx), next: 1,
		sem: make(chan struct{}, f.concurrency), free: make(chan []byte, f.concurrency+1),
	}
}

func (f *FS) startMultipart(ctx context.Context, key string, mode storage.CreateMode) (*upload, error) {
	u := f.newUpload(ctx, key, mode)
	return u, u.start()
}

func (u *upload) start() error {
	if u.id != "" {
		return nil
	}
	out, err := u.f.client.CreateMultipartUpload(u.ctx, &s3.CreateMultipartUploadInput{Bucket: &u.f.bucket, Key: &u.key})
	if err != nil {
		return mapErr(err)
	}
	u.id = aws.ToString(out.UploadId)
	u.f.claims.Claim(u.ctx, runKey(u.f.bucket, u.id)) // a new upload: no one else has it
	u.claimed = true
	return nil
}

func (u *upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// Write fills parts and sends each full one.
func (u *upload) Write(p []byte) (int, error) {
	if err := u.failed(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		u.grow(len(p))
		c := copy(u.buf[len(u.buf):cap(u.buf)], p)
		u.buf = u.buf[:len(u.buf)+c]
		p, n = p[c:], n+c
		if int64(len(u.buf)) == u.f.partSize {
			if err := u.send(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// grow makes room in buf for more bytes: a small upload stays in a small
// buffer from the heap; past it, whole parts come from the upload's own
// sent parts, else from bigbuf (outside the heap, so that the parts held
// do not let the collector's garbage grow by as much again).
func (u *upload) grow(more int) {
	if len(u.buf) < cap(u.buf) {
		return
	}
	if u.buf == nil && more < smallBuf {
		u.buf = getSmall()
		return
	}
	nb := u.getPart()
	small := u.buf
	u.buf = append(nb[:0], small...)
	putBuf(small)
}

// smallBuf is the first buffer of an upload.
const smallBuf = 64 << 10

// getPart takes a part buffer: one this upload has sent, else a new loan.
func (u *upload) getPart() []byte {
	select {
	case b := <-u.free:
		return b[:0]
	default:
		return bigbuf.Get(int(u.f.partSize))
	}
}

// putPart keeps a sent part's buffer for the upload's next part.
func (u *upload) putPart(b []byte) {
	if int64(cap(b)) != u.f.partSize {
		putBuf(b)
		return
	}
	select {
	case u.free <- b:
	default:
		putBuf(b)
	}
}

// releaseBuffers gives the upload's buffers back.
func (u *upload) releaseBuffers() {
	putBuf(u.buf)
	u.buf = nil
	for {
		select {
		case b := <-u.free:
			putBuf(b)
		default:
			return
		}
	}
}

// smallBufs holds the first buffers of uploads.
var smallBufs = sync.Pool{New: func() any { return new([smallBuf]byte) }}

func getSmall() []byte { return smallBufs.Get().(*[smallBuf]byte)[:0] }

// putBuf gives b back: to bigbuf a part it lent, to the pool a first
// buffer; anything else is left to the collector.
func putBuf(b []byte) {
	if bigbuf.Put(b) || cap(b) != smallBuf {
		return
	}
	smallBufs.Put((*[smallBuf]byte)(b[:smallBuf]))
}

// send uploads buf as the next part in the background, once fewer than
// Concurrency parts are in flight.
func (u *upload) send() error {
	if err := u.start(); err != nil {
		u.setErr(err)
		return err
	}
	data, num := u.buf, u.next
	u.buf, u.next = nil, u.next+1
	u.sem <- struct{}{}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		out, err := u.f.client.UploadPart(u.ctx, &s3.UploadPartInput{
			Bucket: &u.f.bucket, Key: &u.key, UploadId: &u.id, PartNumber: aws.Int32(num),
			Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
		})
		u.putPart(data) // before the slot is free: the next part reuses it
		<-u.sem
		if err != nil {
			u.setErr(fmt.Errorf("part %d: %w", num, mapErr(err)))
			return
		}
		u.addPart(types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.ETag}, int64(len(data)))
	}()
	return u.failed()
}

func (u *upload) setErr(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
}

func (u *upload) addPart(p types.CompletedPart, size int64) {
	u.mu.Lock()
	u.parts = append(u.parts, p)
	u.stored += size
	u.mu.Unlock()
}

// copyRange makes the first n bytes of the object src the start of the
// upload: whole parts copied on the store's side, the rest read into buf.
func (u *upload) copyRange(ctx context.Context, src string, n int64) error {
	whole := n / u.f.partSize
	if whole > 0 {
		if err := u.start(); err != nil {
			return err
		}
	}
	for i := int64(0); i < whole; i++ {
		first, last := i*u.f.partSize, (i+1)*u.f.partSize-1
		out, err := u.f.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: &u.f.bucket, Key: &u.key, UploadId: &u.id, PartNumber: aws.Int32(u.next),
			CopySource: aws.String(u.f.copySource(src)), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
		})
		if err != nil {
			return mapErr(err)
		}
		u.addPart(types.CompletedPart{PartNumber: aws.Int32(u.next), ETag: out.CopyPartResult.ETag}, u.f.partSize)
		u.next++
	}
	rest := n - whole*u.f.partSize
	if rest == 0 {
		return nil
	}
	out, err := u.f.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &u.f.bucket, Key: aws.String(src), Range: aws.String(fmt.Sprintf("bytes=%d-%d", n-rest, n-1)),
	})
	if err != nil {
		return mapErr(err)
	}
	defer out.Body.Close()
	_, err = io.Copy(u, io.LimitReader(out.Body, rest))
	if err == nil && int64(len(u.buf)) != rest {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Commit publishes the object: one PutObject when nothing was sent yet,
// else the last part and CompleteMultipartUpload.
func (u *upload) Commit() error {
	if u.ended {
		return errors.New("s3fs: upload already ended")
	}
	u.ended = true
	defer u.release()
	var ifNoneMatch *string
	if u.mode == storage.Exclusive {
		ifNoneMatch = aws.String("*")
	}
	if u.id == "" {
		// The whole upload is in buf: its SHA-256 goes with it, for HASH.
		sum := sha256.Sum256(u.buf)
		_, err := u.f.client.PutObject(u.ctx, &s3.PutObjectInput{
			Bucket: &u.f.bucket, Key: &u.key, Body: bytes.NewReader(u.buf),
			ContentLength: aws.Int64(int64(len(u.buf))), IfNoneMatch: ifNoneMatch,
			Metadata: map[string]string{sha256Key: hex.EncodeToString(sum[:])},
		})
		u.releaseBuffers()
		return mapErr(err)
	}
	if len(u.buf) > 0 {
		u.send()
	}
	u.wg.Wait()
	u.releaseBuffers()
	if err := u.failed(); err != nil {
		u.abortStore()
		return err
	}
	slices.SortFunc(u.parts, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	_, err := u.f.client.CompleteMultipartUpload(u.ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &u.f.bucket, Key: &u.key, UploadId: &u.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts}, IfNoneMatch: ifNoneMatch,
	})
	if err != nil {
		err = mapErr(err)
		if u.mode != storage.Truncate || errors.Is(err, fs.ErrExist) {
			u.abortStore()
		} else {
			u.kept = u.stored
		}
	}
	return err
}

// Abort waits for the parts in flight and keeps the stored ones of a
// Truncate upload for a resume, in place of older kept uploads of the key;
// anything else, and an upload cut for want of space or quota, is
// discarded on the store.
func (u *upload) Abort(cause error) error {
	if u.ended {
		return nil
	}
	u.ended = true
	defer u.release()
	u.buf = u.buf[:0]
	u.wg.Wait()
	u.releaseBuffers()
	if u.id == "" {
		return nil
	}
	full := errors.Is(cause, storage.ErrQuota) || errors.Is(cause, storage.ErrNoSpace)
	if u.mode != storage.Truncate || u.stored == 0 || full {
		return u.abortStore()
	}
	u.kept = u.stored
	u.f.dropPending(u.ctx, u.key, u.id) // at best: the sweep removes what stays
	return nil
}

// Kept is how many bytes stayed stored for a resume (storage.Keeper).
func (u *upload) Kept() int64 { return u.kept }

// DropPartial aborts the kept multipart uploads of name that are not
// running (storage.PartialDropper).
func (f *FS) DropPartial(ctx context.Context, name string) error {
	if err := check(name); err != nil {
		return err
	}
	return f.dropPending(ctx, f.key(name), "")
}

// dropPending aborts the multipart uploads of key other than keep that
// are not running in this process.
func (f *FS) dropPending(ctx context.Context, key, keep string) error {
	ups := s3.NewListMultipartUploadsPaginator(f.client, &s3.ListMultipartUploadsInput{Bucket: &f.bucket, Prefix: &key})
	for ups.HasMorePages() {
		page, err := ups.NextPage(ctx)
		if err != nil {
			return mapErr(err)
		}
		for _, m := range page.Uploads {
			id := aws.ToString(m.UploadId)
			if aws.ToString(m.Key) != key || id == keep {
				continue
			}
			if f.claims.Running(ctx, runKey(f.bucket, id)) {
				continue
			}
			if _, err := f.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &f.bucket, Key: m.Key, UploadId: m.UploadId}); err != nil {
				return mapErr(err)
			}
		}
	}
	return nil
}

func (u *upload) abortStore() error {
	if u.id == "" {
		return nil
	}
	_, err := u.f.client.AbortMultipartUpload(u.ctx, &s3.AbortMultipartUploadInput{Bucket: &u.f.bucket, Key: &u.key, UploadId: &u.id})
	return mapErr(err)
}

// pending finds the newest multipart upload of key and its stored parts,
// numbered 1, 2, … without a gap (a part after a gap is ignored).
func (f *FS) pending(ctx context.Context, key string) (id string, parts []types.Part, err error) {
	var newest time.Time
	ups := s3.NewListMultipartUploadsPaginator(f.client, &s3.ListMultipartUploadsInput{Bucket: &f.bucket, Prefix: &key})
	for ups.HasMorePages() {
		page, err := ups.NextPage(ctx)
		if err != nil {
			return "", nil, mapErr(err)
		}
		for _, m := range page.Uploads {
			if aws.ToString(m.Key) == key && (id == "" || aws.ToTime(m.Initiated).After(newest)) {
				id, newest = aws.ToString(m.UploadId), aws.ToTime(m.Initiated)
			}
		}
	}
	if id == "" {
		return "", nil, nil
	}
	ps := s3.NewListPartsPaginator(f.client, &s3.ListPartsInput{Bucket: &f.bucket, Key: &key, UploadId: &id})
	for ps.HasMorePages() {
		page, err := ps.NextPage(ctx)
		if err != nil {
			return "", nil, mapErr(err)
		}
		parts = append(parts, page.Parts...)
	}
	slices.SortFunc(parts, func(a, b types.Part) int { return int(*a.PartNumber - *b.PartNumber) })
	for i, p := range parts {
		if aws.ToInt32(p.PartNumber) != int32(i+1) {
			parts = parts[:i]
			break
		}
	}
	return id, parts, nil
}

// Claims marks multipart uploads as running (by bucket/upload ID), so
// that two resumes cannot write the same upload and the sweeper leaves a
// running one alone however old. The default holds them in this process;
// servers sharing a bucket share them (a cluster's database).
type Claims interface {
	// Claim marks key running; false when it is already.
	Claim(ctx context.Context, key string) (bool, error)
	// Running says whether key is.
	Running(ctx context.Context, key string) bool
	// Release marks key no longer running.
	Release(key string)
}

// localClaims are the claims of this process.
type localClaims struct{ m sync.Map }

func (c *localClaims) Claim(ctx context.Context, key string) (bool, error) {
	_, busy := c.m.LoadOrStore(key, true)
	return !busy, nil
}

func (c *localClaims) Running(ctx context.Context, key string) bool {
	_, ok := c.m.Load(key)
	return ok
}

func (c *localClaims) Release(key string) { c.m.Delete(key) }

// processClaims are the claims of the FSes without Config.Claims.
var processClaims = &localClaims{}

// runKey names, within bucket, a multipart upload by its id (claims) or
// an object by its key (uploads).
func runKey(bucket, id string) string { return bucket + "/" + id }

// resume continues the pending upload of key when its parts end at
// offset, or have a part boundary there; nil when there is no pending
// upload, ErrBusy when it is running, ErrBadOffset when offset is not
// such a place.
func (f *FS) resume(ctx context.Context, key string, offset int64) (*upload, error) {
	id, parts, err := f.pending(ctx, key)
	if err != nil || id == "" {
		return nil, err
	}
	// Claimed first: an upload still running (its last parts in flight,
	// or committing) is busy, whatever offset was asked.
	switch ok, err := f.claims.Claim(ctx, runKey(f.bucket, id)); {
	case err != nil:
		return nil, fmt.Errorf("%w: claiming the upload: %v", storage.ErrUnavailable, err)
	case !ok:
		return nil, fmt.Errorf("%w: another upload of this name is running", storage.ErrBusy)
	}
	u := f.newUpload(ctx, key, storage.Truncate)
	u.id, u.claimed = id, true
	var end int64
	for _, p := range parts {
		if end == offset {
			break
		}
		u.addPart(types.CompletedPart{PartNumber: p.PartNumber, ETag: p.ETag}, aws.ToInt64(p.Size))
		end += aws.ToInt64(p.Size)
	}
	if end != offset {
		// Kept parts that do not end there: like a partial file too
		// short, they are no base for this offset.
		u.release()
		return nil, storage.ErrBadOffset
	}
	u.next = int32(len(u.parts) + 1)
	return u, nil
}

// PartialSize reports how many bytes of an interrupted upload of name
// are stored, ready to resume (fs.ErrNotExist when there are none).
func (f *FS) PartialSize(ctx context.Context, name string) (int64, error) {
	if err := check(name); err != nil {
		return 0, err
	}
	id, parts, err := f.pending(ctx, f.key(name))
	if err != nil {
		return 0, err
	}
	if id == "" || len(parts) == 0 {
		return 0, fs.ErrNotExist
	}
	var n int64
	for _, p := range parts {
		n += aws.ToInt64(p.Size)
	}
	return n, nil
}

// Sweep aborts the multipart uploads below the prefix begun before
// cutoff and not running in this process: interrupted uploads nobody
// resumed in time. It returns how
// many it aborted.
func (f *FS) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	ups := s3.NewListMultipartUploadsPaginator(f.client, &s3.ListMultipartUploadsInput{Bucket: &f.bucket, Prefix: &f.prefix})
	for ups.HasMorePages() {
		page, err := ups.NextPage(ctx)
		if err != nil {
			return n, mapErr(err)
		}
		for _, m := range page.Uploads {
			if !aws.ToTime(m.Initiated).Before(cutoff) || f.claims.Running(ctx, runKey(f.bucket, aws.ToString(m.UploadId))) {
				continue
			}
			if _, err := f.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &f.bucket, Key: m.Key, UploadId: m.UploadId}); err != nil {
				return n, mapErr(err)
			}
			n++
		}
	}
	return n, nil
}
