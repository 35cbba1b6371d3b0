package doctor

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ferryftp/ferry/ftp"
)

// certificate verifies the server's chain against the roots, for the
// name clients use, and its dates.
func (d *run) certificate() {
	st := d.c.tls
	if len(st.PeerCertificates) == 0 {
		d.r.add("tls.cert", "Certificate", Problem, "no certificate", "configure a certificate")
		return
	}
	leaf := st.PeerCertificates[0]
	sum := sha256.Sum256(leaf.Raw)
	d.certPin = strings.ToUpper(fmt.Sprintf("%X", sum[:]))
	var roots *x509.CertPool
	if d.o.TLS != nil {
		roots = d.o.TLS.RootCAs
	}
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	name := d.o.serverName()
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name})
	left := time.Until(leaf.NotAfter)
	who := fmt.Sprintf("%q issued by %q, valid until %s", leaf.Subject.CommonName, leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format("2006-01-02"))
	switch {
	case left < 0:
		d.r.add("tls.cert", "Certificate", Problem, who+": expired", "renew the certificate")
	case err != nil:
		fix := "use a certificate from a CA clients trust (Let's Encrypt) for " + name + ", or give clients its CA file or fingerprint"
		var ue x509.UnknownAuthorityError
		if asUnknown(err, &ue) && leaf.Issuer.String() == leaf.Subject.String() {
			fix = "self-signed: clients need its fingerprint or file (ferry --fingerprint " + d.certPin[:16] + "…, curl --cacert, lftp ssl:ca-file), or use a certificate from a CA"
		}
		d.r.add("tls.cert", "Certificate", Problem, who+": "+err.Error(), fix)
	case left < 21*24*time.Hour:
		d.certTrusted = true
		d.r.add("tls.cert", "Certificate", Warning, fmt.Sprintf("%s: %d days left", who, int(left.Hours()/24)), "renew the certificate soon")
	default:
		d.certTrusted = true
		d.r.add("tls.cert", "Certificate", OK, who+", trusted for "+name, "")
	}
}

func asUnknown(err error, ue *x509.UnknownAuthorityError) bool {
	u, ok := err.(x509.UnknownAuthorityError)
	if ok {
		*ue = u
	}
	return ok
}

// versions tries TLS 1.1 and below on a connection of its own: a server
// that accepts them is out of date.
func (d *run) versions(ctx context.Context) {
	ev := "negotiated " + tlsVersion(d.c.tls.Version)
	if v, ok := d.oldTLS(ctx); ok {
		d.r.add("tls.versions", "TLS versions", Warning, ev+"; also accepts "+tlsVersion(v), "accept TLS 1.2 and 1.3 only")
		return
	}
	d.r.add("tls.versions", "TLS versions", OK, ev+"; TLS 1.0 and 1.1 refused", "")
}

// oldTLS says whether a handshake offering only TLS 1.0 and 1.1 succeeds,
// and with which.
func (d *run) oldTLS(ctx context.Context) (uint16, bool) {
	cfg := d.o.tlsConfig(true)
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	dl := net.Dialer{Timeout: d.o.Timeout}
	nc, err := dl.DialContext(ctx, "tcp", d.o.Addr)
	if err != nil {
		return 0, false
	}
	defer nc.Close()
	c := &conn{o: &Options{Timeout: d.o.Timeout}, nc: nc, raw: nc, rr: ftp.NewReplyReader(nc)}
	if d.o.Scheme == "ftpes" {
		if r, err := c.read(); err != nil || r.Code != 220 {
			return 0, false
		}
		if r, err := c.cmd("AUTH TLS"); err != nil || r.Code != 234 {
			return 0, false
		}
	}
	if c.handshake(ctx, cfg) != nil {
		return 0, false
	}
	return c.tls.Version, true
}

// protect asks for PROT P on a TLS session: every data connection of the
// checks is then secured.
func (d *run) protect() {
	if d.c.tls == nil {
		return
	}
	d.c.cmd("PBSZ 0")
	r, err := d.c.cmd("PROT P")
	if err != nil || r.Code != 200 {
		d.r.add("tls.protp", "Protected data (PROT P)", Problem, replyOr(r, err), "allow PROT P: without it, files travel in the clear")
		return
	}
	d.c.protP = true
	d.r.add("tls.protp", "Protected data (PROT P)", OK, firstLine(r), "")
}

// dataTLS checks whether data connections must resume the control
// connection's TLS session: clients that do not (Python's ftplib as
// shipped, Apache Commons Net) then fail.
func (d *run) dataTLS(ctx context.Context) {
	if !d.c.protP || !d.pasvWorks {
		return
	}
	dc, err := d.passiveData(ctx)
	if err != nil {
		return
	}
	_, final, err := d.c.transfer("NLST", dc, nil, 1<<20, true)
	if err == nil && (final.Code == 226 || final.Code == 250) {
		d.r.add("tls.reuse", "TLS session reuse", OK, "a data connection with a new TLS session is accepted: every client works", "")
		return
	}
	d.reuseNeeded = true
	d.r.add("tls.reuse", "TLS session reuse", Warning, "a data connection with a new TLS session is refused ("+replyOr(final, err)+")",
		"required session reuse is safer, but Python's ftplib (as shipped) and Apache Commons Net fail; relax it for them (Ferry: tls_session_reuse = false; vsftpd: require_ssl_reuse=NO) or fix those clients")
	d.c.cmd("NOOP")
}

// ccc tries CCC last (it turns the control connection back to clear).
func (d *run) ccc() {
	if d.c.tls == nil {
		return
	}
	r, err := d.c.cmd("CCC")
	if err == nil && r.Code == 200 {
		d.r.add("tls.ccc", "Clear command channel (CCC)", Warning, firstLine(r),
			"CCC sends the following commands in the clear; allow it only for NAT helpers that need it")
		return
	}
	d.r.add("tls.ccc", "Clear command channel (CCC)", OK, "refused: "+replyOr(r, err), "")
}
