//go:build !linux

package bigbuf

import "errors"

var mapBuffer = func(n int) ([]byte, error) { return nil, errors.ErrUnsupported }

func releasePages(b []byte) {}
