package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftp"
)

// Exit codes of the client commands, for scripts.
const (
	exitOK       = 0
	exitFailed   = 1 // the server refused, or a local file failed
	exitUsage    = 2
	exitNetwork  = 3 // could not connect, or the connection broke
	exitLogin    = 4 // the login was refused
	exitVerify   = 5 // the copy differs from the original
	exitPartial  = 6 // mirror: some files failed, the others were copied
	exitCanceled = 130
)

// clientCommands are the client's commands: each with its usage, what it
// does, the flags of its own (beside the connection flags every command
// takes), how many arguments it takes, and what runs it.
var clientCommands = []clientCommand{
	{"ls", "ls URL", "list a directory (or describe a file)", nil, 1, 1,
		func(ctx context.Context, fl *clientFlags, pos []string, out *output) error {
			return cmdLs(ctx, fl, pos[0], out)
		}},
	{"get", "get URL [LOCAL]", `download a file ("-" for standard output)`, []string{"continue", "verify"}, 1, 2,
		func(ctx context.Context, fl *clientFlags, pos []string, out *output) error {
			return cmdGet(ctx, fl, pos[0], strings.Join(pos[1:], ""), out)
		}},
	{"put", "put LOCAL URL", "upload a file (URL ending in / is a directory)", []string{"continue", "verify"}, 2, 2,
		func(ctx context.Context, fl *clientFlags, pos []string, out *output) error {
			return cmdPut(ctx, fl, pos[0], pos[1], out)
		}},
	{"cat", "cat URL", "print a file", nil, 1, 1,
		func(ctx context.Context, fl *clientFlags, pos []string, out *output) error {
			return cmdGet(ctx, fl, pos[0], "-", out)
		}},
	{"rm", "rm [-r] URL...", "delete files (-r: directories too)", []string{"r"}, 1, -1,
		func(ctx context.Context, fl *clientFlags, pos []string, out *output) error {
			return forEach(pos, func(u string) error { return cmdRemove(ctx, fl, u, false) })
		}},
	{"mkdir", "mkdir [-p] URL...", "make a directory (-p: and its parents)", []string{"p"}, 1, -1,
		func(ctx context.Context, fl *clientFlags, pos []string, out *output) error {
			return forEach(pos, func(u string) error { return cmdMkdir(ctx, fl, u) })
		}},
	{"rmdir", "rmdir [-r] URL...", "remove an empty directory (-r: and its contents)", []string{"r"}, 1, -1,
		func(ctx context.Context, fl *clientFlags, pos []string, out *output) error {
			return forEach(pos, func(u string) error { return cmdRemove(ctx, fl, u, true) })
		}},
	{"mv", "mv URL NEWPATH", `rename (NEWPATH without "/" stays in the same directory)`, nil, 2, 2,
		func(ctx context.Context, fl *clientFlags, pos []string, out *output) error {
			return cmdMv(ctx, fl, pos[0], pos[1])
		}},
	{"mirror", "mirror SRC DST", "copy what changed from SRC into DST; one is a URL", []string{"parallel", "delete", "continue", "verify"}, 2, 2,
		func(ctx context.Context, fl *clientFlags, pos []string, out *output) error {
			return cmdMirror(ctx, fl, pos[0], pos[1], out)
		}},
	{"cp", "cp SRC_URL DST_URL", "copy between servers (FXP, else through ferry)", []string{"no-relay", "no-fxp"}, 2, 2,
		func(ctx context.Context, fl *clientFlags, pos []string, out *output) error {
			return cmdCp(ctx, fl, pos[0], pos[1], out)
		}},
	{"doctor", "doctor URL", "diagnose a server: passive and active mode, TLS, security, what each client needs", []string{"write", "speed", "json", "from"}, 1, 1,
		func(ctx context.Context, fl *clientFlags, pos []string, out *output) error {
			return cmdDoctor(ctx, fl, pos[0], out)
		}},
	{"hash", "hash [--alg ALG] URL...", "print the server's hash of a file", []string{"alg"}, 1, -1,
		func(ctx context.Context, fl *clientFlags, pos []string, out *output) error {
			return forEach(pos, func(u string) error { return cmdHash(ctx, fl, u, out) })
		}},
}

// clientCommand is one command of the client.
type clientCommand struct {
	name, form, summary string
	extra               []string // its own flags
	min, max            int      // arguments; max -1: any number
	run                 func(ctx context.Context, fl *clientFlags, pos []string, out *output) error
}

func findClientCommand(name string) *clientCommand {
	for i := range clientCommands {
		if clientCommands[i].name == name {
			return &clientCommands[i]
		}
	}
	return nil
}

func isClientCommand(name string) bool { return findClientCommand(name) != nil }

// clientUsage is the client's part of `ferry help`, made from the table.
var clientUsage = func() string {
	var b strings.Builder
	b.WriteString("\nClient commands (URLs: ftp://[user[:password]@]host[:port]/path; ftpes:// for\nexplicit TLS, ftps:// for implicit TLS; ferry help CMD shows a command's flags):\n")
	for _, c := range clientCommands {
		fmt.Fprintf(&b, "  %-35s %s\n", "ferry "+c.form, c.summary)
	}
	b.WriteString(`
Credentials come from the URL, ~/.netrc, FERRY_PASSWORD or a prompt.
Exit codes: 0 ok, 1 refused or failed, 2 usage, 3 network, 4 login refused,
  5 verification failed, 6 mirror partly failed, 130 interrupted.
`)
	return b.String()
}()

type clientFlags struct {
	active, cont, verify, insecure, verbose bool
	parallel                                int
	timeout                                 time.Duration
	recursive, parents, delete              bool
	noRelay, noFXP                          bool
	alg                                     string
	fingerprint, caFile                     string
	certFile, keyFile                       string
	write, from                             string // doctor
	speed, json                             bool   // doctor
}

// flagSet is the command's flags: the connection flags of every command,
// and its own.
func (cmd *clientCommand) flagSet(fl *clientFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("ferry "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&fl.active, "active", false, "active mode: the server connects to the client")
	fs.BoolVar(&fl.insecure, "insecure", false, "accept any TLS certificate (ftpes://, ftps://)")
	fs.StringVar(&fl.fingerprint, "fingerprint", "", "accept only the TLS certificate with this SHA-256 `fingerprint`")
	fs.StringVar(&fl.caFile, "ca-file", "", "PEM `file` of the certificate authorities to trust for TLS")
	fs.StringVar(&fl.certFile, "client-cert", "", "PEM `file` of a TLS client certificate to present")
	fs.StringVar(&fl.keyFile, "client-key", "", "PEM `file` of the client certificate's key")
	fs.BoolVar(&fl.verbose, "v", false, "print the protocol transcript on stderr (password hidden)")
	fs.DurationVar(&fl.timeout, "timeout", 30*time.Second, "connect and reply timeout")
	fl.parallel = 4
	for _, name := range cmd.extra {
		switch name {
		case "continue":
			fs.BoolVar(&fl.cont, "continue", false, "resume a partial transfer")
			fs.BoolVar(&fl.cont, "c", false, "resume a partial transfer (--continue)")
		case "verify":
			fs.BoolVar(&fl.verify, "verify", false, "compare hashes after the transfer (exit 5 on a mismatch)")
		case "parallel":
			fs.IntVar(&fl.parallel, "parallel", 4, "parallel transfers")
			fs.IntVar(&fl.parallel, "P", 4, "parallel transfers (--parallel)")
		case "r":
			fs.BoolVar(&fl.recursive, "r", false, "recursive")
		case "p":
			fs.BoolVar(&fl.parents, "p", false, "make parent directories")
		case "delete":
			fs.BoolVar(&fl.delete, "delete", false, "delete files of the destination that are not in the source")
		case "no-relay":
			fs.BoolVar(&fl.noRelay, "no-relay", false, "fail rather than relay through ferry")
		case "no-fxp":
			fs.BoolVar(&fl.noFXP, "no-fxp", false, "relay through ferry without trying FXP")
		case "write":
			fs.StringVar(&fl.write, "write", "", "doctor: also upload, resume, rename, download, hash and delete a test file in `DIR`")
		case "speed":
			fs.BoolVar(&fl.speed, "speed", false, "doctor: also time 16 MiB up and down (with --write)")
		case "json":
			fs.BoolVar(&fl.json, "json", false, "doctor: print the report as JSON")
		case "from":
			fs.StringVar(&fl.from, "from", "", "doctor: a second local `address` to test data-connection theft from")
		case "alg":
			fs.StringVar(&fl.alg, "alg", "", "hash `algorithm` (SHA-256, SHA-512, SHA-1, MD5, CRC32)")
		}
	}
	return fs
}

// errHelp asks for a command's help (-h, --help).
var errHelp = errors.New("help")

// parseClientFlags parses the command's flags wherever they stand among
// the arguments; a flag of another command is a usage error.
func parseClientFlags(cmd *clientCommand, args []string) (*clientFlags, []string, error) {
	fl := &clientFlags{}
	fs := cmd.flagSet(fl)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, errHelp
			}
			return nil, nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if fl.parallel < 1 {
		fl.parallel = 1
	}
	if len(pos) < cmd.min || (cmd.max >= 0 && len(pos) > cmd.max) {
		return nil, nil, usageError{fmt.Errorf("usage: ferry %s", cmd.form)}
	}
	return fl, pos, nil
}

// commandHelp writes a command's usage and flags (ferry help CMD, ferry
// CMD --help).
func commandHelp(w io.Writer, cmd *clientCommand) {
	fmt.Fprintf(w, "Usage: ferry %s\n\n%s.\n\nFlags:\n", cmd.form, strings.ToUpper(cmd.summary[:1])+cmd.summary[1:])
	fs := cmd.flagSet(&clientFlags{})
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// runClient runs a client command and returns its exit code.
func runClient(name string, args []string, stdout, stderr io.Writer) int {
	cmd := findClientCommand(name)
	fl, pos, err := parseClientFlags(cmd, args)
	if errors.Is(err, errHelp) {
		commandHelp(stdout, cmd)
		return exitOK
	}
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		out := newOutput(stdout)
		err = cmd.run(ctx, fl, pos, out)
		out.wait()
		if ctx.Err() != nil && err != nil {
			fmt.Fprintln(stderr, "ferry: interrupted")
			return exitCanceled
		}
	}
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "ferry %s: %v\n", name, err)
	return exitCode(err)
}

func exitCode(err error) int {
	var ue usageError
	var ce *client.Error
	var ne *client.NetError
	var pe partialError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &pe):
		return exitPartial
	case errors.Is(err, client.ErrVerify):
		return exitVerify
	case errors.As(err, &ce) && ce.Login:
		return exitLogin
	case errors.As(err, &ce):
		if ce.Code == ftp.CodeNotAvailable {
			return exitNetwork
		}
		return exitFailed
	case errors.As(err, &ne), isNetError(err):
		return exitNetwork
	}
	return exitFailed
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

func open(ctx context.Context, fl *clientFlags, u string, conns int) (*remote, *client.Client, error) {
	r, err := parseRemote(u)
	if err != nil {
		return nil, nil, usageError{err}
	}
	c, err := r.dial(ctx, fl, conns)
	if err != nil {
		return nil, nil, err
	}
	return r, c, nil
}

// explain words a failure for a person: what was being done, to which
// file on which server, and what the server said.
func explain(op, what string, err error) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		why := ""
		switch {
		case ce.Login:
			why = "login refused"
		case ce.Code == ftp.CodeNoFile && errors.Is(err, fs.ErrNotExist):
			why = "no such file or directory"
		case ce.Code == ftp.CodeNoFile || ce.Code == ftp.CodeBadFileName && errors.Is(err, fs.ErrPermission):
			why = "permission denied"
		case ce.Code == ftp.CodeBadFileName:
			why = "file name not allowed"
		case ce.Code == ftp.CodeExceededStorage || ce.Code == ftp.CodeInsufficientSpace:
			why = "no space left on the server"
		case ce.Code == ftp.CodeNotAvailable:
			why = "the server closed the connection"
		case ce.Code == ftp.CodeCantOpenData || ce.Code == ftp.CodeTransferAborted:
			why = "the data connection failed"
		case ce.Code == ftp.CodeSyntaxError || ce.Code == ftp.CodeNotImplemented || ce.Code == ftp.CodeParamNotImpl:
			why = "the server does not support " + ce.Cmd
		default:
			why = "refused"
		}
		return &explained{msg: fmt.Sprintf("%s %s: %s (server said: %d %s)", op, what, why, ce.Code, oneLine(ce.Msg)), err: err}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var ne *client.NetError
	if errors.As(err, &ne) {
		// The innermost cause says it best ("connection refused").
		cause := ne.Err
		var se *os.SyscallError
		if errors.As(cause, &se) {
			cause = se.Err
		}
		return &explained{msg: fmt.Sprintf("%s %s: %s: %v", op, what, ne.Op, cause), err: err}
	}
	return &explained{msg: fmt.Sprintf("%s %s: %v", op, what, err), err: err}
}

type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func cmdLs(ctx context.Context, fl *clientFlags, u string, out *output) error {
	r, c, err := open(ctx, fl, u, 1)
	if err != nil {
		return err
	}
	defer c.Close()
	var entries []client.Entry
	e, err := c.Stat(ctx, r.path)
	if err == nil && e.Type != ftp.TypeDir {
		entries = []client.Entry{e}
	} else if entries, err = c.List(ctx, r.path); err != nil {
		return explain("list", r.String(), err)
	}
	for _, e := range entries {
		out.printf("%s\n", formatEntry(e))
	}
	return nil
}

func formatEntry(e client.Entry) string {
	mode := "----------"
	if e.HasMode {
		mode = fs.FileMode(e.Mode).String()
	}
	kind := map[ftp.EntryType]byte{ftp.TypeDir: 'd', ftp.TypeLink: 'l', ftp.TypeOther: '?'}[e.Type]
	if kind == 0 {
		kind = '-'
	}
	mode = string(kind) + mode[1:]
	when := "                "
	if !e.ModTime.IsZero() {
		when = e.ModTime.UTC().Format("2006-01-02 15:04")
	}
	size := "-"
	if e.Size >= 0 {
		size = fmt.Sprint(e.Size)
	}
	name := e.Name
	if e.Type == ftp.TypeDir {
		name += "/"
	}
	if e.Target != "" {
		name += " -> " + e.Target
	}
	return fmt.Sprintf("%s %12s %s %s", mode, size, when, name)
}

func cmdGet(ctx context.Context, fl *clientFlags, u, local string, out *output) error {
	r, c, err := open(ctx, fl, u, 1)
	if err != nil {
		return err
	}
	defer c.Close()
	if local == "-" {
		d, err := c.Retrieve(ctx, r.path, nil)
		if err != nil {
			return explain("download", r.String(), err)
		}
		defer d.Close()
		if _, err := io.Copy(out.data(), d); err != nil {
			return explain("download", r.String(), err)
		}
		return nil
	}
	if local == "" {
		local = path.Base(r.path)
		if local == "." || local == "/" || local == "" {
			return usageError{fmt.Errorf("%s names no file; give a LOCAL name", r)}
		}
	} else if fi, err := os.Stat(local); err == nil && fi.IsDir() {
		local = filepath.Join(local, path.Base(r.path))
	}
	info, err := c.Stat(ctx, r.path)
	if err != nil {
		return explain("download", r.String(), err)
	}
	if info.Type == ftp.TypeDir {
		return fmt.Errorf("download %s: it is a directory (use ferry mirror)", r)
	}
	n, err := download(ctx, c, r.path, info, local, fl, out, r.String())
	if err != nil {
		return err
	}
	_ = n
	return nil
}

// download fetches remote into local through local+".part", renamed into
// place only when complete, so an interrupted download never destroys an
// existing file; --continue resumes from the .part file. A local that is
// no regular file (a device such as /dev/null, a named pipe) is written
// in place, as curl and wget do: a .part renamed over it would replace it.
func download(ctx context.Context, c *client.Client, rpath string, info client.Entry, local string, fl *clientFlags, out *output, label string) (int64, error) {
	part := local + ".part"
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	inPlace := false
	if fi, err := os.Stat(local); err == nil && !fi.Mode().IsRegular() {
		if fl.verify {
			return 0, usageError{fmt.Errorf("--verify needs a regular file; %s is not one", local)}
		}
		part, flags, inPlace = local, os.O_WRONLY, true
	}
	var offset int64
	if fl.cont && !inPlace {
		if fi, err := os.Stat(part); err == nil && fi.Mode().IsRegular() && (info.Size < 0 || fi.Size() <= info.Size) {
			offset = fi.Size()
			flags = os.O_WRONLY
		}
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return 0, err
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return 0, err
		}
	}
	start := time.Now()
	bar := out.bar(label, info.Size, offset)
	d, err := c.Retrieve(ctx, rpath, &client.TransferOptions{Offset: offset, Progress: bar.progress(offset)})
	if err != nil {
		f.Close()
		bar.abort()
		return 0, explain("download", label, err)
	}
	n, err := io.Copy(f, d)
	d.Close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		bar.abort()
		return n, explain("download", label, err)
	}
	bar.done()
	if fl.verify {
		if err := verifyLocal(ctx, c, rpath, part, label); err != nil {
			return n, err
		}
	}
	if !inPlace {
		if err := os.Rename(part, local); err != nil {
			return n, err
		}
		if !info.ModTime.IsZero() {
			os.Chtimes(local, time.Time{}, info.ModTime)
		}
	}
	out.summary("get", n, time.Since(start), label, local)
	return n, nil
}

func cmdPut(ctx context.Context, fl *clientFlags, local, u string, out *output) error {
	r, c, err := open(ctx, fl, u, 1)
	if err != nil {
		return err
	}
	defer c.Close()
	fi, err := os.Stat(local)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return usageError{fmt.Errorf("%s is a directory (use ferry mirror)", local)}
	}
	target := r.path
	if r.trailing || target == "" {
		target = path.Join(target, filepath.Base(local))
	} else if e, err := c.Stat(ctx, target); err == nil && e.Type == ftp.TypeDir {
		target = path.Join(target, filepath.Base(local))
	}
	_, err = upload(ctx, c, local, fi, target, fl, out, r.with(target).String())
	return err
}

// upload sends local to target; --continue starts at the size the server
// already has.
func upload(ctx context.Context, c *client.Client, local string, fi os.FileInfo, target string, fl *clientFlags, out *output, label string) (int64, error) {
	f, err := os.Open(local)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var offset int64
	if fl.cont {
		if n, err := c.Size(ctx, target); err == nil && n <= fi.Size() {
			offset = n
		}
	}
	if offset == fi.Size() && offset > 0 {
		out.summary("put", 0, 0, local, label)
		return 0, nil
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	start := time.Now()
	bar := out.bar(label, fi.Size(), offset)
	n, err := c.Store(ctx, target, f, &client.TransferOptions{Offset: offset, Progress: bar.progress(offset)})
	if err != nil {
		bar.abort()
		return n, explain("upload to", label, err)
	}
	bar.done()
	if fl.verify {
		if err := verifyLocal(ctx, c, target, local, label); err != nil {
			return n, err
		}
	}
	out.summary("put", n, time.Since(start), local, label)
	return n, nil
}

// verifyLocal compares the server's hash of rpath with local's.
func verifyLocal(ctx context.Context, c *client.Client, rpath, local, label string) error {
	alg, sum, err := c.Hash(ctx, rpath, "")
	if err != nil {
		return explain("verify", label, err)
	}
	mine, err := hashFile(local, alg)
	if err != nil {
		return err
	}
	if mine != sum {
		return fmt.Errorf("%w: %s of %s is %s, of %s is %s", client.ErrVerify, alg, label, sum, local, mine)
	}
	return nil
}

func hashFile(name, alg string) (string, error) {
	h := ftp.NewHash(alg)
	if h == nil {
		return "", fmt.Errorf("unknown hash algorithm %q", alg)
	}
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func cmdRemove(ctx context.Context, fl *clientFlags, u string, dir bool) error {
	r, c, err := open(ctx, fl, u, 1)
	if err != nil {
		return err
	}
	defer c.Close()
	switch {
	case fl.recursive:
		err = c.RemoveAll(ctx, r.path)
	case dir:
		err = c.Rmdir(ctx, r.path)
	default:
		err = c.Delete(ctx, r.path)
	}
	if err != nil {
		return explain("remove", r.String(), err)
	}
	return nil
}

func cmdMkdir(ctx context.Context, fl *clientFlags, u string) error {
	r, c, err := open(ctx, fl, u, 1)
	if err != nil {
		return err
	}
	defer c.Close()
	if fl.parents {
		err = c.MkdirAll(ctx, r.path)
	} else {
		err = c.Mkdir(ctx, r.path)
	}
	if err != nil {
		return explain("make directory", r.String(), err)
	}
	return nil
}

func cmdMv(ctx context.Context, fl *clientFlags, u, to string) error {
	r, c, err := open(ctx, fl, u, 1)
	if err != nil {
		return err
	}
	defer c.Close()
	if isURL(to) {
		t, err := parseRemote(to)
		if err != nil {
			return usageError{err}
		}
		if t.host != r.host {
			return usageError{fmt.Errorf("mv cannot move between servers (use cp, then rm)")}
		}
		to = t.path
	} else if !strings.Contains(to, "/") {
		to = path.Join(path.Dir(r.path), to)
	}
	if err := c.Rename(ctx, r.path, to); err != nil {
		return explain("rename", r.String(), err)
	}
	return nil
}

func cmdHash(ctx context.Context, fl *clientFlags, u string, out *output) error {
	r, c, err := open(ctx, fl, u, 1)
	if err != nil {
		return err
	}
	defer c.Close()
	alg, sum, err := c.Hash(ctx, r.path, fl.alg)
	if err != nil {
		return explain("hash", r.String(), err)
	}
	out.printf("%s  %s  %s\n", alg, sum, r)
	return nil
}

func cmdCp(ctx context.Context, fl *clientFlags, from, to string, out *output) error {
	sr, sc, err := open(ctx, fl, from, 1)
	if err != nil {
		return err
	}
	defer sc.Close()
	dr, dc, err := open(ctx, fl, to, 1)
	if err != nil {
		return err
	}
	defer dc.Close()
	dpath := dr.path
	if dr.trailing || dpath == "" {
		dpath = path.Join(dpath, path.Base(sr.path))
	} else if e, err := dc.Stat(ctx, dpath); err == nil && e.Type == ftp.TypeDir {
		dpath = path.Join(dpath, path.Base(sr.path))
	}
	size := int64(-1)
	if e, err := sc.Stat(ctx, sr.path); err != nil {
		return explain("copy", sr.String(), err)
	} else {
		size = e.Size
	}
	label := dr.with(dpath).String()
	bar := out.bar(label, size, 0)
	start := time.Now()
	res, err := client.Copy(ctx, client.Location{Client: sc, Path: sr.path}, client.Location{Client: dc, Path: dpath},
		&client.CopyOptions{NoRelay: fl.noRelay, NoFXP: fl.noFXP, Progress: bar.progress(0)})
	if err != nil {
		bar.abort()
		return explain("copy "+sr.String()+" to", label, err)
	}
	bar.done()
	how := "directly between the servers (FXP)"
	if res.Method == client.MethodRelay {
		how = "through ferry (relay)"
		if res.FXPError != nil {
			how += "; FXP was refused: " + oneLine(res.FXPError.Error())
		}
	}
	out.note("copied %s %s\n", label, how)
	if res.Hash != "" {
		out.note("verified: %s %s\n", res.HashAlg, res.Hash)
	}
	out.summary("cp-"+res.Method, res.Bytes, time.Since(start), sr.String(), label)
	return nil
}

// forEach runs f on each URL, stopping at the first error.
func forEach(urls []string, f func(string) error) error {
	for _, u := range urls {
		if err := f(u); err != nil {
			return err
		}
	}
	return nil
}
