//go:build unix

package localfs

import (
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysIdent is the device and inode of fi, its identity for MLST's unique
// fact.
func sysIdent(fi fs.FileInfo) any {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return ident{uint64(st.Dev), uint64(st.Ino)}
	}
	return nil
}

// available is statfs(2)'s space free to unprivileged users on r's file
// system.
func available(r *os.Root) (uint64, error) {
	d, err := r.Open(".")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(d.Fd()), &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
