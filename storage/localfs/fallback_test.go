package localfs

import (
	"testing"

	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/storagetest"
)

// TestConformanceWithoutOpenat2 runs the suite on the os.Root path alone,
// as on kernels without openat2.
func TestConformanceWithoutOpenat2(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.FS {
		f, err := New(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		f.fast.disabled.Store(true)
		t.Cleanup(func() { f.Close() })
		return f
	})
}
