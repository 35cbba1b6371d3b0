package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/ferryftp/ferry/admin/accounts"
)

type loginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	cookie, csrf, err := a.auth.Login(r.Context(), accounts.RemoteAddr(r), req.Name, req.Password)
	switch {
	case errors.Is(err, accounts.ErrBanned):
		return &Error{http.StatusTooManyRequests, err.Error()}
	case err != nil:
		return &Error{http.StatusUnauthorized, err.Error()}
	}
	http.SetCookie(w, cookie)
	return writeJSON(w, http.StatusOK, map[string]string{"admin": req.Name, "csrf": csrf})
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, a.auth.Logout(r))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ServerInfo is GET /api/v1/server.
type ServerInfo struct {
	Version   string    `json:"version"`
	Node      string    `json:"node"`
	Started   time.Time `json:"started"`
	Uptime    float64   `json:"uptime_seconds"`
	Listeners []string  `json:"listeners"`
	Sessions  int       `json:"sessions"`
	Bans      int       `json:"bans"`
	HookQueue int       `json:"hook_queue"`
	Admin     string    `json:"admin"` // who asks
}

// Info describes the server now, as the context's administrator sees it.
func (a *API) Info(ctx context.Context) ServerInfo {
	n := a.node
	info := ServerInfo{Version: n.Version, Node: n.Name, Started: n.Started, Uptime: time.Since(n.Started).Seconds(), Listeners: []string{}, Admin: accounts.From(ctx).Admin}
	if n.Listeners != nil {
		info.Listeners = slices.Sorted(slices.Values(n.Listeners()))
	}
	if n.Sessions != nil {
		info.Sessions = len(n.Sessions.Conns())
	}
	info.Bans, info.HookQueue = a.bans(), a.hookQueue()
	return info
}

// bans counts the networks banned now, from the defender's memory (no
// query: the dashboard's stream asks each second).
func (a *API) bans() int {
	if a.node.Defender == nil {
		return 0
	}
	return a.node.Defender.Bans()
}

// hookQueue is the number of hook deliveries waiting.
func (a *API) hookQueue() int {
	if a.node.HookQueue == nil {
		return 0
	}
	return a.node.HookQueue()
}

func (a *API) serverInfo(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, a.Info(r.Context()))
}

func (a *API) config(w http.ResponseWriter, r *http.Request) error {
	if a.node.Config == nil {
		return notFound("no configuration")
	}
	return writeJSON(w, http.StatusOK, a.node.Config())
}

// Reload reads the configuration again and applies it.
func (a *API) Reload(ctx context.Context) error {
	if a.node.Reload == nil {
		return &Error{http.StatusNotImplemented, "this server cannot reload"}
	}
	if err := a.node.Reload(); err != nil {
		return &Error{http.StatusUnprocessableEntity, "configuration not reloaded, the running one is kept: " + err.Error()}
	}
	a.changed(ctx, "reload")
	return nil
}

func (a *API) reload(w http.ResponseWriter, r *http.Request) error {
	if err := a.Reload(r.Context()); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"result": "reloaded"})
}
