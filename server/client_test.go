package server_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"

	"github.com/ferryftp/ferry/ftptest"
	"github.com/ferryftp/ferry/storage/localfs"
)

// TestIndependentClient drives the server with jlaffaye/ftp, an FTP client
// that shares no code with Ferry, over IPv4 and IPv6, with EPSV and PASV.
func TestIndependentClient(t *testing.T) {
	for _, tc := range []struct {
		name, network string
		opts          []jftp.DialOption
	}{
		{"ipv4-epsv", "tcp4", nil},
		{"ipv4-pasv", "tcp4", []jftp.DialOption{jftp.DialWithDisabledEPSV(true)}},
		{"ipv6-epsv", "tcp6", nil},
		{"ipv4-list", "tcp4", []jftp.DialOption{jftp.DialWithDisabledMLSD(true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			fsys, _ := localfs.New(dir, localfs.Options{})
			srv := ftptest.NewServer(t, ftptest.Options{FS: fsys, Network: tc.network})
			c, err := jftp.Dial(srv.Addr, append(tc.opts, jftp.DialWithTimeout(10*time.Second))...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Quit()
			if err := c.Login(ftptest.Writer, ftptest.Password); err != nil {
				t.Fatal(err)
			}
			data := randBytes(1<<20 + 3)
			must(t, c.MakeDir("dir"))
			must(t, c.ChangeDir("dir"))
			if cur, _ := c.CurrentDir(); cur != "/dir" {
				t.Fatalf("pwd %q", cur)
			}
			must(t, c.Stor("ünïcode name.bin", bytes.NewReader(data)))
			if b, _ := os.ReadFile(filepath.Join(dir, "dir", "ünïcode name.bin")); !bytes.Equal(b, data) {
				t.Fatal("stored bytes differ")
			}
			r, err := c.Retr("ünïcode name.bin")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			r.Close()
			if !bytes.Equal(got, data) {
				t.Fatal("retrieved bytes differ")
			}
			r, err = c.RetrFrom("ünïcode name.bin", 1000)
			if err != nil {
				t.Fatal(err)
			}
			got, _ = io.ReadAll(r)
			r.Close()
			if !bytes.Equal(got, data[1000:]) {
				t.Fatal("RetrFrom differs")
			}
			if n, err := c.FileSize("ünïcode name.bin"); err != nil || n != int64(len(data)) {
				t.Fatalf("size %d %v", n, err)
			}
			when := time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)
			must(t, c.SetTime("ünïcode name.bin", when))
			if mt, err := c.GetTime("ünïcode name.bin"); err != nil || !mt.Equal(when) {
				t.Fatalf("mtime %v %v", mt, err)
			}
			all, err := c.List("/dir")
			var ents []*jftp.Entry
			for _, e := range all {
				if e.Name != "." && e.Name != ".." {
					ents = append(ents, e)
				}
			}
			if err != nil || len(ents) != 1 || ents[0].Name != "ünïcode name.bin" || ents[0].Size != uint64(len(data)) || ents[0].Type != jftp.EntryTypeFile {
				t.Fatalf("list %+v %v", ents, err)
			}
			if !ents[0].Time.Equal(when) && tc.name != "ipv4-list" {
				t.Errorf("list time %v", ents[0].Time)
			}
			names, err := c.NameList("/dir")
			if err != nil || len(names) != 1 || names[0] != "/dir/ünïcode name.bin" {
				t.Fatalf("nlst %q %v", names, err)
			}
			must(t, c.Rename("ünïcode name.bin", "b"))
			must(t, c.Delete("b"))
			must(t, c.ChangeDirToParent())
			must(t, c.RemoveDir("dir"))
			if err := c.RemoveDir("dir"); err == nil || !strings.Contains(err.Error(), "550") {
				t.Fatalf("second RMD: %v", err)
			}
			must(t, c.NoOp())
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
