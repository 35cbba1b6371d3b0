package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/limits"
	"github.com/ferryftp/ferry/storage"
)

// argSpec says whether a command takes an argument.
type argSpec int

const (
	argOptional argSpec = iota
	argRequired
	argNone
)

// Command describes one FTP command: the single source from which the
// server's dispatch, FEAT, HELP and docs/COMMANDS.md come.
type Command struct {
	Verb string
	// Login is true when the command needs a logged-in user (else 530).
	Login bool
	// Arg says whether an argument is required, optional or refused (501).
	Arg argSpec
	// DuringTransfer commands are answered at once while a transfer runs;
	// the others wait until it ends.
	DuringTransfer bool
	// Feat is the command's FEAT line (RFC 2389), empty for none.
	Feat string
	// Syntax and Help are the HELP texts.
	Syntax, Help string
	// RFC names the specification.
	RFC string

	// quick commands touch neither storage nor auth: nothing in them can
	// hang, so they run without a watch of the control connection (see
	// session.watch).
	quick bool

	fn func(*session, string)
}

var table []Command

func init() {
	table = []Command{
		// Access control (RFC 959 §4.1.1).
		{Verb: "USER", Arg: argRequired, Syntax: "USER name", Help: "Name the user to log in as.", RFC: "RFC 959", fn: (*session).cmdUSER},
		{Verb: "PASS", Arg: argOptional, Syntax: "PASS password", Help: "Give the password of the user named by USER.", RFC: "RFC 959", fn: (*session).cmdPASS},
		{Verb: "ACCT", Arg: argRequired, Syntax: "ACCT account", Help: "Accounts are not needed (202).", RFC: "RFC 959", fn: func(s *session, _ string) { s.reply(ftp.CodeSuperfluous, "ACCT not needed.") }},
		{Verb: "CWD", Login: true, Arg: argRequired, Syntax: "CWD path", Help: "Change the working directory.", RFC: "RFC 959", fn: (*session).cmdCWD},
		{Verb: "XCWD", Login: true, Arg: argRequired, Syntax: "XCWD path", Help: "Same as CWD.", RFC: "RFC 775", fn: (*session).cmdCWD},
		{Verb: "CDUP", Login: true, Arg: argNone, Syntax: "CDUP", Help: "Change to the parent directory.", RFC: "RFC 959", fn: func(s *session, _ string) { s.cmdCWD("..") }},
		{Verb: "XCUP", Login: true, Arg: argNone, Syntax: "XCUP", Help: "Same as CDUP.", RFC: "RFC 775", fn: func(s *session, _ string) { s.cmdCWD("..") }},
		{Verb: "SMNT", Login: true, Arg: argRequired, Syntax: "SMNT path", Help: "Structure mount is not implemented (502).", RFC: "RFC 959", fn: notImplemented},
		{Verb: "REIN", Arg: argNone, Syntax: "REIN", Help: "Log out and reset the session, keeping the connection.", RFC: "RFC 959", fn: (*session).cmdREIN},
		{Verb: "QUIT", Arg: argNone, Syntax: "QUIT", Help: "Close the session (after a running transfer ends).", RFC: "RFC 959", fn: (*session).cmdQUIT},
		// Security (RFC 2228, RFC 4217).
		{Verb: "AUTH", Arg: argRequired, Feat: "AUTH TLS", Syntax: "AUTH TLS", Help: "Secure the control connection with TLS (also AUTH SSL, TLS-C).", RFC: "RFC 4217", fn: (*session).cmdAUTH},
		{Verb: "PBSZ", Arg: argRequired, Feat: "PBSZ", Syntax: "PBSZ 0", Help: "Protection buffer size; 0 under TLS.", RFC: "RFC 4217", fn: (*session).cmdPBSZ},
		{Verb: "CCC", Login: true, quick: true, Arg: argNone, Feat: "CCC", Syntax: "CCC", Help: "Clear the command channel: TLS off for commands, where the server allows it.", RFC: "RFC 4217", fn: (*session).cmdCCC},
		{Verb: "PROT", Arg: argRequired, Feat: "PROT", Syntax: "PROT C|P", Help: "Clear (C) or protected (P) data connections.", RFC: "RFC 4217", fn: (*session).cmdPROT},
		{Verb: "HOST", Arg: argRequired, Feat: "HOST", Syntax: "HOST name", Help: "Select a virtual host, before USER.", RFC: "RFC 7151", fn: (*session).cmdHOST},

		// Transfer parameters (RFC 959 §4.1.2, RFC 2428).
		{Verb: "PORT", Login: true, quick: true, Arg: argRequired, Syntax: "PORT h1,h2,h3,h4,p1,p2", Help: "Port mode: the server connects to this address for the next transfer.", RFC: "RFC 959", fn: (*session).cmdPORT},
		{Verb: "EPRT", Login: true, quick: true, Arg: argRequired, Feat: "EPRT", Syntax: "EPRT |proto|address|port|", Help: "Port mode for IPv4 (1) or IPv6 (2).", RFC: "RFC 2428", fn: (*session).cmdEPRT},
		{Verb: "PASV", Login: true, quick: true, Arg: argNone, Syntax: "PASV", Help: "Passive mode: the client connects to the address in the reply.", RFC: "RFC 959", fn: (*session).cmdPASV},
		{Verb: "EPSV", Login: true, quick: true, Arg: argOptional, Feat: "EPSV", Syntax: "EPSV [1|2|ALL]", Help: "Extended passive mode; ALL refuses other data commands from then on.", RFC: "RFC 2428", fn: (*session).cmdEPSV},
		{Verb: "TYPE", Login: true, quick: true, Arg: argRequired, Syntax: "TYPE A [N] | I | L 8", Help: "Set the transfer type: ASCII (CRLF conversion, the default) or image (binary).", RFC: "RFC 959", fn: (*session).cmdTYPE},
		{Verb: "STRU", Login: true, quick: true, Arg: argRequired, Syntax: "STRU F", Help: "File structure; only F is supported.", RFC: "RFC 959", fn: (*session).cmdSTRU},
		{Verb: "MODE", Login: true, quick: true, Arg: argRequired, Syntax: "MODE S", Help: "Transfer mode; only stream (S) is supported.", RFC: "RFC 959", fn: (*session).cmdMODE},

		// Service commands (RFC 959 §4.1.3).
		{Verb: "RETR", Login: true, Arg: argRequired, Syntax: "RETR path", Help: "Download a file (from the REST offset).", RFC: "RFC 959", fn: (*session).cmdRETR},
		{Verb: "STOR", Login: true, Arg: argRequired, Syntax: "STOR path", Help: "Upload a file; it replaces the old one atomically when complete.", RFC: "RFC 959", fn: func(s *session, a string) { s.store("STOR", a, storage.Truncate) }},
		{Verb: "STOU", Login: true, Arg: argOptional, Syntax: "STOU [name]", Help: "Upload to a new unique name, given in the 150 reply.", RFC: "RFC 959", fn: func(s *session, a string) { s.store("STOU", a, storage.Exclusive) }},
		{Verb: "APPE", Login: true, Arg: argRequired, Syntax: "APPE path", Help: "Append to a file, creating it if needed.", RFC: "RFC 959", fn: func(s *session, a string) { s.store("APPE", a, storage.Append) }},
		{Verb: "ALLO", Login: true, Arg: argOptional, Syntax: "ALLO size", Help: "No allocation is needed (202), unless the size would pass the user's quota (552).", RFC: "RFC 959", fn: (*session).cmdALLO},
		{Verb: "REST", Login: true, quick: true, Arg: argRequired, Feat: "REST STREAM", Syntax: "REST offset", Help: "Start the next RETR or STOR at this byte offset.", RFC: "RFC 3659", fn: (*session).cmdREST},
		{Verb: "RNFR", Login: true, Arg: argRequired, Syntax: "RNFR path", Help: "Name the file to rename; RNTO must follow.", RFC: "RFC 959", fn: (*session).cmdRNFR},
		{Verb: "RNTO", Login: true, Arg: argRequired, Syntax: "RNTO path", Help: "Rename the file named by RNFR.", RFC: "RFC 959", fn: (*session).cmdRNTO},
		{Verb: "ABOR", Login: true, Arg: argNone, DuringTransfer: true, Syntax: "ABOR", Help: "Abort the running transfer.", RFC: "RFC 959", fn: (*session).cmdABOR},
		{Verb: "DELE", Login: true, Arg: argRequired, Syntax: "DELE path", Help: "Delete a file.", RFC: "RFC 959", fn: (*session).cmdDELE},
		{Verb: "RMD", Login: true, Arg: argRequired, Syntax: "RMD path", Help: "Remove an empty directory.", RFC: "RFC 959", fn: (*session).cmdRMD},
		{Verb: "XRMD", Login: true, Arg: argRequired, Syntax: "XRMD path", Help: "Same as RMD.", RFC: "RFC 775", fn: (*session).cmdRMD},
		{Verb: "MKD", Login: true, Arg: argRequired, Syntax: "MKD path", Help: "Make a directory.", RFC: "RFC 959", fn: (*session).cmdMKD},
		{Verb: "XMKD", Login: true, Arg: argRequired, Syntax: "XMKD path", Help: "Same as MKD.", RFC: "RFC 775", fn: (*session).cmdMKD},
		{Verb: "PWD", Login: true, Arg: argNone, Syntax: "PWD", Help: "Print the working directory.", RFC: "RFC 959", fn: (*session).cmdPWD},
		{Verb: "XPWD", Login: true, Arg: argNone, Syntax: "XPWD", Help: "Same as PWD.", RFC: "RFC 775", fn: (*session).cmdPWD},
		{Verb: "LIST", Login: true, Arg: argOptional, Syntax: "LIST [-options] [path|pattern]", Help: "List a directory in ls -l format over the data connection.", RFC: "RFC 959", fn: func(s *session, a string) { s.cmdList("LIST", listLong, a) }},
		{Verb: "NLST", Login: true, Arg: argOptional, Syntax: "NLST [path|pattern]", Help: "List names only, usable as RETR arguments.", RFC: "RFC 959", fn: func(s *session, a string) { s.cmdList("NLST", listNames, a) }},
		{Verb: "MLSD", Login: true, Arg: argOptional, Syntax: "MLSD [path]", Help: "List a directory with machine-readable facts.", RFC: "RFC 3659", fn: func(s *session, a string) { s.cmdList("MLSD", listFacts, a) }},
		{Verb: "MLST", Login: true, Arg: argOptional, Feat: ftp.FeatMLST(ftp.AllFacts), Syntax: "MLST [path]", Help: "Facts of one file, on the control connection.", RFC: "RFC 3659", fn: (*session).cmdMLST},
		{Verb: "SITE", Login: true, Arg: argRequired, Syntax: "SITE HELP | CHMOD mode path", Help: "Site-specific commands.", RFC: "RFC 959", fn: (*session).cmdSITE},
		{Verb: "SYST", Arg: argNone, Syntax: "SYST", Help: "Name the system type.", RFC: "RFC 959", fn: func(s *session, _ string) { s.reply(ftp.CodeSystemType, "UNIX Type: L8") }},
		{Verb: "STAT", Arg: argOptional, DuringTransfer: true, Syntax: "STAT [path]", Help: "Server status, transfer progress, or a listing on the control connection.", RFC: "RFC 959", fn: (*session).cmdSTAT},
		{Verb: "HELP", Arg: argOptional, Syntax: "HELP [command]", Help: "List the commands, or explain one.", RFC: "RFC 959", fn: (*session).cmdHELP},
		{Verb: "NOOP", Arg: argNone, DuringTransfer: true, Syntax: "NOOP", Help: "Do nothing (keep-alive).", RFC: "RFC 959", fn: func(s *session, _ string) { s.reply(ftp.CodeOK, "NOOP ok.") }},

		// Extensions.
		{Verb: "FEAT", Arg: argNone, Syntax: "FEAT", Help: "List the extensions supported.", RFC: "RFC 2389", fn: (*session).cmdFEAT},
		{Verb: "OPTS", Arg: argRequired, Syntax: "OPTS UTF8 ON | MLST facts | HASH algorithm", Help: "Set options of a command.", RFC: "RFC 2389", fn: (*session).cmdOPTS},
		{Verb: "LANG", Arg: argOptional, Syntax: "LANG [tag]", Help: "Languages other than English are not implemented (502).", RFC: "RFC 2640", fn: notImplemented},
		{Verb: "SIZE", Login: true, Arg: argRequired, Feat: "SIZE", Syntax: "SIZE path", Help: "Size of a file in bytes, as stored.", RFC: "RFC 3659", fn: (*session).cmdSIZE},
		{Verb: "MDTM", Login: true, Arg: argRequired, Feat: "MDTM", Syntax: "MDTM path", Help: "Modification time of a file (UTC).", RFC: "RFC 3659", fn: (*session).cmdMDTM},
		{Verb: "MFMT", Login: true, Arg: argRequired, Feat: "MFMT", Syntax: "MFMT YYYYMMDDHHMMSS path", Help: "Set the modification time of a file.", RFC: "draft-somers-ftp-mfxx", fn: (*session).cmdMFMT},
		{Verb: "MFCT", Login: true, Arg: argRequired, Syntax: "MFCT time path", Help: "Setting creation times is not implemented (502).", RFC: "draft-somers-ftp-mfxx", fn: notImplemented},
		{Verb: "MFF", Login: true, Arg: argRequired, Syntax: "MFF facts path", Help: "Setting facts is not implemented (502); use MFMT.", RFC: "draft-somers-ftp-mfxx", fn: notImplemented},
		{Verb: "HASH", Login: true, Arg: argRequired, Feat: "HASH SHA-256*;SHA-512;SHA-1;MD5;CRC32", Syntax: "HASH path", Help: "Hash of a file with the algorithm chosen by OPTS HASH.", RFC: "draft-bryan-ftp-hash", fn: (*session).cmdHASH},
		{Verb: "XCRC", Login: true, Arg: argRequired, Feat: "XCRC", Syntax: "XCRC path [start [end]]", Help: "CRC-32 of a file or a range of it.", RFC: "de facto", fn: xhash("CRC32")},
		{Verb: "XMD5", Login: true, Arg: argRequired, Feat: "XMD5", Syntax: "XMD5 path [start [end]]", Help: "MD5 of a file or a range of it.", RFC: "de facto", fn: xhash("MD5")},
		{Verb: "XSHA1", Login: true, Arg: argRequired, Feat: "XSHA1", Syntax: "XSHA1 path [start [end]]", Help: "SHA-1 of a file or a range of it.", RFC: "de facto", fn: xhash("SHA-1")},
		{Verb: "XSHA256", Login: true, Arg: argRequired, Feat: "XSHA256", Syntax: "XSHA256 path [start [end]]", Help: "SHA-256 of a file or a range of it.", RFC: "de facto", fn: xhash("SHA-256")},
		{Verb: "XSHA512", Login: true, Arg: argRequired, Feat: "XSHA512", Syntax: "XSHA512 path [start [end]]", Help: "SHA-512 of a file or a range of it.", RFC: "de facto", fn: xhash("SHA-512")},
		{Verb: "AVBL", Login: true, Arg: argOptional, Feat: "AVBL", Syntax: "AVBL [path]", Help: "Bytes available for uploads.", RFC: "de facto", fn: (*session).cmdAVBL},
		{Verb: "CLNT", Arg: argRequired, Feat: "CLNT", Syntax: "CLNT name", Help: "Name the client software (logged).", RFC: "de facto", fn: (*session).cmdCLNT},
	}
	commands = make(map[string]*Command, len(table))
	for i := range table {
		commands[table[i].Verb] = &table[i]
	}
}

// Extra FEAT lines of features that are not a command of their own.
var extraFeat = []string{"TVFS", "UTF8"}

// commands indexes table by verb.
var commands map[string]*Command

func notImplemented(s *session, _ string) {
	s.reply(ftp.CodeNotImplemented, "Command not implemented.")
}

// featLines returns the FEAT lines for this session.
func (s *session) featLines() []string {
	var lines []string
	for _, c := range table {
		switch {
		case c.Verb == "MLST":
			lines = append(lines, ftp.FeatMLST(s.facts))
		case c.Verb == "HASH":
			lines = append(lines, hashFeat(s.hashAlg))
		case c.Verb == "CCC":
			if s.srv.tlsOn() && s.srv.o().AllowCCC {
				lines = append(lines, c.Feat)
			}
		case c.Verb == "AUTH" || c.Verb == "PBSZ" || c.Verb == "PROT":
			if s.srv.tlsOn() {
				lines = append(lines, c.Feat)
			}
		case c.Feat != "":
			lines = append(lines, c.Feat)
		}
	}
	lines = append(lines, extraFeat...)
	sort.Strings(lines)
	return lines
}

func (s *session) cmdFEAT(string) {
	var sb strings.Builder
	sb.WriteString("Features:\n")
	for _, l := range s.featLines() {
		sb.WriteString(" ")
		sb.WriteString(l)
		sb.WriteString("\n")
	}
	sb.WriteString("End")
	s.reply(ftp.CodeSystemStatus, sb.String())
}

func (s *session) cmdHELP(arg string) {
	if arg != "" {
		verb := strings.ToUpper(strings.TrimSpace(arg))
		if c, ok := commands[verb]; ok {
			s.replyf(ftp.CodeHelp, "Syntax: %s\n%s", c.Syntax, c.Help)
			return
		}
		s.replyf(ftp.CodeNotImplemented, "Unknown command %s.", quoteName(verb))
		return
	}
	var sb strings.Builder
	sb.WriteString("The following commands are recognized:\n")
	for i, c := range table {
		if i%8 == 0 {
			if i > 0 {
				sb.WriteString("\n")
			}
			sb.WriteString(" ")
		}
		fmt.Fprintf(&sb, " %-7s", c.Verb)
	}
	sb.WriteString("\nHelp OK.")
	s.reply(ftp.CodeHelp, sb.String())
}

// --- Access control ---

func (s *session) cmdUSER(arg string) {
	if s.loginNeedsTLS() {
		return
	}
	if s.acct != nil {
		s.reply(ftp.CodeNotLoggedIn, "Already logged in; use REIN to change user.")
		return
	}
	s.user = arg
	if s.certUser() != "" && s.certUser() == arg {
		// RFC 2228: a verified client certificate naming the user can be
		// the whole login (232), for accounts that allow it.
		if ca, ok := s.srv.Auth.(auth.CertAuthenticator); ok {
			if acct, err := ca.AuthenticateCert(s.ctx(), connInfo(s), arg); err == nil {
				s.user = ""
				s.loggedIn(acct, ftp.CodeLoggedInBySecurity, "Logged in by TLS client certificate.")
				return
			}
		}
	}
	if auth.IsAnonymous(arg) {
		s.reply(ftp.CodeNeedPassword, "Anonymous login: send your e-mail address as password.")
		return
	}
	// Always 331, known user or not: no user enumeration.
	s.reply(ftp.CodeNeedPassword, "Password required.")
}

func (s *session) cmdPASS(arg string) {
	if s.loginNeedsTLS() {
		return
	}
	if s.acct != nil {
		s.reply(ftp.CodeSuperfluous, "Already logged in.")
		return
	}
	if s.user == "" {
		s.reply(ftp.CodeBadSequence, "Log in with USER first.")
		return
	}
	user := s.user
	s.user = ""
	ci := connInfo(s)
	// A verification waits its turn among the hashes running (argon2id
	// takes 19 MiB each) no longer than the login timeout.
	ctx, cancel := context.WithDeadline(s.ctx(), s.start.Add(s.srv.loginTimeout()))
	acct, err := s.srv.Auth.Authenticate(ctx, ci, user, arg)
	cut := ctx.Err() != nil // the login timeout or the session's end
	cancel()
	if err != nil {
		s.loginFails++
		banned := false
		if errors.Is(err, auth.ErrBadCredentials) {
			reason := "bad credentials"
			if err == auth.ErrBadCredentials {
				s.log().Warn("login failed", "user", user, "attempt", s.loginFails)
			} else { // the password was right, an account rule refused
				reason = err.Error()
				s.log().Warn("login failed", "user", user, "attempt", s.loginFails, "reason", reason)
			}
			s.act(Action{Kind: ActionLoginFailed, User: user, Reason: reason})
			banned = s.srv.def.Record(s.remote.Addr(), defender.LoginFailed)
		} else {
			// Not the client's fault (a home that cannot be opened, an
			// object store or user store that is down): the administrator
			// needs the cause, the client a 421 to try again later.
			s.log().Error("login failed", "user", user, "attempt", s.loginFails, "err", err)
			if !cut {
				s.end("Service not available: the account's files cannot be opened now; try again later", "storage unavailable")
				return
			}
		}
		if d := s.srv.loginFailDelay(); d > 0 {
			time.Sleep(d)
		}
		if banned {
			s.end("Too many errors from your address", "banned")
			return
		}
		if int(s.loginFails) >= s.srv.o().MaxLoginAttempts {
			s.end("Too many failed logins", "too many failed logins")
			return
		}
		s.reply(ftp.CodeNotLoggedIn, "Login incorrect.")
		return
	}
	if acct.Perms.TLSRequired && !s.tls {
		s.log().Warn("login refused: the account requires TLS", "user", acct.User)
		s.act(Action{Kind: ActionLoginFailed, User: acct.User, Reason: "the account requires TLS"})
		s.reply(ftp.CodeNotLoggedIn, "This account requires TLS: send AUTH TLS first (and change the password: it crossed the network in the clear).")
		return
	}
	if acct.Perms.ClientCert == auth.CertRequired && s.certUser() != acct.User {
		s.log().Warn("login refused: the account requires its TLS client certificate", "user", acct.User)
		s.act(Action{Kind: ActionLoginFailed, User: acct.User, Reason: "the account requires its TLS client certificate"})
		s.reply(ftp.CodeNotLoggedIn, "This account requires its TLS client certificate.")
		return
	}
	s.loggedIn(acct, ftp.CodeLoggedIn, "Login successful.")
}

func (s *session) loggedIn(acct *auth.Account, code int, msg string) {
	if !s.srv.admitUser(s, acct.User) {
		s.log().Warn("login refused", "user", acct.User, "reason", "max sessions per user")
		s.act(Action{Kind: ActionLoginFailed, User: acct.User, Reason: "max sessions per user"})
		s.end("Too many sessions for this user", "max sessions per user")
		return
	}
	if !s.openShared(acct.User) {
		s.srv.releaseUser(s)
		s.log().Warn("login refused", "user", acct.User, "reason", "max sessions per user, on every server")
		s.act(Action{Kind: ActionLoginFailed, User: acct.User, Reason: "max sessions per user"})
		s.end("Too many sessions for this user", "max sessions per user")
		return
	}
	s.acct = acct
	s.cwd = "/"
	s.hook.user.Store(&acct.User)
	s.log().Info("login", "user", acct.User, "by", map[bool]string{true: "certificate", false: "password"}[code == ftp.CodeLoggedInBySecurity])
	s.reply(code, msg)
	s.act(Action{Kind: ActionLogin})
	s.state(StateLoggedIn)
}

func (s *session) cmdREIN(string) {
	s.srv.releaseUser(s)
	s.closeShared()
	s.acct = nil
	s.hook.user.Store(nil)
	s.user = ""
	s.host = ""
	s.cwd = "/"
	s.binary = false // RFC 959 5.1: the default type is ASCII
	s.rest = 0
	s.epsvAll = false
	s.closePassive()
	s.active = netip.AddrPort{}
	s.reply(ftp.CodeServiceReady, "Service ready for new user.")
}

func (s *session) cmdQUIT(string) {
	s.reply(ftp.CodeClosing, "Goodbye.")
	s.closing = true
	s.closeMsg = "quit"
}

func (s *session) cmdHOST(arg string) {
	if s.acct != nil || s.user != "" {
		s.reply(ftp.CodeBadSequence, "HOST must come before USER.")
		return
	}
	if s.sni() != "" && !strings.EqualFold(s.sni(), arg) {
		s.reply(ftp.CodeParamNotImpl, "HOST does not match the TLS server name.")
		return
	}
	if len(s.srv.o().Hosts) > 0 {
		found := false
		for _, h := range s.srv.o().Hosts {
			if strings.EqualFold(h, arg) {
				found = true
			}
		}
		if !found {
			s.reply(ftp.CodeParamNotImpl, "Unknown virtual host.")
			return
		}
	}
	s.host = arg
	s.reply(ftp.CodeServiceReady, "Host accepted.")
}

// --- Parameters ---

func (s *session) cmdTYPE(arg string) {
	switch strings.ToUpper(strings.Join(strings.Fields(arg), " ")) {
	case "A", "A N":
		s.binary = false
		s.reply(ftp.CodeOK, "Type set to A.")
	case "I", "L 8":
		s.binary = true
		s.reply(ftp.CodeOK, "Type set to I.")
	case "A T", "A C", "E", "E N", "E T", "E C", "L 16", "L 32", "L 36":
		s.reply(ftp.CodeParamNotImpl, "Type not supported; use A or I.")
	default:
		s.reply(ftp.CodeBadArguments, "Unknown type; use A or I.")
	}
}

func (s *session) cmdSTRU(arg string) {
	switch strings.ToUpper(arg) {
	case "F":
		s.reply(ftp.CodeOK, "Structure set to F.")
	case "R", "P":
		s.reply(ftp.CodeParamNotImpl, "Only file structure (F) is supported.")
	default:
		s.reply(ftp.CodeBadArguments, "Unknown structure.")
	}
}

func (s *session) cmdMODE(arg string) {
	switch strings.ToUpper(arg) {
	case "S":
		s.reply(ftp.CodeOK, "Mode set to S.")
	case "B", "C", "Z":
		s.reply(ftp.CodeParamNotImpl, "Only stream mode (S) is supported.")
	default:
		s.reply(ftp.CodeBadArguments, "Unknown mode.")
	}
}

func (s *session) cmdREST(arg string) {
	var off int64
	if len(arg) > 19 {
		s.reply(ftp.CodeBadArguments, "REST offset out of range.")
		return
	}
	for i := 0; i < len(arg); i++ {
		c := arg[i]
		if c < '0' || c > '9' {
			s.reply(ftp.CodeBadArguments, "REST needs a non-negative byte offset.")
			return
		}
		off = off*10 + int64(c-'0')
		if off < 0 {
			s.reply(ftp.CodeBadArguments, "REST offset out of range.")
			return
		}
	}
	s.rest = off
	s.replyf(ftp.CodePending, "Restarting at %d. Send STOR or RETR.", off)
}

// --- File actions ---

func (s *session) cmdCWD(arg string) {
	vpath, name, ok := s.resolve(arg)
	if !ok {
		return
	}
	fi, err := s.acct.FS.Stat(s.ctx(), name)
	if err != nil {
		s.fail(err, "CWD")
		return
	}
	if !fi.IsDir() {
		s.reply(ftp.CodeNoFile, "Not a directory.")
		return
	}
	s.cwd = vpath
	s.reply(ftp.CodeFileActionOK, "Directory changed to "+quoteName(vpath)+".")
}

func (s *session) cmdPWD(string) {
	s.reply(ftp.CodePathCreated, ftp.QuotePath(s.cwd)+" is the current directory.")
}

// change is the shape of every command that changes storage: resolve the
// path, check the permission perm there (the root itself only when root is
// true), run op, and map its error to a reply. It returns the virtual
// path when op succeeded.
func (s *session) change(verb, arg string, root bool, perm auth.Perm, op func(ctx context.Context, name string) error) (string, bool) {
	vpath, name, ok := s.resolve(arg)
	if !ok || !s.may(perm, vpath) {
		return "", false
	}
	if name == "." && !root {
		s.reply(ftp.CodeNoFile, "Permission denied.")
		return "", false
	}
	if err := op(s.ctx(), name); err != nil {
		s.fail(err, verb)
		return "", false
	}
	return vpath, true
}

// stat is the shape of every command that reads an entry: resolve the
// path, stat it, and map its error to a reply.
func (s *session) stat(verb, arg string) (vpath, name string, fi fs.FileInfo, ok bool) {
	if vpath, name, ok = s.resolve(arg); !ok {
		return "", "", nil, false
	}
	fi, err := s.acct.FS.Stat(s.ctx(), name)
	if err != nil {
		s.fail(err, verb)
		return "", "", nil, false
	}
	return vpath, name, fi, true
}

// capability returns the account's storage as the optional interface T,
// or replies 502 when the backend has no such capability.
func capability[T any](s *session) (T, bool) {
	c, ok := s.acct.FS.(T)
	if !ok {
		s.reply(ftp.CodeNotImplemented, "Not supported by this storage.")
	}
	return c, ok
}

func (s *session) cmdMKD(arg string) {
	if vpath, ok := s.change("MKD", arg, true, auth.PermMkdir, s.acct.FS.Mkdir); ok {
		s.reply(ftp.CodePathCreated, ftp.QuotePath(vpath)+" created.")
		s.act(Action{Kind: ActionMkdir, Path: vpath})
	}
}

func (s *session) cmdRMD(arg string) {
	if vpath, ok := s.change("RMD", arg, false, auth.PermDelete, s.acct.FS.RemoveDir); ok {
		s.reply(ftp.CodeFileActionOK, "Directory removed.")
		s.act(Action{Kind: ActionRmdir, Path: vpath})
	}
}

func (s *session) cmdDELE(arg string) {
	if vpath, ok := s.change("DELE", arg, true, auth.PermDelete, s.acct.FS.Remove); ok {
		s.reply(ftp.CodeFileActionOK, "File deleted.")
		s.act(Action{Kind: ActionDelete, Path: vpath})
	}
}

func (s *session) cmdRNFR(arg string) {
	vpath, ok := s.change("RNFR", arg, false, auth.PermRename, func(ctx context.Context, name string) error {
		_, err := s.acct.FS.Stat(ctx, name)
		return err
	})
	if !ok {
		return
	}
	s.rest = 0
	s.rnfr = vpath
	s.reply(ftp.CodePending, "Ready for RNTO.")
}

func (s *session) cmdRNTO(arg string) {
	from := s.rnfr
	s.rnfr = ""
	if from == "" {
		s.reply(ftp.CodeBadSequence, "RNFR required first.")
		return
	}
	to, ok := s.change("RNTO", arg, true, auth.PermRename, func(ctx context.Context, name string) error {
		if fi, err := s.acct.FS.Stat(ctx, name); err == nil && !fi.IsDir() && s.acct.Perms.At(path.Join("/", name))&auth.PermOverwrite == 0 {
			return fs.ErrPermission // replacing a file is overwriting it
		}
		return s.acct.FS.Rename(ctx, strings.TrimPrefix(from, "/"), name)
	})
	if ok {
		s.reply(ftp.CodeFileActionOK, "Rename successful.")
		s.act(Action{Kind: ActionRename, Path: from, To: to})
	}
}

func (s *session) cmdABOR(string) {
	x := s.transfer()
	if x == nil {
		s.closePassive()
		s.active = netip.AddrPort{}
		s.reply(ftp.CodeDataOpenNoTransfer, "No transfer to abort.")
		return
	}
	s.abortTransfer(x)
	<-x.done // the transfer answers 426 first
	s.reply(ftp.CodeClosingData, "ABOR command successful.")
}

func (s *session) cmdSIZE(arg string) {
	_, name, ok := s.resolve(arg)
	if !ok {
		return
	}
	fi, err := s.acct.FS.Stat(s.ctx(), name)
	if errors.Is(err, fs.ErrNotExist) {
		// No file yet, but the kept part of an interrupted upload: its
		// size is where a client's REST + STOR resumes (lftp put -c).
		if p, ok := s.acct.FS.(storage.PartialSizer); ok {
			if n, perr := p.PartialSize(s.ctx(), name); perr == nil {
				s.replyf(ftp.CodeFileStatus, "%d", n)
				return
			}
		}
	}
	if err != nil {
		s.fail(err, "SIZE")
		return
	}
	if !fi.Mode().IsRegular() {
		s.reply(ftp.CodeNoFile, "Not a plain file.")
		return
	}
	s.replyf(ftp.CodeFileStatus, "%d", fi.Size())
}

func (s *session) cmdMDTM(arg string) {
	// The old two-argument form "MDTM time path" sets the time.
	if t, rest, ok := strings.Cut(arg, " "); ok && len(t) >= 14 {
		if _, err := ftp.ParseTime(t); err == nil {
			s.cmdMFMT(t + " " + rest)
			return
		}
	}
	if _, _, fi, ok := s.stat("MDTM", arg); ok {
		s.reply(ftp.CodeFileStatus, string(ftp.AppendTime(nil, fi.ModTime())))
	}
}

func (s *session) cmdMFMT(arg string) {
	ts, p, ok := strings.Cut(arg, " ")
	if !ok || p == "" {
		s.reply(ftp.CodeBadArguments, "Syntax: MFMT YYYYMMDDHHMMSS path.")
		return
	}
	t, err := ftp.ParseTime(ts)
	if err != nil {
		s.reply(ftp.CodeBadArguments, "Malformed time, want YYYYMMDDHHMMSS.")
		return
	}
	ch, ok := capability[storage.Chtimeser](s)
	if !ok {
		return
	}
	_, ok = s.change("MFMT", p, true, auth.PermOverwrite, func(ctx context.Context, name string) error { return ch.Chtimes(ctx, name, t) })
	if !ok {
		return
	}
	s.replyf(ftp.CodeFileStatus, "Modify=%s; %s", ts, quoteName(p))
}

func (s *session) cmdMLST(arg string) {
	vpath, _, fi, ok := s.stat("MLST", arg)
	if !ok || !s.may(auth.PermList, vpath) {
		return
	}
	line, ok := ftp.AppendFacts(nil, entryFor(vpath, vpath, fi, s.acct.Perms), s.facts)
	if !ok {
		s.reply(ftp.CodeNoFile, "Name cannot be represented.")
		return
	}
	s.reply(ftp.CodeFileActionOK, "Listing "+quoteName(vpath)+"\n "+strings.TrimRight(string(line), "\r\n")+"\nEnd")
}

// cmdALLO answers 202, or 552 when an upload of that size would pass the
// account's quota (a storage with limits.Allocator).
func (s *session) cmdALLO(arg string) {
	size, _, _ := strings.Cut(strings.TrimSpace(arg), " ") // "ALLO n [R m]"
	n, err := strconv.ParseInt(size, 10, 64)
	if a, ok := s.acct.FS.(limits.Allocator); ok && err == nil {
		if err := a.Allocate(s.ctx(), n); err != nil {
			s.fail(err, "ALLO")
			return
		}
	}
	s.reply(ftp.CodeSuperfluous, "ALLO not needed.")
}

func (s *session) cmdAVBL(arg string) {
	_, name, ok := s.resolve(arg)
	if !ok {
		return
	}
	sr, ok := capability[storage.SpaceReporter](s)
	if !ok {
		return
	}
	n, err := sr.Available(s.ctx(), name)
	if err != nil {
		s.fail(err, "AVBL")
		return
	}
	s.replyf(ftp.CodeFileStatus, "%d", n)
}

func (s *session) cmdCLNT(arg string) {
	s.log().Info("client", "name", arg)
	s.reply(ftp.CodeOK, "Noted.")
}

func (s *session) cmdOPTS(arg string) {
	opt, val, _ := strings.Cut(arg, " ")
	switch strings.ToUpper(opt) {
	case "UTF8", "UTF-8":
		switch strings.ToUpper(strings.TrimSpace(val)) {
		case "ON", "":
			s.reply(ftp.CodeOK, "UTF8 mode on.")
		case "OFF":
			s.reply(ftp.CodeOK, "Names are always UTF-8.")
		default:
			s.reply(ftp.CodeBadArguments, "OPTS UTF8 takes ON or OFF.")
		}
	case "MLST":
		facts, text := ftp.ParseOptsMLST(strings.TrimSpace(val))
		s.facts = facts
		s.reply(ftp.CodeOK, "MLST OPTS "+text)
	case "HASH":
		if val == "" {
			s.reply(ftp.CodeOK, s.hashAlg)
			return
		}
		alg := strings.ToUpper(strings.TrimSpace(val))
		if ftp.NewHash(alg) == nil {
			s.reply(ftp.CodeBadArguments, "Unknown algorithm; see FEAT.")
			return
		}
		s.hashAlg = alg
		s.reply(ftp.CodeOK, alg)
	default:
		s.reply(ftp.CodeBadArguments, "Option not understood.")
	}
}

func (s *session) cmdSITE(arg string) {
	sub, rest, _ := strings.Cut(arg, " ")
	switch strings.ToUpper(sub) {
	case "HELP":
		s.reply(ftp.CodeHelp, "SITE commands:\n CHMOD mode path\n HELP\nEnd")
	case "CHMOD":
		m, p, ok := strings.Cut(strings.TrimLeft(rest, " "), " ")
		var mode uint32
		if _, err := fmt.Sscanf(m, "%o", &mode); !ok || err != nil || mode > 0o777 || p == "" {
			s.reply(ftp.CodeBadArguments, "Syntax: SITE CHMOD mode path (mode in octal, at most 777).")
			return
		}
		vpath, name, ok := s.resolve(p)
		if !ok || !s.may(auth.PermOverwrite, vpath) {
			return
		}
		ch, ok := s.acct.FS.(storage.Chmoder)
		if !ok {
			s.reply(ftp.CodeNotImplemented, "Not supported by this storage.")
			return
		}
		if err := ch.Chmod(s.ctx(), name, fs.FileMode(mode)); err != nil {
			s.fail(err, "SITE CHMOD")
			return
		}
		s.reply(ftp.CodeOK, "SITE CHMOD command successful.")
	default:
		s.reply(ftp.CodeParamNotImpl, "Unknown SITE command; try SITE HELP.")
	}
}

func (s *session) cmdSTAT(arg string) {
	if x := s.transfer(); x != nil {
		s.replyf(ftp.CodeSystemStatus, "Transfer in progress: %s %s\n%d bytes transferred\nEnd of status", x.verb, quoteName(x.path), x.bytes.Load())
		return
	}
	if s.acct == nil {
		if arg != "" {
			s.reply(ftp.CodeNotLoggedIn, "Please log in with USER and PASS first.")
			return
		}
		s.reply(ftp.CodeSystemStatus, "Ferry FTP server status:\n Not logged in\nEnd of status")
		return
	}
	if arg == "" {
		mode := "none"
		switch {
		case s.pasv != nil:
			mode = "passive"
		case s.active.IsValid():
			mode = "port"
		}
		s.replyf(ftp.CodeSystemStatus, "Ferry FTP server status:\n Connected to %s\n Logged in as %s\n TYPE: %s, STRUcture: File, MODE: Stream\n Data connection: %s\nEnd of status",
			s.remote.Addr(), quoteName(s.acct.User), s.typeName(), mode)
		return
	}
	s.statList(parseListArg(arg))
}

// statList sends a LIST of arg over the control connection (213).
func (s *session) statList(arg string) {
	_, name, ok := s.resolve(arg)
	if !ok {
		return
	}
	ctx := s.ctx()
	fi, err := s.acct.FS.Stat(ctx, name)
	if err != nil {
		s.fail(err, "STAT")
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b := []byte("213-Status of " + quoteName(arg) + ":\r\n")
	now := time.Now()
	flush := func() bool {
		if len(b) < 32<<10 {
			return true
		}
		_, err := s.conn.Write(b)
		b = b[:0]
		return err == nil
	}
	if !fi.IsDir() {
		b = append(b, ' ')
		b, _ = ftp.AppendListLine(b, fi.Name(), fi, now)
	} else {
		for ent, err := range s.acct.FS.ReadDir(ctx, name) {
			if err != nil {
				break
			}
			b = append(b, ' ')
			var ok bool
			if b, ok = ftp.AppendListLine(b, ent.Name(), ent, now); !ok {
				b = b[:len(b)-1]
			}
			if !flush() {
				return
			}
		}
	}
	b = append(b, "213 End of status.\r\n"...)
	s.conn.Write(b)
}
