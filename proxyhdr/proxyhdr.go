// Package proxyhdr reads the PROXY protocol header (v1 text or v2
// binary, as HAProxy's send-proxy and send-proxy-v2 write it) that a load
// balancer puts before a connection's own bytes. Reads are exact: nothing
// after the header is consumed, so the connection can be handed on as it
// is (kept zero-copy, parked in the poller). The header's fields are
// parsed by github.com/pires/go-proxyproto.
package proxyhdr

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/pires/go-proxyproto"
)

// Header is what a PROXY header says.
type Header struct {
	// Local is a LOCAL command (v2) or UNKNOWN (v1): the balancer speaking
	// for itself (a health check); there are no addresses.
	Local bool
	// Source is the client's address, Dest the one it connected to.
	Source, Dest netip.AddrPort
}

// maxV1 is the longest v1 header, CRLF included (the specification's).
const maxV1 = 107

// v2Sig opens every v2 header.
var v2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// ErrNotProxy is returned for a connection whose first bytes are not a
// PROXY header.
var ErrNotProxy = errors.New("proxyhdr: no PROXY protocol header")

// Read reads one header from r, reading no byte past it.
func Read(r io.Reader) (Header, error) {
	var b [16]byte
	// 8 bytes first: the shortest header ("PROXY UNKNOWN\r\n") has 15.
	if _, err := io.ReadFull(r, b[:8]); err != nil {
		return Header{}, err
	}
	switch {
	case string(b[:6]) == "PROXY ":
		line := append(make([]byte, 0, maxV1), b[:8]...)
		for !bytes.HasSuffix(line, []byte("\r\n")) {
			if len(line) == maxV1 {
				return Header{}, fmt.Errorf("%w: a v1 line longer than %d bytes", ErrNotProxy, maxV1)
			}
			if _, err := io.ReadFull(r, b[8:9]); err != nil {
				return Header{}, err
			}
			line = append(line, b[8])
		}
		return parse(line)
	case bytes.Equal(b[:8], v2Sig[:8]):
		if _, err := io.ReadFull(r, b[8:16]); err != nil {
			return Header{}, err
		}
		if !bytes.Equal(b[:12], v2Sig) {
			return Header{}, ErrNotProxy
		}
		hdr := make([]byte, 16+int(binary.BigEndian.Uint16(b[14:16])))
		copy(hdr, b[:16])
		if _, err := io.ReadFull(r, hdr[16:]); err != nil {
			return Header{}, err
		}
		return parse(hdr)
	}
	return Header{}, ErrNotProxy
}

// parse reads the fields of a whole header.
func parse(hdr []byte) (Header, error) {
	h, err := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(hdr), max(len(hdr), 16)))
	if err != nil {
		return Header{}, fmt.Errorf("%w: %v", ErrNotProxy, err)
	}
	if h.Command.IsLocal() {
		return Header{Local: true}, nil
	}
	src, dst, ok := h.TCPAddrs()
	if !ok {
		return Header{}, fmt.Errorf("%w: not a TCP connection", ErrNotProxy)
	}
	unmap := func(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) }
	return Header{Source: unmap(src.AddrPort()), Dest: unmap(dst.AddrPort())}, nil
}
