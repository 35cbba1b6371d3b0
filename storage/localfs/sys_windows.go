//go:build windows

package localfs

import (
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// sysIdent: Windows file information carries no inode, so files have no
// unique fact.
func sysIdent(fi fs.FileInfo) any { return nil }

// available is GetDiskFreeSpaceEx's space free to this user on r's volume.
func available(r *os.Root) (uint64, error) {
	p, err := windows.UTF16PtrFromString(r.Name())
	if err != nil {
		return 0, err
	}
	var free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &free, nil, nil); err != nil {
		return 0, err
	}
	return free, nil
}
