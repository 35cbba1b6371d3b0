package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferryftp/ferry/ftp"
)

// Location is a file on a server.
type Location struct {
	Client *Client
	Path   string
}

func (l Location) String() string { return "ftp://" + l.Client.addr + l.Client.abs(l.Path) }

// CopyOptions adjust Copy. A nil *CopyOptions is the zero value.
type CopyOptions struct {
	// NoRelay forbids relaying through the client when the servers refuse
	// to send to each other: Copy fails instead.
	NoRelay bool
	// NoFXP relays through the client without trying a direct transfer.
	NoFXP bool
	// NoVerify skips comparing the hashes of both files afterwards.
	NoVerify bool
	// Progress, when set, is called with the bytes relayed so far (relay
	// only: a direct transfer does not pass through the client).
	Progress func(done int64)
}

// Copy methods.
const (
	MethodFXP   = "fxp"   // the servers sent the file to each other
	MethodRelay = "relay" // the file went through the client
)

// CopyResult says how Copy moved the file.
type CopyResult struct {
	Method string
	Bytes  int64 // bytes relayed, or the destination's size after FXP (-1 when unknown)
	// FXPError is why the direct transfer was not used, when the copy was
	// relayed after trying it.
	FXPError error
	// HashAlg and Hash are set when both servers hashed the file and the
	// hashes matched.
	HashAlg, Hash string
}

// ErrFXPRefused is returned (wrapped) when a server refuses its part of a
// server-to-server transfer, as secure servers do by default.
var ErrFXPRefused = errors.New("server-to-server transfer refused")

// ErrVerify is returned when the two files differ after a copy.
var ErrVerify = errors.New("copy verification failed")

// Copy copies a file from one server to another. It first tries FXP (RFC
// 959 §5.2): the destination listens (EPSV or PASV), the source connects to
// it (EPRT or PORT), STOR and RETR run at once, and both replies are
// checked; failing that, the other way round. When a server refuses, Copy
// relays the data through the client unless opts forbid it. Afterwards
// the sizes are compared, and the hashes where both servers offer one
// algorithm.
func Copy(ctx context.Context, src, dst Location, opts *CopyOptions) (*CopyResult, error) {
	if opts == nil {
		opts = &CopyOptions{}
	}
	res := &CopyResult{Bytes: -1}
	var err error
	if !opts.NoFXP {
		err = fxp(ctx, src, dst)
		if err == nil {
			res.Method = MethodFXP
		} else if !errors.Is(err, ErrFXPRefused) || opts.NoRelay || ctx.Err() != nil {
			return nil, err
		} else {
			res.FXPError = err
		}
	}
	if res.Method == "" {
		res.Method = MethodRelay
		if res.Bytes, err = relay(ctx, src, dst, opts); err != nil {
			return res, err
		}
	}
	return res, verify(ctx, src, dst, res, opts)
}

func relay(ctx context.Context, src, dst Location, opts *CopyOptions) (int64, error) {
	d, err := src.Client.Retrieve(ctx, src.Path, nil)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n, err := dst.Client.Store(ctx, dst.Path, d, &TransferOptions{Progress: opts.Progress})
	if err == nil {
		err = d.Close()
	}
	return n, err
}

func verify(ctx context.Context, src, dst Location, res *CopyResult, opts *CopyOptions) error {
	ss, serr := src.Client.Size(ctx, src.Path)
	ds, derr := dst.Client.Size(ctx, dst.Path)
	if serr == nil && derr == nil {
		if ss != ds {
			return fmt.Errorf("%w: %s has %d bytes, %s has %d", ErrVerify, src, ss, dst, ds)
		}
		if res.Method == MethodFXP {
			res.Bytes = ds
		}
	}
	if opts.NoVerify {
		return nil
	}
	for _, a := range src.Client.HashAlgorithms() {
		for _, b := range dst.Client.HashAlgorithms() {
			if a != b {
				continue
			}
			_, sh, err1 := src.Client.Hash(ctx, src.Path, a)
			_, dh, err2 := dst.Client.Hash(ctx, dst.Path, a)
			if err1 != nil || err2 != nil {
				return nil // hashing refused: sizes are all we can check
			}
			if sh != dh {
				return fmt.Errorf("%w: %s %s of %s, %s of %s", ErrVerify, a, sh, src, dh, dst)
			}
			res.HashAlg, res.Hash = a, sh
			return nil
		}
	}
	return nil
}

// fxp runs a direct transfer, trying the destination as the listening side
// first (a source that drops a foreign connection then cannot make the
// destination store an empty file), then the source.
func fxp(ctx context.Context, src, dst Location) error {
	sc, err := src.Client.get(ctx)
	if err != nil {
		return err
	}
	defer src.Client.put(sc)
	dc, err := dst.Client.get(ctx)
	if err != nil {
		return err
	}
	defer dst.Client.put(dc)
	sp, dp := src.Client.abs(src.Path), dst.Client.abs(dst.Path)
	if err := checkArg(sp); err != nil {
		return err
	}
	if err := checkArg(dp); err != nil {
		return err
	}
	err = fxpOnce(ctx, dc, "STOR", dp, sc, "RETR", sp)
	var setup *fxpSetupError
	if errors.As(err, &setup) && !sc.broken && !dc.broken {
		if err2 := fxpOnce(ctx, sc, "RETR", sp, dc, "STOR", dp); err2 == nil {
			return nil
		} else if !errors.Is(err2, ErrFXPRefused) {
			return err2
		}
	}
	return err
}

// fxpSetupError is a refusal before any transfer command was sent, after
// which the other direction may still work.
type fxpSetupError struct{ err error }

func (e *fxpSetupError) Error() string { return e.err.Error() }
func (e *fxpSetupError) Unwrap() error { return e.err }

// fxpOnce has pc listen and ac connect to it, then runs pverb on pc and
// averb on ac.
func fxpOnce(ctx context.Context, pc *conn, pverb, ppath string, ac *conn, averb, apath string) error {
	refused := func(what string, err error) error {
		return &fxpSetupError{fmt.Errorf("%w: %s: %v", ErrFXPRefused, what, err)}
	}
	for _, cn := range []*conn{pc, ac} {
		if err := cn.typeBinary(ctx); err != nil {
			return err
		}
	}
	ap, err := pc.passiveAddr(ctx)
	if err != nil {
		return refused(pc.c.addr+" would not listen", err)
	}
	if ap.Addr().Is4() {
		arg, _ := ftp.FormatPORT(ap)
		_, err = ac.expect(ctx, "PORT", arg)
	} else {
		_, err = ac.expect(ctx, "EPRT", ftp.FormatEPRT(ap))
	}
	if err != nil {
		return refused(ac.c.addr+" would not connect to "+ap.String(), err)
	}
	if err := pc.send(ctx, pverb, ppath); err != nil {
		return err
	}
	if err := ac.send(ctx, averb, apath); err != nil {
		pc.abort()
		return err
	}
	// Each side answers 1xx once its data connection is open, then 2xx.
	ra, err := ac.read(ctx)
	if err != nil {
		pc.abort()
		return err
	}
	if ra.Class() != 1 {
		pc.abort()
		return fmt.Errorf("%w: %v", ErrFXPRefused, ac.replyError(averb, apath, ra))
	}
	rp, err := pc.read(ctx)
	if err != nil {
		ac.abort()
		return err
	}
	if rp.Class() != 1 {
		ac.abort()
		return fmt.Errorf("%w: %v", ErrFXPRefused, pc.replyError(pverb, ppath, rp))
	}
	// The transfer runs between the servers; wait for both verdicts for as
	// long as the context allows.
	const long = 365 * 24 * time.Hour
	ra, err = ac.readWithin(ctx, long)
	if err == nil && ra.Class() != 2 {
		err = ac.replyError(averb, apath, ra)
	}
	rp, perr := pc.readWithin(ctx, long)
	if perr == nil && rp.Class() != 2 {
		perr = pc.replyError(pverb, ppath, rp)
	}
	if err == nil {
		err = perr
	}
	return err
}
