package ftp

import (
	"bufio"
	"errors"
	"io"
	"strings"
)

// MaxLine is the longest command line, in bytes without the CRLF, that a
// server reads. Longer lines are discarded without being buffered.
const MaxLine = 4096

// Errors returned by ReadLine and ParseCommand.
var (
	ErrLineTooLong = errors.New("ftp: command line too long")
	ErrEmptyLine   = errors.New("ftp: empty command line")
	ErrBadVerb     = errors.New("ftp: malformed command verb")
)

// Command is one parsed command line.
type Command struct {
	Verb string // upper-case, e.g. "RETR"
	Arg  string // everything after the first space, unchanged (may be empty)
}

// Telnet bytes (RFC 854) that may appear on the control connection.
const (
	iac  = 255
	dont = 254
	do   = 253
	wont = 252
	will = 251
	sb   = 250
	se   = 240
)

// LineReader reads Telnet NVT lines from the control connection. It handles
// Telnet IAC sequences as RFC 1123 §4.1.2.12 asks: IAC IAC is a data byte 0xFF,
// option negotiations are refused through Refuse (if set), and other commands
// (IP, DM, AYT …, sent by clients before ABOR) are dropped. A line ends at LF;
// a CR before it is removed, and CR NUL inside a line is a CR (RFC 2640 §3.1).
type LineReader struct {
	R *bufio.Reader
	// Refuse, if set, is called with the reply to an option negotiation
	// (IAC DONT x for WILL x, IAC WONT x for DO x).
	Refuse func(b []byte)
	buf    []byte
	// partial: the last ReadLine ended with an error mid-line (a read
	// deadline); the next call goes on with the same line.
	partial bool
	tooLong bool
}

// Reset drops everything buffered (bytes read but not yet returned, and a
// partial line) and reads from r from now on: what a client pipelined
// before a TLS handshake is never taken for a command after it.
func (lr *LineReader) Reset(r io.Reader) {
	lr.R.Reset(r)
	lr.buf = lr.buf[:0]
	lr.partial, lr.tooLong = false, false
}

// Idle reports whether the reader holds nothing: no byte read and not yet
// returned, no partial line. An idle reader's R may be swapped for another
// over the same stream (a server parking an idle session gives its buffer
// back meanwhile).
func (lr *LineReader) Idle() bool {
	return !lr.partial && lr.R.Buffered() == 0
}

// ReadLine returns the next line without its terminator. A line longer than
// MaxLine bytes is consumed up to its LF and reported as ErrLineTooLong,
// without holding more than MaxLine bytes in memory. At EOF mid-line it
// returns io.EOF (a partial line is never executed). After another error,
// such as a read deadline, the bytes read so far are kept and the next call
// completes the same line.
func (lr *LineReader) ReadLine() (string, error) {
	if !lr.partial {
		lr.buf = lr.buf[:0]
		lr.tooLong = false
	}
	lr.partial = true
	for {
		b, err := lr.R.ReadByte()
		if err != nil {
			return "", err
		}
		switch b {
		case iac:
			c, err := lr.R.ReadByte()
			if err != nil {
				return "", err
			}
			switch c {
			case iac:
				// literal 0xFF
			case will, wont, do, dont:
				opt, err := lr.R.ReadByte()
				if err != nil {
					return "", err
				}
				if lr.Refuse != nil {
					switch c {
					case will:
						lr.Refuse([]byte{iac, dont, opt})
					case do:
						lr.Refuse([]byte{iac, wont, opt})
					}
				}
				continue
			case sb:
				// Skip a subnegotiation up to IAC SE.
				prev := byte(0)
				for {
					x, err := lr.R.ReadByte()
					if err != nil {
						return "", err
					}
					if prev == iac && x == se {
						break
					}
					prev = x
				}
				continue
			default:
				continue // IP, DM, AYT, NOP …
			}
		case '\n':
			lr.partial = false
			if lr.tooLong {
				return "", ErrLineTooLong
			}
			n := len(lr.buf)
			if n > 0 && lr.buf[n-1] == '\r' {
				lr.buf = lr.buf[:n-1]
			}
			return string(lr.buf), nil
		case 0:
			// CR NUL means a bare CR (RFC 2640); a NUL elsewhere is kept so
			// that the path check refuses it.
			if n := len(lr.buf); n > 0 && lr.buf[n-1] == '\r' {
				continue
			}
		}
		if lr.tooLong {
			continue
		}
		if len(lr.buf) >= MaxLine+1 { // +1 for a CR before LF
			lr.tooLong = true
			lr.buf = lr.buf[:0]
			continue
		}
		lr.buf = append(lr.buf, b)
	}
}

// ParseCommand splits a command line into its verb and argument. The verb is
// 3 or 4 ASCII letters (RFC 959 §5.3), or up to 8 letters and digits for the
// de-facto XSHA1/XSHA256/XSHA512; it is case-insensitive. The argument is
// separated by a single space and kept as sent, so that path names with
// leading or trailing spaces survive.
func ParseCommand(line string) (Command, error) {
	if line == "" {
		return Command{}, ErrEmptyLine
	}
	verb, arg, _ := strings.Cut(line, " ")
	if len(verb) < 3 || len(verb) > 8 {
		return Command{}, ErrBadVerb
	}
	for i := 0; i < len(verb); i++ {
		c := verb[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return Command{}, ErrBadVerb
		}
	}
	return Command{Verb: strings.ToUpper(verb), Arg: arg}, nil
}
