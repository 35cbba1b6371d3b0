package localfs

// DisableFastPath makes f use os.Root only (tests of the fallback).
func DisableFastPath(f *FS) { f.fast.disabled.Store(true) }
