package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/storage"
)

// Bounds of the bytes one copy call moves before the stall deadline is
// renewed (see copyChunks).
const (
	minChunk = 256 << 10
	maxChunk = 64 << 20
)

// startTransfer runs body in a new goroutine with the data connection of d.
// The goroutine replies 150 once the connection is open, then 226 or the
// error reply, logs one line, and clears the session's transfer. When d
// already holds its connection and the transfer is small (see inlineMax),
// it runs on the session goroutine instead: it cannot outlast a command.
func (s *session) startTransfer(verb, vpath string, d dataSource, opening string, body func(ctx context.Context, c net.Conn, x *transfer) error) {
	ctx, cancel := context.WithCancel(s.sctx) // the transfer outlives the command
	x := &transfer{verb: verb, path: vpath, done: make(chan struct{}), cancel: cancel}
	s.xmu.Lock()
	s.xfer = x
	s.xmu.Unlock()
	run := func() {
		start := time.Now()
		result := "ok"
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("transfer panic", "panic", r, "stack", string(debug.Stack()))
				x.abort() // close the data connection and listener
				s.reply(ftp.CodeLocalError, "Internal error.")
				result = "panic"
			}
			cancel()
			s.log.Info("transfer", "user", s.userName(), "op", verb, "path", vpath,
				"bytes", x.bytes.Load(), "duration", time.Since(start).Round(time.Microsecond), "result", result)
			s.xmu.Lock()
			s.xfer = nil
			s.xmu.Unlock()
			close(x.done)
		}()
		c, err := s.openData(ctx, x, d)
		if err != nil {
			result = "no data connection"
			if x.aborted.Load() {
				s.reply(ftp.CodeTransferAborted, "Transfer aborted.")
			} else {
				s.reply(ftp.CodeCantOpenData, "Can't open data connection.")
			}
			body(ctx, nil, x) // lets body release what it holds
			return
		}
		x.mu.Lock()
		x.conn = c
		aborted := x.aborted.Load()
		x.mu.Unlock()
		if aborted {
			c.Close()
		}
		s.reply(ftp.CodeFileStatusOK, opening)
		if s.protP {
			tc, err := s.secureData(ctx, c)
			if err != nil {
				msg := tlsDataError(err)
				s.log.Warn("TLS data connection refused", "reason", msg)
				result = "TLS refused"
				c.Close()
				s.reply(codeTLSFailed, msg)
				body(ctx, nil, x)
				return
			}
			c = tc
		}
		err = body(ctx, c, x)
		cerr := c.Close()
		if err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = netErr{cerr}
		}
		switch {
		case x.aborted.Load():
			result = "aborted"
			s.reply(ftp.CodeTransferAborted, "Transfer aborted.")
		case err == nil:
			s.reply(ftp.CodeClosingData, "Transfer complete.")
		case errors.As(err, new(netErr)):
			result = "connection lost"
			s.reply(ftp.CodeTransferAborted, "Data connection closed; transfer aborted.")
		default:
			result = "error"
			s.fail(err, verb)
		}
	}
	if d.conn != nil {
		run()
		return
	}
	go run()
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
	if !s.dataAllowed(addrPort(c.RemoteAddr()).Addr()) {
		s.log.Warn("foreign data connection dropped", "from", c.RemoteAddr().String())
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
		buf := make([]byte, tlsBuffer)
		return s.copyChunks(x, func(lr *io.LimitedReader) (int64, error) {
			lr.R = src
			return io.CopyBuffer(tc, lr, buf)
		}, c.SetWriteDeadline)
	}
	return s.copyChunks(x, func(lr *io.LimitedReader) (int64, error) {
		lr.R = src
		return io.Copy(c, lr)
	}, c.SetWriteDeadline)
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

// tlsBuffer is the copy buffer of a TLS transfer: sixteen full records.
const tlsBuffer = 256 << 10

// copyIn receives c into dst, renewing the stall deadline for each chunk.
// When dst wraps an *os.File, io.Copy uses splice(2).
func (s *session) copyIn(dst io.Writer, c net.Conn, x *transfer) error {
	if _, ok := c.(*tls.Conn); ok {
		// A TLS read returns one record (16 KiB at most): gather a full
		// buffer before each write, sixteen times fewer writes to storage.
		buf := make([]byte, tlsBuffer)
		return s.copyChunks(x, func(lr *io.LimitedReader) (int64, error) {
			lr.R = c
			return copyGathered(dst, lr, buf)
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
// bytes through the poller, the rest by recvFile where it can.
func (s *session) receive(up storage.Upload, c net.Conn, x *transfer) error {
	if _, ok := c.(*net.TCPConn); !ok {
		return s.copyIn(up, c, x) // TLS
	}
	c.SetReadDeadline(time.Now().Add(s.srv.dataStallTimeout()))
	n, err := io.Copy(up, io.LimitReader(c, recvHead))
	x.bytes.Add(n)
	if err != nil || n < recvHead {
		return dataErr(err)
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
		lr.N = size
		n, err := copy(lr)
		x.bytes.Add(n)
		if err != nil {
			return dataErr(err)
		}
		if n < size {
			return nil
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
	if !ok {
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
		s.reply(CodeBadRestart, "Invalid REST offset: beyond the end of the file.")
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
	s.startTransfer("RETR", vpath, d, msg, func(ctx context.Context, c net.Conn, x *transfer) error {
		defer src.Close()
		if c == nil {
			return nil
		}
		if !binary {
			return s.copyOut(c, ftp.ToCRLF(src), x)
		}
		if size >= sendfileMin {
			if sent, err := s.sendFile(x, c, src); sent {
				return err
			}
		}
		return s.copyOut(c, src, x)
	})
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
	if !s.canWrite() {
		return
	}
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
	binary := s.binary
	msg := fmt.Sprintf("Opening %s mode data connection for %s.", s.typeName(), quoteName(path.Base(vpath)))
	if mode == storage.Exclusive {
		msg = "FILE: " + quoteName(path.Base(vpath)) // RFC 1123 §4.1.2.9
	}
	s.startTransfer(verb, vpath, d, msg, func(ctx context.Context, c net.Conn, x *transfer) error {
		if c == nil {
			up.Abort(errors.New("no data connection"))
			return nil
		}
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
		return up.Commit()
	})
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
	ctx := s.ctx()
	pattern, globDir := "", ""
	if arg != "" && kind != listFacts && hasGlob(path.Base(arg)) {
		if len(arg) > 512 {
			s.reply(ftp.CodeBadArguments, "Pattern too long.")
			return
		}
		pattern = path.Base(arg)
		if _, err := path.Match(pattern, ""); err != nil {
			s.reply(ftp.CodeBadArguments, "Malformed pattern.")
			return
		}
		if i := strings.LastIndexByte(arg, '/'); i >= 0 {
			globDir = arg[:i+1]
		}
		arg = path.Dir(arg)
	}
	vpath, name, ok := s.resolve(arg)
	if !ok {
		return
	}
	fi, err := s.acct.FS.Stat(ctx, name)
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
	prefix := globDir
	if kind == listNames && pattern == "" && arg != "" && fi.IsDir() {
		prefix = strings.TrimSuffix(arg, "/") + "/"
	}
	facts := s.facts
	perms := s.acct.Perms.Write
	maxMatches := s.srv.opts.MaxGlobMatches
	msg := "Opening ASCII mode data connection for file list."
	s.startTransfer(verb, vpath, d, msg, func(ctx context.Context, c net.Conn, x *transfer) error {
		if c == nil {
			return nil
		}
		bw := bufio.NewWriterSize(deadlineWriter{c, s.srv.dataStallTimeout(), x}, 32<<10)
		var line []byte
		now := time.Now()
		emit := func(n string, fi fs.FileInfo) {
			line = line[:0]
			switch kind {
			case listLong:
				line, _ = ftp.AppendListLine(line, n, fi, now)
			case listNames:
				if e, ok := ftp.EncodeName(prefix + n); ok {
					line = append(append(line, e...), '\r', '\n')
				}
			case listFacts:
				line, _ = ftp.AppendFacts(line, entryFor(n, fi, perms), facts)
			}
			bw.Write(line)
		}
		if !fi.IsDir() {
			emit(arg, fi)
			return bw.Flush()
		}
		if kind == listFacts {
			e := entryFor(".", fi, perms)
			e.Type = "cdir"
			line, _ = ftp.AppendFacts(line[:0], e, facts)
			bw.Write(line)
		}
		// keep filters by the glob pattern, up to maxMatches entries.
		matches := 0
		keep := func(n string) (ok, more bool) {
			if pattern == "" {
				return true, true
			}
			if ok, _ := path.Match(pattern, n); !ok {
				return false, true
			}
			matches++
			return matches <= maxMatches, matches < maxMatches
		}
		if nl, ok := s.acct.FS.(storage.NameLister); ok && kind == listNames {
			for n, err := range nl.ReadDirNames(ctx, name) {
				if err != nil {
					return err
				}
				ok, more := keep(n)
				if ok {
					emit(n, nil)
				}
				if !more {
					break
				}
			}
			return bw.Flush()
		}
		for ent, err := range s.acct.FS.ReadDir(ctx, name) {
			if err != nil {
				return err
			}
			ok, more := keep(ent.Name())
			if ok {
				emit(ent.Name(), ent)
			}
			if !more {
				break
			}
		}
		return bw.Flush()
	})
}

// entryFor describes fi for MLSx.
func entryFor(name string, fi fs.FileInfo, write bool) ftp.Entry {
	e := ftp.Entry{Name: name, Info: fi}
	switch {
	case fi.IsDir() && write:
		e.Perm = "flcdmpe"
	case fi.IsDir():
		e.Perm = "el"
	case write:
		e.Perm = "adfrw"
	default:
		e.Perm = "r"
	}
	if id, ok := fi.Sys().(storage.Identifier); ok {
		e.Unique = id.UniqueID()
	}
	return e
}
