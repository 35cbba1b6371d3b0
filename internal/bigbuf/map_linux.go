package bigbuf

import "syscall"

// mapBuffer maps n bytes of private anonymous memory.
func mapBuffer(n int) ([]byte, error) {
	return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
}

// releasePages gives b's pages back; the next touch finds zeros.
func releasePages(b []byte) {
	syscall.Madvise(b, syscall.MADV_DONTNEED)
}
