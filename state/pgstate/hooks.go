package pgstate

import (
	"context"
	"encoding/json"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/ferryftp/ferry/events"
)

// HookQueue keeps the hook deliveries in the database (events.Store and
// events.Taker): each is a row owned by the node that queued it, deleted
// once delivered, moved to ferry_hook_dead when given up. A node that
// stops (its lease in ferry_nodes lapses) has its deliveries taken over
// by another, which makes them with the same idempotency keys.
type HookQueue struct {
	db  *DB
	len atomic.Int64 // the deliveries waiting on every node, as last counted, and this node's since
}

var (
	_ events.Store = (*HookQueue)(nil)
	_ events.Taker = (*HookQueue)(nil)
)

// HookQueue returns the shared queue of hook deliveries; the node's lease
// starts with it.
func (db *DB) HookQueue(ctx context.Context) (*HookQueue, error) {
	db.renewLeases(ctx)
	q := &HookQueue{db: db}
	return q, q.count(ctx)
}

func (q *HookQueue) count(ctx context.Context) error {
	var n int64
	err := q.db.pool.QueryRow(ctx, `SELECT count(*) FROM ferry_hook_queue`).Scan(&n)
	if err == nil {
		q.len.Store(n)
	}
	return err
}

// Add records d, owned by this node, before it is attempted.
func (q *HookQueue) Add(d *events.Delivery) error {
	doc, err := json.Marshal(d.Event)
	if err != nil {
		return err
	}
	ctx, cancel := timeout()
	defer cancel()
	if err := q.db.pool.QueryRow(ctx, `INSERT INTO ferry_hook_queue (hook, event, node) VALUES ($1, $2, $3) RETURNING id`,
		d.Hook, doc, q.db.node).Scan(&d.Ref); err != nil {
		return err
	}
	q.len.Add(1)
	return nil
}

// End deletes a delivered d, or moves a given-up one to ferry_hook_dead
// with the reason.
func (q *HookQueue) End(d *events.Delivery, reason string) error {
	ctx, cancel := timeout()
	defer cancel()
	err := pgx.BeginFunc(ctx, q.db.pool, func(tx pgx.Tx) error {
		if reason != "" {
			if _, err := tx.Exec(ctx, `INSERT INTO ferry_hook_dead (id, hook, event, reason)
				SELECT id, hook, event, $2 FROM ferry_hook_queue WHERE id = $1 ON CONFLICT DO NOTHING`, d.Ref, reason); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `DELETE FROM ferry_hook_queue WHERE id = $1`, d.Ref)
		return err
	})
	if err == nil {
		q.len.Add(-1)
	}
	return err
}

// Len is the deliveries waiting.
func (q *HookQueue) Len() int { return int(max(q.len.Load(), 0)) }

// Close does nothing: the rows stay for the next start or another node.
func (q *HookQueue) Close() error { return nil }

// Take takes over the deliveries of nodes whose lease lapsed (a node
// restarted is a new node: its own are among them) and returns them.
func (q *HookQueue) Take(ctx context.Context) ([]*events.Delivery, error) {
	rows, err := q.db.pool.Query(ctx, `UPDATE ferry_hook_queue SET node = $1
		WHERE node <> $1 AND node NOT IN (SELECT node FROM ferry_nodes WHERE expires > now())
		RETURNING id, hook, event`, q.db.node)
	if err != nil {
		return nil, err
	}
	taken, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*events.Delivery, error) {
		d := &events.Delivery{}
		var doc []byte
		if err := r.Scan(&d.Ref, &d.Hook, &doc); err != nil {
			return nil, err
		}
		return d, json.Unmarshal(doc, &d.Event)
	})
	if err != nil {
		return nil, err
	}
	q.count(ctx)
	return taken, nil
}
