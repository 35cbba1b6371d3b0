//go:build !linux

package localfs

import (
	"io/fs"
	"os"
	"sync/atomic"
)

// fastPath is Linux-only; elsewhere every call goes through os.Root.
type fastPath struct {
	disabled atomic.Bool
	calls    atomic.Int64
}

func (p *fastPath) init(r *os.Root) {}
func (p *fastPath) close()          {}
func (p *fastPath) open(name string, flags int, mode fs.FileMode) (*os.File, bool, error) {
	return nil, false, nil
}
func (p *fastPath) rename(from, to string) (bool, error) { return false, nil }

var errBeneath = fs.ErrPermission
