package server

import (
	"crypto/tls"
	"net"
	"sync"
)

// recordBatch is the socket under a TLS data connection. A download writes
// through it with batched (see batchWriter): the records that one
// tls.Conn.Write makes of a large buffer — sixteen of them for tlsBuffer —
// are gathered and go to the socket in one system call instead of one
// each. Every other write (the handshake, a close_notify) goes straight
// through. (Reads stay as crypto/tls makes them: reading the socket 128
// KiB at a time through a bufio.Reader cost an upload more CPU per GiB,
// 1.77 s against 1.25 s over five rounds, than it saved.)
type recordBatch struct {
	net.Conn
	mu  sync.Mutex // guards on and buf: an abort's close_notify comes from another goroutine
	on  bool
	buf []byte
}

// batchWriter writes to a TLS connection over a recordBatch, each Write's
// records gathered into one write to the socket.
type batchWriter struct {
	tc *tls.Conn
	r  *recordBatch
}

// batched is a batchWriter for c when c runs over a recordBatch, else c.
func batched(c *tls.Conn) interface{ Write([]byte) (int, error) } {
	if r, ok := c.NetConn().(*recordBatch); ok {
		return batchWriter{c, r}
	}
	return c
}

func (w batchWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	w.r.on = true
	w.r.mu.Unlock()
	n, err := w.tc.Write(p)
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	w.r.on = false
	if len(w.r.buf) > 0 {
		_, werr := w.r.Conn.Write(w.r.buf)
		w.r.buf = w.r.buf[:0]
		if err == nil && werr != nil {
			err = werr
		}
	}
	return n, err
}
