package limits

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"maps"
	"sync"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/storage"
)

// Usage is what a user stores.
type Usage struct {
	Bytes int64 `json:"bytes"`
	Files int64 `json:"files"`
}

// Partial is the kept part of an interrupted upload, counted in a user's
// usage until a resume takes it, a new upload of its name replaces it or
// it expires.
type Partial struct {
	Bytes int64     `json:"bytes"`
	Kept  time.Time `json:"kept"`
}

// State is what a ledger keeps across restarts: the usage, whose Bytes
// include the kept parts, and the kept parts by name.
type State struct {
	Usage
	Partials map[string]Partial `json:"partials,omitempty"`
}

// Quota caps a user's storage; 0 is no cap.
type Quota struct {
	Bytes, Files int64
}

// LedgerOptions are the settings of a ledger.
type LedgerOptions struct {
	Quota Quota
	// PartialMaxAge is how long a kept part counts: the storage sweeper
	// removes it after that (partial_max_age). 0 or less: for good.
	PartialMaxAge time.Duration
	// Changed, when set, is told the state after every change (to keep it).
	Changed func(State)
	// Bank, when set, keeps the usage where several nodes share it (a
	// database): every reservation and settlement is made there, so that
	// the uploads of all nodes together never pass the quota.
	Bank Bank
}

// Bank keeps one user's usage for several nodes. Its calls are
// transactions against a store shared by the nodes.
type Bank interface {
	// Reserve reserves up to want for this node, at least atLeast, within
	// q given what every node uses and reserves; it returns what it
	// reserved, or a quota error (storage.ErrQuota) when even atLeast does
	// not fit.
	Reserve(ctx context.Context, q Quota, want, atLeast Usage) (Usage, error)
	// Settle gives back reserved (of this node's reservations) and adds
	// delta to the usage.
	Settle(ctx context.Context, reserved, delta Usage) error
	// Usage is what is used, and reserved by every node.
	Usage(ctx context.Context) (used, reserved Usage, err error)
}

// chunkLocked is what a ledger with a bank reserves at once beyond what
// an upload asks (one transaction per chunk, not per write): a 32nd of the
// quota, 64 KiB to 8 MiB, so that what nodes hold unused stays small
// beside it. l.mu is held.
func (l *Ledger) chunkLocked() int64 {
	return min(max(l.quota.Bytes/32, 64<<10), 8<<20)
}

// Ledger keeps one user's usage against their quota, shared by all the
// user's sessions. Uploads reserve the bytes they write as they write
// them, so concurrent uploads cannot together pass the quota; a commit
// settles the reservation into the usage.
type Ledger struct {
	mu       sync.Mutex
	quota    Quota
	maxAge   time.Duration
	used     Usage
	partials map[string]Partial
	reserved Usage // bytes written and files begun by uploads not yet ended
	changed  func(State)
	bank     Bank
	lease    Usage // reserved at the bank, not yet given to an upload
	flight   flight
}

// flight numbers a user's uploads in flight. When the quota runs out
// under several at once, the oldest waits for the younger ones to end
// (each is cut when it runs out too, or commits) rather than all of them
// being cut: two uploads that together pass the quota leave one whole.
type flight struct {
	next uint64
	open map[uint64]struct{}
	back chan struct{} // closed when bytes are given back; nil with no waiter
}

// quotaWait bounds how long the oldest upload waits for younger ones to
// give back what they hold (a stalled client holds it until its timeout).
const quotaWait = 30 * time.Second

// NewLedger starts a ledger at st.
func NewLedger(st State, o LedgerOptions) *Ledger {
	return &Ledger{quota: o.Quota, maxAge: o.PartialMaxAge, used: st.Usage, partials: maps.Clone(st.Partials), changed: o.Changed, bank: o.Bank}
}

// SetQuota changes the quota (a reread users file).
func (l *Ledger) SetQuota(q Quota) {
	l.mu.Lock()
	l.quota = q
	l.mu.Unlock()
}

// Detach stops telling Changed: the ledger is no longer the user's (their
// quota was removed), though sessions may still use it.
func (l *Ledger) Detach() {
	l.mu.Lock()
	l.changed = nil
	l.mu.Unlock()
}

// Used returns the usage (without uploads in progress): with a bank, of
// every node.
func (l *Ledger) Used() Usage {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked(time.Now())
	if l.bank != nil {
		ctx, cancel := context.WithTimeout(context.Background(), bankTimeout)
		defer cancel()
		if used, _, err := l.bank.Usage(ctx); err == nil {
			l.used = used
		}
	}
	return l.used
}

// notifyLocked tells Changed the state; l.mu is held.
func (l *Ledger) notifyLocked() {
	if l.changed != nil {
		l.changed(State{Usage: l.used, Partials: maps.Clone(l.partials)})
	}
}

// expireLocked drops the kept parts older than the sweeper keeps them,
// and says whether there were any.
func (l *Ledger) expireLocked(now time.Time) bool {
	if len(l.partials) == 0 || l.maxAge <= 0 {
		return false
	}
	cutoff, any := now.Add(-l.maxAge), false
	for name, p := range l.partials {
		if p.Kept.Before(cutoff) {
			delete(l.partials, name)
			l.applyLocked(Usage{}, Usage{Bytes: -p.Bytes})
			any = true
		}
	}
	return any
}

// claim takes the kept part of name out of the usage when a resume from
// offset starts on it (its bytes become the upload's own), and reports
// whether it did.
func (l *Ledger) claim(name string, offset int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked(time.Now())
	p, ok := l.partials[name]
	if !ok || p.Bytes < offset {
		return false
	}
	delete(l.partials, name)
	l.applyLocked(Usage{}, Usage{Bytes: -p.Bytes})
	return true
}

// keep counts n bytes an ended upload of name left for a resume, in
// place of an older kept part of the name.
func (l *Ledger) keep(name string, n int64) {
	if n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.partials == nil {
		l.partials = map[string]Partial{}
	}
	old := l.partials[name].Bytes
	l.partials[name] = Partial{Bytes: n, Kept: time.Now()}
	l.applyLocked(Usage{}, Usage{Bytes: n - old})
}

// forget drops the kept part of name from the usage and says whether
// there was one.
func (l *Ledger) forget(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.partials[name]
	if ok {
		delete(l.partials, name)
		l.applyLocked(Usage{}, Usage{Bytes: -p.Bytes})
	}
	return ok
}

// hasPartial says whether a kept part of name is counted.
func (l *Ledger) hasPartial(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.partials[name]
	return ok
}

// errQuota is the quota error, as storage names it (552).
func errQuota(what string) error {
	return fmt.Errorf("%w: %s", storage.ErrQuota, what)
}

// errRefused ends an upload refused before its first byte: not a quota
// error to the backend, which then keeps a resumed part as it was.
var errRefused = errors.New("limits: upload refused before it began")

// reserve takes n bytes and files more, or fails when that passes the quota.
func (l *Ledger) reserve(n Usage) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reserveLocked(n)
}

// reserveLocked is reserve with l.mu held.
func (l *Ledger) reserveLocked(n Usage) error {
	if l.bank != nil {
		need := l.cappedLocked(n) // only what a quota caps goes through the bank
		short := Usage{Bytes: max(need.Bytes-l.lease.Bytes, 0), Files: max(need.Files-l.lease.Files, 0)}
		if short != (Usage{}) {
			want := short
			if want.Bytes > 0 {
				want.Bytes = max(want.Bytes, l.chunkLocked())
			}
			got, err := l.bankReserve(want, short)
			if err != nil {
				return err
			}
			l.lease = l.lease.plus(got)
		}
		l.lease = l.lease.minus(need)
	} else {
		if l.quota.Bytes > 0 && n.Bytes > 0 && l.used.Bytes+l.reserved.Bytes+n.Bytes > l.quota.Bytes {
			return errQuota("the byte quota is reached")
		}
		if l.quota.Files > 0 && n.Files > 0 && l.used.Files+l.reserved.Files+n.Files > l.quota.Files {
			return errQuota("the file quota is reached")
		}
	}
	l.reserved = l.reserved.plus(n)
	return nil
}

// board numbers an upload that begins.
func (l *Ledger) board() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.flight.open == nil {
		l.flight.open = map[uint64]struct{}{}
	}
	l.flight.next++
	l.flight.open[l.flight.next] = struct{}{}
	return l.flight.next
}

// land ends upload t: it gives back reserved and adds delta to the usage.
func (l *Ledger) land(t uint64, reserved, delta Usage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.flight.open, t)
	l.applyLocked(reserved, delta)
}

// take reserves bytes for upload t, which holds held: exactly want when
// exact, else up to want. When the quota runs out and t is the oldest
// upload in flight while others hold bytes, it waits (at most quotaWait,
// or until ctx ends) for them to give some back.
func (l *Ledger) take(ctx context.Context, t uint64, held, want int64, exact bool) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var stop <-chan time.Time
	for {
		g, err := l.takeLocked(want, exact)
		if err == nil || !errors.Is(err, storage.ErrQuota) || !l.mayWaitLocked(t, held) {
			return g, err
		}
		if stop == nil {
			tm := time.NewTimer(quotaWait)
			defer tm.Stop()
			stop = tm.C
		}
		if !l.awaitLocked(ctx, stop) {
			return g, err
		}
	}
}

// mayWaitLocked says whether upload t, holding held, is the oldest in
// flight while others hold bytes. l.mu is held.
func (l *Ledger) mayWaitLocked(t uint64, held int64) bool {
	if l.reserved.Bytes <= held {
		return false
	}
	for o := range l.flight.open {
		if o < t {
			return false
		}
	}
	return true
}

// awaitLocked waits, l.mu given up meanwhile, until bytes are given back;
// false when ctx or stop end it first.
func (l *Ledger) awaitLocked(ctx context.Context, stop <-chan time.Time) bool {
	if l.flight.back == nil {
		l.flight.back = make(chan struct{})
	}
	back := l.flight.back
	l.mu.Unlock()
	defer l.mu.Lock()
	select {
	case <-back:
		return true
	case <-ctx.Done():
	case <-stop:
	}
	return false
}

// takeLocked reserves want bytes when exact, else up to want: all of them
// without a byte quota, else what is left, and a quota error when nothing
// is. l.mu is held.
func (l *Ledger) takeLocked(want int64, exact bool) (int64, error) {
	if exact {
		if err := l.reserveLocked(Usage{Bytes: want}); err != nil {
			return 0, err
		}
		return want, nil
	}
	g := want
	switch {
	case l.quota.Bytes <= 0:
	case l.bank != nil:
		if l.lease.Bytes < want {
			got, err := l.bankReserve(Usage{Bytes: max(want-l.lease.Bytes, l.chunkLocked())}, Usage{Bytes: 1})
			if err != nil && l.lease.Bytes == 0 {
				return 0, err
			}
			l.lease.Bytes += got.Bytes
		}
		g = min(want, l.lease.Bytes)
		l.lease.Bytes -= g
	default:
		g = min(want, l.quota.Bytes-l.used.Bytes-l.reserved.Bytes)
		if g <= 0 {
			return 0, errQuota("the byte quota is reached")
		}
	}
	l.reserved.Bytes += g
	return g, nil
}

// cappedLocked is n without the dimensions no quota caps. l.mu is held.
func (l *Ledger) cappedLocked(n Usage) Usage {
	if l.quota.Bytes <= 0 {
		n.Bytes = 0
	}
	if l.quota.Files <= 0 {
		n.Files = 0
	}
	return n
}

// bankTimeout bounds one call to the bank.
const bankTimeout = 10 * time.Second

// bankReserve asks the bank; l.mu is held (a user's uploads on this node
// wait for each other's transactions).
func (l *Ledger) bankReserve(want, atLeast Usage) (Usage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bankTimeout)
	defer cancel()
	return l.bank.Reserve(ctx, l.quota, want, atLeast)
}

// settle gives back a reservation and adds delta to the usage.
func (l *Ledger) settle(reserved, delta Usage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applyLocked(reserved, delta)
}

// applyLocked gives back reserved and adds delta to the usage, here and
// at the bank: with no upload left in flight, this node's lease goes back
// too. l.mu is held.
func (l *Ledger) applyLocked(reserved, delta Usage) {
	l.reserved = l.reserved.minus(reserved)
	if reserved.Bytes > 0 && l.flight.back != nil {
		close(l.flight.back)
		l.flight.back = nil
	}
	l.used = Usage{Bytes: max(l.used.Bytes+delta.Bytes, 0), Files: max(l.used.Files+delta.Files, 0)}
	if l.bank != nil {
		back := l.cappedLocked(reserved)
		if l.reserved == (Usage{}) {
			back, l.lease = back.plus(l.lease), Usage{}
		}
		if back != (Usage{}) || delta != (Usage{}) {
			ctx, cancel := context.WithTimeout(context.Background(), bankTimeout)
			l.bank.Settle(ctx, back, delta) // a failure leaves the lease to expire at the bank
			cancel()
		}
	}
	if delta != (Usage{}) {
		l.notifyLocked()
	}
}

func (u Usage) plus(v Usage) Usage  { return Usage{u.Bytes + v.Bytes, u.Files + v.Files} }
func (u Usage) minus(v Usage) Usage { return Usage{u.Bytes - v.Bytes, u.Files - v.Files} }

// left is what the quota still allows, and whether there is a byte quota.
func (l *Ledger) left() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.quota.Bytes <= 0 {
		return 0, false
	}
	if l.bank != nil {
		ctx, cancel := context.WithTimeout(context.Background(), bankTimeout)
		defer cancel()
		used, reserved, err := l.bank.Usage(ctx)
		if err != nil {
			return 0, true
		}
		// What this node reserved and has not given out is still ours.
		return max(l.quota.Bytes-used.Bytes-(reserved.Bytes-l.lease.Bytes), 0), true
	}
	return max(l.quota.Bytes-l.used.Bytes-l.reserved.Bytes, 0), true
}

// Scan walks fsys and adds up its files, for a ledger's first start.
func Scan(ctx context.Context, fsys storage.FS) (Usage, error) {
	var u Usage
	var walk func(dir string) error
	walk = func(dir string) error {
		for fi, err := range fsys.ReadDir(ctx, dir) {
			if err != nil {
				return err
			}
			name := fi.Name()
			if dir != "." {
				name = dir + "/" + name
			}
			switch {
			case fi.IsDir():
				if err := walk(name); err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				u.Bytes += fi.Size()
				u.Files++
			}
		}
		return nil
	}
	return u, walk(".")
}

// QuotaFS counts what a user stores in fsys against a ledger. Uploads are
// copied through Write (no zero copy) to be counted; downloads are not
// touched. The optional capabilities of fsys are forwarded.
type QuotaFS struct {
	storage.FS
	l *Ledger
}

// WithQuota wraps fsys with l; with no ledger, fsys itself.
func WithQuota(fsys storage.FS, l *Ledger) storage.FS {
	if l == nil {
		return fsys
	}
	return &QuotaFS{FS: fsys, l: l}
}

// size is the size of the regular file name, and whether there is one.
func (q *QuotaFS) size(ctx context.Context, name string) (int64, bool) {
	fi, err := q.FS.Stat(ctx, name)
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

func (q *QuotaFS) Create(ctx context.Context, name string, opts storage.CreateOptions) (storage.Upload, error) {
	old, existed := q.size(ctx, name)
	u := &quotaUpload{q: q, ctx: ctx, name: name, old: old, existed: existed, mode: opts.Mode}
	switch opts.Mode {
	case storage.Append:
		u.base = old
	case storage.Truncate:
		u.base = opts.Offset
	}
	// Known in advance: a new file, and the bytes a resume starts with.
	ahead := Usage{Bytes: max(u.base-u.replaced(), 0)}
	if !existed {
		ahead.Files = 1
	}
	up, err := q.FS.Create(ctx, name, opts) // a bad offset is its error first
	if err != nil {
		return nil, err
	}
	if opts.Mode == storage.Truncate && opts.Offset > 0 {
		// The kept part the backend resumes from leaves the usage: its
		// bytes are now the upload's base, reserved below.
		u.resumed = q.l.claim(name, opts.Offset)
	}
	u.Upload = up
	if err := q.l.reserve(ahead); err != nil {
		up.Abort(errRefused) // the backend keeps a part it resumed again
		if u.resumed {
			u.kept() // and it counts again
		}
		return nil, err
	}
	u.held = ahead
	u.ticket = q.l.board()
	if zc, ok := up.(storage.ZeroCopy); ok {
		// A file: the server may splice into it, counting through Meter.
		return &quotaFileUpload{quotaUpload: u, zc: zc}, nil
	}
	return u, nil
}

// quotaUpload reserves each write; it has no SyscallConn, so the server
// writes through it.
type quotaUpload struct {
	storage.Upload
	q       *QuotaFS
	ctx     context.Context
	name    string
	mode    storage.CreateMode
	old     int64 // the size of the file it replaces or appends to
	existed bool
	base    int64 // bytes the result starts with (append, resume)
	resumed bool  // from a kept part the ledger counted
	ticket  uint64
	written int64
	held    Usage // reserved so far
	ended   bool
}

// replaced is the size the upload frees when it commits over a file.
func (u *quotaUpload) replaced() int64 {
	if u.existed && u.mode != storage.Exclusive {
		return u.old
	}
	return 0
}

func (u *quotaUpload) Write(p []byte) (int, error) {
	if _, err := u.q.l.take(u.ctx, u.ticket, u.held.Bytes, int64(len(p)), true); err != nil {
		return 0, err
	}
	u.held.Bytes += int64(len(p))
	n, err := u.Upload.Write(p)
	u.written += int64(n)
	return n, err
}

func (u *quotaUpload) Commit() error {
	if u.ended {
		return errors.New("limits: upload already ended")
	}
	u.ended = true
	if err := u.Upload.Commit(); err != nil {
		u.q.l.land(u.ticket, u.held, Usage{})
		u.kept()
		return err
	}
	delta := Usage{Bytes: u.base + u.written - u.replaced()}
	if !u.existed {
		delta.Files = 1
	}
	u.q.l.land(u.ticket, u.held, delta)
	if u.mode == storage.Truncate && !u.resumed && u.q.l.hasPartial(u.name) {
		// A new file replaced the one an older upload was cut short of:
		// its kept part goes, so that it no longer counts unseen.
		if d, ok := u.q.FS.(storage.PartialDropper); ok && d.DropPartial(context.WithoutCancel(u.ctx), u.name) == nil {
			u.q.l.forget(u.name)
		}
	}
	return nil
}

func (u *quotaUpload) Abort(cause error) error {
	if u.ended {
		return nil
	}
	u.ended = true
	err := u.Upload.Abort(cause)
	u.q.l.land(u.ticket, u.held, Usage{})
	u.kept()
	return err
}

// kept counts what the backend kept of an ended upload for a resume.
func (u *quotaUpload) kept() {
	if k, ok := u.Upload.(storage.Keeper); ok {
		u.q.l.keep(u.name, k.Kept())
	}
}

// Meter lets a zero-copy loop count what it moves into an upload: Take
// reserves up to max bytes before a move (a quota error when none are
// left), Done reports that n of the took bytes moved.
type Meter interface {
	Take(max int64) (int64, error)
	Done(n, took int64)
}

// quotaFileUpload is a quotaUpload into a file: it keeps the file's
// zero-copy capability, and the server's splice loop meters through it.
type quotaFileUpload struct {
	*quotaUpload
	zc storage.ZeroCopy
}

func (u *quotaFileUpload) SyscallConn() (syscall.RawConn, error) { return u.zc.SyscallConn() }

func (u *quotaFileUpload) Take(max int64) (int64, error) {
	g, err := u.q.l.take(u.ctx, u.ticket, u.held.Bytes, max, false)
	u.held.Bytes += g
	return g, err
}

func (u *quotaFileUpload) Done(n, took int64) {
	u.written += n
	if unused := took - n; unused > 0 {
		u.held.Bytes -= unused
		u.q.l.settle(Usage{Bytes: unused}, Usage{})
	}
}

// readPiece is the most ReadFrom takes from the quota for one move.
const readPiece = 1 << 20

// ReadFrom keeps the file's own ReadFrom (splice(2) from a socket, which
// io.Copy uses): each piece is taken from the quota before it moves. When
// the quota is full, a byte more to read means the upload passes it.
func (u *quotaFileUpload) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := u.Upload.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{u}, r)
	}
	// os.File.ReadFrom sees through one LimitedReader only: keep one.
	lr, limited := r.(*io.LimitedReader)
	if !limited {
		lr = &io.LimitedReader{R: r, N: 1<<63 - 1}
	}
	var total int64
	for lr.N > 0 {
		want := min(lr.N, readPiece)
		took, err := u.Take(want)
		if err != nil {
			var b [1]byte
			if n, _ := lr.Read(b[:]); n == 0 {
				return total, nil // the quota is full, and so is the upload
			}
			return total, err
		}
		n, err := rf.ReadFrom(&io.LimitedReader{R: lr.R, N: took})
		u.Done(n, took)
		total += n
		lr.N -= n
		if err != nil || n < took {
			return total, err
		}
	}
	return total, nil
}

func (q *QuotaFS) Remove(ctx context.Context, name string) error {
	size, ok := q.size(ctx, name)
	if err := q.FS.Remove(ctx, name); err != nil {
		return err
	}
	if ok {
		q.l.settle(Usage{}, Usage{Bytes: -size, Files: -1})
	}
	return nil
}

func (q *QuotaFS) Rename(ctx context.Context, from, to string) error {
	size, ok := q.size(ctx, to)
	if err := q.FS.Rename(ctx, from, to); err != nil {
		return err
	}
	if ok && from != to {
		q.l.settle(Usage{}, Usage{Bytes: -size, Files: -1}) // the file it replaced
	}
	return nil
}

// Available is what is left of the quota when that is less than the
// backend's own figure (AVBL).
func (q *QuotaFS) Available(ctx context.Context, name string) (uint64, error) {
	left, limited := q.l.left()
	sr, ok := q.FS.(storage.SpaceReporter)
	if !ok {
		if !limited {
			return 0, storage.ErrUnsupported
		}
		return uint64(left), nil
	}
	n, err := sr.Available(ctx, name)
	if err != nil || !limited {
		return n, err
	}
	return min(n, uint64(left)), nil
}

// Allocate refuses with a quota error an upload of n bytes that would
// pass the quota (ALLO).
func (q *QuotaFS) Allocate(ctx context.Context, n int64) error {
	if left, limited := q.l.left(); limited && n > left {
		return errQuota("the allocation would pass the byte quota")
	}
	return nil
}

// The optional capabilities of the wrapped FS, forwarded.

func (q *QuotaFS) Chtimes(ctx context.Context, name string, mtime time.Time) error {
	if c, ok := q.FS.(storage.Chtimeser); ok {
		return c.Chtimes(ctx, name, mtime)
	}
	return storage.ErrUnsupported
}

func (q *QuotaFS) Chmod(ctx context.Context, name string, mode fs.FileMode) error {
	if c, ok := q.FS.(storage.Chmoder); ok {
		return c.Chmod(ctx, name, mode)
	}
	return storage.ErrUnsupported
}

func (q *QuotaFS) ReadDirNames(ctx context.Context, name string) iter.Seq2[string, error] {
	if n, ok := q.FS.(storage.NameLister); ok {
		return n.ReadDirNames(ctx, name)
	}
	return func(yield func(string, error) bool) {
		for fi, err := range q.FS.ReadDir(ctx, name) {
			if err != nil {
				yield("", err)
				return
			}
			if !yield(fi.Name(), nil) {
				return
			}
		}
	}
}

func (q *QuotaFS) PartialSize(ctx context.Context, name string) (int64, error) {
	if p, ok := q.FS.(storage.PartialSizer); ok {
		return p.PartialSize(ctx, name)
	}
	return 0, fs.ErrNotExist
}

func (q *QuotaFS) Checksum(ctx context.Context, name, alg string) (string, bool, error) {
	if c, ok := q.FS.(storage.Checksummer); ok {
		return c.Checksum(ctx, name, alg)
	}
	return "", false, nil
}

// Allocator is the capability of refusing an upload size in advance (ALLO).
type Allocator interface {
	Allocate(ctx context.Context, n int64) error
}

var (
	_ storage.Chtimeser     = (*QuotaFS)(nil)
	_ storage.Chmoder       = (*QuotaFS)(nil)
	_ storage.SpaceReporter = (*QuotaFS)(nil)
	_ storage.NameLister    = (*QuotaFS)(nil)
	_ storage.PartialSizer  = (*QuotaFS)(nil)
	_ storage.Checksummer   = (*QuotaFS)(nil)
	_ Allocator             = (*QuotaFS)(nil)
	_ Meter                 = (*quotaFileUpload)(nil)
	_ storage.ZeroCopy      = (*quotaFileUpload)(nil)
)
