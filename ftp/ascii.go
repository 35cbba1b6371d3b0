package ftp

import (
	"bytes"
	"io"
)

// ToCRLF returns a reader that converts each LF of r to CRLF, for sending
// TYPE A data (RFC 959 §3.1.1.1). A CR already before a LF is kept, so text
// with CRLF line ends is sent unchanged.
func ToCRLF(r io.Reader) io.Reader { return &crlfReader{r: r} }

type crlfReader struct {
	r      io.Reader
	buf    []byte
	out    []byte
	lastCR bool
	err    error
}

func (c *crlfReader) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.buf == nil {
			c.buf = make([]byte, 16<<10)
		}
		n, err := c.r.Read(c.buf)
		c.err = err
		data := c.buf[:n]
		c.out = c.out[:0]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				c.out = append(c.out, data...)
				c.lastCR = data[len(data)-1] == '\r'
				break
			}
			prevCR := c.lastCR
			if i > 0 {
				prevCR = data[i-1] == '\r'
			}
			c.out = append(c.out, data[:i]...)
			if !prevCR {
				c.out = append(c.out, '\r')
			}
			c.out = append(c.out, '\n')
			c.lastCR = false
			data = data[i+1:]
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// FromCRLF returns a writer that converts CRLF to LF on its way to w, for
// receiving TYPE A data. A CR not followed by LF is kept. Close flushes a
// CR held back at the end.
func FromCRLF(w io.Writer) io.WriteCloser { return &lfWriter{w: w} }

type lfWriter struct {
	w      io.Writer
	heldCR bool
	buf    []byte
}

func (l *lfWriter) Write(p []byte) (int, error) {
	l.buf = l.buf[:0]
	if l.heldCR {
		if len(p) > 0 && p[0] != '\n' {
			l.buf = append(l.buf, '\r')
		}
		l.heldCR = false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\r' {
			if i+1 == len(p) {
				l.heldCR = true
				continue
			}
			if p[i+1] == '\n' {
				continue
			}
		}
		l.buf = append(l.buf, c)
	}
	if _, err := l.w.Write(l.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (l *lfWriter) Close() error {
	if l.heldCR {
		l.heldCR = false
		_, err := l.w.Write([]byte{'\r'})
		return err
	}
	return nil
}
