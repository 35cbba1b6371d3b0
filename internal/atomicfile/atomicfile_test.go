package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWritePrivate: the file has the data and mode 0600, its directory is
// made, and no temporary file stays.
func TestWritePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	p := filepath.Join(dir, "users.toml")
	for _, data := range []string{"one", "two, longer"} {
		if err := WritePrivate(p, []byte(data)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != data {
			t.Fatalf("read %q, want %q", b, data)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("%d entries in the directory, want 1", len(es))
	}
}
