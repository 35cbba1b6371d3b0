package ftp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrBadAddress reports a malformed PORT, EPRT, PASV or EPSV address.
var ErrBadAddress = errors.New("ftp: malformed host-port")

// ParsePORT parses the argument of PORT, "h1,h2,h3,h4,p1,p2" (RFC 959 §4.1.2).
func ParsePORT(arg string) (netip.AddrPort, error) {
	return parseHostPort(strings.TrimSpace(arg))
}

// FormatPORT formats an IPv4 address and port as "h1,h2,h3,h4,p1,p2".
// It fails for an IPv6 address (use EPRT).
func FormatPORT(ap netip.AddrPort) (string, error) {
	a := ap.Addr().Unmap()
	if !a.Is4() {
		return "", fmt.Errorf("ftp: PORT needs an IPv4 address, have %v", a)
	}
	b := a.As4()
	p := ap.Port()
	return fmt.Sprintf("%d,%d,%d,%d,%d,%d", b[0], b[1], b[2], b[3], p>>8, p&0xff), nil
}

// ParsePASV extracts the address from the text of a 227 reply. The six
// numbers may be wrapped in parentheses or not, as servers differ
// (RFC 1123 §4.1.2.6 asks clients to scan for them).
func ParsePASV(text string) (netip.AddrPort, error) {
	start := strings.IndexAny(text, "0123456789")
	if start < 0 {
		return netip.AddrPort{}, ErrBadAddress
	}
	end := start
	for end < len(text) && (text[end] >= '0' && text[end] <= '9' || text[end] == ',') {
		end++
	}
	return parseHostPort(text[start:end])
}

// FormatPASV returns the text of a 227 reply for ap.
func FormatPASV(ap netip.AddrPort) (string, error) {
	s, err := FormatPORT(ap)
	if err != nil {
		return "", err
	}
	return "Entering Passive Mode (" + s + ").", nil
}

func parseHostPort(s string) (netip.AddrPort, error) {
	var n [6]byte
	parts := strings.Split(s, ",")
	if len(parts) != 6 {
		return netip.AddrPort{}, ErrBadAddress
	}
	for i, p := range parts {
		if p == "" || len(p) > 3 {
			return netip.AddrPort{}, ErrBadAddress
		}
		v, err := strconv.ParseUint(p, 10, 8)
		if err != nil {
			return netip.AddrPort{}, ErrBadAddress
		}
		n[i] = byte(v)
	}
	addr := netip.AddrFrom4([4]byte{n[0], n[1], n[2], n[3]})
	return netip.AddrPortFrom(addr, uint16(n[4])<<8|uint16(n[5])), nil
}

// ParseEPRT parses the argument of EPRT, "<d>proto<d>addr<d>port<d>" (RFC 2428
// §2), where proto is 1 (IPv4) or 2 (IPv6) and must match the address.
func ParseEPRT(arg string) (netip.AddrPort, error) {
	arg = strings.TrimSpace(arg)
	if len(arg) < 7 {
		return netip.AddrPort{}, ErrBadAddress
	}
	d := arg[0]
	if d < 33 || d > 126 || arg[len(arg)-1] != d {
		return netip.AddrPort{}, ErrBadAddress
	}
	f := strings.Split(arg[1:len(arg)-1], string(d))
	if len(f) != 3 {
		return netip.AddrPort{}, ErrBadAddress
	}
	if f[0] != "1" && f[0] != "2" {
		return netip.AddrPort{}, ErrUnsupportedProtocol
	}
	addr, err := netip.ParseAddr(f[1])
	if err != nil || addr.Zone() != "" {
		return netip.AddrPort{}, ErrBadAddress
	}
	switch f[0] {
	case "1":
		if !addr.Is4() {
			return netip.AddrPort{}, ErrBadAddress
		}
	case "2":
		if !addr.Is6() {
			return netip.AddrPort{}, ErrBadAddress
		}
	}
	port, err := parsePort(f[2])
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(addr, port), nil
}

// ErrUnsupportedProtocol reports an EPRT/EPSV network protocol other than 1
// or 2 (answered with 522, RFC 2428).
var ErrUnsupportedProtocol = errors.New("ftp: network protocol not supported")

// FormatEPRT formats the argument of EPRT for ap.
func FormatEPRT(ap netip.AddrPort) string {
	a := ap.Addr().Unmap()
	proto := "2"
	if a.Is4() {
		proto = "1"
	}
	return "|" + proto + "|" + a.WithZone("").String() + "|" + strconv.Itoa(int(ap.Port())) + "|"
}

// ParseEPSV extracts the port from the text of a 229 reply,
// "Entering Extended Passive Mode (|||port|)" (RFC 2428 §3).
func ParseEPSV(text string) (uint16, error) {
	i := strings.IndexByte(text, '(')
	j := strings.LastIndexByte(text, ')')
	if i < 0 || j < i+6 {
		return 0, ErrBadAddress
	}
	s := text[i+1 : j]
	d := s[0]
	if d < 33 || d > 126 || s[1] != d || s[2] != d || s[len(s)-1] != d {
		return 0, ErrBadAddress
	}
	return parsePort(s[3 : len(s)-1])
}

// FormatEPSV returns the text of a 229 reply for port.
func FormatEPSV(port uint16) string {
	return "Entering Extended Passive Mode (|||" + strconv.Itoa(int(port)) + "|)"
}

func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 {
		return 0, ErrBadAddress
	}
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v == 0 {
		return 0, ErrBadAddress
	}
	return uint16(v), nil
}
