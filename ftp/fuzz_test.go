package ftp

import (
	"bufio"
	"bytes"
	"io/fs"
	"strings"
	"testing"
	"time"
)

// FuzzReadCommand feeds arbitrary bytes to the line reader and parser: no
// panic, no line longer than MaxLine, no CR or LF inside a line.
func FuzzReadCommand(f *testing.F) {
	for _, s := range []string{"USER a\r\n", "\xff\xf4\xff\xf2ABOR\r\n", "MKD a\r\x00b\r\n", "\xff\xfa\x01\xff\xf0\r\n", "GET / HTTP/1.0\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lr := LineReader{R: bufio.NewReader(bytes.NewReader(data)), Refuse: func([]byte) {}}
		for i := 0; i < 100; i++ {
			line, err := lr.ReadLine()
			if err == ErrLineTooLong {
				continue
			}
			if err != nil {
				return
			}
			if len(line) > MaxLine+1 || strings.ContainsAny(line, "\n") {
				t.Fatalf("bad line %q", line)
			}
			if c, err := ParseCommand(line); err == nil {
				if len(c.Verb) < 3 || len(c.Verb) > 8 || strings.ToUpper(c.Verb) != c.Verb {
					t.Fatalf("bad verb %q", c.Verb)
				}
			}
		}
	})
}

// FuzzAddresses checks that what the address parsers accept formats back
// to an equivalent value.
func FuzzAddresses(f *testing.F) {
	for _, s := range []string{"127,0,0,1,4,1", "|1|127.0.0.1|1025|", "|2|::1|21|", "Entering Extended Passive Mode (|||6446|)", "(10,0,0,1,200,10)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ap, err := ParsePORT(s); err == nil {
			out, err := FormatPORT(ap)
			if err != nil {
				t.Fatal(err)
			}
			if back, err := ParsePORT(out); err != nil || back != ap {
				t.Fatalf("PORT round trip %q -> %q", s, out)
			}
		}
		if ap, err := ParsePASV(s); err == nil && !ap.Addr().Is4() {
			t.Fatalf("PASV gave %v", ap)
		}
		if ap, err := ParseEPRT(s); err == nil {
			if back, err := ParseEPRT(FormatEPRT(ap)); err != nil || back != ap {
				t.Fatalf("EPRT round trip %q", s)
			}
			if ap.Port() == 0 {
				t.Fatal("port 0 accepted")
			}
		}
		if p, err := ParseEPSV(s); err == nil && p == 0 {
			t.Fatal("EPSV port 0")
		}
	})
}

// FuzzListing formats arbitrary names: a line never holds a bare LF or a CR
// that is not followed by NUL, so a listing or reply cannot be split.
func FuzzListing(f *testing.F) {
	for _, s := range []string{"a.txt", "a\rb", "a\nb", "\"q\"", "ü"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, name string) {
		info := fi{name, 42, 0o644, now}
		check := func(line []byte) {
			body := bytes.TrimSuffix(line, []byte("\r\n"))
			for i, c := range body {
				if c == '\n' || c == '\r' && (i+1 >= len(body) || body[i+1] != 0) {
					t.Fatalf("line split by %q: %q", c, line)
				}
			}
		}
		if l, ok := AppendListLine(nil, name, info, now); ok {
			check(l)
		} else if !strings.Contains(name, "\n") {
			t.Fatalf("name %q refused", name)
		}
		if l, ok := AppendFacts(nil, Entry{Name: name, Info: info}, AllFacts); ok {
			check(l)
		}
		r := AppendReply(nil, 257, QuotePath(name)+" created.")
		check(r)
		_ = fs.ModePerm
	})
}

// FuzzReplies feeds arbitrary bytes to the reply reader and the listing
// parsers: no panic, codes in range, and names that hold no line break, so
// what a hostile server sends can never be taken for more than it is.
func FuzzReplies(f *testing.F) {
	for _, s := range []string{"220 ready\r\n", "211-Features:\r\n MDTM\r\n211 End\r\n", "250-a\n250-b\n250 c\n",
		"-rw-r--r-- 1 u g 5 Jan 01 2024 x", "01-16-23  10:20AM <DIR> d", "+i1,m2,r,s3,\tn", "type=file;size=1; n",
		"lrwxrwxrwx 1 0 0 7 Jan 01 2024 latest -> v1"} {
		f.Add([]byte(s))
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		rr := NewReplyReader(bytes.NewReader(data))
		for i := 0; i < 50; i++ {
			r, err := rr.ReadReply()
			if err != nil {
				break
			}
			if r.Code < 100 || r.Code > 599 {
				t.Fatalf("code %d", r.Code)
			}
		}
		for _, line := range strings.Split(string(data), "\n") {
			for _, parse := range []func(string) (DirEntry, error){
				func(s string) (DirEntry, error) { return ParseListLine(s, now) },
				ParseFacts,
			} {
				e, err := parse(line)
				if err != nil {
					continue
				}
				if e.Name == "" || strings.ContainsAny(e.Name, "\n") || e.Size < -1 {
					t.Fatalf("%q: bad entry %+v", line, e)
				}
			}
		}
	})
}
