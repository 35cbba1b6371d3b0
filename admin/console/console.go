// Package console is the web console under /console/: server-rendered
// pages (dashboard, sessions, users, bans) from embedded templates, a
// little JavaScript for the live dashboard (Server-Sent Events from
// /api/v1/stream) and no asset from anywhere else. Every change goes
// through the admin API's operations (api.API), as the API's own do.
package console

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ferryftp/ferry/admin/accounts"
	"github.com/ferryftp/ferry/admin/api"
	"github.com/ferryftp/ferry/internal/bytesize"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageSize is how many rows a page of sessions or users holds.
const pageSize = 50

var funcs = template.FuncMap{
	"size": func(n int64) string { return humanSize(float64(n)) },
	"rate": func(r float64) string { return humanSize(r) + "/s" },
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"ago": func(t time.Time) string {
		return time.Since(t).Round(time.Second).String()
	},
	"bsize": func(s bytesize.Size) string { return s.String() },
}

// humanSize writes n bytes in binary units.
func humanSize(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(n, 'f', 0, 64) + " B"
	}
	return strconv.FormatFloat(n, 'f', 1, 64) + " " + units[i]
}

var pages = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for _, p := range []string{"login", "dashboard", "sessions", "users", "user", "bans"} {
		m[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html"))
	}
	return m
}()

// Console serves the pages.
type Console struct {
	api *api.API
	log *slog.Logger
}

// Register adds the console's routes to mux; "/" leads to it.
func Register(mux *http.ServeMux, a *api.API, logger *slog.Logger) {
	c := &Console{api: a, log: logger}
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /console/login", c.loginPage)
	mux.HandleFunc("POST /console/login", c.login)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	})
	for _, rt := range []struct {
		pattern string
		h       func(w http.ResponseWriter, r *http.Request) error
	}{
		{"GET /console/{$}", c.dashboard},
		{"POST /console/logout", c.logout},
		{"GET /console/sessions", c.sessions},
		{"POST /console/sessions/{id}/end", c.endSession},
		{"GET /console/users", c.users},
		{"GET /console/users/new", c.newUser},
		{"POST /console/users/new", c.createUser},
		{"GET /console/users/{name}", c.user},
		{"POST /console/users/{name}", c.changeUser},
		{"POST /console/users/{name}/delete", c.deleteUser},
		{"GET /console/bans", c.bans},
		{"POST /console/bans/lift", c.liftBan},
	} {
		mux.Handle(rt.pattern, a.Auth().Require(c.handle(rt.h), toLogin))
	}
}

// toLogin sends a visitor without a session to the login page.
func toLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "log in first", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// handle maps a page's error to its reply, in one place: an api.Error
// as it says, anything else 500 with the detail only in the log.
func (c *Console) handle(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var e *api.Error
		if !errors.As(err, &e) {
			c.log.Error("console", "method", r.Method, "path", r.URL.Path, "err", err)
			e = &api.Error{Status: http.StatusInternalServerError, Msg: "internal error (see the server's log)"}
		}
		http.Error(w, e.Msg, e.Status)
	})
}

// view is what every page's template gets.
type view struct {
	Title, Page string
	Admin, CSRF string
	Msg, Error  string
	Data        any
}

// render writes page with data.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page, title string, data any, errMsg string) error {
	who := accounts.From(r.Context())
	v := view{Title: title, Page: page, Admin: who.Admin, CSRF: who.CSRF, Msg: r.URL.Query().Get("msg"), Error: errMsg, Data: data}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	return pages[page].Execute(w, v)
}

// back redirects to path with a message.
func back(w http.ResponseWriter, r *http.Request, path, msg string) error {
	http.Redirect(w, r, path+"?msg="+url.QueryEscape(msg), http.StatusSeeOther)
	return nil
}

// pager is a page of a list.
type pager struct {
	Q                string
	Page, Pages      int
	Total            int
	PrevURL, NextURL string
}

// paginate cuts page (from 1) of items.
func paginate[T any](r *http.Request, base string, items []T) ([]T, pager) {
	q := r.URL.Query().Get("q")
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pages := max((len(items)+pageSize-1)/pageSize, 1)
	page = min(max(page, 1), pages)
	p := pager{Q: q, Page: page, Pages: pages, Total: len(items)}
	link := func(n int) string {
		return base + "?" + url.Values{"q": {q}, "page": {strconv.Itoa(n)}}.Encode()
	}
	if page > 1 {
		p.PrevURL = link(page - 1)
	}
	if page < pages {
		p.NextURL = link(page + 1)
	}
	from := (page - 1) * pageSize
	return items[from:min(from+pageSize, len(items))], p
}
