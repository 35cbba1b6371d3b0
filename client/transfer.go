package client

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/ftp"
)

// TransferOptions adjust Retrieve and Store. A nil *TransferOptions is the
// zero value.
type TransferOptions struct {
	// Offset starts the transfer this many bytes into the file (REST).
	Offset int64
	// Append adds to the end of the remote file (APPE) instead of replacing
	// it; Store only.
	Append bool
	// Progress, when set, is called with the bytes moved so far (counting
	// from Offset) as the transfer runs, from the goroutine doing the I/O.
	Progress func(done int64)
}

func (o *TransferOptions) offset() int64 {
	if o == nil {
		return 0
	}
	return o.Offset
}

func (o *TransferOptions) progress(n int64) {
	if o != nil && o.Progress != nil {
		o.Progress(n)
	}
}

// chunk is how much moves between progress reports and deadline renewals.
const chunk = 4 << 20

// readBuffer is the size of a download's reads when it is copied to
// anything but a file.
const readBuffer = 256 << 10

// uploadBuffer is the size of the upload copy buffer.
const uploadBuffer = 128 << 10

// The copy buffers are lent for each transfer, so that a program moving
// many small files does not allocate one per file.
var (
	readBufs   = sync.Pool{New: func() any { b := make([]byte, readBuffer); return &b }}
	uploadBufs = sync.Pool{New: func() any { b := make([]byte, uploadBuffer); return &b }}
)

// Download is a file being retrieved. Read it to the end (io.EOF means the
// server confirmed the whole transfer) and Close it; closing early aborts
// the transfer.
type Download struct {
	c      *Client
	ctx    context.Context
	path   string
	opts   *TransferOptions
	cn     *conn
	dc     net.Conn
	stop   func() bool
	start  int64 // offset of the first byte of this download
	n      int64 // bytes received so far
	tries  int
	err    error // sticky: io.EOF at the end, or the failure
	closed bool
}

// Retrieve starts downloading path (RETR). When the data connection drops
// and the server supports REST STREAM, the download resumes where it
// stopped, up to Config.Retries times, without the reader noticing.
func (c *Client) Retrieve(ctx context.Context, path string, opts *TransferOptions) (*Download, error) {
	d := &Download{c: c, ctx: ctx, path: c.abs(path), opts: opts, start: opts.offset()}
	if err := checkArg(d.path); err != nil {
		return nil, err
	}
	if err := d.open(); err != nil {
		return nil, err
	}
	return d, nil
}

// open starts (or restarts) the transfer at start+n.
func (d *Download) open() error {
	cn, dc, err := d.c.start(d.ctx, "RETR", d.path, d.start+d.n)
	if err == errNoData {
		// A 2xx at once: nothing to read, and the reply said all is well.
		d.c.put(cn)
		d.err = io.EOF
		return nil
	}
	if err != nil {
		return err
	}
	d.cn, d.dc = cn, dc
	d.stop = context.AfterFunc(d.ctx, func() { dc.Close() })
	return nil
}

func (d *Download) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	d.dc.SetReadDeadline(time.Now().Add(d.c.cfg.Timeout))
	n, err := d.dc.Read(p)
	d.n += int64(n)
	if n > 0 {
		d.opts.progress(d.n)
	}
	if err != nil {
		err = d.handle(err)
		if n > 0 && err != io.EOF {
			// Report the bytes now and the error on the next call.
			d.err = err
			return n, nil
		}
	}
	return n, err
}

// WriteTo lets io.Copy to an *os.File use splice(2) on Linux. Any other
// writer gets reads of up to readBuffer, whatever its own ReadFrom would
// choose (io.Discard's reads 8 KiB at a time, a bufio.Writer's its buffer).
func (d *Download) WriteTo(w io.Writer) (int64, error) {
	f, ok := w.(*os.File)
	if !ok {
		buf := readBufs.Get().(*[]byte)
		defer readBufs.Put(buf)
		return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{d}, *buf)
	}
	var total int64
	for d.err == nil {
		d.dc.SetReadDeadline(time.Now().Add(d.c.cfg.Timeout))
		n, err := f.ReadFrom(&io.LimitedReader{R: d.dc, N: chunk})
		d.n += n
		total += n
		if n > 0 {
			d.opts.progress(d.n)
		}
		if err == nil && n < chunk {
			err = io.EOF
		}
		if err != nil {
			if err != io.EOF && !isNetFailure(err) {
				// The local file failed, not the connection.
				d.fail(err)
				break
			}
			d.handle(err)
		}
	}
	if d.err == io.EOF {
		return total, nil
	}
	return total, d.err
}

// handle ends the current data connection after err: at the end of the
// data it reads the server's verdict; after a failure it resumes when it
// can. It returns what Read should report.
func (d *Download) handle(err error) error {
	d.stop()
	d.dc.Close()
	if d.ctx.Err() != nil {
		d.cn.abort()
		d.release()
		d.err = d.ctx.Err()
		return d.err
	}
	if err == io.EOF {
		ferr := d.cn.finish(d.ctx, "RETR", d.path)
		d.release()
		if ferr == nil {
			d.err = io.EOF
			return io.EOF
		}
		var fe *Error
		if !errors.As(ferr, &fe) || !fe.Temporary() {
			d.err = ferr
			return ferr
		}
		err = ferr // 426/451: the server lost the connection; try again
	} else {
		err = d.cn.dataFailed("RETR", d.path, err)
		d.release()
		var fe *Error
		if errors.As(err, &fe) && !fe.Temporary() {
			d.err = err
			return err
		}
	}
	if d.tries >= d.c.cfg.Retries || !d.c.canResume() {
		var fe *Error
		var ne *NetError
		if !errors.As(err, &fe) && !errors.As(err, &ne) {
			err = &NetError{Op: "RETR " + d.path, Addr: d.c.addr, Err: err}
		}
		d.err = err
		return err
	}
	d.tries++
	d.c.transcript(0, "resuming download of "+d.path+" after: "+err.Error())
	if oerr := d.open(); oerr != nil {
		d.err = oerr
		return oerr
	}
	return nil
}

// fail aborts the transfer for a reason of the client's own.
func (d *Download) fail(err error) {
	d.stop()
	d.dc.Close()
	d.cn.abort()
	d.release()
	d.err = err
}

func (d *Download) release() {
	if d.cn != nil {
		d.c.put(d.cn)
		d.cn = nil
	}
}

// isNetFailure tells a failed connection from a failed local file in the
// error of a splice, which reports both as a write error of the file.
func isNetFailure(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Size returns the bytes received so far, from Offset.
func (d *Download) Size() int64 { return d.n }

// Close ends the download. Before the end of the data it aborts the
// transfer (ABOR) and returns nil; after a failure it returns that failure.
func (d *Download) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	if d.cn != nil {
		d.stop()
		d.dc.Close()
		d.cn.abort()
		d.release()
		if d.err == nil {
			d.err = errors.New("download closed")
		}
		return nil
	}
	if d.err == io.EOF || d.err == nil {
		return nil
	}
	return d.err
}

// Store uploads r to path (STOR, or APPE). With an Offset, the server is
// told to start writing there (REST) and r must start with the byte at
// that offset. It returns the bytes sent.
func (c *Client) Store(ctx context.Context, path string, r io.Reader, opts *TransferOptions) (int64, error) {
	p := c.abs(path)
	if err := checkArg(p); err != nil {
		return 0, err
	}
	verb := "STOR"
	if opts != nil && opts.Append {
		verb = "APPE"
	}
	cn, dc, err := c.start(ctx, verb, p, opts.offset())
	if err == errNoData {
		c.put(cn)
		return 0, &NetError{Op: verb + " " + p, Addr: c.addr, Err: errors.New("the server ended the transfer before any data was sent")}
	}
	if err != nil {
		return 0, err
	}
	defer c.put(cn)
	// The copy runs apart so that a cancelled context returns at once even
	// while r blocks in Read; the copy then fails on the closed connection
	// as soon as r returns.
	var sent atomic.Int64
	done := make(chan error, 1)
	go func() {
		_, err := sendAll(dc, r, opts, c.cfg.Timeout, &sent)
		if err == nil {
			// Closing the data connection marks the end of the file.
			err = closeWrite(dc)
		}
		if err == nil {
			// Then wait for the server to close its side. Closing ours with
			// bytes unread (TLS 1.3 session tickets arrive on data
			// connections too) would send a reset, and a server may throw
			// away the end of the upload with it.
			dc.SetReadDeadline(time.Now().Add(c.cfg.Timeout))
			io.Copy(io.Discard, io.LimitReader(dc, 1<<20))
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil || ctx.Err() != nil {
		// In stream mode the end of the connection is the end of the file:
		// a reset, not a close, so the server cannot take a cut upload for
		// a whole one.
		reset(dc)
	} else {
		dc.Close()
	}
	n := sent.Load()
	if ctx.Err() != nil {
		cn.abort()
		return n, ctx.Err()
	}
	if err != nil {
		return n, cn.dataFailed(verb, p, &NetError{Op: verb + " " + p, Addr: c.addr, Err: err})
	}
	return n, cn.finish(ctx, verb, p)
}

// start opens a transfer on a connection of the pool. A refusal for now
// (425, 450, 451), which comes before any data moves, is asked again
// after RetryWait, doubled each time, up to Retries times. On success, and
// with errNoData, the caller puts cn back.
func (c *Client) start(ctx context.Context, verb, arg string, offset int64) (*conn, net.Conn, error) {
	wait := c.cfg.RetryWait
	for try := 0; ; try++ {
		cn, err := c.get(ctx)
		if err != nil {
			return nil, nil, err
		}
		dc, err := cn.startTransfer(ctx, verb, arg, offset)
		if err == nil || err == errNoData {
			return cn, dc, err
		}
		c.put(cn)
		if try >= c.cfg.Retries || !refusedForNow(err) {
			return nil, nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		}
		wait = min(2*wait, maxRetryWait)
	}
}

// maxRetryWait bounds the wait before a refused transfer is asked again.
const maxRetryWait = 30 * time.Second

// refusedForNow reports a reply that refuses a transfer for the time
// being: no data connection (425), the file busy (450), a local error
// such as a store that is unavailable (451).
func refusedForNow(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case ftp.CodeCantOpenData, ftp.CodeFileUnavailable, ftp.CodeLocalError:
		return true
	}
	return false
}

func reset(c net.Conn) {
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	raw.Close()
}

// closeWrite ends the data of an upload: TLS close_notify, then FIN.
func closeWrite(c net.Conn) error {
	if tc, ok := c.(*tls.Conn); ok {
		// An empty upload has not shaken hands yet.
		if err := tc.Handshake(); err != nil {
			return err
		}
		if err := tc.CloseWrite(); err != nil {
			return err
		}
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return nil
}

// sendAll copies r to dc in chunks, renewing the write deadline and
// reporting progress. It copies through a buffer rather than with
// sendfile(2): the receiver is then handed data still in the CPU's cache,
// where sendfile makes it read every byte cold from the page cache; on
// loopback that made a server such as vsftpd take uploads 40 % slower.
func sendAll(dc net.Conn, r io.Reader, opts *TransferOptions, timeout time.Duration, sent *atomic.Int64) (int64, error) {
	var total int64
	lr := &io.LimitedReader{R: r}
	w := struct{ io.Writer }{dc} // no ReadFrom: no sendfile
	buf := uploadBufs.Get().(*[]byte)
	defer uploadBufs.Put(buf)
	for {
		dc.SetWriteDeadline(time.Now().Add(timeout))
		lr.N = chunk
		n, err := io.CopyBuffer(w, struct{ io.Reader }{lr}, *buf)
		total += n
		sent.Store(total)
		if n > 0 {
			opts.progress(total)
		}
		if err != nil {
			return total, err
		}
		if n < chunk {
			return total, nil
		}
	}
}
