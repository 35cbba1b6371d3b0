//go:build !linux

package localfs

import (
	"io"
	"io/fs"
	"os"
)

type dirent struct {
	name string
	typ  fs.FileMode
}

const modeUnknown = fs.ModeIrregular

type direntReader struct{ f *os.File }

func newDirentReader(f *os.File) *direntReader { return &direntReader{f} }

func (r *direntReader) next(n int, out []dirent) ([]dirent, error) {
	ents, err := r.f.ReadDir(n)
	for _, e := range ents {
		t := e.Type()
		if t&^(fs.ModeDir|fs.ModeSymlink) != 0 {
			t = fs.ModeIrregular | fs.ModeDevice
		}
		out = append(out, dirent{e.Name(), t})
	}
	if err == io.EOF {
		err = nil
	}
	return out, err
}
