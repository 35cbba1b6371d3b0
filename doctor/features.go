package doctor

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/ferryftp/ferry/ftp"
)

// features reads FEAT after login and checks what it claims against what
// the server does: MLSD, SIZE, MDTM, REST STREAM, UTF8, HASH, HOST.
func (d *run) features(ctx context.Context) {
	r, err := d.c.cmd("FEAT")
	if err != nil || r.Code != 211 {
		d.r.add("feat", "Features (FEAT)", Warning, replyOr(r, err), "clients guess what the server does without FEAT (RFC 2389)")
		d.feat = map[string]string{}
		return
	}
	d.feat = ftp.ParseFeat(r.Text)
	names := make([]string, 0, len(d.feat))
	for n := range d.feat {
		names = append(names, n)
	}
	slices.Sort(names)
	d.r.add("feat", "Features (FEAT)", OK, strings.Join(names, " "), "")
	file := d.someFile(ctx)
	d.claim("MLST", "feat.mlsd", "MLSD", func() (ftp.Reply, error) { return d.dataCmd(ctx, "MLSD") }, 226, 250)
	d.claimOnFile(file, "SIZE", "feat.size", "SIZE "+file, 213)
	d.claimOnFile(file, "MDTM", "feat.mdtm", "MDTM "+file, 213)
	d.claim("REST", "feat.rest", "REST STREAM", func() (ftp.Reply, error) { return d.c.cmd("REST 0") }, 350)
	d.claim("UTF8", "feat.utf8", "UTF8", func() (ftp.Reply, error) { return d.c.cmd("OPTS UTF8 ON") }, 200)
	d.claimOnFile(file, "HASH", "feat.hash", "HASH "+file, 213)
	d.claim("HOST", "feat.host", "HOST", func() (ftp.Reply, error) { return d.host(ctx) }, 220)
}

// claim checks a feature FEAT names by running try: ok with a reply code
// in want; a feature not claimed is skipped.
func (d *run) claim(feat, id, title string, try func() (ftp.Reply, error), want ...int) {
	if _, ok := d.feat[feat]; !ok {
		d.r.add(id, title, Skipped, "not in FEAT", "")
		return
	}
	r, err := try()
	if err == nil && slices.Contains(want, r.Code) {
		d.r.add(id, title, OK, "in FEAT, and "+firstLine(r), "")
		return
	}
	d.r.add(id, title, Problem, "in FEAT, but "+replyOr(r, err), "the server claims "+feat+" and does not do it: clients that trust FEAT fail; fix or stop announcing it")
}

// claimOnFile is claim with a command on a file of the login directory.
func (d *run) claimOnFile(file, feat, id, line string, want int) {
	if file == "" {
		if _, ok := d.feat[feat]; ok {
			d.r.add(id, feat, Skipped, "in FEAT; no file here to try it on", "")
			return
		}
	}
	d.claim(feat, id, feat, func() (ftp.Reply, error) { return d.c.cmd(line) }, want)
}

// host tries HOST on a connection of its own (it must come before USER).
func (d *run) host(ctx context.Context) (ftp.Reply, error) {
	c, greet, err := dial(ctx, d.o, false)
	if err != nil || greet.Code != 220 {
		return greet, err
	}
	defer c.close()
	return c.cmd("HOST " + d.o.serverName())
}

// passivePort asks for a passive port as a client does: EPSV on IPv6
// (PASV is IPv4 only, RFC 2428) or when PASV is refused, else PASV; the
// port is on the control connection's address.
func (d *run) passivePort() (netip.AddrPort, error) {
	peer := d.c.remote.Addr()
	if peer.Is4() {
		ap, r, err := d.c.pasv()
		if err != nil {
			return netip.AddrPort{}, err
		}
		if r.Code == 227 {
			return netip.AddrPortFrom(peer, ap.Port()), nil
		}
	}
	port, r, err := d.c.epsv()
	if err != nil {
		return netip.AddrPort{}, err
	}
	if r.Code != 229 {
		return netip.AddrPort{}, fmt.Errorf("EPSV: %s", firstLine(r))
	}
	return netip.AddrPortFrom(peer, port), nil
}

// passiveData opens a passive data connection to the control address.
func (d *run) passiveData(ctx context.Context) (net.Conn, error) {
	ap, err := d.passivePort()
	if err != nil {
		return nil, err
	}
	return d.c.dialData(ctx, ap, netip.Addr{})
}

// dataCmd runs a listing command over a passive data connection and
// returns its final reply.
func (d *run) dataCmd(ctx context.Context, verb string) (ftp.Reply, error) {
	dc, err := d.passiveData(ctx)
	if err != nil {
		return ftp.Reply{}, err
	}
	_, final, err := d.c.transfer(verb, dc, nil, 4<<20, false)
	return final, err
}

// someFile finds a regular file in the login directory (NLST, then SIZE
// on the names), for the checks that need one.
func (d *run) someFile(ctx context.Context) string {
	dc, err := d.passiveData(ctx)
	if err != nil {
		return ""
	}
	data, final, err := d.c.transfer("NLST", dc, nil, 1<<20, false)
	if err != nil || final.Class() != 2 {
		return ""
	}
	tries := 0
	for _, name := range strings.Split(strings.ReplaceAll(string(data), "\r", ""), "\n") {
		if name == "" || strings.ContainsAny(name, "\n") {
			continue
		}
		if r, err := d.c.cmd("SIZE " + name); err == nil && r.Code == 213 {
			return name
		}
		if tries++; tries == 5 {
			break
		}
	}
	return ""
}
