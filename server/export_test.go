package server

// SetWatchHook makes s call f each time a long command's watcher of the
// control connection starts (tests wait for it instead of sleeping).
func SetWatchHook(s *Server, f func()) { s.watchHook = f }

// SetParkHook makes s call f each time one of its sessions parks (true)
// or resumes (false).
func SetParkHook(s *Server, f func(parked bool)) { s.parkHook = f }

// SetAbortHook makes s call f each time one of its sessions has aborted
// its transfer (ABOR, or the session's end).
func SetAbortHook(s *Server, f func()) { s.abortHook = f }

// Parked returns the number of sessions parked in the process.
func Parked() int {
	thePoller.mu.Lock()
	defer thePoller.mu.Unlock()
	return len(thePoller.parked)
}

// ParkAfter is how long a session waits on its goroutine before it parks.
const ParkAfter = parkAfter

// CanPark says whether sessions park on this system.
const CanPark = canPark
