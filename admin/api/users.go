package api

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ferryftp/ferry/auth/users"
	"github.com/ferryftp/ferry/internal/bytesize"
)

// User is an account as the API shows it: every field but the password
// hash, with the usage of a user with a quota.
type User struct {
	Name        string          `json:"name"`
	Home        string          `json:"home,omitempty"`
	Storage     string          `json:"storage,omitempty"`
	Permission  string          `json:"permission"`
	FXP         []string        `json:"fxp"`
	AllowFrom   []string        `json:"allow_from"`
	Expires     string          `json:"expires,omitempty"`
	Disabled    bool            `json:"disabled"`
	MaxRateUp   bytesize.Size   `json:"max_rate_up"`
	MaxRateDown bytesize.Size   `json:"max_rate_down"`
	QuotaBytes  bytesize.Size   `json:"quota_bytes"`
	QuotaFiles  int64           `json:"quota_files"`
	Dirs        []users.DirRule `json:"dirs"`
	UsedBytes   *int64          `json:"used_bytes,omitempty"`
}

func view(u users.User, used map[string]int64) User {
	v := User{Name: u.Name, Home: u.Home, Storage: u.Storage, Permission: u.Permission, FXP: orEmpty(u.FXP),
		AllowFrom: orEmpty(u.AllowFrom), Expires: u.Expires, Disabled: u.Disabled, MaxRateUp: u.MaxRateUp,
		MaxRateDown: u.MaxRateDown, QuotaBytes: u.QuotaBytes, QuotaFiles: u.QuotaFiles, Dirs: orEmpty(u.Dirs)}
	if v.Permission == "" {
		v.Permission = users.ReadOnly
	}
	if n, ok := used[u.Name]; ok {
		v.UsedBytes = &n
	}
	return v
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// usersMu serializes the API's changes of the users in this process (a
// database's EditUsers also holds off other nodes).
var usersMu sync.Mutex

func (a *API) repo() (users.Repo, error) {
	if a.node.Users == nil {
		return nil, &Error{http.StatusNotImplemented, "this server has no users file or database"}
	}
	return a.node.Users, nil
}

// used is what each user with a quota stores.
func (a *API) used() map[string]int64 {
	m := map[string]int64{}
	if a.node.Quotas != nil {
		a.node.Quotas(func(user string, used, limit int64) { m[user] = used })
	}
	return m
}

// ListUsers returns the users whose name contains q, by name.
func (a *API) ListUsers(ctx context.Context, q string) ([]User, error) {
	repo, err := a.repo()
	if err != nil {
		return nil, err
	}
	list, err := repo.Users(ctx)
	if err != nil {
		return nil, err
	}
	used := a.used()
	out := []User{}
	for _, u := range list {
		if q == "" || strings.Contains(u.Name, q) {
			out = append(out, view(u, used))
		}
	}
	slices.SortFunc(out, func(x, y User) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// GetUser returns the user named name.
func (a *API) GetUser(ctx context.Context, name string) (User, error) {
	repo, err := a.repo()
	if err != nil {
		return User{}, err
	}
	list, err := repo.Users(ctx)
	if err != nil {
		return User{}, err
	}
	i := slices.IndexFunc(list, func(u users.User) bool { return u.Name == name })
	if i < 0 {
		return User{}, notFound("no user " + name)
	}
	return view(list[i], a.used()), nil
}

// edit changes the users as fn says (users.Edit) and has the server
// read them at once.
func (a *API) edit(ctx context.Context, fn func([]users.User) ([]users.User, error)) error {
	repo, err := a.repo()
	if err != nil {
		return err
	}
	usersMu.Lock()
	defer usersMu.Unlock()
	if err := users.Edit(ctx, repo, fn); err != nil {
		return err
	}
	if a.node.UsersChanged != nil {
		a.node.UsersChanged()
	}
	return nil
}

// CreateUser adds the user name with c (a password, and a home or a
// storage URL, are needed), read-write unless c says otherwise.
func (a *API) CreateUser(ctx context.Context, name string, c users.Change) error {
	if !users.ValidName(name) {
		return badRequest("a name of 1-64 letters, digits, . _ @ - is needed")
	}
	if c.Password == nil {
		return badRequest("a password is needed")
	}
	u := users.User{Name: name, Permission: users.ReadWrite}
	if err := c.Apply(&u); err != nil {
		return badRequest(err.Error())
	}
	if err := a.checkShared(&u); err != nil {
		return err
	}
	err := a.edit(ctx, func(list []users.User) ([]users.User, error) {
		if slices.ContainsFunc(list, func(o users.User) bool { return o.Name == name }) {
			return nil, &Error{http.StatusConflict, "user " + name + " exists"}
		}
		if u.Storage == "" {
			dir := u.Home
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(a.node.HomeBase, dir)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
		}
		return append(list, u), nil
	})
	if err == nil {
		a.changed(ctx, "user create", "user", name)
	}
	return err
}

// checkShared refuses, when the users are shared by nodes (no HomeBase),
// a home only this node would find (the database checks it too; this
// says so with a 400).
func (a *API) checkShared(u *users.User) error {
	if a.node.HomeBase != "" {
		return nil
	}
	if err := u.CheckShared(); err != nil {
		return badRequest(err.Error())
	}
	return nil
}

// ChangeUser applies c to the user name.
func (a *API) ChangeUser(ctx context.Context, name string, c users.Change) error {
	if c.Empty() {
		return badRequest("nothing to change")
	}
	err := a.edit(ctx, func(list []users.User) ([]users.User, error) {
		i := slices.IndexFunc(list, func(u users.User) bool { return u.Name == name })
		if i < 0 {
			return nil, notFound("no user " + name)
		}
		if err := c.Apply(&list[i]); err != nil {
			return nil, badRequest(err.Error())
		}
		if err := a.checkShared(&list[i]); err != nil {
			return nil, err
		}
		return list, nil
	})
	if err == nil {
		a.changed(ctx, "user change", "user", name, "fields", changedFields(c))
	}
	return err
}

// DeleteUser removes the user name (their files stay).
func (a *API) DeleteUser(ctx context.Context, name string) error {
	err := a.edit(ctx, func(list []users.User) ([]users.User, error) {
		i := slices.IndexFunc(list, func(u users.User) bool { return u.Name == name })
		if i < 0 {
			return nil, notFound("no user " + name)
		}
		return slices.Delete(list, i, i+1), nil
	})
	if err == nil {
		a.changed(ctx, "user delete", "user", name)
	}
	return err
}

// changedFields names the fields c sets, for the log (never a value: a
// password is among them).
func changedFields(c users.Change) string {
	var f []string
	for _, x := range []struct {
		name string
		set  bool
	}{{"password", c.Password != nil}, {"home", c.Home != nil}, {"storage", c.Storage != nil},
		{"permission", c.Permission != nil}, {"fxp", c.FXP != nil}, {"allow_from", c.AllowFrom != nil},
		{"expires", c.Expires != nil}, {"disabled", c.Disabled != nil}, {"max_rate_up", c.MaxRateUp != nil},
		{"max_rate_down", c.MaxRateDown != nil}, {"quota_bytes", c.QuotaBytes != nil},
		{"quota_files", c.QuotaFiles != nil}, {"dirs", c.Dirs != nil}} {
		if x.set {
			f = append(f, x.name)
		}
	}
	return strings.Join(f, ",")
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) error {
	offset, limit, err := pageArgs(r)
	if err != nil {
		return err
	}
	list, err := a.ListUsers(r.Context(), r.URL.Query().Get("q"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, paginate(list, offset, limit))
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := a.GetUser(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

// newUser is the body of POST /api/v1/users.
type newUser struct {
	Name string `json:"name"`
	users.Change
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) error {
	var req newUser
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	if err := a.CreateUser(r.Context(), req.Name, req.Change); err != nil {
		return err
	}
	u, err := a.GetUser(r.Context(), req.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, u)
}

func (a *API) changeUser(w http.ResponseWriter, r *http.Request) error {
	var c users.Change
	if err := readJSON(w, r, &c); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := a.ChangeUser(r.Context(), name, c); err != nil {
		return err
	}
	u, err := a.GetUser(r.Context(), name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := a.DeleteUser(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
