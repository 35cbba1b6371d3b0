//go:build !linux

package bigbuf

import "errors"

func mapBuffer(n int) ([]byte, error) { return nil, errors.ErrUnsupported }

func releasePages(b []byte) {}
