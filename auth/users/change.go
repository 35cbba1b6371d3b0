package users

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/ferryftp/ferry/auth/password"
	"github.com/ferryftp/ferry/internal/bytesize"
)

// Change is a change to an account: the fields set are applied, the
// others kept. `ferry user` and the admin API both make one, so that an
// account is changed, and checked, one way.
type Change struct {
	// Password is the new password in clear text; Apply hashes it.
	Password    *string        `json:"password,omitempty"`
	Home        *string        `json:"home,omitempty"`
	Storage     *string        `json:"storage,omitempty"`
	Permission  *string        `json:"permission,omitempty"`
	FXP         *[]string      `json:"fxp,omitempty"`
	AllowFrom   *[]string      `json:"allow_from,omitempty"`
	Expires     *string        `json:"expires,omitempty"`
	Disabled    *bool          `json:"disabled,omitempty"`
	MaxRateUp   *bytesize.Size `json:"max_rate_up,omitempty"`
	MaxRateDown *bytesize.Size `json:"max_rate_down,omitempty"`
	QuotaBytes  *bytesize.Size `json:"quota_bytes,omitempty"`
	QuotaFiles  *int64         `json:"quota_files,omitempty"`
	Dirs        *[]DirRule     `json:"dirs,omitempty"`
}

// Empty says whether c changes nothing.
func (c Change) Empty() bool { return c == Change{} }

// Apply makes the change on u, then checks u as a users file is checked.
func (c Change) Apply(u *User) error {
	if c.Password != nil {
		if *c.Password == "" {
			return errors.New("the password is empty")
		}
		h, err := password.Hash(*c.Password)
		if err != nil {
			return err
		}
		u.Password = h
	}
	set(&u.Home, c.Home)
	set(&u.Storage, c.Storage)
	set(&u.Permission, c.Permission)
	set(&u.FXP, c.FXP)
	set(&u.AllowFrom, c.AllowFrom)
	set(&u.Expires, c.Expires)
	set(&u.Disabled, c.Disabled)
	set(&u.MaxRateUp, c.MaxRateUp)
	set(&u.MaxRateDown, c.MaxRateDown)
	set(&u.QuotaBytes, c.QuotaBytes)
	set(&u.QuotaFiles, c.QuotaFiles)
	set(&u.Dirs, c.Dirs)
	if u.QuotaFiles < 0 || u.QuotaBytes < 0 || u.MaxRateUp < 0 || u.MaxRateDown < 0 {
		return errors.New("quotas and rates are 0 (none) or more")
	}
	return u.validate()
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// CheckShared checks u for a store that several nodes read (a database):
// its files are a storage URL or an absolute home, as a relative home
// means a different directory on each node.
func (u *User) CheckShared() error {
	if u.Storage == "" && !filepath.IsAbs(u.Home) {
		return fmt.Errorf("user %q: home %q must be an absolute directory (every node reads it), or use storage", u.Name, u.Home)
	}
	return nil
}

// Repo holds a list of users: a users file (File) or a cluster's
// database.
type Repo interface {
	Users(ctx context.Context) ([]User, error)
	SaveUsers(ctx context.Context, list []User) error
}

// File is the users file at a path as a Repo.
type File string

func (f File) Users(context.Context) ([]User, error)          { return Load(string(f)) }
func (f File) SaveUsers(_ context.Context, list []User) error { return Save(string(f), list) }
func (f File) String() string                                 { return string(f) }

// Editor is a Repo that changes its users in one step no other change
// can come between (a database transaction).
type Editor interface {
	EditUsers(ctx context.Context, edit func([]User) ([]User, error)) error
}

// Edit changes the users of r as edit says: in one step when r is an
// Editor, else read, edited and saved (the users file: one writer at a
// time is the caller's to ensure).
func Edit(ctx context.Context, r Repo, edit func([]User) ([]User, error)) error {
	if e, ok := r.(Editor); ok {
		return e.EditUsers(ctx, edit)
	}
	list, err := r.Users(ctx)
	if err != nil {
		return err
	}
	if list, err = edit(list); err != nil {
		return err
	}
	return r.SaveUsers(ctx, list)
}
