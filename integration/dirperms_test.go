package integration

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/client"
)

// TestDirPermissions: per-directory permissions against every verb, and
// in MLSD's perm fact.
func TestDirPermissions(t *testing.T) {
	wd := t.TempDir()
	usersFile := filepath.Join(wd, "users.toml")
	ferryUser(t, usersFile, "pw", "add", "alice", "--home", "alice",
		"--dir", "/incoming=list,upload", "--dir", "/pub=read-only", "--dir", "/pub/drop=upload", "--dir", "/private=none")
	home := filepath.Join(wd, "alice")
	for _, d := range []string{"incoming", "pub/drop", "private"} {
		os.MkdirAll(filepath.Join(home, d), 0o755)
	}
	for _, f := range []string{"incoming/old.txt", "pub/a.txt", "private/s.txt", "top.txt"} {
		os.WriteFile(filepath.Join(home, f), []byte("content of "+f), 0o644)
	}
	s := &server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1"))), root: filepath.Join(wd, "root"), wd: wd}
	os.Mkdir(s.root, 0o755)
	s.start("--users", usersFile)
	defer s.stop()
	ctx := context.Background()
	c, err := client.Dial(ctx, s.addr, &client.Config{User: "alice", Password: "pw", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	code := func(line string) int {
		r, _ := c.Quote(ctx, line)
		return r.Code
	}
	stor := func(p string) error {
		_, err := c.Store(ctx, p, strings.NewReader("new"), nil)
		return err
	}
	retr := func(p string) error {
		d, err := c.Retrieve(ctx, p, nil)
		if err == nil {
			d.Close()
		}
		return err
	}
	list := func(p string) error {
		_, err := c.List(ctx, p)
		return err
	}
	check := func(what string, err error, allowed bool) {
		t.Helper()
		if (err == nil) != allowed {
			t.Errorf("%s: %v, want allowed=%v", what, err, allowed)
		}
	}
	okCode := func(what string, got int, allowed bool) {
		t.Helper()
		if (got/100 == 2 || got/100 == 3) != allowed || (!allowed && got != 550) {
			t.Errorf("%s: %d, want allowed=%v (denied = 550)", what, got, allowed)
		}
	}
	// The root: read-write (all).
	check("STOR /new.txt", stor("new.txt"), true)
	check("STOR over /top.txt", stor("top.txt"), true)
	okCode("MKD /made", code("MKD made"), true)
	// /incoming: list and upload only.
	check("LIST /incoming", list("incoming"), true)
	check("STOR a new file in /incoming", stor("incoming/up.txt"), true)
	check("STOR over a file in /incoming", stor("incoming/old.txt"), false)
	check("APPE to a file in /incoming", func() error {
		_, err := c.Store(ctx, "incoming/old.txt", strings.NewReader("x"), &client.TransferOptions{Append: true})
		return err
	}(), false)
	check("RETR from /incoming", retr("incoming/old.txt"), false)
	okCode("HASH in /incoming", code("HASH incoming/old.txt"), false)
	okCode("DELE in /incoming", code("DELE incoming/old.txt"), false)
	okCode("MKD in /incoming", code("MKD incoming/sub"), false)
	okCode("RNFR in /incoming", code("RNFR incoming/old.txt"), false)
	okCode("MFMT in /incoming", code("MFMT 20200101000000 incoming/old.txt"), false)
	okCode("SITE CHMOD in /incoming", code("SITE CHMOD 600 incoming/old.txt"), false)
	// /pub: read-only; /pub/drop: upload only.
	check("RETR from /pub", retr("pub/a.txt"), true)
	okCode("HASH in /pub", code("HASH pub/a.txt"), true)
	check("STOR in /pub", stor("pub/b.txt"), false)
	okCode("DELE in /pub", code("DELE pub/a.txt"), false)
	okCode("RMD /pub/drop", code("RMD pub/drop"), false)
	check("STOR in /pub/drop", stor("pub/drop/d.txt"), true)
	check("LIST /pub/drop", list("pub/drop"), false)
	// /private: nothing; the rename into it is refused too.
	check("LIST /private", list("private"), false)
	check("RETR from /private", retr("private/s.txt"), false)
	okCode("MLST /private/s.txt", code("MLST private/s.txt"), false)
	okCode("RNFR /top.txt", code("RNFR top.txt"), true)
	okCode("RNTO /private/t.txt", code("RNTO private/t.txt"), false)
	if _, err := os.Stat(filepath.Join(home, "top.txt")); err != nil {
		t.Errorf("the refused rename moved the file: %v", err)
	}
	// What a refused STOR did not write.
	if b, _ := os.ReadFile(filepath.Join(home, "incoming/old.txt")); string(b) != "content of incoming/old.txt" {
		t.Errorf("incoming/old.txt changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(home, "pub/b.txt")); err == nil {
		t.Error("a refused STOR created pub/b.txt")
	}

	// MLSD perm facts say the same.
	want := map[string]string{"incoming": "lce", "pub": "le", "private": "e", "top.txt": "adfrw", "made": "flcdmpe"}
	es, err := c.List(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if w, ok := want[e.Name]; ok && e.Perm != w {
			t.Errorf("MLSD / %s: perm=%q, want %q", e.Name, e.Perm, w)
		}
	}
	es, _ = c.List(ctx, "incoming")
	for _, e := range es {
		if e.Name == "old.txt" && e.Perm != "" {
			t.Errorf("MLSD /incoming old.txt: perm=%q, want none", e.Perm)
		}
	}
	es, _ = c.List(ctx, "pub")
	for _, e := range es {
		if e.Name == "a.txt" && e.Perm != "r" {
			t.Errorf("MLSD /pub a.txt: perm=%q, want r", e.Perm)
		}
		if e.Name == "drop" && e.Perm != "ce" {
			t.Errorf("MLSD /pub drop: perm=%q, want ce", e.Perm)
		}
	}
}
