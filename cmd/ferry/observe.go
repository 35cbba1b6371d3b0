package main

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/admin"
	"github.com/ferryftp/ferry/admin/api"
	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/config"
	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/events"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/state/pgstate"
	"github.com/ferryftp/ferry/xferlog"
)

// observer joins the server's hooks to what watches it: the hooks'
// events, the Prometheus metrics and the transfer log. Each is nil when
// off; a reload may turn the events and the transfer log on, off or
// elsewhere.
type observer struct {
	events  atomic.Pointer[events.Dispatcher]
	xfer    atomic.Pointer[xferlog.Writer]
	metrics atomic.Pointer[admin.Metrics] // once admin_listen is set
	api     atomic.Pointer[api.API]       // while admin_listen is set
	logger  *slog.Logger
	// db, with --database, keeps the hook queue for every node.
	db *pgstate.DB
}

// hooks are the server hooks that feed o.
func (o *observer) hooks() server.Hooks {
	return server.Hooks{
		ConnState:   o.connState,
		Action:      o.action,
		HashUploads: func(*server.Conn) bool { return o.events.Load().HashUploads() },
	}
}

func (o *observer) connState(c *server.Conn, st server.ConnState) {
	if st == server.StateTransferEnd {
		o.transferEnd(c, c.Transfer())
	}
}

func (o *observer) transferEnd(c *server.Conn, t *server.TransferInfo) {
	dir := t.Direction()
	if a := o.api.Load(); a != nil {
		a.TransferEnded(c, t)
	}
	if m := o.metrics.Load(); m != nil {
		m.Transfer(dir, t.Result, t.Bytes, t.Took)
	}
	if dir == admin.Listing {
		return
	}
	ok := t.Result == "ok"
	if w := o.xfer.Load(); w != nil {
		rec := xferlog.Record{Time: time.Now(), Took: t.Took, Remote: c.RemoteAddr().Addr(), Size: t.Bytes, Path: t.Path,
			ASCII: t.ASCII, Direction: xferlog.Outgoing, Anonymous: auth.IsAnonymous(c.User()), User: c.User(), Complete: ok}
		if dir == admin.Upload {
			rec.Direction = xferlog.Incoming
		}
		if err := w.Write(rec); err != nil {
			o.logger.Error("transfer log not written", "err", err)
		}
	}
	kind := events.Download
	if dir == admin.Upload {
		kind = events.UploadFailed
		if ok {
			kind = events.Upload
		}
	}
	if d := o.events.Load(); d.Hears(kind) {
		d.Publish(events.Event{Event: kind, User: c.User(), Remote: c.RemoteHost(), Path: t.Path,
			Size: t.Bytes, Duration: t.Took.Seconds(), Status: t.Result, Code: t.Code, SHA256: t.SHA256, Session: c.ID()})
	}
}

// actionKinds are the events of the server's actions.
var actionKinds = [...]string{
	server.ActionLogin: events.Login, server.ActionLoginFailed: events.LoginFailed,
	server.ActionDelete: events.Delete, server.ActionRename: events.Rename,
	server.ActionMkdir: events.Mkdir, server.ActionRmdir: events.Rmdir,
}

func (o *observer) action(c *server.Conn, a server.Action) {
	switch a.Kind {
	case server.ActionLogin, server.ActionLoginFailed:
		if m := o.metrics.Load(); m != nil {
			m.Login(a.Kind == server.ActionLogin)
		}
	case server.ActionDelete:
		if w := o.xfer.Load(); w != nil {
			w.Write(xferlog.Record{Time: time.Now(), Remote: c.RemoteAddr().Addr(), Path: a.Path,
				Direction: xferlog.Deleted, Anonymous: auth.IsAnonymous(a.User), User: a.User, Complete: true})
		}
	}
	kind := actionKinds[a.Kind]
	if d := o.events.Load(); d.Hears(kind) {
		status := "ok"
		if a.Reason != "" {
			status = a.Reason
		}
		d.Publish(events.Event{Event: kind, User: a.User, Remote: c.RemoteHost(),
			Path: a.Path, To: a.To, Status: status, Session: c.ID()})
	}
}

// ban is the defender's OnBan.
func (o *observer) ban(network netip.Prefix, until time.Time, reason defender.Event) {
	if d := o.events.Load(); d.Hears(events.Ban) {
		d.Publish(events.Event{Event: events.Ban, Remote: network.String(),
			Status: reason.String() + ", banned until " + until.UTC().Format(time.RFC3339)})
	}
}

// setHooks opens the queue when hooks appear (or a queue of an earlier
// run waits) and gives the dispatcher the configuration's hooks.
func (o *observer) setHooks(cfg config.Config) error {
	if d := o.events.Load(); d != nil {
		d.SetHooks(cfg.Hooks)
		return nil
	}
	opts := events.Options{Dir: cfg.HooksDir(), RetryFor: cfg.HookRetryFor, Logger: o.logger}
	switch {
	case o.db != nil && len(cfg.Hooks) > 0:
		q, err := o.db.HookQueue(context.Background())
		if err != nil {
			return err
		}
		opts.Store = q // shared: the deliveries of a node that stops are taken over
	case o.db != nil, len(cfg.Hooks) == 0 && !events.Waiting(cfg.HooksDir()):
		return nil
	}
	d, err := events.Open(opts, cfg.Hooks)
	if err != nil {
		return err
	}
	o.events.Store(d)
	return nil
}

// setTransferLog opens the transfer log at path (reopening it: logrotate
// on SIGHUP), or closes it for "".
func (o *observer) setTransferLog(path string) error {
	if cur := o.xfer.Load(); cur != nil && cur.Path() == path {
		return cur.Reopen()
	}
	var w *xferlog.Writer
	if path != "" {
		var err error
		if w, err = xferlog.Open(path); err != nil {
			return err
		}
	}
	if old := o.xfer.Swap(w); old != nil {
		old.Close()
	}
	return nil
}

// close stops the deliveries (what waits stays queued) and closes the
// transfer log.
func (o *observer) close() {
	if d := o.events.Load(); d != nil {
		d.Close()
	}
	o.setTransferLog("")
}
