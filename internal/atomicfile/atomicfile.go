// Package atomicfile writes a file whole or not at all: the users file,
// the admins file and the quota usage are replaced by a rename, so a
// crash or a full disk never leaves half of one.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WritePrivate writes data to path through a temporary file in its
// directory (made 0700 when missing), readable by its owner only, then
// renames it into place.
func WritePrivate(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
