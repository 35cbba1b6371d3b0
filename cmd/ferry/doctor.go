package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/ferryftp/ferry/doctor"
)

// cmdDoctor runs `ferry doctor URL`: the report on standard output
// (JSON with --json), exit 1 when a check found a problem.
func cmdDoctor(ctx context.Context, fl *clientFlags, u string, out *output) error {
	r, err := parseRemote(u)
	if err != nil {
		return usageError{err}
	}
	if err := r.credentials(); err != nil {
		return err
	}
	o := &doctor.Options{Addr: r.host, Scheme: r.scheme, User: r.user, Password: r.pass,
		Write: fl.write, Speed: fl.speed, Timeout: min(fl.timeout, 10e9)}
	if r.user == "anonymous" {
		o.User = ""
	}
	if fl.from != "" {
		if o.From, err = netip.ParseAddr(fl.from); err != nil {
			return usageError{fmt.Errorf("--from: %v", err)}
		}
	}
	if fl.speed && fl.write == "" {
		return usageError{errors.New("--speed needs --write DIR")}
	}
	if r.scheme != "ftp" {
		tc, err := tlsConfig(fl)
		if err != nil {
			return usageError{err}
		}
		if fl.insecure || fl.fingerprint != "" {
			tc.RootCAs = x509.NewCertPool() // the certificate is judged as clients without them see it
		}
		o.TLS, o.CAFile = tc, fl.caFile
	}
	if fl.verbose {
		o.Transcript = os.Stderr
	}
	rep := doctor.Run(ctx, o)
	if fl.json {
		rep.WriteJSON(out.w)
	} else {
		rep.WriteText(out.w, out.tty && os.Getenv("NO_COLOR") == "")
	}
	if n := rep.Problems(); n > 0 {
		return fmt.Errorf("%d problem(s) found", n)
	}
	return nil
}
