package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ferryftp/ferry/auth/users"
)

// Ban is what the defender knows of a network.
type Ban struct {
	Network string     `json:"network"`
	Score   int        `json:"score"`
	Bans    int        `json:"bans"`
	Banned  bool       `json:"banned"`
	Until   *time.Time `json:"until,omitempty"`
}

// ListBans returns the networks with a score or a ban.
func (a *API) ListBans() []Ban {
	out := []Ban{}
	if a.node.Defender == nil {
		return out
	}
	now := time.Now()
	for _, e := range a.node.Defender.List() {
		b := Ban{Network: e.Network.String(), Score: e.Score, Bans: e.Bans, Banned: e.Banned(now)}
		if b.Banned {
			until := e.Until.UTC()
			b.Until = &until
		}
		out = append(out, b)
	}
	return out
}

// LiftBan lifts the ban of the network holding network (an address or
// a network) and forgets its score.
func (a *API) LiftBan(ctx context.Context, network string) error {
	if a.node.Defender == nil {
		return notFound("the defender is off")
	}
	p, err := users.ParseNet(strings.TrimSpace(network))
	if err != nil {
		return badRequest(fmt.Sprintf("%q: want an address or a network", network))
	}
	es := a.node.Defender.List()
	found := false
	for _, e := range es {
		if e.Network.Overlaps(p) {
			a.node.Defender.Unban(e.Network.Addr())
			found = true
		}
	}
	if !found {
		return notFound("no score or ban for " + p.String())
	}
	a.changed(ctx, "ban lift", "network", p.String())
	return nil
}

func (a *API) listBans(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, a.ListBans())
}

func (a *API) liftBan(w http.ResponseWriter, r *http.Request) error {
	if err := a.LiftBan(r.Context(), r.PathValue("network")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Quota is a user's storage against their byte quota.
type Quota struct {
	User       string `json:"user"`
	UsedBytes  int64  `json:"used_bytes"`
	LimitBytes int64  `json:"limit_bytes"`
}

// ListQuotas returns the usage of each user with a quota, by name.
func (a *API) ListQuotas() []Quota {
	out := []Quota{}
	if a.node.Quotas != nil {
		a.node.Quotas(func(user string, used, limit int64) { out = append(out, Quota{user, used, limit}) })
	}
	slices.SortFunc(out, func(x, y Quota) int { return strings.Compare(x.User, y.User) })
	return out
}

func (a *API) listQuotas(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, a.ListQuotas())
}

// Dashboard is what the console's dashboard shows, sent each second on
// GET /api/v1/stream.
type Dashboard struct {
	Time       time.Time `json:"time"`
	Sessions   int       `json:"sessions"`
	Transfers  []Session `json:"transfers"` // the sessions with a transfer running
	Bans       int       `json:"bans"`
	HookQueue  int       `json:"hook_queue"`
	Throughput []Point   `json:"throughput"`
}

// Snapshot is the dashboard now.
func (a *API) Snapshot(ctx context.Context) Dashboard {
	sessions := a.ListSessions("")
	d := Dashboard{Time: time.Now().UTC(), Sessions: len(sessions), Bans: a.bans(), HookQueue: a.hookQueue(),
		Transfers: []Session{}, Throughput: a.Throughput()}
	for _, s := range sessions {
		if s.Transfer != nil {
			d.Transfers = append(d.Transfers, s)
		}
	}
	return d
}

// stream sends the dashboard as Server-Sent Events, once a second, until
// the client goes.
func (a *API) stream(w http.ResponseWriter, r *http.Request) error {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		b, err := json.Marshal(a.Snapshot(r.Context()))
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: dashboard\ndata: %s\n\n", b); err != nil {
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
		}
	}
}
