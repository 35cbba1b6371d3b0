package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferryftp/ferry/admin/accounts"
	"github.com/ferryftp/ferry/admin/api"
	"github.com/ferryftp/ferry/auth/users"
	"github.com/ferryftp/ferry/internal/bytesize"
)

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.api.Auth().Identify(r); ok {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "login", "Log in", r.URL.Query().Get("next"), "")
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	cookie, _, err := c.api.Auth().Login(r.Context(), accounts.RemoteAddr(r), r.PostFormValue("name"), r.PostFormValue("password"))
	if err != nil {
		status := http.StatusUnauthorized
		if errors.Is(err, accounts.ErrBanned) {
			status = http.StatusTooManyRequests
		}
		c.render(w, r, status, "login", "Log in", r.PostFormValue("next"), err.Error())
		return
	}
	http.SetCookie(w, cookie)
	next := r.PostFormValue("next")
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") {
		next = "/console/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, c.api.Auth().Logout(r))
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
	return nil
}

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request) error {
	return c.render(w, r, http.StatusOK, "dashboard", "Dashboard", c.api.Snapshot(r.Context()), "")
}

func (c *Console) sessions(w http.ResponseWriter, r *http.Request) error {
	list, p := paginate(r, "/console/sessions", c.api.ListSessions(r.URL.Query().Get("q")))
	return c.render(w, r, http.StatusOK, "sessions", "Sessions", struct {
		Sessions []api.Session
		Pager    pager
	}{list, p}, "")
}

func (c *Console) endSession(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return &api.Error{Status: http.StatusBadRequest, Msg: "a session id is a number"}
	}
	if err := c.api.EndSessionID(r.Context(), id); err != nil {
		return err
	}
	return back(w, r, "/console/sessions", "Session "+r.PathValue("id")+" ended.")
}

func (c *Console) users(w http.ResponseWriter, r *http.Request) error {
	all, err := c.api.ListUsers(r.Context(), r.URL.Query().Get("q"))
	if err != nil {
		return err
	}
	list, p := paginate(r, "/console/users", all)
	return c.render(w, r, http.StatusOK, "users", "Users", struct {
		Users []api.User
		Pager pager
	}{list, p}, "")
}

// userForm is the user page's data: the user, and whether it is new.
type userForm struct {
	User api.User
	New  bool
}

func (c *Console) newUser(w http.ResponseWriter, r *http.Request) error {
	return c.render(w, r, http.StatusOK, "user", "New user", userForm{User: api.User{Permission: users.ReadWrite}, New: true}, "")
}

func (c *Console) user(w http.ResponseWriter, r *http.Request) error {
	u, err := c.api.GetUser(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return c.render(w, r, http.StatusOK, "user", "User "+u.Name, userForm{User: u}, "")
}

func (c *Console) createUser(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimSpace(r.PostFormValue("name"))
	ch, err := formChange(r)
	if err == nil {
		err = c.api.CreateUser(r.Context(), name, ch)
	}
	if err != nil {
		return c.formError(w, r, userForm{User: formView(r, name), New: true}, err)
	}
	return back(w, r, "/console/users/"+name, "User "+name+" created.")
}

func (c *Console) changeUser(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	ch, err := formChange(r)
	if err == nil {
		err = c.api.ChangeUser(r.Context(), name, ch)
	}
	if err != nil {
		return c.formError(w, r, userForm{User: formView(r, name)}, err)
	}
	return back(w, r, "/console/users/"+name, "User "+name+" saved.")
}

// formError shows the form again with what was entered and why it was
// refused.
func (c *Console) formError(w http.ResponseWriter, r *http.Request, f userForm, err error) error {
	var e *api.Error
	if !errors.As(err, &e) {
		return err
	}
	return c.render(w, r, e.Status, "user", "User "+f.User.Name, f, e.Msg)
}

func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := c.api.DeleteUser(r.Context(), name); err != nil {
		return err
	}
	return back(w, r, "/console/users", "User "+name+" deleted.")
}

func (c *Console) bans(w http.ResponseWriter, r *http.Request) error {
	return c.render(w, r, http.StatusOK, "bans", "Bans", c.api.ListBans(), "")
}

func (c *Console) liftBan(w http.ResponseWriter, r *http.Request) error {
	network := r.PostFormValue("network")
	if err := c.api.LiftBan(r.Context(), network); err != nil {
		return err
	}
	return back(w, r, "/console/bans", "Ban of "+network+" lifted.")
}

// formChange reads the user form: every field is set (the form shows
// them all), but an empty password leaves it.
func formChange(r *http.Request) (users.Change, error) {
	var c users.Change
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	if pw := r.PostFormValue("password"); pw != "" {
		c.Password = &pw
	}
	home, storage, perm, expires := f("home"), f("storage"), f("permission"), f("expires")
	c.Home, c.Storage, c.Permission, c.Expires = &home, &storage, &perm, &expires
	fxp, allow := splitList(f("fxp")), splitList(f("allow_from"))
	c.FXP, c.AllowFrom = &fxp, &allow
	disabled := r.PostFormValue("disabled") != ""
	c.Disabled = &disabled
	var sizes [4]bytesize.Size
	for i, k := range []string{"max_rate_up", "max_rate_down", "quota_bytes"} {
		if v := f(k); v != "" {
			if err := sizes[i].UnmarshalText([]byte(v)); err != nil {
				return c, &api.Error{Status: http.StatusBadRequest, Msg: k + ": " + err.Error()}
			}
		}
	}
	c.MaxRateUp, c.MaxRateDown, c.QuotaBytes = &sizes[0], &sizes[1], &sizes[2]
	var files int64
	if v := f("quota_files"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return c, &api.Error{Status: http.StatusBadRequest, Msg: "quota_files: want a number"}
		}
		files = n
	}
	c.QuotaFiles = &files
	dirs := []users.DirRule{}
	for _, line := range strings.Split(f("dirs"), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		p, perms, ok := strings.Cut(line, "=")
		if !ok {
			return c, &api.Error{Status: http.StatusBadRequest, Msg: "dirs: want one PATH=PERMS a line, not " + strconv.Quote(line)}
		}
		dirs = append(dirs, users.DirRule{Path: strings.TrimSpace(p), Perms: strings.TrimSpace(perms)})
	}
	c.Dirs = &dirs
	return c, nil
}

// formView is the user as the form was filled in.
func formView(r *http.Request, name string) api.User {
	ch, _ := formChange(r)
	u := api.User{Name: name, Home: deref(ch.Home), Storage: deref(ch.Storage), Permission: deref(ch.Permission),
		Expires: deref(ch.Expires), Disabled: ch.Disabled != nil && *ch.Disabled}
	if ch.FXP != nil {
		u.FXP = *ch.FXP
	}
	if ch.AllowFrom != nil {
		u.AllowFrom = *ch.AllowFrom
	}
	if ch.Dirs != nil {
		u.Dirs = *ch.Dirs
	}
	for _, p := range []struct {
		src *bytesize.Size
		dst *bytesize.Size
	}{{ch.MaxRateUp, &u.MaxRateUp}, {ch.MaxRateDown, &u.MaxRateDown}, {ch.QuotaBytes, &u.QuotaBytes}} {
		if p.src != nil {
			*p.dst = *p.src
		}
	}
	if ch.QuotaFiles != nil {
		u.QuotaFiles = *ch.QuotaFiles
	}
	return u
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// splitList reads a list given with commas, spaces or lines.
func splitList(s string) []string {
	out := []string{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		out = append(out, f)
	}
	return out
}
