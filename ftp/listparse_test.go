package ftp

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

var listNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestParseListLine(t *testing.T) {
	d := func(y int, m time.Month, day, h, min int) time.Time {
		return time.Date(y, m, day, h, min, 0, 0, time.UTC)
	}
	tests := []struct {
		server, line string
		want         DirEntry
	}{
		{"vsftpd", "-rw-r--r--    1 1000     1000         1234 Mar 05 14:07 notes.txt",
			DirEntry{Name: "notes.txt", Type: TypeFile, Size: 1234, ModTime: d(2026, 3, 5, 14, 7), Mode: 0o644, HasMode: true}},
		{"vsftpd old", "drwxr-xr-x    2 0        0            4096 Dec 31  2019 pub",
			DirEntry{Name: "pub", Type: TypeDir, Size: 4096, ModTime: d(2019, 12, 31, 0, 0), Mode: 0o755, HasMode: true}},
		{"last december is last year", "-rw-r--r--   1 a b 5 Dec 24 10:00 x",
			DirEntry{Name: "x", Type: TypeFile, Size: 5, ModTime: d(2025, 12, 24, 10, 0), Mode: 0o644, HasMode: true}},
		{"proftpd", "-rw-r--r--   1 ftp      ftp        104857600 Nov 20 09:15 100MB.bin",
			DirEntry{Name: "100MB.bin", Type: TypeFile, Size: 104857600, ModTime: d(2026, 11, 20, 9, 15), Mode: 0o644, HasMode: true}},
		{"pure-ftpd", "drwxr-xr-x    3 1001       1001             4096 Nov 26 11:59 a dir with  spaces",
			DirEntry{Name: "a dir with  spaces", Type: TypeDir, Size: 4096, ModTime: d(2026, 11, 26, 11, 59), Mode: 0o755, HasMode: true}},
		{"symlink", "lrwxrwxrwx    1 0        0               7 Jan 01  2024 latest -> v1.2.3",
			DirEntry{Name: "latest", Type: TypeLink, Size: 7, ModTime: d(2024, 1, 1, 0, 0), Mode: 0o777, HasMode: true, Target: "v1.2.3"}},
		{"no group", "-rw-r--r--   1 owner        42 Feb  2  2023 short",
			DirEntry{Name: "short", Type: TypeFile, Size: 42, ModTime: d(2023, 2, 2, 0, 0), Mode: 0o644, HasMode: true}},
		{"no link count (some NAS)", "-rw-rw-rw- owner group 7 Jun 10 08:00 f",
			DirEntry{Name: "f", Type: TypeFile, Size: 7, ModTime: d(2026, 6, 10, 8, 0), Mode: 0o666, HasMode: true}},
		{"acl marker", "-rw-r--r--+  1 u g 10 Jun 10 08:00 acl",
			DirEntry{Name: "acl", Type: TypeFile, Size: 10, ModTime: d(2026, 6, 10, 8, 0), Mode: 0o644, HasMode: true}},
		{"setuid", "-rwsr-sr-t   1 u g 10 Jun 10 08:00 s",
			DirEntry{Name: "s", Type: TypeFile, Size: 10, ModTime: d(2026, 6, 10, 8, 0), Mode: 0o755, HasMode: true}},
		{"long-iso", "-rw-r--r-- 1 u g 99 2025-07-01 16:20 iso",
			DirEntry{Name: "iso", Type: TypeFile, Size: 99, ModTime: d(2025, 7, 1, 16, 20), Mode: 0o644, HasMode: true}},
		{"full-iso", "-rw-r--r-- 1 u g 99 2025-07-01 16:20:05.123456789 +0000 fi",
			DirEntry{Name: "+0000 fi", Type: TypeFile, Size: 99, ModTime: time.Date(2025, 7, 1, 16, 20, 5, 0, time.UTC), Mode: 0o644, HasMode: true, Precise: true}},
		{"device", "crw-rw-rw-   1 root root 1,   3 Jan  1  2024 null",
			DirEntry{Name: "null", Type: TypeOther, Size: 3, ModTime: d(2024, 1, 1, 0, 0), Mode: 0o666, HasMode: true}},
		{"numeric name", "-rw-r--r-- 1 u g 5 Jan 01 2024 2024",
			DirEntry{Name: "2024", Type: TypeFile, Size: 5, ModTime: d(2024, 1, 1, 0, 0), Mode: 0o644, HasMode: true}},
		{"name that looks like a date", "-rw-r--r-- 1 u g 5 Jan 01 2024 Feb 03 10:00 x",
			DirEntry{Name: "Feb 03 10:00 x", Type: TypeFile, Size: 5, ModTime: d(2024, 1, 1, 0, 0), Mode: 0o644, HasMode: true}},
		{"CR NUL in name", "-rw-r--r-- 1 u g 5 Jan 01 2024 a\r\x00b",
			DirEntry{Name: "a\rb", Type: TypeFile, Size: 5, ModTime: d(2024, 1, 1, 0, 0), Mode: 0o644, HasMode: true}},
		{"IIS dir", "01-16-23  10:20AM       <DIR>          Program Files",
			DirEntry{Name: "Program Files", Type: TypeDir, Size: -1, ModTime: d(2023, 1, 16, 10, 20)}},
		{"IIS file", "11-02-2025  02:05PM             123456 report.pdf",
			DirEntry{Name: "report.pdf", Type: TypeFile, Size: 123456, ModTime: d(2025, 11, 2, 14, 5)}},
		{"DOS 24h", "2024-03-09  17:45              1,024 kb.bin",
			DirEntry{Name: "kb.bin", Type: TypeFile, Size: 1024, ModTime: d(2024, 3, 9, 17, 45)}},
		{"EPLF", "+i8388621.48594,m825718503,r,s280,\tdjb.html",
			DirEntry{Name: "djb.html", Type: TypeFile, Size: 280, ModTime: time.Unix(825718503, 0).UTC(), Unique: "8388621.48594", Precise: true}},
		{"EPLF dir", "+i8388621.50690,m824255907,/,\t514",
			DirEntry{Name: "514", Type: TypeDir, Size: -1, ModTime: time.Unix(824255907, 0).UTC(), Unique: "8388621.50690", Precise: true}},
	}
	for _, tt := range tests {
		got, err := ParseListLine(tt.line, listNow)
		if err != nil {
			t.Errorf("%s: %q: %v", tt.server, tt.line, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: %q:\n got %+v\nwant %+v", tt.server, tt.line, got, tt.want)
		}
	}
	for _, bad := range []string{"", "total 24", "garbage", "-rw-r--r-- 1 u g x Jan 01 2024", "drwx------ 1 u g 5 Foo 01 2024 x",
		"-rw-r--r-- 1 u g 5 Jan 01 2024", "01-16-23  10:20AM", "+i1,m2", "99-99-99 10:00 <DIR> x"} {
		if e, err := ParseListLine(bad, listNow); !errors.Is(err, ErrBadListing) {
			t.Errorf("%q: got %+v, %v; want ErrBadListing", bad, e, err)
		}
	}
}

func TestParseFacts(t *testing.T) {
	tests := []struct {
		line string
		want DirEntry
	}{
		{"type=file;size=1024;modify=20261126120000.5;perm=adfrw;unique=803g1;UNIX.mode=0644; name with space",
			DirEntry{Name: "name with space", Type: TypeFile, Size: 1024, ModTime: time.Date(2026, 11, 26, 12, 0, 0, 5e8, time.UTC), Precise: true, Perm: "adfrw", Unique: "803g1", Mode: 0o644, HasMode: true}},
		{"Type=DIR;Modify=20200101000000; sub",
			DirEntry{Name: "sub", Type: TypeDir, Size: -1, ModTime: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Precise: true}},
		{"type=cdir; /home/u", DirEntry{Name: "/home/u", Type: TypeCurrentDir, Size: -1}},
		{"type=pdir; ..", DirEntry{Name: "..", Type: TypeParentDir, Size: -1}},
		{"type=OS.unix=slink:/etc/x;size=6; lnk", DirEntry{Name: "lnk", Type: TypeLink, Size: 6, Target: "/etc/x"}},
		{" type=file;size=1; leading space (MLST)", DirEntry{Name: "leading space (MLST)", Type: TypeFile, Size: 1}},
		{"size=3; nofacttype", DirEntry{Name: "nofacttype", Type: TypeFile, Size: 3}},
	}
	for _, tt := range tests {
		got, err := ParseFacts(tt.line)
		if err != nil || got != tt.want {
			t.Errorf("%q:\n got %+v, %v\nwant %+v", tt.line, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "type=file;", "noequals; x"} {
		if _, err := ParseFacts(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestFactsRoundTrip: what the server writes, the client reads back.
func TestFactsRoundTrip(t *testing.T) {
	info := fi{"f", 77, 0o640, time.Date(2025, 5, 5, 5, 5, 5, 0, time.UTC)}
	b, ok := AppendFacts(nil, Entry{Name: "we\"ird name", Info: info, Perm: "r", Unique: "u1"}, AllFacts)
	if !ok {
		t.Fatal("AppendFacts refused")
	}
	got, err := ParseFacts(strings.TrimRight(string(b), "\r\n"))
	want := DirEntry{Name: "we\"ird name", Type: TypeFile, Size: 77, ModTime: info.t, Precise: true, Perm: "r", Unique: "u1", Mode: 0o640, HasMode: true}
	if err != nil || got != want {
		t.Fatalf("got %+v, %v\nwant %+v", got, err, want)
	}
	line, _ := AppendListLine(nil, "a  b", info, listNow)
	e, err := ParseListLine(strings.TrimRight(string(line), "\r\n"), listNow)
	if err != nil || e.Name != "a  b" || e.Size != 77 || !e.ModTime.Equal(time.Date(2025, 5, 5, 0, 0, 0, 0, time.UTC)) || e.Mode != 0o640 {
		t.Fatalf("LIST round trip: %+v, %v", e, err)
	}
}

func TestReadReply(t *testing.T) {
	in := "220 ready\r\n" +
		"211-Features:\r\n MDTM\r\n REST STREAM\r\n SIZE\r\n211 End\r\n" +
		"230-Welcome\n230-line two\n230 done\n" +
		"250-x\r\n 123 indented\r\n250-250 not the end\r\n250\r\n" +
		"200\r\n"
	rr := NewReplyReader(strings.NewReader(in))
	want := []Reply{
		{220, "ready"},
		{211, "Features:\n MDTM\n REST STREAM\n SIZE\nEnd"},
		{230, "Welcome\nline two\ndone"},
		{250, "x\n 123 indented\n250 not the end\n"},
		{200, ""},
	}
	for i, w := range want {
		got, err := rr.ReadReply()
		if err != nil || got != w {
			t.Fatalf("reply %d: got %q, %v; want %q", i, got, err, w)
		}
	}
	if _, err := rr.ReadReply(); err != io.EOF {
		t.Fatalf("at end: %v", err)
	}
	f := ParseFeat(want[1].Text)
	if _, ok := f["MDTM"]; !ok || f["REST"] != "STREAM" || len(f) != 3 {
		t.Fatalf("ParseFeat: %v", f)
	}
	for _, bad := range []string{"hello\r\n", "600 x\r\n", "20 x\r\n", "200x\r\n", "211-a\r\nb\r\n", strings.Repeat("2", MaxReplyLine+10) + "\r\n", "200 no end"} {
		rr := NewReplyReader(strings.NewReader(bad))
		if r, err := rr.ReadReply(); err == nil {
			t.Errorf("%q: got %v, want an error", clip(bad), r)
		}
	}
}

func TestParsePathReply(t *testing.T) {
	for in, want := range map[string]string{
		`"/" is the current directory`: "/",
		`"/a ""quoted"" dir" created`:  `/a "quoted" dir`,
		"\"/cr\r\x00name\" ok":         "/cr\rname",
		`MKD command successful "x"`:   "x",
	} {
		if got, ok := ParsePathReply(in); !ok || got != want {
			t.Errorf("%q: got %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"no quotes", `"unterminated`} {
		if got, ok := ParsePathReply(bad); ok {
			t.Errorf("%q: got %q", bad, got)
		}
	}
}
