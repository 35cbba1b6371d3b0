package doctor

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// writes, with Options.Write, uploads a 64 KiB test file in two halves
// (the second a resume), renames, downloads, hashes and removes it; with
// Options.Speed, also 16 MiB up and down.
func (d *run) writes(ctx context.Context) {
	if d.o.Write == "" {
		return
	}
	if !d.pasvWorks {
		d.r.add("write", "Writes", Skipped, "no working passive data connection", "")
		return
	}
	if r, err := d.c.cmd("CWD " + d.o.Write); err != nil || r.Code != 250 {
		d.r.add("write", "Writes in "+d.o.Write, Problem, "CWD: "+replyOr(r, err), "give a directory the user may write to")
		return
	}
	data := make([]byte, 64<<10)
	rand.Read(data)
	name := fmt.Sprintf("ferry-doctor-%d.bin", time.Now().UnixNano())
	step := func(id, title string, ok bool, evidence, fix string) bool {
		v := OK
		if !ok {
			v = Problem
		}
		d.r.add(id, title, v, evidence, fix)
		return ok
	}
	ok, ev := d.store("STOR "+name, 0, data[:32<<10])
	if !step("write.upload", "Upload", ok, ev, "the user cannot write here: check the permissions (and the quota)") {
		return
	}
	defer d.c.cmd("DELE " + name)
	ok, ev = d.store("STOR "+name, 32<<10, data[32<<10:])
	if ok {
		r, _ := d.c.cmd("SIZE " + name)
		ok, ev = strings.TrimSpace(r.Text) == strconv.Itoa(len(data)), "REST 32768 + STOR, then SIZE: "+firstLine(r)
	}
	step("write.resume", "Resumed upload (REST + STOR)", ok, ev, "uploads cannot be resumed: clients start over after a cut")
	to := name + ".renamed"
	r, err := d.c.cmd("RNFR " + name)
	if err == nil && r.Code == 350 {
		r, err = d.c.cmd("RNTO " + to)
	}
	if step("write.rename", "Rename", err == nil && r.Code == 250, replyOr(r, err), "renames are refused") {
		name = to
	}
	got, ev := d.fetch("RETR " + name)
	step("write.download", "Download", bytes.Equal(got, data), ev, "the file read back differs from the one written")
	d.hash(name, data)
	r, err = d.c.cmd("DELE " + name)
	step("write.delete", "Delete", err == nil && r.Code == 250, replyOr(r, err), "deletes are refused: the test file stays")
	if d.o.Speed {
		d.speed(ctx)
	}
}

// store uploads data with the command line, after REST rest when it is
// not 0 (REST comes right before the command, after PASV).
func (d *run) store(line string, rest int64, data []byte) (bool, string) {
	dc, err := d.passiveData(context.Background())
	if err != nil {
		return false, err.Error()
	}
	if rest > 0 {
		if r, err := d.c.cmd("REST " + strconv.FormatInt(rest, 10)); err != nil || r.Code != 350 {
			dc.Close()
			return false, "REST: " + replyOr(r, err)
		}
	}
	_, final, err := d.c.transfer(line, dc, data, 0, false)
	return err == nil && final.Code == 226, fmt.Sprintf("%s (%d bytes): %s", line, len(data), replyOr(final, err))
}

// fetch downloads with the command line.
func (d *run) fetch(line string) ([]byte, string) {
	dc, err := d.passiveData(context.Background())
	if err != nil {
		return nil, err.Error()
	}
	data, final, err := d.c.transfer(line, dc, nil, 64<<20, false)
	return data, fmt.Sprintf("%s: %d bytes, %s", line, len(data), replyOr(final, err))
}

// hash asks the server for the file's SHA-256 (HASH, else XSHA256).
func (d *run) hash(name string, data []byte) {
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	line := ""
	switch {
	case d.feat["HASH"] != "" && strings.Contains(strings.ToUpper(d.feat["HASH"]), "SHA-256"):
		d.c.cmd("OPTS HASH SHA-256")
		line = "HASH " + name
	case hasFeat(d.feat, "XSHA256"):
		line = "XSHA256 " + name
	default:
		d.r.add("write.hash", "Server-side hash", Skipped, "no HASH SHA-256 or XSHA256 in FEAT", "")
		return
	}
	r, err := d.c.cmd(line)
	if err == nil && r.Code/100 == 2 && strings.Contains(strings.ToLower(r.Text), want) {
		d.r.add("write.hash", "Server-side hash", OK, line+": matches the file's SHA-256", "")
		return
	}
	d.r.add("write.hash", "Server-side hash", Problem, line+": "+replyOr(r, err)+", want "+want[:16]+"…", "the server's hash of a file is wrong")
}

func hasFeat(f map[string]string, name string) bool { _, ok := f[name]; return ok }

// speed uploads and downloads 16 MiB and reports the rates.
func (d *run) speed(ctx context.Context) {
	data := make([]byte, 16<<20)
	name := path.Base(fmt.Sprintf("ferry-doctor-speed-%d.bin", time.Now().UnixNano()))
	start := time.Now()
	ok, ev := d.store("STOR "+name, 0, data)
	up := time.Since(start)
	if !ok {
		d.r.add("speed", "Throughput", Problem, ev, "")
		return
	}
	defer d.c.cmd("DELE " + name)
	start = time.Now()
	got, ev := d.fetch("RETR " + name)
	down := time.Since(start)
	if len(got) != len(data) {
		d.r.add("speed", "Throughput", Problem, ev, "")
		return
	}
	mib := float64(len(data)) / (1 << 20)
	d.r.add("speed", "Throughput", OK, fmt.Sprintf("16 MiB up at %.1f MiB/s, down at %.1f MiB/s", mib/up.Seconds(), mib/down.Seconds()), "")
}
