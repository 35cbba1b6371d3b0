package ftp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Reply is one reply from a server: its code and its text. The text of a
// multi-line reply holds its lines separated by "\n", each without the code
// prefix of the first and last lines.
type Reply struct {
	Code int
	Text string
}

// Lines returns the lines of the reply text.
func (r Reply) Lines() []string { return strings.Split(r.Text, "\n") }

// Class returns the first digit of the code: 1 preliminary, 2 completion,
// 3 intermediate, 4 transient failure, 5 permanent failure.
func (r Reply) Class() int { return r.Code / 100 }

func (r Reply) String() string { return fmt.Sprintf("%d %s", r.Code, r.Text) }

// Limits of what ReadReply accepts from a server.
const (
	MaxReplyLine  = 8 << 10 // one line
	MaxReplyLines = 1 << 16 // lines of one multi-line reply
	MaxReplyBytes = 4 << 20 // bytes of one multi-line reply
)

// ErrBadReply reports a reply that does not follow RFC 959 §4.2. The
// connection that sent it cannot be trusted to be in step any more.
var ErrBadReply = errors.New("ftp: malformed reply")

// ReplyReader reads replies from a server's control connection.
type ReplyReader struct {
	r *bufio.Reader
}

// NewReplyReader returns a reader of replies from r.
func NewReplyReader(r io.Reader) *ReplyReader {
	if br, ok := r.(*bufio.Reader); ok {
		return &ReplyReader{r: br}
	}
	return &ReplyReader{r: bufio.NewReaderSize(r, 4096)}
}

// Buffered reports how many bytes have been read from the connection but
// not yet returned (a server that sends a reply nobody asked for).
func (rr *ReplyReader) Buffered() int { return rr.r.Buffered() }

// Ready waits (within the connection's read deadline) until a reply has
// begun to arrive, without consuming it. An error (a timeout) leaves the
// reader as it was.
func (rr *ReplyReader) Ready() error {
	_, err := rr.r.Peek(1)
	return err
}

// ReadReply reads one reply (RFC 959 §4.2): a line "ddd text", or a first
// line "ddd-text", any lines, and a last line "ddd text" with the same code.
// Lines may end in CRLF or a bare LF. A middle line that repeats the
// "ddd-" prefix has it removed, as several servers send it.
func (rr *ReplyReader) ReadReply() (Reply, error) {
	line, err := rr.line()
	if err != nil {
		return Reply{}, err
	}
	code, sep, ok := replyPrefix(line)
	if !ok {
		return Reply{}, fmt.Errorf("%w: %q", ErrBadReply, clip(line))
	}
	if sep != '-' {
		return Reply{Code: code, Text: strings.TrimPrefix(line[3:], " ")}, nil
	}
	var sb strings.Builder
	sb.WriteString(line[4:])
	prefix := line[:3]
	for n := 1; ; n++ {
		if n >= MaxReplyLines || sb.Len() > MaxReplyBytes {
			return Reply{}, fmt.Errorf("%w: multi-line reply too long", ErrBadReply)
		}
		line, err := rr.line()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Reply{}, err
		}
		sb.WriteByte('\n')
		if strings.HasPrefix(line, prefix) && (len(line) == 3 || line[3] == ' ') {
			if len(line) > 4 {
				sb.WriteString(line[4:])
			}
			return Reply{Code: code, Text: sb.String()}, nil
		}
		if strings.HasPrefix(line, prefix) && len(line) > 3 && line[3] == '-' {
			line = line[4:]
		}
		sb.WriteString(line)
	}
}

// line reads one line without its CRLF or LF.
func (rr *ReplyReader) line() (string, error) {
	b, err := rr.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(b) > MaxReplyLine {
		return "", fmt.Errorf("%w: line longer than %d bytes", ErrBadReply, MaxReplyLine)
	}
	if err != nil {
		if err == io.EOF && len(b) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return string(b), nil
}

// replyPrefix parses "ddd" followed by ' ', '-' or the end of the line. The
// first digit is 1–5 (RFC 959 §4.2.1).
func replyPrefix(line string) (code int, sep byte, ok bool) {
	if len(line) < 3 {
		return 0, 0, false
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return 0, 0, false
		}
	}
	if line[0] < '1' || line[0] > '5' {
		return 0, 0, false
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, ' ', true
	}
	if line[3] != ' ' && line[3] != '-' {
		return 0, 0, false
	}
	return code, line[3], true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// ParseFeat parses the text of a 211 reply to FEAT (RFC 2389 §3.2): one
// feature per middle line, a name and optional parameters. Names are upper
// cased; the map holds the parameters ("" when there are none).
func ParseFeat(text string) map[string]string {
	feats := make(map[string]string)
	lines := strings.Split(text, "\n")
	if len(lines) < 2 {
		return feats
	}
	for _, l := range lines[1 : len(lines)-1] {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		name, params, _ := strings.Cut(l, " ")
		feats[strings.ToUpper(name)] = strings.TrimSpace(params)
	}
	return feats
}

// ParsePathReply extracts the path name from the text of a 257 reply
// (RFC 959 appendix II): the text between the first double quote and the
// next single one, with doubled quotes undone and CR NUL read as CR
// (RFC 2640 §3.1).
func ParsePathReply(text string) (string, bool) {
	i := strings.IndexByte(text, '"')
	if i < 0 {
		return "", false
	}
	var sb strings.Builder
	for j := i + 1; j < len(text); j++ {
		c := text[j]
		switch {
		case c == '"' && j+1 < len(text) && text[j+1] == '"':
			sb.WriteByte('"')
			j++
		case c == '"':
			return sb.String(), true
		case c == '\r' && j+1 < len(text) && text[j+1] == 0:
			sb.WriteByte('\r')
			j++
		default:
			sb.WriteByte(c)
		}
	}
	return "", false
}

// DecodeName undoes EncodeName: CR NUL becomes CR.
func DecodeName(s string) string {
	if strings.IndexByte(s, '\r') < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\r\x00", "\r")
}
