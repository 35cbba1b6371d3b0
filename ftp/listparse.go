package ftp

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// EntryType is the kind of object a listing line describes.
type EntryType uint8

// Entry types. CurrentDir and ParentDir come only from MLSx (cdir, pdir).
const (
	TypeFile EntryType = iota
	TypeDir
	TypeLink
	TypeOther
	TypeCurrentDir
	TypeParentDir
)

func (t EntryType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeLink:
		return "link"
	case TypeCurrentDir:
		return "cdir"
	case TypeParentDir:
		return "pdir"
	}
	return "other"
}

// DirEntry is one object as a server describes it in a listing: a line of
// MLSD/MLST (RFC 3659) or of LIST in one of the common formats.
type DirEntry struct {
	Name    string
	Type    EntryType
	Size    int64       // -1 when the listing does not say
	ModTime time.Time   // zero when the listing does not say
	Mode    fs.FileMode // permission bits, when the listing gives them
	HasMode bool
	Target  string // a symbolic link's target, when LIST shows it
	Perm    string // the MLSx perm fact
	Unique  string // the MLSx unique fact
	// Precise reports that ModTime is exact UTC (MLSx, or a listing with
	// seconds); LIST times are in the server's zone and to the minute.
	Precise bool
}

// ErrBadListing reports a listing line in no format the parser knows.
var ErrBadListing = errors.New("ftp: unrecognised listing line")

// ParseFacts parses a line of MLSD or MLST, "fact=value;…; name"
// (RFC 3659 §7.2). Unknown facts are ignored; facts and the type value are
// matched without case.
func ParseFacts(line string) (DirEntry, error) {
	line = strings.TrimLeft(line, " ")
	facts, name, ok := strings.Cut(line, " ")
	if !ok || name == "" {
		return DirEntry{}, ErrBadListing
	}
	e := DirEntry{Name: DecodeName(name), Size: -1, Type: TypeFile}
	typed := false
	for _, f := range strings.Split(facts, ";") {
		if f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return DirEntry{}, ErrBadListing
		}
		switch strings.ToLower(k) {
		case "type":
			typed = true
			switch lv := strings.ToLower(v); {
			case lv == "file":
				e.Type = TypeFile
			case lv == "dir":
				e.Type = TypeDir
			case lv == "cdir":
				e.Type = TypeCurrentDir
			case lv == "pdir":
				e.Type = TypeParentDir
			case strings.HasPrefix(lv, "os.unix=slink") || strings.HasPrefix(lv, "os.unix=symlink"):
				e.Type = TypeLink
				if _, t, ok := strings.Cut(v, ":"); ok {
					e.Target = t
				}
			default:
				e.Type = TypeOther
			}
		case "size", "sizd":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				e.Size = n
			}
		case "modify":
			if t, err := ParseTime(v); err == nil {
				e.ModTime, e.Precise = t, true
			}
		case "unix.mode":
			if m, err := strconv.ParseUint(v, 8, 32); err == nil {
				e.Mode, e.HasMode = fs.FileMode(m).Perm(), true
			}
		case "perm":
			e.Perm = v
		case "unique":
			e.Unique = v
		}
	}
	if !typed {
		e.Type = TypeFile
	}
	return e, nil
}

// ParseListLine parses a line of a LIST reply in the formats servers use:
// Unix `ls -l` (with or without owner, group or link count; times with the
// hour, with the year, or in ISO form; devices; symbolic links shown as
// "name -> target"), MS-DOS/IIS ("01-16-23  10:20AM  <DIR>  name"), and
// EPLF ("+i8388621.48594,m825718503,r,s280,\tname"). A time without a year
// is placed in the year that puts it at most a few days after now. It
// returns ErrBadListing for lines it does not recognise, "total N" lines
// among them.
func ParseListLine(line string, now time.Time) (DirEntry, error) {
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return DirEntry{}, ErrBadListing
	}
	if line[0] == '+' {
		return parseEPLF(line)
	}
	if line[0] >= '0' && line[0] <= '9' {
		return parseDOS(line)
	}
	return parseUnix(line, now)
}

// field is one space-separated token of a line and where it ends.
type field struct {
	s   string
	end int
}

func fields(line string, max int) []field {
	var fs []field
	i := 0
	for len(fs) < max {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) {
			break
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		fs = append(fs, field{line[i:j], j})
		i = j
	}
	return fs
}

var months = map[string]time.Month{
	"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
	"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}

func isModeString(s string) bool {
	if len(s) < 10 || !strings.ContainsRune("-dlcbpsD", rune(s[0])) {
		return false
	}
	for i := 1; i < 10; i++ {
		if !strings.ContainsRune("rwxsStTlL-", rune(s[i])) {
			return false
		}
	}
	return len(s) == 10 || strings.ContainsRune("+@.", rune(s[10])) && len(s) == 11
}

func parseUnixMode(s string) fs.FileMode {
	var m fs.FileMode
	for i := 0; i < 9; i++ {
		c := s[1+i]
		if c != '-' && c != 'S' && c != 'T' && c != 'l' && c != 'L' {
			m |= 1 << uint(8-i)
		}
	}
	return m
}

func parseUnix(line string, now time.Time) (DirEntry, error) {
	fl := fields(line, 12)
	if len(fl) < 5 || !isModeString(fl[0].s) {
		return DirEntry{}, ErrBadListing
	}
	e := DirEntry{Size: -1, Mode: parseUnixMode(fl[0].s), HasMode: true}
	switch fl[0].s[0] {
	case '-':
		e.Type = TypeFile
	case 'd':
		e.Type = TypeDir
	case 'l':
		e.Type = TypeLink
	default:
		e.Type = TypeOther
	}
	// Find the date: "Mon DD HH:MM|YYYY" or "YYYY-MM-DD HH:MM[:SS]".
	for i := 2; i+1 < len(fl); i++ {
		var t time.Time
		var end int
		var ok, precise bool
		if mon, isMon := months[strings.ToLower(fl[i].s)]; isMon && i+2 < len(fl) {
			t, ok = unixDate(mon, fl[i+1].s, fl[i+2].s, now)
			end = fl[i+2].end
		} else if len(fl[i].s) == 10 && fl[i].s[4] == '-' {
			t, precise, ok = isoDate(fl[i].s, fl[i+1].s)
			end = fl[i+1].end
		}
		if !ok {
			continue
		}
		size := fl[i-1].s
		if n, err := strconv.ParseInt(size, 10, 64); err == nil && n >= 0 {
			e.Size = n
		} else if e.Type != TypeOther {
			continue
		}
		if end >= len(line) || line[end] != ' ' || end+1 >= len(line) {
			return DirEntry{}, ErrBadListing
		}
		name := line[end+1:]
		if e.Type == TypeLink {
			if n, target, ok := strings.Cut(name, " -> "); ok {
				name, e.Target = n, target
			}
		}
		if name == "" {
			return DirEntry{}, ErrBadListing
		}
		e.Name = DecodeName(name)
		e.ModTime, e.Precise = t, precise
		return e, nil
	}
	return DirEntry{}, ErrBadListing
}

func unixDate(mon time.Month, day, hy string, now time.Time) (time.Time, bool) {
	d, err := strconv.Atoi(day)
	if err != nil || d < 1 || d > 31 {
		return time.Time{}, false
	}
	if h, m, ok := strings.Cut(hy, ":"); ok {
		hh, err1 := strconv.Atoi(h)
		mm, err2 := strconv.Atoi(m)
		if err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 || len(m) != 2 {
			return time.Time{}, false
		}
		now = now.UTC()
		t := time.Date(now.Year(), mon, d, hh, mm, 0, 0, time.UTC)
		if t.After(now.AddDate(0, 0, 7)) {
			t = t.AddDate(-1, 0, 0)
		}
		return t, true
	}
	y, err := strconv.Atoi(hy)
	if err != nil || len(hy) != 4 {
		return time.Time{}, false
	}
	return time.Date(y, mon, d, 0, 0, 0, 0, time.UTC), true
}

func isoDate(date, clock string) (time.Time, bool, bool) {
	layout, precise := "2006-01-02 15:04", false
	if strings.Count(clock, ":") == 2 {
		if i := strings.IndexByte(clock, '.'); i >= 0 {
			clock = clock[:i]
		}
		layout, precise = "2006-01-02 15:04:05", true
	}
	t, err := time.Parse(layout, date+" "+clock)
	return t, precise, err == nil
}

// parseDOS parses "MM-DD-YY  HH:MMAM  <DIR>|size  name" as IIS and other
// Windows servers send it, with two- or four-digit years, 12- or 24-hour
// times, and dates written YYYY-MM-DD.
func parseDOS(line string) (DirEntry, error) {
	fl := fields(line, 3)
	if len(fl) < 3 {
		return DirEntry{}, ErrBadListing
	}
	t, ok := dosTime(fl[0].s, fl[1].s)
	if !ok {
		return DirEntry{}, ErrBadListing
	}
	e := DirEntry{ModTime: t, Size: -1}
	if strings.EqualFold(fl[2].s, "<DIR>") {
		e.Type = TypeDir
	} else {
		n, err := strconv.ParseInt(strings.ReplaceAll(fl[2].s, ",", ""), 10, 64)
		if err != nil || n < 0 {
			return DirEntry{}, ErrBadListing
		}
		e.Type, e.Size = TypeFile, n
	}
	rest := line[fl[2].end:]
	name := strings.TrimLeft(rest, " ")
	if name == "" {
		return DirEntry{}, ErrBadListing
	}
	e.Name = DecodeName(name)
	return e, nil
}

func dosTime(date, clock string) (time.Time, bool) {
	date = strings.ReplaceAll(date, "/", "-")
	var layouts []string
	switch {
	case len(date) == 8:
		layouts = []string{"01-02-06"}
	case len(date) == 10 && date[4] == '-':
		layouts = []string{"2006-01-02"}
	case len(date) == 10:
		layouts = []string{"01-02-2006"}
	default:
		return time.Time{}, false
	}
	up := strings.ToUpper(clock)
	cl := "15:04"
	if strings.HasSuffix(up, "AM") || strings.HasSuffix(up, "PM") {
		cl = "03:04PM"
		if len(up) == 6 {
			up = "0" + up
		}
	}
	t, err := time.Parse(layouts[0]+" "+cl, date+" "+up)
	return t, err == nil
}

// parseEPLF parses an EPLF line: "+fact,fact,…\tname" (D. J. Bernstein).
func parseEPLF(line string) (DirEntry, error) {
	facts, name, ok := strings.Cut(line[1:], "\t")
	if !ok || name == "" {
		return DirEntry{}, ErrBadListing
	}
	e := DirEntry{Name: DecodeName(name), Size: -1, Type: TypeOther}
	for _, f := range strings.Split(facts, ",") {
		if f == "" {
			continue
		}
		switch v := f[1:]; f[0] {
		case '/':
			e.Type = TypeDir
		case 'r':
			e.Type = TypeFile
		case 's':
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				e.Size = n
			}
		case 'm':
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				e.ModTime, e.Precise = time.Unix(n, 0).UTC(), true
			}
		case 'i':
			e.Unique = v
		case 'u':
			if strings.HasPrefix(v, "p") {
				if m, err := strconv.ParseUint(v[1:], 8, 32); err == nil {
					e.Mode, e.HasMode = fs.FileMode(m).Perm(), true
				}
			}
		}
	}
	return e, nil
}
