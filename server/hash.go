package server

import (
	"context"
	"encoding/hex"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/storage"
)

func hashFeat(current string) string {
	var sb strings.Builder
	sb.WriteString("HASH ")
	for i, a := range ftp.HashNames {
		if i > 0 {
			sb.WriteByte(';')
		}
		sb.WriteString(a)
		if a == current {
			sb.WriteByte('*')
		}
	}
	return sb.String()
}

// hashFile hashes bytes [start, end) of name (end < 0: to the end), under
// the server's bound on concurrent hash computations.
func (s *session) hashFile(ctx context.Context, alg, name string, start, end int64) (string, int64, error) {
	select {
	case s.srv.hashSem <- struct{}{}:
	case <-ctx.Done():
		return "", 0, ctx.Err()
	}
	defer func() { <-s.srv.hashSem }()
	fi, err := s.acct.FS.Stat(ctx, name)
	if err != nil {
		return "", 0, err
	}
	if fi.IsDir() {
		return "", 0, storage.ErrIsDir
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fs.ErrPermission
	}
	if end < 0 || end > fi.Size() {
		end = fi.Size()
	}
	if c, ok := s.acct.FS.(storage.Checksummer); ok && start == 0 && end == fi.Size() {
		// A checksum stored when the file was written saves reading it.
		if sum, ok, err := c.Checksum(ctx, name, alg); err == nil && ok {
			return sum, end, nil
		}
	}
	r, err := s.acct.FS.Open(ctx, name, start)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	h := ftp.NewHash(alg)
	if _, err := io.Copy(h, io.LimitReader(ctxReader{ctx, r}, end-start)); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), end, nil
}

func (s *session) cmdHASH(arg string) {
	vpath, name, ok := s.resolve(arg)
	if !ok || !s.may(auth.PermDownload, vpath) {
		return
	}
	fi, err := s.acct.FS.Stat(s.ctx(), name)
	if err != nil {
		s.fail(err, "HASH")
		return
	}
	if !fi.Mode().IsRegular() {
		s.reply(ftp.CodeNoFile, "Not a plain file.")
		return
	}
	start := s.rest
	s.rest = 0
	if start > fi.Size() {
		s.reply(ftp.CodeBadRestart, "Invalid REST offset.")
		return
	}
	sum, end, err := s.hashFile(s.ctx(), s.hashAlg, name, start, -1)
	if err != nil {
		s.fail(err, "HASH")
		return
	}
	s.replyf(ftp.CodeFileStatus, "%s %d-%d %s %s", s.hashAlg, start, end, sum, quoteName(arg))
}

// xhash handles XCRC, XMD5, XSHA1, XSHA256 and XSHA512: "path [start [end]]".
func xhash(alg string) func(*session, string) {
	return func(s *session, arg string) {
		p := arg
		start, end := int64(0), int64(-1)
		// Up to two trailing numbers are the range.
		for i := 0; i < 2; i++ {
			j := strings.LastIndexByte(p, ' ')
			if j < 0 {
				break
			}
			n, err := strconv.ParseInt(p[j+1:], 10, 64)
			if err != nil || n < 0 {
				break
			}
			if end < 0 && i == 0 {
				end = n
			} else {
				start = n
			}
			p = p[:j]
		}
		if end >= 0 && start == 0 && p != arg && strings.Count(arg[len(p):], " ") == 1 {
			// one number: it is the start
			start, end = end, -1
		}
		if end >= 0 && end < start {
			s.reply(ftp.CodeBadArguments, "End offset before start offset.")
			return
		}
		vpath, name, ok := s.resolve(p)
		if !ok || !s.may(auth.PermDownload, vpath) {
			return
		}
		sum, _, err := s.hashFile(s.ctx(), alg, name, start, end)
		if err != nil {
			s.fail(err, "X"+alg)
			return
		}
		s.reply(ftp.CodeFileActionOK, sum)
	}
}

// ctxReader stops reading once ctx ends (a hash of a large file is cut by
// ABOR or the client hanging up).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
