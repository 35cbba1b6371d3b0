package ftp

import (
	"strconv"
	"strings"
)

// Reply codes used by Ferry, with the RFC that defines them.
const (
	CodeRestartMarker      = 110 // RFC 959
	CodeReadyInMinutes     = 120 // RFC 959
	CodeDataAlreadyOpen    = 125 // RFC 959
	CodeFileStatusOK       = 150 // RFC 959: about to open data connection
	CodeOK                 = 200 // RFC 959
	CodeSuperfluous        = 202 // RFC 959: command not implemented, superfluous here
	CodeSystemStatus       = 211 // RFC 959, also FEAT (RFC 2389)
	CodeDirStatus          = 212 // RFC 959
	CodeFileStatus         = 213 // RFC 959, SIZE/MDTM (RFC 3659)
	CodeHelp               = 214 // RFC 959
	CodeSystemType         = 215 // RFC 959
	CodeServiceReady       = 220 // RFC 959
	CodeClosing            = 221 // RFC 959
	CodeDataOpenNoTransfer = 225 // RFC 959
	CodeClosingData        = 226 // RFC 959
	CodePassive            = 227 // RFC 959
	CodeExtendedPassive    = 229 // RFC 2428
	CodeLoggedIn           = 230 // RFC 959
	CodeLoggedInBySecurity = 232 // RFC 2228: logged in, authorized by security data exchange
	CodeAuthOK             = 234 // RFC 2228
	CodeFileActionOK       = 250 // RFC 959
	CodePathCreated        = 257 // RFC 959
	CodeNeedPassword       = 331 // RFC 959
	CodeNeedAccount        = 332 // RFC 959
	CodePending            = 350 // RFC 959
	CodeNotAvailable       = 421 // RFC 959
	CodeCantOpenData       = 425 // RFC 959
	CodeTransferAborted    = 426 // RFC 959
	CodeFileUnavailable    = 450 // RFC 959
	CodeLocalError         = 451 // RFC 959
	CodeInsufficientSpace  = 452 // RFC 959
	CodeSyntaxError        = 500 // RFC 959
	CodeBadArguments       = 501 // RFC 959
	CodeNotImplemented     = 502 // RFC 959
	CodeBadSequence        = 503 // RFC 959
	CodeParamNotImpl       = 504 // RFC 959
	CodeProtRefused        = 521 // RFC 4217: data connection cannot be opened with this PROT setting
	CodeBadProtocol        = 522 // RFC 2428: network protocol not supported
	CodeTLSFailed          = 522 // RFC 4217 §10.2: TLS negotiation failed (data connection reuse required)
	CodeNotLoggedIn        = 530 // RFC 959
	CodeNeedAccountStore   = 532 // RFC 959
	CodeProtectionDenied   = 533 // RFC 2228: command protection level denied for policy reasons
	CodeProtNotSupported   = 536 // RFC 2228: requested PROT level not supported
	CodeNoFile             = 550 // RFC 959
	CodePageTypeUnknown    = 551 // RFC 959
	CodeExceededStorage    = 552 // RFC 959
	CodeBadFileName        = 553 // RFC 959
	CodeBadRestart         = 554 // RFC 3659 §5.5: invalid REST offset for this file
)

// AppendReply appends a reply with code and text to b. Text with several
// lines (separated by "\n") becomes a multi-line reply as RFC 959 §4.2 gives
// it: "ddd-first", the middle lines, "ddd last". A middle line that starts
// with a digit is indented by one space so it cannot be taken for the end.
// A CR in the text is dropped unless it is followed by NUL (the RFC 2640
// encoding of a CR in a name), so a reply can never be split by data.
func AppendReply(b []byte, code int, text string) []byte {
	if strings.IndexByte(text, '\r') >= 0 {
		text = dropBareCR(text)
	}
	lines := strings.Split(text, "\n")
	c := strconv.AppendInt(nil, int64(code), 10)
	if len(lines) == 1 {
		b = append(b, c...)
		b = append(b, ' ')
		b = append(b, text...)
		return append(b, '\r', '\n')
	}
	for i, l := range lines {
		switch {
		case i == 0:
			b = append(b, c...)
			b = append(b, '-')
		case i == len(lines)-1:
			b = append(b, c...)
			b = append(b, ' ')
		case l != "" && l[0] >= '0' && l[0] <= '9':
			b = append(b, ' ')
		}
		b = append(b, l...)
		b = append(b, '\r', '\n')
	}
	return b
}

// QuotePath quotes a path name for a 257 reply (RFC 959 appendix II): the
// name is surrounded by double quotes and each quote inside it is doubled.
// A CR is sent as CR NUL (RFC 2640 §3.1); a LF, which no encoding can
// carry, is sent as NUL so that it never ends the reply line.
func QuotePath(p string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '"':
			sb.WriteString(`""`)
		case '\r':
			sb.WriteString("\r\x00")
		case '\n':
			sb.WriteString("\x00")
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

// EncodeName encodes a name for a listing line or a reply text per RFC 2640
// §3.1 (CR becomes CR NUL). It reports false when the name holds a LF, which
// no encoding can carry; such names are skipped.
func EncodeName(name string) (string, bool) {
	if strings.IndexByte(name, '\n') >= 0 {
		return "", false
	}
	if strings.IndexByte(name, '\r') < 0 {
		return name, true
	}
	return strings.ReplaceAll(name, "\r", "\r\x00"), true
}

func dropBareCR(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' && (i+1 == len(s) || s[i+1] != 0) {
			continue
		}
		sb.WriteByte(s[i])
	}
	return sb.String()
}
