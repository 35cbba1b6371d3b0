//go:build !unix

package main

import (
	"errors"

	"github.com/ferryftp/ferry/config"
)

// dropTo is the user a root-started server becomes; there is no such
// thing where setuid(2) does not exist.
type dropTo struct{ uid, gid int }

// privilegeDrop accepts only an empty name here: run_as needs Unix.
func privilegeDrop(name string) (*dropTo, error) {
	if name == "" {
		return nil, nil
	}
	return nil, errors.New("run_as: not supported on this platform")
}

func (d *dropTo) apply(cfg config.Config, usersFile string) error { return nil }
