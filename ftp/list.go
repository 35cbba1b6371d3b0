package ftp

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// AppendListLine appends one line of a LIST reply for fi in the `ls -l`
// format that lftp, curl, FileZilla and Windows clients parse:
//
//	-rw-r--r-- 1 ftp ftp 1234 Jan 02 15:04 name
//
// Times older than six months (or in the future) show the year instead of the
// hour, as ls does. It reports false (appending nothing) for a name that holds
// a LF; a CR in the name is sent as CR NUL (RFC 2640).
func AppendListLine(b []byte, name string, fi fs.FileInfo, now time.Time) ([]byte, bool) {
	enc, ok := EncodeName(name)
	if !ok {
		return b, false
	}
	b = appendModeString(b, fi.Mode())
	b = append(b, " 1 ftp ftp "...)
	size := fi.Size()
	if fi.IsDir() && size == 0 {
		size = 4096
	}
	sz := strconv.AppendInt(nil, size, 10)
	for i := len(sz); i < 12; i++ {
		b = append(b, ' ')
	}
	b = append(b, sz...)
	b = append(b, ' ')
	mt := fi.ModTime().UTC()
	if age := now.Sub(mt); age < 0 || age > 182*24*time.Hour {
		b = mt.AppendFormat(b, "Jan _2  2006")
	} else {
		b = mt.AppendFormat(b, "Jan _2 15:04")
	}
	b = append(b, ' ')
	b = append(b, enc...)
	return append(b, '\r', '\n'), true
}

func appendModeString(b []byte, m fs.FileMode) []byte {
	switch {
	case m.IsDir():
		b = append(b, 'd')
	case m&fs.ModeSymlink != 0:
		b = append(b, 'l')
	default:
		b = append(b, '-')
	}
	const rwx = "rwxrwxrwx"
	p := m.Perm()
	for i := 0; i < 9; i++ {
		if p&(1<<uint(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	return b
}

// Facts selects MLST/MLSD facts (RFC 3659 §7).
type Facts uint8

// The facts Ferry knows.
const (
	FactType Facts = 1 << iota
	FactSize
	FactModify
	FactPerm
	FactUnique
	FactUnixMode

	AllFacts = FactType | FactSize | FactModify | FactPerm | FactUnique | FactUnixMode
)

var factNames = []struct {
	f    Facts
	name string
}{
	{FactType, "type"}, {FactSize, "size"}, {FactModify, "modify"},
	{FactPerm, "perm"}, {FactUnique, "unique"}, {FactUnixMode, "UNIX.mode"},
}

// FeatMLST returns the FEAT line for MLST: each known fact, with '*' after
// those enabled (RFC 3659 §7.8).
func FeatMLST(enabled Facts) string {
	var sb strings.Builder
	sb.WriteString("MLST ")
	for _, f := range factNames {
		sb.WriteString(f.name)
		if enabled&f.f != 0 {
			sb.WriteByte('*')
		}
		sb.WriteByte(';')
	}
	return sb.String()
}

// ParseOptsMLST parses the argument of "OPTS MLST fact;fact;" (RFC 3659
// §7.9): unknown facts are ignored, an empty list selects none. It returns
// the selection and its canonical text for the 200 reply.
func ParseOptsMLST(arg string) (Facts, string) {
	var sel Facts
	for _, p := range strings.Split(arg, ";") {
		for _, f := range factNames {
			if strings.EqualFold(p, f.name) {
				sel |= f.f
			}
		}
	}
	var sb strings.Builder
	for _, f := range factNames {
		if sel&f.f != 0 {
			sb.WriteString(f.name)
			sb.WriteByte(';')
		}
	}
	return sel, sb.String()
}

// Entry is one object described by MLST or MLSD.
type Entry struct {
	Name   string      // as sent after the facts
	Info   fs.FileInfo // size, time and mode
	Type   string      // "file", "dir", "cdir" or "pdir"; empty derives it from Info
	Perm   string      // RFC 3659 §7.5.5 perm fact, e.g. "adfrw"
	Unique string      // unique fact; empty omits it
}

// AppendFacts appends "fact=value;… name" (no leading space, with CRLF) for
// e. It reports false for a name holding a LF.
func AppendFacts(b []byte, e Entry, sel Facts) ([]byte, bool) {
	enc, ok := EncodeName(e.Name)
	if !ok {
		return b, false
	}
	if sel&FactType != 0 {
		t := e.Type
		if t == "" {
			t = "file"
			if e.Info.IsDir() {
				t = "dir"
			}
		}
		b = append(b, "type="...)
		b = append(b, t...)
		b = append(b, ';')
	}
	if sel&FactSize != 0 && !e.Info.IsDir() {
		b = append(b, "size="...)
		b = strconv.AppendInt(b, e.Info.Size(), 10)
		b = append(b, ';')
	}
	if sel&FactModify != 0 {
		b = append(b, "modify="...)
		b = AppendTime(b, e.Info.ModTime())
		b = append(b, ';')
	}
	if sel&FactPerm != 0 && e.Perm != "" {
		b = append(b, "perm="...)
		b = append(b, e.Perm...)
		b = append(b, ';')
	}
	if sel&FactUnique != 0 && e.Unique != "" {
		b = append(b, "unique="...)
		b = append(b, e.Unique...)
		b = append(b, ';')
	}
	if sel&FactUnixMode != 0 {
		b = append(b, "UNIX.mode=0"...)
		b = strconv.AppendUint(b, uint64(e.Info.Mode().Perm()), 8)
		b = append(b, ';')
	}
	b = append(b, ' ')
	b = append(b, enc...)
	return append(b, '\r', '\n'), true
}

// AppendTime appends t in UTC as YYYYMMDDHHMMSS, with .sss when it has
// milliseconds (RFC 3659 §2.3).
func AppendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	b = t.AppendFormat(b, "20060102150405")
	if ms := t.Nanosecond() / 1e6; ms != 0 {
		b = append(b, '.')
		b = append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	}
	return b
}

// ErrBadTime reports a malformed time-val.
var ErrBadTime = errors.New("ftp: malformed time value")

// ParseTime parses a time-val "YYYYMMDDHHMMSS[.sss…]" in UTC (RFC 3659 §2.3).
func ParseTime(s string) (time.Time, error) {
	main, frac, hasFrac := strings.Cut(s, ".")
	if len(main) != 14 {
		return time.Time{}, ErrBadTime
	}
	for i := 0; i < len(main); i++ {
		if main[i] < '0' || main[i] > '9' {
			return time.Time{}, ErrBadTime
		}
	}
	t, err := time.Parse("20060102150405", main)
	if err != nil {
		return time.Time{}, ErrBadTime
	}
	if hasFrac {
		if frac == "" || len(frac) > 9 {
			return time.Time{}, ErrBadTime
		}
		ns := 0
		for i := 0; i < 9; i++ {
			ns *= 10
			if i < len(frac) {
				c := frac[i]
				if c < '0' || c > '9' {
					return time.Time{}, ErrBadTime
				}
				ns += int(c - '0')
			}
		}
		t = t.Add(time.Duration(ns))
	}
	return t, nil
}
