package pgstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/ferryftp/ferry/limits"
	"github.com/ferryftp/ferry/storage"
)

// Quota leases: what a node reserved for a user's uploads counts at the
// bank until the node gives it back or stops renewing it (it died): a
// node renews its leases every leaseRenew seconds; a lease not renewed for
// leaseTTL is no longer counted.
const (
	leaseRenew = 5
	leaseTTL   = "15 seconds"
)

func newNode() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Bank is a user's quota usage in the database, for this node
// (limits.Bank): reservations and settlements are transactions on the
// user's row, so that uploads on every node together never pass the
// quota.
type Bank struct {
	db   *DB
	user string
}

var _ limits.Bank = (*Bank)(nil)

// Bank returns the quota bank of user.
func (db *DB) Bank(user string) *Bank { return &Bank{db: db, user: user} }

// Load is the usage kept, and whether there is one (else the user's files
// are to be counted, then Init).
func (b *Bank) Load(ctx context.Context) (limits.Usage, bool, error) {
	var u limits.Usage
	err := b.db.pool.QueryRow(ctx, `SELECT used_bytes, used_files FROM ferry_quota WHERE username = $1`, b.user).Scan(&u.Bytes, &u.Files)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, false, nil
	}
	return u, err == nil, err
}

// Init records a first count of the user's files, unless another node
// did first.
func (b *Bank) Init(ctx context.Context, u limits.Usage) error {
	_, err := b.db.pool.Exec(ctx, `INSERT INTO ferry_quota (username, used_bytes, used_files) VALUES ($1, $2, $3)
		ON CONFLICT (username) DO NOTHING`, b.user, u.Bytes, u.Files)
	return err
}

// Reserve reserves up to want, at least atLeast, within q.
func (b *Bank) Reserve(ctx context.Context, q limits.Quota, want, atLeast limits.Usage) (limits.Usage, error) {
	var got limits.Usage
	err := pgx.BeginFunc(ctx, b.db.pool, func(tx pgx.Tx) error {
		var used limits.Usage
		// The user's row is the lock every node's reservation takes.
		if _, err := tx.Exec(ctx, `INSERT INTO ferry_quota (username, used_bytes, used_files) VALUES ($1, 0, 0) ON CONFLICT DO NOTHING`, b.user); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT used_bytes, used_files FROM ferry_quota WHERE username = $1 FOR UPDATE`, b.user).Scan(&used.Bytes, &used.Files); err != nil {
			return err
		}
		leased, err := leasedTx(ctx, tx, b.user)
		if err != nil {
			return err
		}
		got = want
		if q.Bytes > 0 {
			got.Bytes = min(want.Bytes, q.Bytes-used.Bytes-leased.Bytes)
		}
		if q.Files > 0 {
			got.Files = min(want.Files, q.Files-used.Files-leased.Files)
		}
		if got.Bytes < atLeast.Bytes || got.Files < atLeast.Files {
			return fmt.Errorf("%w: the quota is reached", storage.ErrQuota)
		}
		got = limits.Usage{Bytes: max(got.Bytes, 0), Files: max(got.Files, 0)}
		_, err = tx.Exec(ctx, `INSERT INTO ferry_quota_leases AS l (username, node, bytes, files, expires)
			VALUES ($1, $2, $3, $4, now() + interval '`+leaseTTL+`')
			ON CONFLICT (username, node) DO UPDATE SET
			  bytes = CASE WHEN l.expires < now() THEN EXCLUDED.bytes ELSE l.bytes + EXCLUDED.bytes END,
			  files = CASE WHEN l.expires < now() THEN EXCLUDED.files ELSE l.files + EXCLUDED.files END,
			  expires = EXCLUDED.expires`, b.user, b.db.node, got.Bytes, got.Files)
		return err
	})
	if err != nil && !errors.Is(err, storage.ErrQuota) {
		err = fmt.Errorf("%w: quota database: %v", storage.ErrUnavailable, err)
	}
	return got, err
}

// leasedTx is what the live leases of user hold.
func leasedTx(ctx context.Context, tx pgx.Tx, user string) (limits.Usage, error) {
	var u limits.Usage
	err := tx.QueryRow(ctx, `SELECT coalesce(sum(bytes), 0), coalesce(sum(files), 0) FROM ferry_quota_leases
		WHERE username = $1 AND expires > now()`, user).Scan(&u.Bytes, &u.Files)
	return u, err
}

// Settle gives back reserved of this node's lease and adds delta to the
// usage.
func (b *Bank) Settle(ctx context.Context, reserved, delta limits.Usage) error {
	return pgx.BeginFunc(ctx, b.db.pool, func(tx pgx.Tx) error {
		if delta != (limits.Usage{}) {
			if _, err := tx.Exec(ctx, `UPDATE ferry_quota SET used_bytes = greatest(used_bytes + $2, 0),
				used_files = greatest(used_files + $3, 0) WHERE username = $1`, b.user, delta.Bytes, delta.Files); err != nil {
				return err
			}
		}
		if reserved != (limits.Usage{}) {
			if _, err := tx.Exec(ctx, `UPDATE ferry_quota_leases SET bytes = greatest(bytes - $3, 0), files = greatest(files - $4, 0)
				WHERE username = $1 AND node = $2`, b.user, b.db.node, reserved.Bytes, reserved.Files); err != nil {
				return err
			}
		}
		return nil
	})
}

// Usage is what the user stores, and what every node's live leases hold.
func (b *Bank) Usage(ctx context.Context) (used, reserved limits.Usage, err error) {
	err = pgx.BeginFunc(ctx, b.db.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT used_bytes, used_files FROM ferry_quota WHERE username = $1`, b.user).Scan(&used.Bytes, &used.Files)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		reserved, err = leasedTx(ctx, tx, b.user)
		return err
	})
	return used, reserved, err
}

// renewLeases keeps this node's quota leases and session counts counted;
// empty ones go.
func (db *DB) renewLeases(ctx context.Context) {
	for _, q := range []string{
		`INSERT INTO ferry_nodes (node, expires) VALUES ($1, now() + interval '` + leaseTTL + `')
		 ON CONFLICT (node) DO UPDATE SET expires = EXCLUDED.expires`,
		`DELETE FROM ferry_quota_leases WHERE node = $1 AND bytes = 0 AND files = 0`,
		`UPDATE ferry_quota_leases SET expires = now() + interval '` + leaseTTL + `' WHERE node = $1`,
		`DELETE FROM ferry_sessions WHERE node = $1 AND count = 0`,
		`UPDATE ferry_sessions SET expires = now() + interval '` + leaseTTL + `' WHERE node = $1`,
		`UPDATE ferry_uploads SET expires = now() + interval '` + leaseTTL + `' WHERE node = $1`,
	} {
		if _, err := db.pool.Exec(ctx, q, db.node); err != nil {
			if ctx.Err() == nil {
				db.logger.Warn("database: leases not renewed", "err", err)
			}
			return
		}
	}
}

// Sessions counts each user's logged-in sessions on every node
// (server.UserSessions): a row per user and node, a lease renewed like
// the quota's, so that a node that dies stops counting within 15 seconds.
type Sessions struct{ db *DB }

// Sessions returns the counter of sessions per user.
func (db *DB) Sessions() *Sessions { return &Sessions{db} }

// Open counts a session of user unless max are open on all nodes.
func (s *Sessions) Open(ctx context.Context, user string, max int) (bool, error) {
	ok := false
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('ferry_sessions'), hashtext($1))`, user); err != nil {
			return err
		}
		var open int
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM ferry_sessions WHERE username = $1 AND expires > now()`, user).Scan(&open); err != nil {
			return err
		}
		if open >= max {
			return nil
		}
		ok = true
		_, err := tx.Exec(ctx, `INSERT INTO ferry_sessions AS s (username, node, count, expires) VALUES ($1, $2, 1, now() + interval '`+leaseTTL+`')
			ON CONFLICT (username, node) DO UPDATE SET count = CASE WHEN s.expires < now() THEN 1 ELSE s.count + 1 END, expires = EXCLUDED.expires`,
			user, s.db.node)
		return err
	})
	return ok, err
}

// Close forgets a session Open counted.
func (s *Sessions) Close(user string) {
	ctx, cancel := timeout()
	defer cancel()
	if _, err := s.db.pool.Exec(ctx, `UPDATE ferry_sessions SET count = greatest(count - 1, 0) WHERE username = $1 AND node = $2`, user, s.db.node); err != nil {
		s.db.logger.Warn("database: session end not counted", "user", user, "err", err)
	}
}

// Uploads marks the running multipart uploads of object stores for every
// node (s3fs.Claims): two nodes cannot resume one upload at once, and no
// node's sweeper aborts an upload running on another. A claim is a lease
// like the quota's: a node that dies lets go within 15 seconds (a resume on
// another node meanwhile is answered 451, try again).
type Uploads struct {
	db    *DB
	local sync.Map // this node's claims: two of its own resumes exclude each other too
}

// Uploads returns the claims of running uploads.
func (db *DB) Uploads() *Uploads { return &Uploads{db: db} }

// Claim marks key running on this node; false when it runs here already
// or a live claim is another node's.
func (u *Uploads) Claim(ctx context.Context, key string) (bool, error) {
	if _, busy := u.local.LoadOrStore(key, true); busy {
		return false, nil
	}
	ok, err := u.claim(ctx, key)
	if !ok {
		u.local.Delete(key)
	}
	return ok, err
}

func (u *Uploads) claim(ctx context.Context, key string) (bool, error) {
	tag, err := u.db.pool.Exec(ctx, `INSERT INTO ferry_uploads AS c (key, node, expires) VALUES ($1, $2, now() + interval '`+leaseTTL+`')
		ON CONFLICT (key) DO UPDATE SET node = EXCLUDED.node, expires = EXCLUDED.expires
		WHERE c.expires < now() OR c.node = EXCLUDED.node`, key, u.db.node)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Running says whether a live claim on key exists (on any node). When
// the database cannot be reached, it says yes: leave the upload alone.
func (u *Uploads) Running(ctx context.Context, key string) bool {
	if _, ok := u.local.Load(key); ok {
		return true
	}
	var n int
	err := u.db.pool.QueryRow(ctx, `SELECT count(*) FROM ferry_uploads WHERE key = $1 AND expires > now()`, key).Scan(&n)
	return err != nil || n > 0
}

// Release lets go of this node's claim on key.
func (u *Uploads) Release(key string) {
	u.local.Delete(key)
	ctx, cancel := timeout()
	defer cancel()
	if _, err := u.db.pool.Exec(ctx, `DELETE FROM ferry_uploads WHERE key = $1 AND node = $2`, key, u.db.node); err != nil {
		u.db.logger.Warn("database: upload claim not released", "err", err)
	}
}
