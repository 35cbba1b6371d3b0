//go:build !race

package pgstate

import "time"

// within is how soon a change must reach another node in these tests: a
// second, as promised (see race_test.go for the race detector's).
const within = time.Second
