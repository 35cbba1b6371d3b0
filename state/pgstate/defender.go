package pgstate

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferryftp/ferry/defender"
)

// Defender scores addresses and bans them in the database, for every
// node (defender.Defender): a ban on one node refuses the address on all.
// Each node keeps the bans in memory (read at start, on every NOTIFY of a
// ban, and once a second), so that the check at each connection costs no
// query; scoring an event is one statement. When the database cannot be
// reached, events are not scored (logged) and the bans known stay.
type Defender struct {
	db   *DB
	mu   sync.RWMutex
	cfg  defender.Config
	bans map[netip.Prefix]time.Time // active, as last read
}

var _ defender.Defender = (*Defender)(nil)

// Defender returns the database's defender with cfg's settings; the
// node's bans follow the database from then on.
func (db *DB) Defender(ctx context.Context, cfg defender.Config) (*Defender, error) {
	d := &Defender{db: db, cfg: cfg.WithDefaults(), bans: map[netip.Prefix]time.Time{}}
	if err := d.refresh(ctx); err != nil {
		return nil, err
	}
	db.def.Store(d)
	return d, nil
}

// Configure replaces the settings (a reloaded configuration).
func (d *Defender) Configure(cfg defender.Config) {
	d.mu.Lock()
	d.cfg = cfg.WithDefaults()
	d.mu.Unlock()
}

func (d *Defender) config() defender.Config {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.cfg
}

// refresh reads the active bans.
func (d *Defender) refresh(ctx context.Context) error {
	rows, err := d.db.pool.Query(ctx, `SELECT network, until FROM ferry_bans WHERE until > now()`)
	if err != nil {
		return err
	}
	bans := map[netip.Prefix]time.Time{}
	var network string
	var until time.Time
	_, err = pgx.ForEachRow(rows, []any{&network, &until}, func() error {
		if p, err := netip.ParsePrefix(network); err == nil {
			bans[p] = until
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.bans = bans
	d.mu.Unlock()
	return nil
}

// Banned reports whether ip is banned now, and until when.
func (d *Defender) Banned(ip netip.Addr) (time.Time, bool) {
	if !ip.IsValid() {
		return time.Time{}, false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	until, ok := d.bans[d.cfg.Key(ip)]
	if !ok || !time.Now().Before(until) {
		return time.Time{}, false
	}
	return until, true
}

// Record scores ev for ip on every node's behalf and reports whether ip
// is banned afterwards.
func (d *Defender) Record(ip netip.Addr, ev defender.Event) bool {
	cfg := d.config()
	if !ip.IsValid() || cfg.Allows(ip) {
		return false
	}
	if _, banned := d.Banned(ip); banned {
		return true
	}
	k := cfg.Key(ip)
	ctx, cancel := timeout()
	defer cancel()
	var score int
	err := d.db.pool.QueryRow(ctx, `INSERT INTO ferry_scores AS s (network, score, since) VALUES ($1, $2, now())
		ON CONFLICT (network) DO UPDATE SET
		  score = CASE WHEN s.since < now() - make_interval(secs => $3) THEN $2 ELSE s.score + $2 END,
		  since = CASE WHEN s.since < now() - make_interval(secs => $3) THEN now() ELSE s.since END
		RETURNING score`, k.String(), ev.Score(), cfg.Window.Seconds()).Scan(&score)
	if err != nil {
		d.db.logger.Error("defender: event not scored", "network", k.String(), "err", err)
		return false
	}
	if score < cfg.Threshold {
		return false
	}
	until, bans, err := d.ban(ctx, cfg, k)
	if err != nil {
		d.db.logger.Error("defender: ban not recorded", "network", k.String(), "err", err)
		return false
	}
	d.mu.Lock()
	d.bans[k] = until
	d.mu.Unlock()
	cfg.Logger.Warn("defender ban", "ip", ip.Unmap().String(), "network", k.String(),
		"duration", time.Until(until).Round(time.Second), "bans", bans, "score", score, "reason", ev.String())
	if cfg.OnBan != nil {
		cfg.OnBan(k, until, ev)
	}
	return true
}

// ban records a ban of k (its score starts again) and tells every node.
func (d *Defender) ban(ctx context.Context, cfg defender.Config, k netip.Prefix) (until time.Time, bans int, err error) {
	err = pgx.BeginFunc(ctx, d.db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM ferry_scores WHERE network = $1`, k.String()); err != nil {
			return err
		}
		// The count of bans starts again once the last ended Forget ago.
		if err := tx.QueryRow(ctx, `INSERT INTO ferry_bans AS b (network, until, bans) VALUES ($1, now(), 1)
			ON CONFLICT (network) DO UPDATE SET bans = CASE WHEN b.until < now() - make_interval(secs => $2) THEN 1 ELSE b.bans + 1 END
			RETURNING bans`, k.String(), cfg.Forget.Seconds()).Scan(&bans); err != nil {
			return err
		}
		until = time.Now().Add(cfg.BanFor(bans))
		if _, err := tx.Exec(ctx, `UPDATE ferry_bans SET until = $2 WHERE network = $1`, k.String(), until); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, bansChannel, k.String())
		return err
	})
	return until, bans, err
}

// Unban lifts a ban on ip and forgets its history, on every node.
func (d *Defender) Unban(ip netip.Addr) {
	k := d.config().Key(ip)
	ctx, cancel := timeout()
	defer cancel()
	err := pgx.BeginFunc(ctx, d.db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM ferry_bans WHERE network = $1`, k.String()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM ferry_scores WHERE network = $1`, k.String()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, bansChannel, k.String())
		return err
	})
	if err != nil {
		d.db.logger.Error("defender: ban not lifted", "network", k.String(), "err", err)
	}
	d.mu.Lock()
	delete(d.bans, k)
	d.mu.Unlock()
}

// Bans is the number of networks banned now.
func (d *Defender) Bans() int {
	now := time.Now()
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := 0
	for _, until := range d.bans {
		if now.Before(until) {
			n++
		}
	}
	return n
}

// List returns the networks with a score in the current window or a ban,
// on every node.
func (d *Defender) List() []defender.Entry {
	cfg := d.config()
	ctx, cancel := timeout()
	defer cancel()
	rows, err := d.db.pool.Query(ctx, `SELECT network, COALESCE(s.score, 0), COALESCE(b.bans, 0), b.until
		FROM (SELECT network, score FROM ferry_scores WHERE since >= now() - make_interval(secs => $1)) s
		FULL JOIN (SELECT network, bans, until FROM ferry_bans WHERE until > now()) b USING (network)`, cfg.Window.Seconds())
	if err != nil {
		d.db.logger.Error("defender: scores not read", "err", err)
		return nil
	}
	var es []defender.Entry
	for rows.Next() {
		var network string
		var e defender.Entry
		var until *time.Time
		if err := rows.Scan(&network, &e.Score, &e.Bans, &until); err != nil {
			d.db.logger.Error("defender: scores not read", "err", err)
			return nil
		}
		if e.Network, err = netip.ParsePrefix(network); err != nil {
			continue
		}
		if until != nil {
			e.Until = *until
		}
		es = append(es, e)
	}
	defender.SortEntries(es)
	return es
}
