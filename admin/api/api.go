// Package api is the admin REST API under /api/v1/ (see openapi.json,
// served at /api/v1/openapi.json): sessions, users, bans, quotas and the
// server, for scripts with an API token and for the console with its
// session cookie. Its operations (Service) are also what the console
// calls, so that a change is made, checked and logged one way.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/ferryftp/ferry/admin/accounts"
	"github.com/ferryftp/ferry/auth/users"
	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/server"
)

// Node is what the API reads and changes of the running server; cmd/ferry
// fills it. Nil fields are features that are off.
type Node struct {
	// Name names this node in a cluster (its host name by default).
	Name    string
	Version string
	Started time.Time
	// Sessions are the server's sessions (*server.Server).
	Sessions Sessions
	// Users is where the accounts live (the users file or the database);
	// UsersChanged, when set, makes the server read them again at once.
	Users        users.Repo
	UsersChanged func()
	// HomeBase is the directory relative homes are under (the users
	// file's); a new user's local home is made there.
	HomeBase string
	// Quotas reports, for each user with a quota, what they use.
	Quotas func(fn func(user string, used, limit int64))
	// Defender lists scores and bans and lifts them; nil when it is off.
	Defender Defender
	// Listeners are the control listeners' addresses.
	Listeners func() []string
	// Config is the effective configuration with its secrets removed.
	Config func() any
	// Reload reads the configuration again and applies it (SIGHUP).
	Reload func() error
	// HookQueue is the number of hook deliveries waiting.
	HookQueue func() int
}

// Sessions are the open sessions of a server.
type Sessions interface {
	Conns() []*server.Conn
	Conn(id uint64) *server.Conn
}

// Defender is a defender that can count its bans (from memory), list its
// scores and bans, and lift them.
type Defender interface {
	Bans() int
	List() []defender.Entry
	Unban(ip netip.Addr)
}

// API serves the admin API and holds its operations.
type API struct {
	node    Node
	auth    *accounts.Manager
	log     *slog.Logger
	sampler *sampler
	stop    chan struct{}
}

// New returns the API of node, authenticated by auth. It samples the
// transfers' rates once a second until Close.
func New(node Node, auth *accounts.Manager, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.Default()
	}
	a := &API{node: node, auth: auth, log: logger, sampler: newSampler(), stop: make(chan struct{})}
	go a.sample()
	return a
}

// Close stops the sampling.
func (a *API) Close() { close(a.stop) }

// Auth is the API's authentication.
func (a *API) Auth() *accounts.Manager { return a.auth }

//go:embed openapi.json
var openapiDoc []byte

// OpenAPI is the API's OpenAPI document.
func OpenAPI() []byte { return openapiDoc }

// route is one operation of the API.
type route struct {
	method, path string
	h            func(a *API, w http.ResponseWriter, r *http.Request) error
	public       bool // answered without authentication
}

var routes = []route{
	{"POST", "/api/v1/login", (*API).login, true},
	{"POST", "/api/v1/logout", (*API).logout, false},
	{"GET", "/api/v1/openapi.json", (*API).openapi, false},
	{"GET", "/api/v1/server", (*API).serverInfo, false},
	{"GET", "/api/v1/config", (*API).config, false},
	{"POST", "/api/v1/reload", (*API).reload, false},
	{"GET", "/api/v1/sessions", (*API).listSessions, false},
	{"GET", "/api/v1/sessions/{id}", (*API).getSession, false},
	{"DELETE", "/api/v1/sessions/{id}", (*API).endSession, false},
	{"GET", "/api/v1/users", (*API).listUsers, false},
	{"POST", "/api/v1/users", (*API).createUser, false},
	{"GET", "/api/v1/users/{name}", (*API).getUser, false},
	{"PATCH", "/api/v1/users/{name}", (*API).changeUser, false},
	{"DELETE", "/api/v1/users/{name}", (*API).deleteUser, false},
	{"GET", "/api/v1/bans", (*API).listBans, false},
	{"DELETE", "/api/v1/bans/{network...}", (*API).liftBan, false},
	{"GET", "/api/v1/quotas", (*API).listQuotas, false},
	{"GET", "/api/v1/stream", (*API).stream, false},
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	for _, rt := range routes {
		var h http.Handler = a.handle(rt.h)
		if !rt.public {
			h = a.auth.Require(h, unauthorized)
		}
		mux.Handle(rt.method+" "+rt.path, h)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.auth.Identify(r); !ok {
			unauthorized(w, r)
			return
		}
		writeError(w, &Error{http.StatusNotFound, "no such API endpoint"})
	})
}

func unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
	writeError(w, &Error{http.StatusUnauthorized, "authentication required: an API token (Authorization: Bearer) or a console session"})
}

// Error is an error with the HTTP status it answers with; its message is
// for the client.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func badRequest(msg string) error { return &Error{http.StatusBadRequest, msg} }
func notFound(msg string) error   { return &Error{http.StatusNotFound, msg} }

// handle maps a handler's error to its reply, in one place: an *Error
// as it says, anything else 500 with the detail only in the log.
func (a *API) handle(h func(a *API, w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(a, w, r)
		if err == nil {
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			a.log.Error("admin API", "method", r.Method, "path", r.URL.Path, "err", err)
			e = &Error{http.StatusInternalServerError, "internal error (see the server's log)"}
		}
		writeError(w, e)
	})
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, map[string]string{"error": e.Msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readJSON decodes r's body (at most 1 MiB) into v, refusing unknown
// fields.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("bad JSON body: " + err.Error())
	}
	return nil
}

func (a *API) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openapiDoc)
	return err
}

// changed logs a change made by the context's administrator.
func (a *API) changed(ctx context.Context, what string, args ...any) {
	who := accounts.From(ctx)
	a.log.Info("admin change", append([]any{"admin", who.Admin, "change", what, "remote", who.Remote.String()}, args...)...)
}
