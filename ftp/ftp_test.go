package ftp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line, verb, arg string
		err             error
	}{
		{"USER alice", "USER", "alice", nil},
		{"user alice", "USER", "alice", nil},
		{"RETR  two spaces.txt", "RETR", " two spaces.txt", nil},
		{"NOOP", "NOOP", "", nil},
		{"STOR name with spaces ", "STOR", "name with spaces ", nil},
		{"XSHA256 f", "XSHA256", "f", nil},
		{"TOOLONGVERB f", "", "", ErrBadVerb},
		{"1ABC", "", "", ErrBadVerb},
		{"X1 f", "", "", ErrBadVerb},
		{"GET / HTTP/1.1", "GET", "/ HTTP/1.1", nil},
		{"", "", "", ErrEmptyLine},
		{"AB", "", "", ErrBadVerb},
		{"US\x00R x", "", "", ErrBadVerb},
		{"ÜSER x", "", "", ErrBadVerb},
	}
	for _, tt := range tests {
		c, err := ParseCommand(tt.line)
		if !errors.Is(err, tt.err) || c.Verb != tt.verb || c.Arg != tt.arg {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %s %q %v", tt.line, c, err, tt.verb, tt.arg, tt.err)
		}
	}
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		errs []error
	}{
		{"NOOP\r\nPWD\n", []string{"NOOP", "PWD"}, []error{nil, nil}},
		{"\xff\xf4\xff\xf2ABOR\r\n", []string{"ABOR"}, []error{nil}},
		{"A\xff\xffB\r\n", []string{"A\xffB"}, []error{nil}},
		{"\xff\xfa\x18\x01\xff\xf0NOOP\r\n", []string{"NOOP"}, []error{nil}},
		{"MKD a\r\x00b\r\n", []string{"MKD a\rb"}, []error{nil}},
		{strings.Repeat("x", MaxLine+10) + "\r\nNOOP\r\n", []string{"", "NOOP"}, []error{ErrLineTooLong, nil}},
		{strings.Repeat("x", MaxLine) + "\r\n", []string{strings.Repeat("x", MaxLine)}, []error{nil}},
		{"PARTIAL", []string{""}, []error{io.EOF}},
	}
	for _, tt := range tests {
		var refused []byte
		lr := LineReader{R: bufio.NewReader(strings.NewReader(tt.in)), Refuse: func(b []byte) { refused = append(refused, b...) }}
		for i, w := range tt.want {
			got, err := lr.ReadLine()
			if got != w || !errors.Is(err, tt.errs[i]) {
				t.Errorf("%q line %d: got %q %v, want %q %v", tt.in, i, got, err, w, tt.errs[i])
			}
		}
	}
	var refused []byte
	lr := LineReader{R: bufio.NewReader(strings.NewReader("\xff\xfb\x03\xff\xfd\x01NOOP\r\n")), Refuse: func(b []byte) { refused = append(refused, b...) }}
	if l, _ := lr.ReadLine(); l != "NOOP" || string(refused) != "\xff\xfe\x03\xff\xfc\x01" {
		t.Errorf("telnet options: %q refused %q", l, refused)
	}
}

func TestAppendReply(t *testing.T) {
	tests := []struct {
		code int
		text string
		want string
	}{
		{200, "OK", "200 OK\r\n"},
		{211, "Features:\n UTF8\nEnd", "211-Features:\r\n UTF8\r\n211 End\r\n"},
		{214, "Help:\n220 looks like an end\nEnd", "214-Help:\r\n 220 looks like an end\r\n214 End\r\n"},
		{550, "bad\rname", "550 badname\r\n"},
		{257, `"a` + "\r\x00" + `b" created`, "257 \"a\r\x00b\" created\r\n"},
	}
	for _, tt := range tests {
		if got := string(AppendReply(nil, tt.code, tt.text)); got != tt.want {
			t.Errorf("AppendReply(%d, %q) = %q, want %q", tt.code, tt.text, got, tt.want)
		}
	}
	if got := QuotePath(`/a"b`); got != `"/a""b"` {
		t.Errorf("QuotePath %q", got)
	}
	if got := QuotePath("/a\rb"); got != "\"/a\r\x00b\"" {
		t.Errorf("QuotePath CR %q", got)
	}
}

func TestAddresses(t *testing.T) {
	ap := netip.MustParseAddrPort("192.0.2.7:50001")
	s, _ := FormatPORT(ap)
	if s != "192,0,2,7,195,81" {
		t.Fatal(s)
	}
	for _, in := range []string{"192,0,2,7,195,81", " 192,0,2,7,195,81 "} {
		if got, err := ParsePORT(in); err != nil || got != ap {
			t.Errorf("ParsePORT(%q) = %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "1,2,3,4,5", "1,2,3,4,5,6,7", "256,0,0,1,1,1", "1,2,3,4,5,-1", "a,b,c,d,e,f", "1,2,3,4,0005,1", "1,,3,4,5,6"} {
		if _, err := ParsePORT(bad); err == nil {
			t.Errorf("ParsePORT(%q) accepted", bad)
		}
	}
	for _, text := range []string{"Entering Passive Mode (192,0,2,7,195,81).", "Entering Passive Mode 192,0,2,7,195,81", "=192,0,2,7,195,81"} {
		if got, err := ParsePASV(text); err != nil || got != ap {
			t.Errorf("ParsePASV(%q) = %v %v", text, got, err)
		}
	}
	eprt := []struct {
		in   string
		want string
		err  error
	}{
		{"|1|132.235.1.2|6275|", "132.235.1.2:6275", nil},
		{"|2|1080::8:800:200C:417A|5282|", "[1080::8:800:200c:417a]:5282", nil},
		{"!2!::1!5282!", "[::1]:5282", nil},
		{"|3|x|1|", "", ErrUnsupportedProtocol},
		{"|1|::1|1|", "", ErrBadAddress},
		{"|2|1.2.3.4|1|", "", ErrBadAddress},
		{"|1|1.2.3.4|0|", "", ErrBadAddress},
		{"|1|1.2.3.4|65536|", "", ErrBadAddress},
		{"|1|1.2.3.4|", "", ErrBadAddress},
		{"|2|fe80::1%eth0|80|", "", ErrBadAddress},
	}
	for _, tt := range eprt {
		got, err := ParseEPRT(tt.in)
		if !errors.Is(err, tt.err) || (err == nil && got.String() != tt.want) {
			t.Errorf("ParseEPRT(%q) = %v %v", tt.in, got, err)
		}
	}
	if FormatEPRT(netip.MustParseAddrPort("[::1]:21")) != "|2|::1|21|" || FormatEPRT(ap) != "|1|192.0.2.7|50001|" {
		t.Error("FormatEPRT")
	}
	if p, err := ParseEPSV(FormatEPSV(6446)); err != nil || p != 6446 {
		t.Errorf("EPSV round trip %d %v", p, err)
	}
	for _, bad := range []string{"", "(|||)", "(|||0|)", "(||1|2|)", "Entering (|||99999|)"} {
		if _, err := ParseEPSV(bad); err == nil {
			t.Errorf("ParseEPSV(%q) accepted", bad)
		}
	}
}

type fi struct {
	name string
	size int64
	mode fs.FileMode
	t    time.Time
}

func (f fi) Name() string       { return f.name }
func (f fi) Size() int64        { return f.size }
func (f fi) Mode() fs.FileMode  { return f.mode }
func (f fi) ModTime() time.Time { return f.t }
func (f fi) IsDir() bool        { return f.mode.IsDir() }
func (f fi) Sys() any           { return nil }

func TestListLine(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		info fi
		want string
	}{
		{"a.txt", fi{"a.txt", 1234, 0o644, time.Date(2026, 5, 2, 15, 4, 0, 0, time.UTC)}, "-rw-r--r-- 1 ftp ftp         1234 May  2 15:04 a.txt\r\n"},
		{"old", fi{"old", 5, 0o600, time.Date(2020, 1, 12, 0, 0, 0, 0, time.UTC)}, "-rw------- 1 ftp ftp            5 Jan 12  2020 old\r\n"},
		{"d", fi{"d", 0, fs.ModeDir | 0o755, time.Date(2026, 5, 2, 15, 4, 0, 0, time.UTC)}, "drwxr-xr-x 1 ftp ftp         4096 May  2 15:04 d\r\n"},
		{"with space", fi{"with space", 1, 0o644, now}, "-rw-r--r-- 1 ftp ftp            1 Jun  1 12:00 with space\r\n"},
		{"cr\rname", fi{"cr\rname", 1, 0o644, now}, "-rw-r--r-- 1 ftp ftp            1 Jun  1 12:00 cr\r\x00name\r\n"},
	}
	for _, tt := range tests {
		got, ok := AppendListLine(nil, tt.name, tt.info, now)
		if !ok || string(got) != tt.want {
			t.Errorf("list %q:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
	if _, ok := AppendListLine(nil, "lf\nname", fi{"x", 1, 0o644, now}, now); ok {
		t.Error("a name with LF was listed")
	}
	e := Entry{Name: "f", Info: fi{"f", 10, 0o640, time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)}, Perm: "r", Unique: "u1"}
	got, _ := AppendFacts(nil, e, AllFacts)
	if string(got) != "type=file;size=10;modify=20260102030405.006;perm=r;unique=u1;UNIX.mode=0640; f\r\n" {
		t.Errorf("facts %q", got)
	}
	sel, text := ParseOptsMLST("Size;TYPE;bogus;")
	got, _ = AppendFacts(nil, e, sel)
	if text != "type;size;" || string(got) != "type=file;size=10; f\r\n" {
		t.Errorf("OPTS MLST %q %q", text, got)
	}
	if FeatMLST(FactType|FactSize) != "MLST type*;size*;modify;perm;unique;UNIX.mode;" {
		t.Error(FeatMLST(FactType | FactSize))
	}
}

func TestTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"20260102030405":     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"20260102030405.5":   time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC),
		"20260102030405.123": time.Date(2026, 1, 2, 3, 4, 5, 123e6, time.UTC),
	} {
		if got, err := ParseTime(in); err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "2026010203040", "20261302030405", "2026010203040x", "20260102030405.", "+2026010203040"} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

func TestASCII(t *testing.T) {
	for in, want := range map[string]string{"a\nb\n": "a\r\nb\r\n", "a\r\nb": "a\r\nb", "\n\n": "\r\n\r\n", "": ""} {
		got, _ := io.ReadAll(ToCRLF(strings.NewReader(in)))
		if string(got) != want {
			t.Errorf("ToCRLF(%q) = %q", in, got)
		}
	}
	// CR and LF split across writes.
	var buf bytes.Buffer
	w := FromCRLF(&buf)
	for _, p := range []string{"a\r", "\nb\r", "c\r\n", "\r"} {
		w.Write([]byte(p))
	}
	w.Close()
	if buf.String() != "a\nb\rc\n\r" {
		t.Errorf("FromCRLF %q", buf.String())
	}
}

// flakyReader returns its chunks one per Read, with errTimeout between them.
type flakyReader struct{ chunks []string }

var errTimeout = errors.New("timeout")

func (f *flakyReader) Read(p []byte) (int, error) {
	if len(f.chunks) == 0 {
		return 0, io.EOF
	}
	c := f.chunks[0]
	f.chunks = f.chunks[1:]
	if c == "" {
		return 0, errTimeout
	}
	return copy(p, c), nil
}

// TestReadLineResumes: a read error mid-line (a deadline) keeps the bytes
// read so far for the next call.
func TestReadLineResumes(t *testing.T) {
	lr := LineReader{R: bufio.NewReader(&flakyReader{[]string{"NO", "", "OP\r\nPW", "", "D\r\n"}})}
	var got []string
	for {
		l, err := lr.ReadLine()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errTimeout) {
			continue
		}
		got = append(got, l)
	}
	if strings.Join(got, ",") != "NOOP,PWD" {
		t.Fatalf("got %q", got)
	}
}
