package events

import (
	"os"
	"syscall"
)

// mapped is a segment file of fixed size mapped into memory; its blocks
// are allocated up front, so a full disk refuses the segment at its start
// rather than faulting (SIGBUS) in the middle of a record.
type mapped struct {
	f    *os.File
	data []byte
	n    int
}

func mapSegment(path string, size int) (segWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	if err := syscall.Fallocate(fd, 0, 0, int64(size)); err != nil {
		f.Close()
		return nil, err
	}
	data, err := syscall.Mmap(fd, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, err
	}
	// Fault every page in now, writable, in one call: a page first
	// touched by a record would trap once each (a few records a page),
	// and a trap costs more than the copy, most of all in a VM.
	// MADV_POPULATE_WRITE is Linux 5.14; before it, pages fault as used.
	syscall.Madvise(data, madvPopulateWrite)
	return &mapped{f: f, data: data}, nil
}

// madvPopulateWrite is MADV_POPULATE_WRITE (linux/mman.h), which the
// syscall package does not name.
const madvPopulateWrite = 23

func (m *mapped) Write(p []byte) (int, error) {
	if len(p) > len(m.data)-m.n {
		return 0, errSegmentFull
	}
	m.n += copy(m.data[m.n:], p)
	return len(p), nil
}

func (m *mapped) reset() {
	clear(m.data[:m.n])
	m.n = 0
}

func (m *mapped) Close() error {
	err := syscall.Munmap(m.data)
	if terr := m.f.Truncate(int64(m.n)); err == nil {
		err = terr
	}
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}
