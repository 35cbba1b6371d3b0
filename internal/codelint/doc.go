// Package codelint holds tests that keep the codebase's shape: no
// function longer than a screen or two.
package codelint
