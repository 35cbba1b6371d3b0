package events

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// The queue writes a record for every event a transfer publishes, and
// encoding/json's reflection was most of that cost: these append the
// same bytes json.Marshal writes (FuzzEventJSON holds them equal).

// appendJSON appends e's JSON document, as json.Marshal writes it.
func (e *Event) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"event":`...)
	b = appendString(b, e.Event)
	b = append(b, `,"time":`...)
	b = appendTime(b, e.Time)
	b = appendField(b, `,"user":`, e.User)
	b = appendField(b, `,"remote":`, e.Remote)
	b = appendField(b, `,"path":`, e.Path)
	b = appendField(b, `,"to":`, e.To)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, e.Size, 10)
	if e.Duration != 0 {
		b = append(b, `,"duration":`...)
		b = appendFloat(b, e.Duration)
	}
	b = append(b, `,"status":`...)
	b = appendString(b, e.Status)
	if e.Code != 0 {
		b = append(b, `,"code":`...)
		b = strconv.AppendInt(b, int64(e.Code), 10)
	}
	b = appendField(b, `,"sha256":`, e.SHA256)
	if e.Session != 0 {
		b = append(b, `,"session":`...)
		b = strconv.AppendUint(b, e.Session, 10)
	}
	return append(b, '}')
}

// appendAdd appends the queue's add record of d, and a newline.
func appendAdd(b []byte, d *Delivery) []byte {
	b = append(b, `{"op":"add","hook":`...)
	b = appendString(b, d.Hook)
	b = append(b, `,"event":`...)
	if d.doc != nil {
		b = append(b, d.doc...)
	} else {
		b = d.Event.appendJSON(b)
	}
	return append(b, "}\n"...)
}

// appendField appends name and s, unless s is empty (omitempty).
func appendField(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, name...), s)
}

// appendTime appends t as time.Time's MarshalJSON does; a year it cannot
// write (json.Marshal fails there) is written as the zero time. A UTC
// time (every event Publish stamps) reuses the date and clock of the
// second before, formatted once.
func appendTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		t = time.Time{}
	} else if t.Location() == time.UTC {
		b = append(append(b, '"'), utcSecond(t).text[:]...)
		return append(appendFraction(b, t.Nanosecond()), 'Z', '"')
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// second is a UTC second's date and clock, as RFC 3339 writes them.
type second struct {
	sec  int64
	text [19]byte
}

// lastSecond is the second appendTime formatted last.
var lastSecond atomic.Pointer[second]

// utcSecond is the second of t, a UTC time, formatted (once a second).
func utcSecond(t time.Time) *second {
	if c := lastSecond.Load(); c != nil && c.sec == t.Unix() {
		return c
	}
	c := &second{sec: t.Unix()}
	t.AppendFormat(c.text[:0], "2006-01-02T15:04:05")
	lastSecond.Store(c)
	return c
}

// appendFloat appends f as encoding/json writes a float64; NaN and the
// infinities (json.Marshal fails there) as 0.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	abs := math.Abs(f)
	if ns := math.Round(abs * 1e9); abs >= 1e-6 && ns < 1e15 && ns/1e9 == abs {
		return appendNanos(b, f < 0, int64(ns)) // a duration in whole nanoseconds
	}
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 as e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendNanos appends ns/1e9 (negative when neg) as a decimal, without
// trailing zeros: for ns below 1e15 it is the shortest decimal that reads
// back as the float64 ns/1e9 (any shorter one differs from it by more
// than that float's spacing), as strconv writes it, without its search.
func appendNanos(b []byte, neg bool, ns int64) []byte {
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendInt(b, ns/1e9, 10)
	return appendFraction(b, int(ns%1e9))
}

// appendFraction appends ns (below 1e9) as the decimal fraction of a
// second, without trailing zeros; nothing when ns is 0.
func appendFraction(b []byte, ns int) []byte {
	if ns == 0 {
		return b
	}
	var d [10]byte
	d[0] = '.'
	for i := 9; i > 0; i-- {
		d[i] = byte('0' + ns%10)
		ns /= 10
	}
	n := 10
	for d[n-1] == '0' {
		n--
	}
	return append(b, d[:n]...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json does
// (HTML characters, U+2028 and U+2029 included; invalid UTF-8 as
// U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = appendEscape(b, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, `\u202`...)
				b = append(b, hexDigits[r&0xF])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendEscape appends the escape of an ASCII byte.
func appendEscape(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\b':
		return append(b, '\\', 'b')
	case '\f':
		return append(b, '\\', 'f')
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
}
