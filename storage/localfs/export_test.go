package localfs

// DisableFastPath makes f use os.Root only (tests of the fallback).
func DisableFastPath(f *FS) { f.fast.disabled.Store(true) }

// FastPathCalls is the number of openat2 calls f made.
func FastPathCalls(f *FS) int64 { return f.fast.calls.Load() }
