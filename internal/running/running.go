// Package running counts the uploads in progress in this process, by
// file, so that a storage backend can refuse to resume a file that
// another upload still writes: that upload's bytes are not yet where a
// resume would find them, and the bytes the client would skip are not
// the ones stored.
package running

import (
	"fmt"
	"sync"

	"github.com/ferryftp/ferry/storage"
)

// Set counts uploads by key. The zero value is empty and ready.
type Set struct {
	mu sync.Mutex
	n  map[string]int
}

// Start counts an upload of key. When resume is set and another upload
// of key is running, it returns false and counts nothing.
func (s *Set) Start(key string, resume bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if resume && s.n[key] > 0 {
		return false
	}
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[key]++
	return true
}

// End uncounts an upload Start counted.
func (s *Set) End(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[key]--; s.n[key] <= 0 {
		delete(s.n, key)
	}
}

// Create counts an upload of key while create makes it: with resume set
// and another upload of key running, it is storage.ErrBusy and create
// is not called; a create that fails is uncounted. The caller Ends key
// when the upload it got ends.
func Create[U any](s *Set, key string, resume bool, create func() (U, error)) (U, error) {
	if !s.Start(key, resume) {
		var none U
		return none, fmt.Errorf("%w: an upload of this file is still running", storage.ErrBusy)
	}
	u, err := create()
	if err != nil {
		s.End(key)
	}
	return u, err
}
