//go:build !linux

package events

import "errors"

// mapSegment: segments are mapped on Linux only (where fallocate makes a
// full disk refuse a segment rather than fault in it).
func mapSegment(path string, size int) (segWriter, error) {
	return nil, errors.ErrUnsupported
}
