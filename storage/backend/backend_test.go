package backend

import (
	"context"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/storage/localfs"
)

func TestLocations(t *testing.T) {
	for loc, dir := range map[string]string{"/srv/ftp": "/srv/ftp", "ftp-files": "ftp-files", "file:///srv/ftp": "/srv/ftp",
		"file://localhost/srv": "/srv", `C:\ftp`: `C:\ftp`, "./a://b": "./a://b"} {
		if got, ok := LocalDir(loc); !ok || got != dir {
			t.Errorf("LocalDir(%q) = %q %v, want %q", loc, got, ok, dir)
		}
		if err := Check(loc); err != nil {
			t.Errorf("Check(%q): %v", loc, err)
		}
	}
	for loc, want := range map[string]string{
		"s3://user:secret@bucket":    "credentials do not belong",
		"gs://bucket":                "unknown scheme",
		"file://otherhost/srv":       "file:///absolute/path",
		"https://x:secret@host/path": "unknown scheme",
	} {
		err := Check(loc)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q): %v, want %q", loc, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Check(%q) repeats the secret: %v", loc, err)
		}
	}
	if err := Check("s3://bucket/prefix?endpoint=http://127.0.0.1:7070"); err != nil {
		t.Error(err)
	}
}

func TestOpenLocal(t *testing.T) {
	dir := t.TempDir()
	var o Opener
	for _, loc := range []string{dir, "file://" + dir} {
		f, err := o.Open(context.Background(), loc)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := f.(*localfs.FS); !ok {
			t.Errorf("%s: %T", loc, f)
		}
	}
}
