package server_test

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/ftptest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestTranscripts replays each testdata/transcripts/*.txt file: lines
// starting "> " are sent, and the server's replies must equal the "< "
// lines that follow, byte for byte. Run with -update to rewrite them.
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/transcripts/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			srv := ftptest.NewServer(t, ftptest.Options{})
			c := srv.Dial(t)
			var out strings.Builder
			var want strings.Builder
			for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
				switch {
				case strings.HasPrefix(l, "> "):
					cmd := l[2:]
					out.WriteString(l + "\n")
					want.WriteString(l + "\n")
					c.Send(unescape(cmd))
					for _, r := range c.ReadRaw() {
						out.WriteString("< " + r + "\n")
					}
				case strings.HasPrefix(l, "< "):
					want.WriteString(l + "\n")
				case strings.HasPrefix(l, "#"), l == "":
					out.WriteString(l + "\n")
					want.WriteString(l + "\n")
				default:
					t.Fatalf("bad transcript line %q", l)
				}
			}
			if *update {
				os.WriteFile(f, []byte(out.String()), 0o644)
				return
			}
			if out.String() != want.String() {
				t.Errorf("transcript differs.\n--- got\n%s\n--- want\n%s", out.String(), want.String())
			}
		})
	}
}

// unescape turns \xHH in a transcript line into that byte.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
