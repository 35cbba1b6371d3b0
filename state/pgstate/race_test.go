//go:build race

package pgstate

import "time"

// within is how soon a change must reach another node in these tests: a
// second, as promised, but five under the race detector, which slows
// every goroutine several times over.
const within = 5 * time.Second
