package server

// SetWatchHook makes s call f each time a long command's watcher of the
// control connection starts (tests wait for it instead of sleeping).
func SetWatchHook(s *Server, f func()) { s.watchHook = f }
