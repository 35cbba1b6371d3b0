// Package pgstate keeps what several Ferry nodes share in PostgreSQL
// (through jackc/pgx): for now the users, with every field of the users
// file and the same password hashes. A change made on one node (or by
// `ferry user … --database`) reaches every node within a second: each
// change bumps a version and sends a NOTIFY; every node LISTENs and also
// reads the version once a second, so a lost notification costs at most
// that second. The schema is created and migrated at open, under an
// advisory lock, so that nodes starting together do not race.
package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferryftp/ferry/auth/users"
)

// DB is the shared state of a node.
type DB struct {
	pool    *pgxpool.Pool
	node    string // this process, in the quota leases
	version atomic.Int64
	def     atomic.Pointer[Defender] // its bans are refreshed with the users
	cancel  context.CancelFunc
	done    chan struct{}
	logger  *slog.Logger
}

// CheckURL refuses a database URL that is not postgres:// or that holds a
// password: the password comes from PGPASSWORD or a PGPASSFILE, so it is
// never in a configuration, a command line or a log line.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("database: want a postgres://user@host/dbname URL")
	}
	if _, ok := u.User.Password(); ok || u.Query().Has("password") {
		return errors.New("database: the URL holds a password: put it in PGPASSWORD or a PGPASSFILE instead")
	}
	return nil
}

// Open connects, migrates the schema and starts following changes.
func Open(ctx context.Context, rawURL string, logger *slog.Logger) (*DB, error) {
	if err := CheckURL(rawURL); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	pool, err := pgxpool.New(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	db := &DB{pool: pool, logger: logger, done: make(chan struct{}), node: newNode()}
	if err := db.poll(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	db.cancel = cancel
	go db.follow(wctx)
	return db, nil
}

// Close stops following changes and closes the connections.
func (db *DB) Close() {
	db.cancel()
	<-db.done
	db.pool.Close()
}

// migrations are the schema's versions, in order; the nth brings the
// schema to version n+1.
var migrations = []string{
	`CREATE TABLE ferry_users (
		name text PRIMARY KEY,
		data jsonb NOT NULL,
		updated timestamptz NOT NULL DEFAULT now());
	 CREATE TABLE ferry_users_version (one boolean PRIMARY KEY DEFAULT true CHECK (one), version bigint NOT NULL);
	 INSERT INTO ferry_users_version (version) VALUES (1);`,
	`CREATE TABLE ferry_scores (network text PRIMARY KEY, score int NOT NULL, since timestamptz NOT NULL);
	 CREATE TABLE ferry_bans (network text PRIMARY KEY, until timestamptz NOT NULL, bans int NOT NULL);`,
	`CREATE TABLE ferry_quota (username text PRIMARY KEY, used_bytes bigint NOT NULL, used_files bigint NOT NULL);
	 CREATE TABLE ferry_quota_leases (username text NOT NULL, node text NOT NULL, bytes bigint NOT NULL, files bigint NOT NULL,
		expires timestamptz NOT NULL, PRIMARY KEY (username, node));`,
	`CREATE TABLE ferry_sessions (username text NOT NULL, node text NOT NULL, count int NOT NULL,
		expires timestamptz NOT NULL, PRIMARY KEY (username, node));`,
	`CREATE TABLE ferry_uploads (key text PRIMARY KEY, node text NOT NULL, expires timestamptz NOT NULL);`,
	`CREATE TABLE ferry_nodes (node text PRIMARY KEY, expires timestamptz NOT NULL);
	 CREATE TABLE ferry_hook_queue (id bigserial PRIMARY KEY, hook text NOT NULL, event jsonb NOT NULL, node text NOT NULL);
	 CREATE INDEX ferry_hook_queue_node ON ferry_hook_queue (node);
	 CREATE TABLE ferry_hook_dead (id bigint PRIMARY KEY, hook text NOT NULL, event jsonb NOT NULL, reason text NOT NULL, at timestamptz NOT NULL DEFAULT now());`,
}

// lockKey is the advisory lock that serialises migrations.
const lockKey = 0x66657272 // "ferr"

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS ferry_schema (version int NOT NULL)`); err != nil {
			return err
		}
		var have int
		err := tx.QueryRow(ctx, `SELECT version FROM ferry_schema`).Scan(&have)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, `INSERT INTO ferry_schema VALUES (0)`)
		}
		if err != nil {
			return err
		}
		if have > len(migrations) {
			return fmt.Errorf("the schema is version %d, newer than this ferry knows (%d): upgrade ferry", have, len(migrations))
		}
		for v := have; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		_, err = tx.Exec(ctx, `UPDATE ferry_schema SET version = $1`, len(migrations))
		return err
	})
}

// The NOTIFY channels: user changes, new bans.
const (
	channel     = "ferry_users"
	bansChannel = "ferry_bans"
)

// follow keeps version current: LISTEN, and a read of the version every
// second in case a notification is lost (a dropped connection).
func (db *DB) follow(ctx context.Context) {
	defer close(db.done)
	notified := make(chan struct{}, 1)
	go db.listen(ctx, notified)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-notified:
		case <-tick.C:
			if n%leaseRenew == 0 {
				db.renewLeases(ctx)
			}
		}
		if err := db.poll(ctx); err != nil && ctx.Err() == nil {
			db.logger.Warn("database: users version not read", "err", err)
		}
		if d := db.def.Load(); d != nil {
			if err := d.refresh(ctx); err != nil && ctx.Err() == nil {
				db.logger.Warn("database: bans not read", "err", err)
			}
		}
	}
}

// listen waits for notifications on a connection of its own, reconnecting
// after a failure.
func (db *DB) listen(ctx context.Context, notified chan<- struct{}) {
	for ctx.Err() == nil {
		err := db.listenOnce(ctx, notified)
		if ctx.Err() != nil {
			return
		}
		db.logger.Warn("database: LISTEN interrupted, reconnecting", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (db *DB) listenOnce(ctx context.Context, notified chan<- struct{}) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+channel+"; LISTEN "+bansChannel); err != nil {
		return err
	}
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			conn.Conn().Close(context.Background()) // not back to the pool while listening
			return err
		}
		select {
		case notified <- struct{}{}:
		default:
		}
	}
}

// poll reads the version.
func (db *DB) poll(ctx context.Context) error {
	var v int64
	if err := db.pool.QueryRow(ctx, `SELECT version FROM ferry_users_version`).Scan(&v); err != nil {
		return err
	}
	db.version.Store(v)
	return nil
}

// Version changes whenever the users change (users.Source).
func (db *DB) Version() int64 { return db.version.Load() }

// Users reads every user (users.Source).
func (db *DB) Users(ctx context.Context) ([]users.User, error) {
	return readUsers(ctx, db.pool)
}

// readUsers reads the users through q (the pool, or a transaction).
func readUsers(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}) ([]users.User, error) {
	rows, err := q.Query(ctx, `SELECT data FROM ferry_users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (users.User, error) {
		var u users.User
		var data []byte
		if err := r.Scan(&data); err != nil {
			return u, err
		}
		return u, json.Unmarshal(data, &u)
	})
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	return list, nil
}

// SaveUsers makes the users exactly list, in one transaction (rows
// added, changed and removed), then tells every node.
func (db *DB) SaveUsers(ctx context.Context, list []users.User) error {
	return db.EditUsers(ctx, func([]users.User) ([]users.User, error) { return list, nil })
}

// EditUsers changes the users as edit says, in one transaction that
// holds off every other change meanwhile (users.Editor): two
// administrators changing users at once on two nodes lose neither
// change.
func (db *DB) EditUsers(ctx context.Context, edit func([]users.User) ([]users.User, error)) error {
	var refused error // the edit's own error, or the list's: returned as is
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE ferry_users IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		have, err := readUsers(ctx, tx)
		if err != nil {
			return err
		}
		list, err := edit(have)
		if err == nil {
			err = users.Validate(list)
		}
		for i := 0; err == nil && i < len(list); i++ {
			err = list[i].CheckShared()
		}
		if err != nil {
			refused = err
			return err
		}
		return saveUsers(ctx, tx, list)
	})
	switch {
	case refused != nil:
		return refused
	case err != nil:
		return fmt.Errorf("database: %w", err)
	}
	return db.poll(ctx)
}

// saveUsers writes list as the users, in tx.
func saveUsers(ctx context.Context, tx pgx.Tx, list []users.User) error {
	names := make([]string, len(list))
	for i, u := range list {
		names[i] = u.Name
		data, err := json.Marshal(u)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ferry_users (name, data) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, updated = now()
			WHERE ferry_users.data IS DISTINCT FROM EXCLUDED.data`, u.Name, data); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM ferry_users WHERE NOT (name = ANY($1))`, names); err != nil {
		return err
	}
	// A usage is kept only while its user has a quota: one set again
	// counts anew.
	quota := []string{} // not nil: NULL would match no row
	for _, u := range list {
		if u.QuotaBytes > 0 || u.QuotaFiles > 0 {
			quota = append(quota, u.Name)
		}
	}
	for _, table := range []string{"ferry_quota", "ferry_quota_leases"} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE NOT (username = ANY($1))`, quota); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE ferry_users_version SET version = version + 1`); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, channel)
	return err
}

// timeout bounds a statement made outside any caller's context (a
// session's end, an event scored, a hook delivery recorded).
func timeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
