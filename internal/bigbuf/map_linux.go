package bigbuf

import "syscall"

// mapBuffer maps n bytes of private anonymous memory, in huge pages where
// the kernel has them (transparent huge pages, "madvise" or "always"): a
// buffer whose pages went back is faulted in again 2 MiB at a time, not
// 4 KiB, which kept a 1 GiB upload after an idle pause at the speed of a
// warm one (a 16 MiB part is 8 faults instead of 4,096).
var mapBuffer = func(n int) ([]byte, error) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err == nil {
		syscall.Madvise(b, madvHugepage) // a hint: without huge pages, 4 KiB ones
	}
	return b, err
}

// madvHugepage is MADV_HUGEPAGE (linux/mman.h), which the syscall package
// does not name.
const madvHugepage = 14

// releasePages gives b's pages back; the next touch finds zeros.
func releasePages(b []byte) {
	syscall.Madvise(b, syscall.MADV_DONTNEED)
}
