package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryftp/ferry/ftp"
)

// Entry is one object of a listing.
type Entry = ftp.DirEntry

// List lists the directory dir, sorted by name: MLSD when the server offers MLST (exact
// sizes and UTC times), otherwise LIST parsed from the Unix, MS-DOS/IIS or
// EPLF format. "." and ".." are left out, and so are lines in no known
// format.
func (c *Client) List(ctx context.Context, dir string) ([]Entry, error) {
	var out []Entry
	err := c.list(ctx, dir, func(e Entry) { out = append(out, e) })
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

func (c *Client) list(ctx context.Context, dir string, fn func(Entry)) error {
	p := c.abs(dir)
	if c.HasFeature("MLST") {
		return c.lines(ctx, "MLSD", p, func(line string) {
			if e, err := ftp.ParseFacts(line); err == nil && e.Type != ftp.TypeCurrentDir && e.Type != ftp.TypeParentDir && e.Name != "." && e.Name != ".." {
				e.Name = path.Base(e.Name)
				fn(e)
			}
		})
	}
	now := time.Now()
	return c.lines(ctx, "LIST", p, func(line string) {
		if e, err := ftp.ParseListLine(line, now); err == nil && e.Name != "." && e.Name != ".." {
			fn(e)
		}
	})
}

// NameList returns the names NLST gives for arg (a directory or a glob).
func (c *Client) NameList(ctx context.Context, arg string) ([]string, error) {
	var out []string
	err := c.lines(ctx, "NLST", c.abs(arg), func(l string) { out = append(out, ftp.DecodeName(l)) })
	return out, err
}

// lines runs a listing command and calls fn for each line of its data.
func (c *Client) lines(ctx context.Context, verb, arg string, fn func(string)) error {
	if err := checkArg(arg); err != nil {
		return err
	}
	cn, err := c.get(ctx)
	if err != nil {
		return err
	}
	defer c.put(cn)
	dc, err := cn.startTransfer(ctx, verb, arg, 0)
	if err == errNoData {
		return nil
	}
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { dc.Close() })
	br := bufio.NewReaderSize(dc, 64<<10)
	var rerr error
	for {
		dc.SetReadDeadline(time.Now().Add(c.cfg.Timeout))
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than any real listing line: skip it.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if len(line) > 0 {
			l := strings.TrimRight(string(line), "\r\n")
			if l != "" {
				fn(l)
			}
		}
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	stopped := !stop()
	dc.Close()
	if stopped {
		cn.abort()
		return ctx.Err()
	}
	if rerr != nil {
		return cn.dataFailed(verb, arg, &NetError{Op: verb + " " + arg, Addr: c.addr, Err: rerr})
	}
	return cn.finish(ctx, verb, arg)
}

// Stat describes one path: MLST when offered, otherwise SIZE and MDTM for
// a file, or a successful CWD for a directory.
func (c *Client) Stat(ctx context.Context, p string) (Entry, error) {
	ap := c.abs(p)
	if c.HasFeature("MLST") {
		r, err := c.simple(ctx, "MLST", ap, ftp.CodeFileActionOK)
		if err != nil {
			return Entry{}, err
		}
		lines := r.Lines()
		if len(lines) < 3 {
			return Entry{}, fmt.Errorf("%s: MLST %s: no facts in the reply", c.addr, ap)
		}
		e, err := ftp.ParseFacts(lines[1])
		if err != nil {
			return Entry{}, fmt.Errorf("%s: MLST %s: %w", c.addr, ap, err)
		}
		if e.Type == ftp.TypeCurrentDir {
			e.Type = ftp.TypeDir
		}
		e.Name = path.Base(ap)
		return e, nil
	}
	e := Entry{Name: path.Base(ap), Size: -1}
	err := c.do(ctx, func(cn *conn) error {
		if err := cn.typeBinary(ctx); err != nil {
			return err
		}
		r, err := cn.cmd(ctx, "SIZE", ap)
		if err != nil {
			return err
		}
		if r.Code == ftp.CodeFileStatus {
			e.Type = ftp.TypeFile
			e.Size, _ = strconv.ParseInt(strings.TrimSpace(r.Text), 10, 64)
			if r, err := cn.cmd(ctx, "MDTM", ap); err == nil && r.Code == ftp.CodeFileStatus {
				e.ModTime, _ = ftp.ParseTime(strings.TrimSpace(r.Text))
				e.Precise = !e.ModTime.IsZero()
			}
			return nil
		}
		// Not a file: a directory if we can enter it.
		if _, err := cn.expect(ctx, "CWD", ap); err != nil {
			return err
		}
		e.Type = ftp.TypeDir
		_, err = cn.expect(ctx, "CWD", c.Dir())
		return err
	})
	return e, err
}

// WalkFunc is called by Walk for each path; see fs.WalkDirFunc. Returning
// fs.SkipDir skips a directory, fs.SkipAll stops the walk.
type WalkFunc func(path string, e Entry, err error) error

// Walk walks the tree under root in lexical order, calling fn for root and
// every file and directory beneath it. Symbolic links are not followed.
func (c *Client) Walk(ctx context.Context, root string, fn WalkFunc) error {
	root = c.abs(root)
	e, err := c.Stat(ctx, root)
	if err != nil {
		err = fn(root, e, err)
	} else {
		err = c.walk(ctx, root, e, fn)
	}
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

func (c *Client) walk(ctx context.Context, p string, e Entry, fn WalkFunc) error {
	if err := fn(p, e, nil); err != nil || e.Type != ftp.TypeDir {
		if err == fs.SkipDir && e.Type != ftp.TypeDir {
			err = nil
		}
		return err
	}
	entries, err := c.List(ctx, p)
	if err != nil {
		if err = fn(p, e, err); err != nil {
			if err == fs.SkipDir {
				err = nil
			}
			return err
		}
	}
	for _, ce := range entries {
		if err := c.walk(ctx, path.Join(p, ce.Name), ce, fn); err != nil {
			if err == fs.SkipDir {
				break
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// ChangeDir changes the client's working directory (CWD, then PWD for
// the server's own spelling of it).
func (c *Client) ChangeDir(ctx context.Context, dir string) error {
	p := c.abs(dir)
	return c.do(ctx, func(cn *conn) error {
		if _, err := cn.expect(ctx, "CWD", p); err != nil {
			return err
		}
		r, err := cn.expect(ctx, "PWD", "", ftp.CodePathCreated)
		if err != nil {
			return err
		}
		if q, ok := ftp.ParsePathReply(r.Text); ok {
			p = q
		}
		c.mu.Lock()
		c.cwd = p
		c.mu.Unlock()
		return nil
	})
}

// Mkdir creates a directory (MKD).
func (c *Client) Mkdir(ctx context.Context, dir string) error {
	_, err := c.simple(ctx, "MKD", c.abs(dir))
	return err
}

// MkdirAll creates dir and any missing parents.
func (c *Client) MkdirAll(ctx context.Context, dir string) error {
	p := c.abs(dir)
	if p == "/" || p == "." {
		return nil
	}
	if e, err := c.Stat(ctx, p); err == nil {
		if e.Type == ftp.TypeDir {
			return nil
		}
		return fmt.Errorf("%s: %s exists and is not a directory", c.addr, p)
	}
	if err := c.MkdirAll(ctx, path.Dir(p)); err != nil {
		return err
	}
	err := c.Mkdir(ctx, p)
	if err != nil {
		// Another goroutine may have made it meanwhile.
		if e, serr := c.Stat(ctx, p); serr == nil && e.Type == ftp.TypeDir {
			return nil
		}
	}
	return err
}

// Rmdir removes an empty directory (RMD).
func (c *Client) Rmdir(ctx context.Context, dir string) error {
	_, err := c.simple(ctx, "RMD", c.abs(dir))
	return err
}

// RemoveAll removes p and, when it is a directory, everything in it.
func (c *Client) RemoveAll(ctx context.Context, p string) error {
	p = c.abs(p)
	e, err := c.Stat(ctx, p)
	if err != nil {
		return err
	}
	return c.removeAll(ctx, p, e)
}

func (c *Client) removeAll(ctx context.Context, p string, e Entry) error {
	if e.Type != ftp.TypeDir {
		return c.Delete(ctx, p)
	}
	entries, err := c.List(ctx, p)
	if err != nil {
		return err
	}
	for _, ce := range entries {
		if err := c.removeAll(ctx, path.Join(p, ce.Name), ce); err != nil {
			return err
		}
	}
	return c.Rmdir(ctx, p)
}

// Delete removes a file (DELE).
func (c *Client) Delete(ctx context.Context, p string) error {
	_, err := c.simple(ctx, "DELE", c.abs(p))
	return err
}

// Rename renames from to to (RNFR, RNTO).
func (c *Client) Rename(ctx context.Context, from, to string) error {
	from, to = c.abs(from), c.abs(to)
	if err := checkArg(to); err != nil {
		return err
	}
	return c.do(ctx, func(cn *conn) error {
		if _, err := cn.expect(ctx, "RNFR", from, ftp.CodePending); err != nil {
			return err
		}
		_, err := cn.expect(ctx, "RNTO", to)
		return err
	})
}

// Size returns a file's size in bytes (SIZE, in TYPE I).
func (c *Client) Size(ctx context.Context, p string) (int64, error) {
	p = c.abs(p)
	var n int64
	err := c.do(ctx, func(cn *conn) error {
		if err := cn.typeBinary(ctx); err != nil {
			return err
		}
		r, err := cn.expect(ctx, "SIZE", p, ftp.CodeFileStatus)
		if err != nil {
			return err
		}
		n, err = strconv.ParseInt(strings.TrimSpace(r.Text), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%s: SIZE %s: bad size %q", c.addr, p, r.Text)
		}
		return nil
	})
	return n, err
}

// ModTime returns a file's modification time (MDTM), in UTC.
func (c *Client) ModTime(ctx context.Context, p string) (time.Time, error) {
	p = c.abs(p)
	r, err := c.simple(ctx, "MDTM", p, ftp.CodeFileStatus)
	if err != nil {
		return time.Time{}, err
	}
	t, err := ftp.ParseTime(strings.TrimSpace(r.Text))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: MDTM %s: bad time %q", c.addr, p, r.Text)
	}
	return t, nil
}

// ErrUnsupported is returned when the server offers no command for what
// was asked.
var ErrUnsupported = errors.New("not supported by the server")

// SetModTime sets a file's modification time: MFMT where offered
// (draft-somers-ftp-mfxx), otherwise the two-argument MDTM some servers
// accept.
func (c *Client) SetModTime(ctx context.Context, p string, t time.Time) error {
	p = c.abs(p)
	ts := string(ftp.AppendTime(nil, t.Truncate(time.Second)))
	if c.HasFeature("MFMT") {
		_, err := c.simple(ctx, "MFMT", ts+" "+p)
		return err
	}
	r, err := c.simple(ctx, "MDTM", ts+" "+p)
	if err != nil {
		var fe *Error
		if errors.As(err, &fe) && (fe.Code == ftp.CodeSyntaxError || fe.Code == ftp.CodeBadArguments || fe.Code == ftp.CodeNotImplemented || fe.Code == ftp.CodeNoFile) {
			return fmt.Errorf("%s: setting the time of %s: %w", c.addr, p, ErrUnsupported)
		}
		return err
	}
	_ = r
	return nil
}

// Hash algorithms, as HASH names them.
const (
	SHA256 = ftp.HashSHA256
	SHA512 = ftp.HashSHA512
	SHA1   = ftp.HashSHA1
	MD5    = ftp.HashMD5
	CRC32  = ftp.HashCRC32
)

// HashAlgorithms returns the algorithms the server can hash with, best
// first: those of its HASH feature, or those of the X commands it lists.
func (c *Client) HashAlgorithms() []string {
	feat := c.Features()
	var out []string
	if v, ok := feat["HASH"]; ok {
		for _, a := range strings.Split(v, ";") {
			if a = strings.TrimSuffix(strings.TrimSpace(a), "*"); a != "" {
				out = append(out, strings.ToUpper(a))
			}
		}
		return rank(out)
	}
	for _, x := range xHash {
		if _, ok := feat[x.cmd]; ok {
			out = append(out, x.alg)
		}
	}
	return rank(out)
}

var xHash = []struct{ alg, cmd string }{{SHA512, "XSHA512"}, {SHA256, "XSHA256"}, {SHA1, "XSHA1"}, {MD5, "XMD5"}, {CRC32, "XCRC"}}

func rank(algs []string) []string {
	var out []string
	for _, want := range ftp.HashNames {
		for _, a := range algs {
			if a == want {
				out = append(out, a)
			}
		}
	}
	return out
}

// Hash asks the server for the hash of a file with alg ("" picks the best
// the server offers), using HASH (draft-bryan-ftp-hash) or the X commands.
// It returns the algorithm used and the hash in lower-case hex.
func (c *Client) Hash(ctx context.Context, p, alg string) (string, string, error) {
	p = c.abs(p)
	algs := c.HashAlgorithms()
	if alg == "" {
		if len(algs) == 0 {
			return "", "", fmt.Errorf("%s: hashing %s: %w", c.addr, p, ErrUnsupported)
		}
		alg = algs[0]
	}
	alg = strings.ToUpper(alg)
	var sum string
	err := c.do(ctx, func(cn *conn) error {
		if v, ok := c.Features()["HASH"]; ok {
			if !strings.Contains(strings.ToUpper(v), alg+"*") {
				if _, err := cn.expect(ctx, "OPTS", "HASH "+alg); err != nil {
					return err
				}
			}
			r, err := cn.expect(ctx, "HASH", p, ftp.CodeFileStatus)
			if err != nil {
				return err
			}
			// "SHA-256 0-1234 hex name"
			f := strings.Fields(r.Text)
			if len(f) < 3 {
				return fmt.Errorf("%s: HASH %s: unexpected reply %q", c.addr, p, r.Text)
			}
			sum = strings.ToLower(f[2])
			return nil
		}
		for _, x := range xHash {
			if x.alg == alg {
				r, err := cn.expect(ctx, x.cmd, p, ftp.CodeFileActionOK, ftp.CodeFileStatus)
				var fe *Error
				if errors.As(err, &fe) && (fe.Code == ftp.CodeSyntaxError || fe.Code == ftp.CodeNotImplemented) {
					return fmt.Errorf("%w: %v", ErrUnsupported, err)
				}
				if err != nil {
					return err
				}
				f := strings.Fields(r.Text)
				if len(f) == 0 {
					return fmt.Errorf("%s: %s %s: empty reply", c.addr, x.cmd, p)
				}
				sum = strings.ToLower(f[0])
				return nil
			}
		}
		return fmt.Errorf("%s: hashing with %s: %w", c.addr, alg, ErrUnsupported)
	})
	return alg, sum, err
}

// NoOp sends NOOP on an idle connection, keeping it and the server's
// session alive.
func (c *Client) NoOp(ctx context.Context) error {
	_, err := c.simple(ctx, "NOOP", "")
	return err
}

// Quote sends a raw command line and returns the reply, whatever its code.
// The line must not hold CR or LF.
func (c *Client) Quote(ctx context.Context, line string) (ftp.Reply, error) {
	verb, arg, _ := strings.Cut(line, " ")
	if err := checkArg(verb); err != nil {
		return ftp.Reply{}, err
	}
	var r ftp.Reply
	err := c.do(ctx, func(cn *conn) error {
		var err error
		r, err = cn.cmd(ctx, verb, arg)
		return err
	})
	return r, err
}
