package pgstate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryftp/ferry/auth/users"
	"github.com/ferryftp/ferry/defender"
	"github.com/ferryftp/ferry/events"
	"github.com/ferryftp/ferry/internal/pgtest"
	"github.com/ferryftp/ferry/limits"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/memfs"
)

// TestUsersShared: three nodes opening at once migrate once; users saved
// by one are read by the others, whose version moves within a second
// (NOTIFY); rows removed go.
func TestUsersShared(t *testing.T) {
	pg := pgtest.Start(t, "127.0.0.20")
	ctx := context.Background()
	dbs := make([]*DB, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = Open(ctx, pg.URL, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	before := dbs[1].Version()
	alice := users.User{Name: "alice", Password: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", Home: "/srv/alice", Permission: users.ReadWrite, QuotaBytes: 10 << 20,
		AllowFrom: []string{"192.0.2.0/24"}, Dirs: []users.DirRule{{Path: "/in", Perms: "upload"}}}
	bob := users.User{Name: "bob", Password: alice.Password, Storage: "s3://b/bob", Disabled: true}
	if err := dbs[0].SaveUsers(ctx, []users.User{alice, bob}); err != nil {
		t.Fatal(err)
	}
	waitVersion(t, dbs[1], before)
	list, err := dbs[1].Users(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alice" || list[0].QuotaBytes != 10<<20 || list[0].Dirs[0].Perms != "upload" || !list[1].Disabled {
		t.Fatalf("users on another node: %+v %v", list, err)
	}
	// alice's usage is kept while she has a quota, and goes with it.
	if err := dbs[0].Bank("alice").Init(ctx, limits.Usage{Bytes: 5}); err != nil {
		t.Fatal(err)
	}
	before = dbs[2].Version()
	if err := dbs[0].SaveUsers(ctx, []users.User{bob}); err != nil {
		t.Fatal(err)
	}
	waitVersion(t, dbs[2], before)
	if list, _ := dbs[2].Users(ctx); len(list) != 1 || list[0].Name != "bob" {
		t.Fatalf("after alice's removal: %+v", list)
	}
	if _, known, err := dbs[1].Bank("alice").Load(ctx); known || err != nil {
		t.Fatalf("alice's usage outlived her quota: %v %v", known, err)
	}
	if err := dbs[0].SaveUsers(ctx, []users.User{{Name: "bad name!"}}); err == nil {
		t.Fatal("an invalid user was saved")
	}
}

func waitVersion(t *testing.T, db *DB, before int64) {
	t.Helper()
	deadline := time.Now().Add(within)
	for db.Version() == before {
		if time.Now().After(deadline) {
			t.Fatalf("the change did not arrive within %v", within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCheckURL(t *testing.T) {
	for url, ok := range map[string]bool{
		"postgres://ferry@127.0.0.1/ferry":             true,
		"postgresql://ferry@db/ferry?sslmode=disable":  true,
		"postgres://ferry:secret@127.0.0.1/ferry":      false,
		"postgres://ferry@127.0.0.1/ferry?password=pw": false,
		"mysql://ferry@127.0.0.1/ferry":                false,
	} {
		if err := CheckURL(url); (err == nil) != ok {
			t.Errorf("%s: %v", url, err)
		}
	}
}

// TestDefenderShared: failures scored on three nodes add up to one ban,
// which every node refuses within a second; lifted on one, it is lifted
// on all.
func TestDefenderShared(t *testing.T) {
	pg := pgtest.Start(t, "127.0.0.21")
	ctx := context.Background()
	var defs []*Defender
	var bans []string
	for range 3 {
		db, err := Open(ctx, pg.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		cfg := defender.Config{Threshold: 3, AllowList: []netip.Prefix{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		cfg.OnBan = func(n netip.Prefix, until time.Time, ev defender.Event) { bans = append(bans, n.String()) }
		d, err := db.Defender(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defs = append(defs, d)
	}
	ip := netip.MustParseAddr("192.0.2.50")
	for i, d := range defs {
		if banned := d.Record(ip, defender.LoginFailed); banned != (i == 2) {
			t.Fatalf("failure %d on node %d: banned %v", i+1, i, banned)
		}
	}
	if len(bans) != 1 || bans[0] != "192.0.2.50/32" {
		t.Fatalf("OnBan %v", bans)
	}
	everywhere := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for i, d := range defs {
			for {
				if _, b := d.Banned(ip); b == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node %d: banned %v %v later", i, !want, within)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	everywhere(true)
	if n := defs[0].Bans(); n != 1 {
		t.Fatalf("Bans() = %d", n)
	}
	// Every node lists the ban and another network's score.
	other := netip.MustParseAddr("198.51.100.4")
	defs[2].Record(other, defender.LoginFailed)
	for i, d := range defs {
		es := d.List()
		if len(es) != 2 || es[0].Network.String() != "192.0.2.50/32" || !es[0].Banned(time.Now()) || es[0].Bans != 1 ||
			es[1].Network.String() != "198.51.100.4/32" || es[1].Score != 1 || es[1].Banned(time.Now()) {
			t.Fatalf("node %d lists %+v", i, es)
		}
	}
	defs[1].Unban(ip)
	everywhere(false)
	if es := defs[0].List(); len(es) != 1 || es[0].Network.String() != "198.51.100.4/32" {
		t.Fatalf("after the lift: %+v", es)
	}
}

// TestQuotaBank: three nodes' ledgers on the database: concurrent
// uploads of 3 MiB under a 20 MiB quota never store more than six, the
// usage is exactly what they stored and the same on every node, and
// nothing stays leased; a lease of a node
// that stops renewing it stops counting.
func TestQuotaBank(t *testing.T) {
	pg := pgtest.Start(t, "127.0.0.22")
	ctx := context.Background()
	q := limits.Quota{Bytes: 20 << 20, Files: 100}
	var fss []storage.FS
	var ledgers []*limits.Ledger
	var dbs []*DB
	for range 3 {
		db, err := Open(ctx, pg.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs = append(dbs, db)
		bank := db.Bank("frank")
		if err := bank.Init(ctx, limits.Usage{}); err != nil {
			t.Fatal(err)
		}
		l := limits.NewLedger(limits.State{}, limits.LedgerOptions{Quota: q, Bank: bank})
		ledgers = append(ledgers, l)
		fss = append(fss, limits.WithQuota(memfs.New(), l))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := fss[i%3].Create(ctx, fmt.Sprintf("f%d", i), storage.CreateOptions{})
			if err == nil {
				for range 3 {
					if _, err = u.Write(make([]byte, 1<<20)); err != nil {
						break
					}
				}
			}
			if err == nil {
				err = u.Commit()
			} else if u != nil {
				u.Abort(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				stored++
			} else if !errors.Is(err, storage.ErrQuota) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	used, leased, err := dbs[0].Bank("frank").Usage(ctx)
	// Uploads cut midway held bytes while they ran, so fewer than six may
	// fit; never more, and the usage is exactly what was stored.
	if err != nil || stored < 1 || stored > 6 || used != (limits.Usage{Bytes: int64(stored) * 3 << 20, Files: int64(stored)}) || leased != (limits.Usage{}) {
		t.Fatalf("%d stored; usage %+v, leased %+v, %v; want at most 6, exactly what is stored, nothing leased", stored, used, leased, err)
	}
	for i, l := range ledgers {
		if u := l.Used(); u != used {
			t.Errorf("node %d sees %+v", i, u)
		}
	}
	// A node that dies with a lease on the rest: it stops counting once
	// expired.
	rest := limits.Usage{Bytes: q.Bytes - used.Bytes}
	if _, err := dbs[2].Bank("frank").Reserve(ctx, q, rest, rest); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[0].Bank("frank").Reserve(ctx, q, limits.Usage{Bytes: 1}, limits.Usage{Bytes: 1}); !errors.Is(err, storage.ErrQuota) {
		t.Fatalf("with the rest leased by another node: %v", err)
	}
	dbs[2].pool.Exec(ctx, `UPDATE ferry_quota_leases SET expires = now() - interval '1 second' WHERE node = $1`, dbs[2].node)
	if got, err := dbs[0].Bank("frank").Reserve(ctx, q, rest, rest); err != nil || got != rest {
		t.Fatalf("after the other node's lease expired: %+v %v", got, err)
	}
}

// TestUploadClaims: a running upload claimed on one node cannot be
// claimed again there or on another; released, another node takes it;
// a claim that lapsed (its node died) is taken over.
func TestUploadClaims(t *testing.T) {
	pg := pgtest.Start(t, "127.0.0.23")
	ctx := context.Background()
	a, err := Open(ctx, pg.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, pg.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ua, ub := a.Uploads(), b.Uploads()
	claim := func(u *Uploads, want bool) {
		t.Helper()
		if ok, err := u.Claim(ctx, "bucket/upload-1"); err != nil || ok != want {
			t.Fatalf("claim: %v %v, want %v", ok, err, want)
		}
	}
	claim(ua, true)
	claim(ua, false) // a second resume on the same node
	claim(ub, false) // on another node
	if !ub.Running(ctx, "bucket/upload-1") {
		t.Fatal("another node does not see the upload running")
	}
	ua.Release("bucket/upload-1")
	claim(ub, true)
	// b dies: its claim lapses, and a takes the upload over.
	b.pool.Exec(ctx, `UPDATE ferry_uploads SET expires = now() - interval '1 second' WHERE node = $1`, b.node)
	claim(ua, true)
}

// TestHookQueueTakeOver: events queued by a node that stops are taken
// over by another and delivered there, each once, with its ID; the queue
// empties.
func TestHookQueueTakeOver(t *testing.T) {
	pg := pgtest.Start(t, "127.0.0.24")
	ctx := context.Background()
	var mu sync.Mutex
	got := map[string]int{}
	var down atomic.Bool
	down.Store(true)
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(503)
			return
		}
		mu.Lock()
		got[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
	}))
	defer ep.Close()
	hooks := []events.Hook{{On: []string{events.Upload}, URL: ep.URL}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dispatcher := func() (*DB, *events.Dispatcher) {
		db, err := Open(ctx, pg.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		q, err := db.HookQueue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d, err := events.Open(events.Options{Store: q, TakeEvery: 50 * time.Millisecond, Backoff: 20 * time.Millisecond, Logger: quiet}, hooks)
		if err != nil {
			t.Fatal(err)
		}
		return db, d
	}
	dbA, a := dispatcher()
	dbB, b := dispatcher()
	defer dbB.Close()
	defer b.Close()
	var ids []string
	for range 10 {
		e := events.Event{ID: events.NewID(), Event: events.Upload, Path: "/x"}
		ids = append(ids, e.ID)
		a.Publish(e)
	}
	// A stops (its rows stay) and its lease lapses.
	a.Close()
	dbA.pool.Exec(ctx, `UPDATE ferry_nodes SET expires = now() - interval '1 second' WHERE node = $1`, dbA.node)
	dbA.Close()
	down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 10 events delivered by the other node", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("event %s delivered %d times", id, got[id])
		}
	}
	var left int
	dbB.pool.QueryRow(ctx, `SELECT count(*) FROM ferry_hook_queue`).Scan(&left)
	for left > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		dbB.pool.QueryRow(ctx, `SELECT count(*) FROM ferry_hook_queue`).Scan(&left)
	}
	if left != 0 {
		t.Fatalf("%d deliveries left in the queue", left)
	}
}

// TestEditUsersConcurrent: two nodes (four writers each) adding users at once through
// users.Edit (the admin API's and ferry user's way) lose none of them, and
// an edit's own error leaves the users as they were.
func TestEditUsersConcurrent(t *testing.T) {
	pg := pgtest.Start(t, "127.0.0.26")
	ctx := context.Background()
	var dbs [2]*DB
	for i := range dbs {
		db, err := Open(ctx, pg.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	hash := "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
	var wg sync.WaitGroup
	for i := range 8 { // four writers on each node
		db := dbs[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				err := users.Edit(ctx, db, func(list []users.User) ([]users.User, error) {
					return append(list, users.User{Name: fmt.Sprintf("w%d-u%d", i, j), Password: hash, Home: "/srv"}), nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	refused := errors.New("refused")
	if err := users.Edit(ctx, dbs[0], func([]users.User) ([]users.User, error) { return nil, refused }); err != refused {
		t.Errorf("an edit's error: %v", err)
	}
	// A relative home would be another directory on every node.
	err := users.Edit(ctx, dbs[0], func(list []users.User) ([]users.User, error) {
		return append(list, users.User{Name: "rel", Password: hash, Home: "rel"}), nil
	})
	if err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("a relative home in the database: %v", err)
	}
	if list, err := dbs[1].Users(ctx); err != nil || len(list) != 40 {
		t.Fatalf("%d users after 40 added at once on two nodes: %v", len(list), err)
	}
}
