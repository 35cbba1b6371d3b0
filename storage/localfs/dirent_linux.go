package localfs

import (
	"io/fs"
	"os"
	"syscall"
	"unsafe"
)

// dirent is a directory entry as getdents64(2) returns it: a name and,
// where the file system tells, its type, without a stat.
type dirent struct {
	name string
	typ  fs.FileMode // ModeDir, ModeSymlink, 0 (regular), or modeUnknown
}

const modeUnknown = fs.ModeIrregular

// direntReader reads a directory with getdents64 on its descriptor. A
// directory opened through an os.Root makes (*os.File).ReadDir lstat every
// entry, one by one; this reads names and types only.
type direntReader struct {
	f   *os.File
	buf []byte
	pos int
	end int
}

func newDirentReader(f *os.File) *direntReader {
	return &direntReader{f: f, buf: make([]byte, 32<<10)}
}

// next appends up to n entries to out; it returns out unchanged at the end.
func (r *direntReader) next(n int, out []dirent) ([]dirent, error) {
	fd := int(r.f.Fd())
	for len(out) < n {
		if r.pos >= r.end {
			m, err := syscall.Getdents(fd, r.buf)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return out, err
			}
			if m <= 0 {
				return out, nil
			}
			r.pos, r.end = 0, m
		}
		rec := r.buf[r.pos:r.end]
		if len(rec) < 19 {
			r.pos = r.end
			continue
		}
		reclen := int(*(*uint16)(unsafe.Pointer(&rec[16])))
		if reclen < 19 || reclen > len(rec) {
			r.pos = r.end
			continue
		}
		typ := rec[18]
		nameb := rec[19:reclen]
		for i, c := range nameb {
			if c == 0 {
				nameb = nameb[:i]
				break
			}
		}
		r.pos += reclen
		name := string(nameb)
		if name == "." || name == ".." {
			continue
		}
		var mode fs.FileMode
		switch typ {
		case syscall.DT_REG:
		case syscall.DT_DIR:
			mode = fs.ModeDir
		case syscall.DT_LNK:
			mode = fs.ModeSymlink
		case syscall.DT_UNKNOWN:
			mode = modeUnknown
		default:
			mode = fs.ModeIrregular | fs.ModeDevice
		}
		out = append(out, dirent{name, mode})
	}
	return out, nil
}
