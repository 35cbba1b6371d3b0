//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/ferryftp/ferry/config"
)

// dropTo is the user a root-started server becomes once its ports are bound.
type dropTo struct {
	uid, gid int
	groups   []int
}

// privilegeDrop looks up name (empty: no drop). It is an error to ask for
// it without being root, unless name is the current user.
func privilegeDrop(name string) (*dropTo, error) {
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("run_as %q: no such user", name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid == 0 {
		return nil, fmt.Errorf("run_as %q: that is root", name)
	}
	if os.Geteuid() != 0 {
		if os.Geteuid() == uid {
			return nil, nil // already that user
		}
		return nil, fmt.Errorf("run_as %q: only a server started as root can change user", name)
	}
	d := &dropTo{uid: uid, gid: gid, groups: []int{gid}}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil && g != gid {
				d.groups = append(d.groups, g)
			}
		}
	}
	return d, nil
}

// apply hands Ferry's own state (the data directory, its users file, TLS
// certificate and key, and the default files directory) to the user if
// root owns them, so the server can still reload them, and then becomes
// that user for good: supplementary groups, group, user, on every thread.
func (d *dropTo) apply(cfg config.Config, usersFile string) error {
	state := []string{cfg.DataDir, filepath.Join(cfg.DataDir, "files"), usersFile}
	if cert, key, generated := cfg.TLSCertFiles(); generated {
		state = append(state, cert, key)
	}
	for _, p := range state {
		if p == "" {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == 0 {
			if err := os.Lchown(p, d.uid, d.gid); err != nil {
				return fmt.Errorf("run_as: handing %s over: %v", p, err)
			}
		}
	}
	if err := syscall.Setgroups(d.groups); err != nil {
		return fmt.Errorf("run_as: setgroups: %v", err)
	}
	if err := syscall.Setgid(d.gid); err != nil {
		return fmt.Errorf("run_as: setgid: %v", err)
	}
	if err := syscall.Setuid(d.uid); err != nil {
		return fmt.Errorf("run_as: setuid: %v", err)
	}
	if os.Geteuid() != d.uid || os.Getegid() != d.gid || syscall.Setuid(0) == nil {
		return errors.New("run_as: the privileges did not drop")
	}
	return nil
}
