package proxyhdr

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/pires/go-proxyproto"
)

func v2(t testing.TB, src, dst string) []byte {
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRead: v1 and v2, IPv4 and IPv6, LOCAL; what follows the header is
// left unread; garbage and truncation are errors.
func TestRead(t *testing.T) {
	cases := []struct {
		in   []byte
		want Header
	}{
		{[]byte("PROXY TCP4 192.0.2.7 198.51.100.1 40000 21\r\n"), Header{Source: netip.MustParseAddrPort("192.0.2.7:40000"), Dest: netip.MustParseAddrPort("198.51.100.1:21")}},
		{[]byte("PROXY TCP6 2001:db8::7 2001:db8::1 40000 21\r\n"), Header{Source: netip.MustParseAddrPort("[2001:db8::7]:40000"), Dest: netip.MustParseAddrPort("[2001:db8::1]:21")}},
		{[]byte("PROXY UNKNOWN\r\n"), Header{Local: true}},
		{v2(t, "192.0.2.7:40000", "198.51.100.1:21"), Header{Source: netip.MustParseAddrPort("192.0.2.7:40000"), Dest: netip.MustParseAddrPort("198.51.100.1:21")}},
		{v2(t, "[2001:db8::7]:1", "[2001:db8::1]:2"), Header{Source: netip.MustParseAddrPort("[2001:db8::7]:1"), Dest: netip.MustParseAddrPort("[2001:db8::1]:2")}},
		{append(append([]byte{}, v2Sig...), 0x20, 0x00, 0, 0), Header{Local: true}},
	}
	for _, c := range cases {
		r := bytes.NewReader(append(append([]byte{}, c.in...), "USER x\r\n"...))
		h, err := Read(r)
		if err != nil || h != c.want {
			t.Errorf("%q: %+v %v, want %+v", c.in, h, err, c.want)
		}
		if r.Len() != len("USER x\r\n") {
			t.Errorf("%q: %d bytes after the header left, want 8", c.in, r.Len())
		}
	}
	for _, bad := range [][]byte{
		[]byte("USER anonymous\r\n"),
		[]byte("PROXY TCP4 192.0.2.7\r\n"),
		[]byte("PROXY TCP4 192.0.2.7 198.51.100.1 40000 21"), // no CRLF
		append([]byte("PROXY "), bytes.Repeat([]byte("x"), 200)...),
		v2(t, "192.0.2.7:40000", "198.51.100.1:21")[:20],
		[]byte("\r\n\r\n\x00\r\nQUIX\n!!!!"),
	} {
		if _, err := Read(bytes.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		} else if !errors.Is(err, ErrNotProxy) && err.Error() != "EOF" && err.Error() != "unexpected EOF" {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzRead: whatever the bytes, Read does not panic, and a header it
// accepts is read again the same from exactly the bytes it consumed.
func FuzzRead(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 198.51.100.1 40000 21\r\nUSER x\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(f, "192.0.2.7:40000", "198.51.100.1:21"))
	f.Add(v2(f, "[2001:db8::7]:1", "[2001:db8::1]:2"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := Read(r)
		if err != nil {
			return
		}
		used := len(in) - r.Len()
		again, err := Read(bytes.NewReader(in[:used]))
		if err != nil || again != h {
			t.Fatalf("%q: read again from its %d bytes: %+v %v, first %+v", in, used, again, err, h)
		}
	})
}
