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
// through.
type recordBatch struct {
	net.Conn
	mu  sync.Mutex // guards on and buf: an abort's close_notify comes from another goroutine
	on  bool
	buf []byte
}

func (r *recordBatch) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return r.Conn.Write(p)
	}
	r.buf = append(r.buf, p...)
	return len(p), nil
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
