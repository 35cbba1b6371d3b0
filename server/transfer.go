package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/internal/bigbuf"
	"github.com/ferryftp/ferry/limits"
	"github.com/ferryftp/ferry/storage"
)

// Bounds of the bytes one copy call moves before the stall deadline is
// renewed (see copyChunks).
const (
	minChunk = 256 << 10
	maxChunk = 64 << 20
)

// transferJob is what a transfer does: run moves the bytes once the data
// connection is open; cancel, when set, gives back what run would have
// used (an upload's file) when the connection never opens.
type transferJob struct {
	run    func(ctx context.Context, c net.Conn, x *transfer) error
	cancel func(err error)
	size   int64 // the bytes a download will send, when known
}

// startTransfer runs job in a new goroutine with the data connection of
// d: it replies 150 once the connection is open, then 226 or the error
// reply, logs one line, and clears the session's transfer. When d already
// holds its connection and the transfer is small (see inlineMax), it runs
// on the session goroutine instead: it cannot outlast a command.
func (s *session) startTransfer(verb, vpath string, d dataSource, opening string, job transferJob) {
	ctx, cancel := context.WithCancel(s.sctx) // the transfer outlives the command
	x := &transfer{verb: verb, path: vpath, start: time.Now(), done: make(chan struct{}), cancel: cancel, ascii: !s.binary, size: job.size}
	s.xmu.Lock()
	s.xfer = x
	s.xmu.Unlock()
	if s.srv.Hooks.ConnState != nil { // only a hook can see the Conn
		s.hook.xfer.Store(x.info(""))
		s.state(StateTransferStart)
	}
	run := func() {
		result := "ok"
		defer s.endTransfer(x, &result)
		c, failed := s.openTransfer(ctx, x, d, opening)
		if c == nil {
			result = failed
			if job.cancel != nil {
				job.cancel(errors.New(failed))
			}
			return
		}
		err := job.run(ctx, c, x)
		result = s.closeTransfer(x, c, err)
	}
	if d.conn != nil {
		run()
		return
	}
	go run()
}

// openTransfer opens the data connection (and its TLS when PROT P) and
// replies 150; on failure it replies and returns nil with the result to
// log.
func (s *session) openTransfer(ctx context.Context, x *transfer, d dataSource, opening string) (net.Conn, string) {
	c, err := s.openData(ctx, x, d)
	if err != nil {
		if x.aborted.Load() {
			x.code = ftp.CodeTransferAborted
			s.reply(x.code, "Transfer aborted.")
		} else {
			x.code = ftp.CodeCantOpenData
			s.reply(x.code, "Can't open data connection.")
		}
		return nil, "no data connection"
	}
	x.mu.Lock()
	x.conn = c
	aborted := x.aborted.Load()
	x.mu.Unlock()
	if aborted {
		c.Close()
	}
	s.reply(ftp.CodeFileStatusOK, opening)
	if !s.protP {
		return c, ""
	}
	tc, err := s.secureData(ctx, c)
	if err != nil {
		msg := tlsDataError(err)
		s.log().Warn("TLS data connection refused", "reason", msg)
		c.Close()
		x.code = ftp.CodeTLSFailed
		s.reply(ftp.CodeTLSFailed, msg)
		return nil, "TLS refused"
	}
	return tc, ""
}

// closeTransfer closes the data connection after the job and replies:
// 226, or why it ended. It returns the result to log.
func (s *session) closeTransfer(x *transfer, c net.Conn, err error) string {
	cerr := c.Close()
	if err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = netErr{cerr}
	}
	switch {
	case x.committed.Load(), err == nil && !x.aborted.Load():
		// A committed upload is published whatever came meanwhile: an
		// ABOR or a closed control connection during the commit (RFC 959:
		// an ABOR after the service completed is answered 226).
		x.code = ftp.CodeClosingData
		s.reply(ftp.CodeClosingData, "Transfer complete.")
		return "ok"
	case x.aborted.Load():
		x.code = ftp.CodeTransferAborted
		s.reply(ftp.CodeTransferAborted, "Transfer aborted.")
		return "aborted"
	case errors.As(err, new(netErr)):
		x.code = ftp.CodeTransferAborted
		s.reply(ftp.CodeTransferAborted, "Data connection closed; transfer aborted.")
		return "connection lost"
	default:
		x.code, _ = replyFor(err)
		s.fail(err, x.verb)
		return "error"
	}
}

// endTransfer, deferred by every transfer, recovers a panic, logs the
// transfer's line and clears the session's transfer.
func (s *session) endTransfer(x *transfer, result *string) {
	if r := recover(); r != nil {
		s.log().Error("transfer panic", "panic", r, "stack", string(debug.Stack()))
		x.abort() // close the data connection and listener
		x.code = ftp.CodeLocalError
		s.reply(ftp.CodeLocalError, "Internal error.")
		*result = "panic"
	}
	x.cancel()
	info := x.info(*result)
	// Checked first: the arguments alone cost seven allocations a transfer.
	if s.srv.logger().Enabled(context.Background(), slog.LevelInfo) {
		s.log().Info("transfer", "user", s.hook.User(), "op", x.verb, "path", x.path,
			"bytes", info.Bytes, "duration", info.Took.Round(time.Microsecond), "result", info.Result)
	}
	s.hook.xfer.Store(info)
	s.xmu.Lock()
	s.xfer = nil
	s.xmu.Unlock()
	s.state(StateTransferEnd)
	close(x.done)
}

// sendfileMin is the smallest download sent on a thread of its own (see
// sendFile): below it, the few system calls that take its socket out of
// the network poller cost more than the hand-offs they spare.
const sendfileMin = 1 << 20

// inlineMax is the largest download run on the session goroutine: it fits
// in a socket's send buffer, so sendfile never waits for the client.
const inlineMax = 16 << 10

// acceptPending takes the passive data connection of d if the client has
// already made it (clients connect right after the 227/229 reply). It
// polls the listener once instead of arming a deadline, whose timer would
// wake the network poller. A connection from a foreign address is left for
// openData, which drops it and keeps waiting.
func (s *session) acceptPending(d *dataSource) {
	tl := d.ln
	if !readable(tl) {
		return
	}
	tl.SetDeadline(time.Time{}) // an ABOR may have left one in the past
	c, err := tl.Accept()
	if err != nil {
		return
	}
	if ra, ok := s.passivePeer(c); !ok || !s.dataAllowed(ra) {
		s.log().Warn("foreign data connection dropped", "from", c.RemoteAddr().String(), "client", ra.String())
		c.Close()
		return
	}
	d.ln, d.conn = nil, c
}

// netErr marks an error of the data connection (as opposed to storage).
type netErr struct{ error }

func (e netErr) Unwrap() error { return e.error }

// copyOut sends src to c, renewing the stall deadline for each chunk. When
// src is an *os.File and c a *net.TCPConn, io.Copy uses sendfile(2).
func (s *session) copyOut(c net.Conn, src io.Reader, x *transfer) error {
	if tc, ok := c.(*tls.Conn); ok {
		// TLS: no zero copy; large reads, each written as full records.
		// (Gathering a write's sixteen records into one write to the
		// socket was tried: level with this over 12 rounds, 0.72 against
		// 0.70 CPU-s per GiB; reading an upload's socket 128 KiB at a time did
		// no better.)
		buf := getCopyBuf()
		defer putCopyBuf(buf)
		return s.copyChunks(x, func(lr *io.LimitedReader) (int64, error) {
			lr.R = src
			return io.CopyBuffer(tc, lr, *buf)
		}, c.SetWriteDeadline)
	}
	if _, ok := s.zeroCopy(src); !ok {
		// A stream (an object store's response, or a file with sendfile
		// off): reads of up to streamBuffer, each written as it comes.
		// (Filling the buffer before each write kept the client waiting
		// while the store sent: 0.88-0.91 of this, bench/s3rounds.)
		buf := bigbuf.Get(streamBuffer)[:streamBuffer]
		defer bigbuf.Put(buf)
		return s.copyChunks(x, func(lr *io.LimitedReader) (int64, error) {
			lr.R = src
			return io.CopyBuffer(struct{ io.Writer }{c}, lr, buf)
		}, c.SetWriteDeadline)
	}
	return s.copyChunks(x, func(lr *io.LimitedReader) (int64, error) {
		lr.R = src
		return io.Copy(c, lr)
	}, c.SetWriteDeadline)
}

// zeroCopy returns v's file for the kernel's zero-copy paths, when v
// offers one (storage.ZeroCopy) and the sendfile setting is on.
func (s *session) zeroCopy(v any) (storage.ZeroCopy, bool) {
	if on := s.srv.o().Sendfile; on != nil && !*on {
		return nil, false
	}
	f, ok := v.(storage.ZeroCopy)
	return f, ok
}

// copyGathered copies r to w through buf, filling buf before each write.
func copyGathered(w io.Writer, r io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return total, nil
		default:
			return total, err
		}
	}
}

// streamBuffer is the copy buffer of a download from a stream, lent by
// bigbuf (outside the heap). Downloads of 1 GiB from versitygw, side by
// side (bench/s3rounds -base): 4 MiB reads and writes cost Ferry 0.33-0.37
// CPU-s per GiB, against 0.53-0.64 for 256 KiB, 0.34-0.41 for 1 MiB, 0.51
// for 16 MiB and 0.82-0.85 for 64 KiB, and ran 1.2-1.4 times as fast as
// 256 KiB.
const streamBuffer = 4 << 20

// tlsBuffer is the copy buffer of a TLS transfer: sixteen full records.
const tlsBuffer = 256 << 10

// copyBufs holds the copy buffers of the transfers that cannot go zero
// copy (TLS, streams, paced transfers): a small file must not cost a
// fresh 256 KiB.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, tlsBuffer); return &b }}

func getCopyBuf() *[]byte  { return copyBufs.Get().(*[]byte) }
func putCopyBuf(b *[]byte) { copyBufs.Put(b) }

// copyIn receives c into dst, renewing the stall deadline for each chunk.
// When dst wraps an *os.File, io.Copy uses splice(2).
func (s *session) copyIn(dst io.Writer, c net.Conn, x *transfer) error {
	if _, ok := c.(*tls.Conn); ok {
		// A TLS read returns one record (16 KiB at most): gather a full
		// buffer before each write, sixteen times fewer writes to storage.
		buf := getCopyBuf()
		defer putCopyBuf(buf)
		return s.copyChunks(x, func(lr *io.LimitedReader) (int64, error) {
			lr.R = c
			return copyGathered(dst, lr, *buf)
		}, c.SetReadDeadline)
	}
	if _, ok := s.zeroCopy(dst); !ok {
		// Not a file (an object store's buffer), or sendfile off: reads
		// of up to 256 KiB rather than io.Copy's 32 KiB, never splice(2).
		buf := getCopyBuf()
		defer putCopyBuf(buf)
		return s.copyChunks(x, func(lr *io.LimitedReader) (int64, error) {
			lr.R = c
			return io.CopyBuffer(struct{ io.Writer }{dst}, lr, *buf)
		}, c.SetReadDeadline)
	}
	return s.copyChunks(x, func(lr *io.LimitedReader) (int64, error) {
		lr.R = c
		return io.Copy(dst, lr)
	}, c.SetReadDeadline)
}

// recvHead is what a binary upload receives through the network poller
// before it moves to a thread of its own (recvFile): most uploads are
// small, and for those the system calls that take the socket out of the
// poller cost more than the hand-offs they spare.
const recvHead = 1 << 20

// receive receives a binary upload from c into up: its first recvHead
// bytes through the poller, the rest by recvFile where it can. Without a
// zero-copy path (TLS, an object store, sendfile off) it is copyIn's.
func (s *session) receive(up storage.Upload, c net.Conn, x *transfer) error {
	_, tcp := c.(*net.TCPConn)
	if _, zc := s.zeroCopy(up); !tcp || !zc {
		return s.copyIn(up, c, x)
	}
	head := x.piece(recvHead)
	c.SetReadDeadline(time.Now().Add(s.srv.dataStallTimeout()))
	n, err := io.Copy(up, io.LimitReader(c, head))
	x.bytes.Add(n)
	if err == nil {
		err = x.paced(n)
	}
	if err != nil || n < head {
		return dataErr(err)
	}
	if m, ok := up.(limits.Meter); ok {
		x.meter = m
	}
	if ok, err := s.recvFile(x, c, up); ok {
		return err
	}
	return s.copyIn(up, c, x)
}

// copyChunks runs copy on chunks until one comes back short (the end).
// Each chunk gets a fresh stall deadline. A chunk starts at 256 KiB and
// doubles, up to 64 MiB, while chunks finish well within the stall timeout,
// so fast transfers make few large sendfile/splice calls and slow ones
// still renew their deadline often.
func (s *session) copyChunks(x *transfer, copy func(*io.LimitedReader) (int64, error), setDeadline func(time.Time) error) error {
	stall := s.srv.dataStallTimeout()
	size := int64(minChunk)
	lr := &io.LimitedReader{}
	for {
		start := time.Now()
		setDeadline(start.Add(stall))
		want := x.piece(size)
		lr.N = want
		n, err := copy(lr)
		x.bytes.Add(n)
		if err != nil {
			return dataErr(err)
		}
		if n < want {
			return nil
		}
		if x.pace != nil {
			if err := x.paced(n); err != nil {
				return err
			}
			continue // paced pieces keep their size
		}
		if size < maxChunk && time.Since(start) < stall/16 {
			size *= 2
		}
	}
}

// dataErr marks err as the data connection's (netErr) when it is one; a
// storage error is returned as it is.
func dataErr(err error) error {
	if err != nil && isNetErr(err) {
		return netErr{err}
	}
	return err
}

// splice(2) and sendfile(2) report a socket's failure as an errno of the
// file call, so the errnos of a broken connection count too.
func isNetErr(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ETIMEDOUT)
}

func (s *session) typeName() string {
	if s.binary {
		return "BINARY"
	}
	return "ASCII"
}

func (s *session) cmdRETR(arg string) {
	vpath, name, ok := s.resolve(arg)
	if !ok || !s.may(auth.PermDownload, vpath) {
		return
	}
	off := s.rest
	s.rest = 0
	ctx := s.ctx()
	fi, err := s.acct.FS.Stat(ctx, name)
	if err != nil {
		s.fail(err, "RETR")
		return
	}
	if fi.IsDir() {
		s.reply(ftp.CodeNoFile, "Is a directory.")
		return
	}
	if !fi.Mode().IsRegular() {
		// A FIFO or device would block or never end: plain files only.
		s.reply(ftp.CodeNoFile, "Not a plain file.")
		return
	}
	if off > fi.Size() {
		s.reply(ftp.CodeBadRestart, "Invalid REST offset: beyond the end of the file.")
		return
	}
	d, ok := s.takeData()
	if !ok {
		return
	}
	src, err := s.acct.FS.Open(s.sctx, name, off) // read after the command
	if err != nil {
		s.fail(err, "RETR")
		return
	}
	binary := s.binary
	size := fi.Size() - off
	if d.ln != nil && size <= inlineMax {
		s.acceptPending(&d)
	}
	msg := fmt.Sprintf("Opening %s mode data connection for %s (%d bytes).", s.typeName(), quoteName(path.Base(vpath)), size)
	s.startTransfer("RETR", vpath, d, msg, transferJob{
		run: func(ctx context.Context, c net.Conn, x *transfer) error {
			defer src.Close()
			x.pace, x.paceMost = limits.Pacer(ctx, s.acct.Rates.Down, s.srv.o().rateDown)
			if !binary {
				return s.copyOut(c, ftp.ToCRLF(src), x)
			}
			if size >= sendfileMin {
				if sent, err := s.sendFile(x, c, src); sent {
					return err
				}
			}
			return s.copyOut(c, src, x)
		},
		cancel: func(error) { src.Close() },
		size:   size,
	})
}

// permFacts is the MLSx perm fact (RFC 3659 §7.5.5) of what p allows on
// a file, or in a directory.
func permFacts(p auth.Perm, dir bool) string {
	var b []byte
	add := func(ok bool, c byte) {
		if ok {
			b = append(b, c)
		}
	}
	if dir {
		add(p&auth.PermRename != 0, 'f')
		add(p&auth.PermList != 0, 'l')
		add(p&auth.PermUpload != 0, 'c')
		add(p&auth.PermDelete != 0, 'd')
		add(p&auth.PermMkdir != 0, 'm')
		add(p&auth.PermDelete != 0, 'p')
		return string(append(b, 'e'))
	}
	add(p&auth.PermOverwrite != 0, 'a')
	add(p&auth.PermDelete != 0, 'd')
	add(p&auth.PermRename != 0, 'f')
	add(p&auth.PermDownload != 0, 'r')
	add(p&auth.PermOverwrite != 0, 'w')
	return string(b)
}

// quoteName makes a name safe for reply text.
func quoteName(n string) string {
	if e, ok := ftp.EncodeName(n); ok {
		return e
	}
	return "file"
}

// cmdSTOR handles STOR, APPE and STOU (via mode).
func (s *session) store(verb, arg string, mode storage.CreateMode) {
	off := s.rest
	s.rest = 0
	var vpath, name string
	ctx := s.ctx()
	if mode == storage.Exclusive {
		vpath, name = s.uniqueName(ctx, arg)
		if name == "" {
			s.reply(ftp.CodeBadFileName, "Cannot make a unique file name.")
			return
		}
	} else {
		var ok bool
		if vpath, name, ok = s.resolve(arg); !ok {
			return
		}
	}
	if !s.mayStore(vpath, name, mode) {
		return
	}
	if mode == storage.Append && off > 0 {
		// REST before APPE: append at the end anyway, as the big servers do.
		off = 0
	}
	d, ok := s.takeData()
	if !ok {
		return
	}
	up, err := s.acct.FS.Create(s.sctx, name, storage.CreateOptions{Mode: mode, Offset: off}) // written after the command
	if err != nil {
		s.fail(err, verb)
		return
	}
	msg := fmt.Sprintf("Opening %s mode data connection for %s.", s.typeName(), quoteName(path.Base(vpath)))
	if mode == storage.Exclusive {
		msg = "FILE: " + quoteName(path.Base(vpath)) // RFC 1123 §4.1.2.9
	}
	var hash *hashingUpload
	if off == 0 && mode != storage.Append && s.srv.Hooks.HashUploads != nil && s.srv.Hooks.HashUploads(s.hook) {
		hash = &hashingUpload{Upload: up, h: sha256.New()}
		up = hash // no zero copy: every byte goes through the hash
	}
	s.startTransfer(verb, vpath, d, msg, s.receiveJob(up, hash, s.binary))
}

// receiveJob is an upload's transfer: it receives into up, binary or
// ASCII, and commits, or aborts on any failure (a panic too).
func (s *session) receiveJob(up storage.Upload, hash *hashingUpload, binary bool) transferJob {
	return transferJob{run: func(ctx context.Context, c net.Conn, x *transfer) error {
		defer func() {
			// A panic still ends the upload (its temporary file, its part
			// buffers outside the heap), then goes on to endTransfer.
			if r := recover(); r != nil {
				up.Abort(fmt.Errorf("panic: %v", r))
				panic(r)
			}
		}()
		x.pace, x.paceMost = limits.Pacer(ctx, s.acct.Rates.Up, s.srv.o().rateUp)
		var err error
		var lf io.WriteCloser
		if binary {
			err = s.receive(up, c, x)
		} else {
			lf = ftp.FromCRLF(up)
			err = s.copyIn(lf, c, x)
		}
		if err == nil && lf != nil {
			err = lf.Close()
		}
		if err == nil && x.aborted.Load() {
			err = context.Canceled
		}
		if err != nil {
			up.Abort(err)
			return err
		}
		if err := up.Commit(); err != nil {
			return err
		}
		x.committed.Store(true)
		if hash != nil {
			x.sum = hex.EncodeToString(hash.h.Sum(nil))
		}
		return nil
	}, cancel: func(err error) { up.Abort(err) }}
}

// hashingUpload computes the SHA-256 of what it writes. It hides the
// upload's zero-copy capability, so the server copies through Write.
type hashingUpload struct {
	storage.Upload
	h hash.Hash
}

func (u *hashingUpload) Write(p []byte) (int, error) {
	n, err := u.Upload.Write(p)
	u.h.Write(p[:n])
	return n, err
}

// mayStore checks upload (a new file) or overwrite (an existing one) at
// vpath; it looks whether the file exists only when the two differ there.
func (s *session) mayStore(vpath, name string, mode storage.CreateMode) bool {
	p := s.acct.Perms.At(vpath)
	need := auth.PermUpload
	if mode != storage.Exclusive && p&(auth.PermUpload|auth.PermOverwrite) != auth.PermUpload|auth.PermOverwrite {
		if _, err := s.acct.FS.Stat(s.ctx(), name); err == nil {
			need = auth.PermOverwrite
		}
	}
	return s.may(need, vpath)
}

// uniqueName picks a new name for STOU in the directory of arg (or the
// current one).
func (s *session) uniqueName(ctx context.Context, arg string) (string, string) {
	base := "ferry"
	dir := s.cwd
	if arg != "" {
		vp, _, ok := s.resolve(arg)
		if !ok {
			return "", ""
		}
		dir, base = path.Split(vp)
	}
	for i := 0; i < 100; i++ {
		cand := fmt.Sprintf("%s.%d", base, time.Now().UnixNano()%1e9+int64(i))
		if i == 0 && arg != "" {
			if _, err := s.acct.FS.Stat(ctx, strings.TrimPrefix(path.Join(dir, base), "/")); errors.Is(err, fs.ErrNotExist) {
				cand = base
			}
		}
		vp := path.Join(dir, cand)
		name := strings.TrimPrefix(vp, "/")
		if _, err := s.acct.FS.Stat(ctx, name); errors.Is(err, fs.ErrNotExist) {
			return vp, name
		}
	}
	return "", ""
}

// deadlineWriter renews the write deadline of c before each write.
type deadlineWriter struct {
	c     net.Conn
	stall time.Duration
	x     *transfer
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.c.SetWriteDeadline(time.Now().Add(w.stall))
	n, err := w.c.Write(p)
	w.x.bytes.Add(int64(n))
	if err != nil {
		return n, netErr{err}
	}
	return n, nil
}

// listKind says which listing a command produces.
type listKind int

const (
	listLong  listKind = iota // LIST
	listNames                 // NLST
	listFacts                 // MLSD
)

// parseListArg strips ls-style options (-a, -l, -la, -R …) from a LIST/NLST
// argument, as lftp and FileZilla send them.
func parseListArg(arg string) string {
	for strings.HasPrefix(arg, "-") {
		opt, rest, _ := strings.Cut(arg, " ")
		if strings.ContainsAny(opt, "/") {
			break
		}
		arg = strings.TrimLeft(rest, " ")
	}
	return arg
}

func hasGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

func (s *session) cmdList(verb string, kind listKind, arg string) {
	if kind != listFacts {
		arg = parseListArg(arg)
	}
	l := &listing{kind: kind, facts: s.facts, perms: s.acct.Perms, maxMatches: s.srv.o().MaxGlobMatches}
	if kind != listFacts {
		var ok bool
		if arg, ok = s.splitGlob(l, arg); !ok {
			return
		}
	}
	vpath, name, ok := s.resolve(arg)
	if !ok || !s.may(auth.PermList, vpath) {
		return
	}
	l.dir = vpath
	fi, err := s.acct.FS.Stat(s.ctx(), name)
	if err != nil {
		s.fail(err, verb)
		return
	}
	if kind == listFacts && !fi.IsDir() {
		s.reply(ftp.CodeNoFile, "Not a directory.")
		return
	}
	d, ok := s.takeData()
	if !ok {
		return
	}
	// NLST of a directory given as argument prefixes each name with it so
	// the output can be used as RETR arguments (RFC 1123 §4.1.2.7).
	if kind == listNames && l.pattern == "" && arg != "" && fi.IsDir() {
		l.prefix = strings.TrimSuffix(arg, "/") + "/"
	}
	fsys, stall := s.acct.FS, s.srv.dataStallTimeout()
	s.startTransfer(verb, vpath, d, "Opening ASCII mode data connection for file list.", transferJob{
		run: func(ctx context.Context, c net.Conn, x *transfer) error {
			l.w = bufio.NewWriterSize(deadlineWriter{c, stall, x}, 32<<10)
			return l.write(ctx, fsys, name, arg, fi)
		},
	})
}

// splitGlob takes a wildcard off the last element of arg (LIST *.txt)
// into l, and returns the directory to list.
func (s *session) splitGlob(l *listing, arg string) (string, bool) {
	if arg == "" || !hasGlob(path.Base(arg)) {
		return arg, true
	}
	if len(arg) > 512 {
		s.reply(ftp.CodeBadArguments, "Pattern too long.")
		return "", false
	}
	l.pattern = path.Base(arg)
	if _, err := path.Match(l.pattern, ""); err != nil {
		s.reply(ftp.CodeBadArguments, "Malformed pattern.")
		return "", false
	}
	if i := strings.LastIndexByte(arg, '/'); i >= 0 {
		l.prefix = arg[:i+1]
	}
	return path.Dir(arg), true
}

// listing writes one LIST, NLST or MLSD to its data connection.
type listing struct {
	kind       listKind
	pattern    string // a wildcard the names must match, or ""
	prefix     string // put before each NLST name
	facts      ftp.Facts
	perms      auth.Permissions // for the MLSD perm fact
	dir        string           // the virtual path listed
	maxMatches int
	matches    int
	w          *bufio.Writer
	line       []byte
	now        time.Time
}

// write lists name (arg as the client gave it, fi its stat).
func (l *listing) write(ctx context.Context, fsys storage.FS, name, arg string, fi fs.FileInfo) error {
	l.now = time.Now()
	if !fi.IsDir() {
		l.emit(arg, fi)
		return l.w.Flush()
	}
	if l.kind == listFacts {
		e := entryFor(".", l.dir, fi, l.perms)
		e.Type = "cdir"
		l.line, _ = ftp.AppendFacts(l.line[:0], e, l.facts)
		l.w.Write(l.line)
	}
	if nl, ok := fsys.(storage.NameLister); ok && l.kind == listNames {
		for n, err := range nl.ReadDirNames(ctx, name) {
			if err != nil {
				return err
			}
			if !l.add(n, nil) {
				break
			}
		}
		return l.w.Flush()
	}
	for ent, err := range fsys.ReadDir(ctx, name) {
		if err != nil {
			return err
		}
		if !l.add(ent.Name(), ent) {
			break
		}
	}
	return l.w.Flush()
}

// add lists the entry n if it matches the pattern; it reports whether
// more may follow (maxMatches).
func (l *listing) add(n string, fi fs.FileInfo) bool {
	if l.pattern == "" {
		l.emit(n, fi)
		return true
	}
	if ok, _ := path.Match(l.pattern, n); !ok {
		return true
	}
	l.matches++
	if l.matches <= l.maxMatches {
		l.emit(n, fi)
	}
	return l.matches < l.maxMatches
}

func (l *listing) emit(n string, fi fs.FileInfo) {
	l.line = l.line[:0]
	switch l.kind {
	case listLong:
		l.line, _ = ftp.AppendListLine(l.line, n, fi, l.now)
	case listNames:
		if e, ok := ftp.EncodeName(l.prefix + n); ok {
			l.line = append(append(l.line, e...), '\r', '\n')
		}
	case listFacts:
		l.line, _ = ftp.AppendFacts(l.line, entryFor(n, path.Join(l.dir, n), fi, l.perms), l.facts)
	}
	l.w.Write(l.line)
}

// entryFor describes fi for MLSx.
func entryFor(name, vpath string, fi fs.FileInfo, perms auth.Permissions) ftp.Entry {
	e := ftp.Entry{Name: name, Info: fi}
	e.Perm = permFacts(perms.At(vpath), fi.IsDir())
	if id, ok := fi.Sys().(storage.Identifier); ok {
		e.Unique = id.UniqueID()
	}
	return e
}
