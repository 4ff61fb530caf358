package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store kept in one SQLite file. It is safe for
// concurrent use: writes are serialised (SQLite has one writer), reads run
// alongside them on their own connections.
type Store struct {
	path string
	drv  driver
	lock *os.File
	db   *sql.DB
	st   statements

	mu     sync.RWMutex // held shared by every call, exclusively by Close
	closed bool

	// salvage, if not empty, says why the store is open read-only: the file
	// is truncated, and only reading what is left is safe.
	salvage string

	// writes carries every write call to the writer goroutine, which runs
	// the calls waiting at once in one transaction (group commit: one fsync
	// for all). SQLite would serialise writers anyway, and a second BEGIN
	// IMMEDIATE waits in its busy handler by sleeping and polling.
	writes     chan *writeReq
	writerDone chan struct{}
	grouped    atomic.Int64        // commits of more than one call (for tests)
	meta       map[string]*docMeta // the writer's cache of rows (see meta.go)
}

// writeReq is one write call waiting for the writer.
type writeReq struct {
	ctx  context.Context
	doc  string
	fn   func(t *txn) error
	done chan error
	// cached: fn keeps the writer's cache of doc's rows up to date
	// (Append); for any other call the cache forgets doc first.
	cached bool
}

// Option changes how Open opens a store.
type Option func(*config)

type config struct {
	readers int
	drv     driver
}

// Readers sets how many connections serve reads alongside the writer
// (default 4). Each holds its own page cache.
func Readers(n int) Option {
	return func(c *config) { c.readers = max(n, 1) }
}

// withDriver runs the store on another database/sql SQLite driver; only
// the driver comparison benchmarks use it.
func withDriver(d driver) Option {
	return func(c *config) { c.drv = d }
}

// Open opens the store kept in the SQLite file at path, creating it if it
// does not exist; the folder must exist. It takes an OS lock on path+".lock"
// for as long as the store is open: a second Open of the same path, from
// this process or another, fails at once with store.ErrLocked.
//
// A file that is not a converge store, or whose schema is damaged, gives an
// error matching store.ErrCorrupt (or naming what the file is) without
// changing it. Damage inside one document is not looked for here: it is
// reported, as a *store.CorruptError naming that document, by the calls
// that read it.
func Open(ctx context.Context, path string, opts ...Option) (_ *Store, err error) {
	cfg := config{readers: 4, drv: modernc}
	for _, o := range opts {
		o(&cfg)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, err = filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: %w", err)
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = unlockFile(lock)
		}
	}()
	salvage, err := checkHeader(path)
	if err != nil {
		return nil, err
	}
	pragmas := normalPragmas
	if salvage != "" {
		pragmas = salvagePragmas
	}
	db, err := sql.Open(cfg.drv.name, cfg.drv.dsn(path, pragmas))
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: %s: %w", path, err)
	}
	s := &Store{path: path, drv: cfg.drv, lock: lock, db: db, salvage: salvage, meta: map[string]*docMeta{}}
	defer func() {
		if err != nil {
			s.st.close()
			_ = db.Close()
		}
	}()
	// Connections live as long as the store: each holds prepared
	// statements and a warm page cache.
	db.SetMaxOpenConns(1 + cfg.readers)
	db.SetMaxIdleConns(1 + cfg.readers)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, s.openError(err)
	}
	created, err := migrate(ctx, conn, path, salvage == "")
	conn.Close()
	if err != nil {
		return nil, s.openError(err)
	}
	if created {
		// The new file's directory entry must be durable too, or a crash
		// could lose the whole store along with its first commits.
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("store/sqlite: %s: %w", path, err)
		}
	}
	if err := s.st.prepare(ctx, db); err != nil {
		return nil, s.openError(err)
	}
	s.writes, s.writerDone = make(chan *writeReq), make(chan struct{})
	go s.writer()
	return s, nil
}

// checkHeader refuses, before SQLite sees it, a non-empty file that does
// not start like a SQLite database: SQLite's own message ("file is not a
// database") does not say which file or what to do. For a file shorter
// than its header says (truncated), it returns why, and Open goes on in
// salvage mode.
func checkHeader(path string) (salvage string, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store/sqlite: %w", err)
	}
	defer f.Close()
	var h [100]byte // the SQLite header
	n, err := io.ReadFull(f, h[:])
	if n == 0 && err == io.EOF {
		return "", nil // empty: SQLite makes a database of it
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", fmt.Errorf("store/sqlite: %w", err)
	}
	if n < len(h) || !bytes.HasPrefix(h[:], []byte("SQLite format 3\x00")) {
		return "", fmt.Errorf("store/sqlite: %s is not a SQLite database (damaged, truncated, or another kind of file): %w", path, store.ErrCorrupt)
	}
	pageSize := int64(binary.BigEndian.Uint16(h[16:]))
	if pageSize == 1 {
		pageSize = 65536
	}
	pages := int64(binary.BigEndian.Uint32(h[28:]))
	// The page count in the header is only meant when the change counter
	// matches the copy SQLite keeps beside it.
	valid := pages > 0 && binary.BigEndian.Uint32(h[24:]) == binary.BigEndian.Uint32(h[92:])
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("store/sqlite: %w", err)
	}
	if valid && fi.Size() < pages*pageSize {
		return fmt.Sprintf("%s is truncated (%d bytes of %d)", path, fi.Size(), pages*pageSize), nil
	}
	return "", nil
}

// Salvage returns why the store was opened read-only ("" if it was not):
// a truncated file is opened for reading what is left, and every write
// fails with store.ErrCorrupt.
func (s *Store) Salvage() string {
	if s.salvage == "" {
		return ""
	}
	return s.salvage + "; it is open read-only so that the intact documents can be read"
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *Store) openError(err error) error {
	if s.salvage != "" {
		// Truncated so far that not even the schema can be read (SQLite
		// says "no such table").
		return fmt.Errorf("store/sqlite: %s, too short to hold even its tables (%v): %w", s.salvage, err, store.ErrCorrupt)
	}
	if c := s.drv.code(err); c == codeCorrupt || c == codeNotADB {
		return fmt.Errorf("store/sqlite: %s is damaged: %w: %w", s.path, store.ErrCorrupt, err)
	}
	return fmt.Errorf("store/sqlite: %s: %w", s.path, err)
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// enter starts every per-document call: it takes the shared lock (the
// caller releases it) and checks closed, context and document ID, in the
// same order as store/memory.
func (s *Store) enter(ctx context.Context, doc string) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		s.mu.RUnlock()
		return err
	}
	if err := store.CheckDocID(doc); err != nil {
		s.mu.RUnlock()
		return err
	}
	return nil
}

// fail turns an error met while working on doc into what the contract
// promises: damage found by SQLite becomes a CorruptError for doc, a done
// context its own error, and our own errors pass unchanged.
func (s *Store) fail(ctx context.Context, doc string, err error) error {
	if err == nil {
		return nil
	}
	var ce *store.CorruptError
	switch {
	case errors.As(err, &ce), errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrStaleSnapshot), errors.Is(err, store.ErrNotFound):
		return err
	}
	if c := s.drv.code(err); c == codeCorrupt || c == codeNotADB {
		if doc == "" {
			return fmt.Errorf("store/sqlite: %s: %w: %w", s.path, store.ErrCorrupt, err)
		}
		return &store.CorruptError{Doc: doc, Detail: "SQLite: " + err.Error(), Err: err}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if doc == "" {
		return fmt.Errorf("store/sqlite: %w", err)
	}
	return fmt.Errorf("store/sqlite: document %q: %w", doc, err)
}

func corrupt(doc, format string, args ...any) error {
	return &store.CorruptError{Doc: doc, Detail: fmt.Sprintf(format, args...)}
}

// txn is one transaction on behalf of one document.
type txn struct {
	*sql.Tx
	ctx context.Context
	doc string
}

func (t *txn) stmt(st *sql.Stmt) *sql.Stmt { return t.StmtContext(t.ctx, st) }

// read runs fn in a read transaction: every query in it sees one
// committed state, whatever writes run meanwhile (WAL).
func (s *Store) read(ctx context.Context, doc string, fn func(t *txn) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.fail(ctx, doc, err)
	}
	err = fn(&txn{Tx: tx, ctx: ctx, doc: doc})
	_ = tx.Rollback() // nothing was written; ending the read frees its WAL snapshot
	return s.fail(ctx, doc, err)
}

// write runs fn in a write transaction and commits it; with
// synchronous=FULL, a nil return means the commit is on disk. Calls from
// several goroutines at once share one transaction and one fsync (group
// commit), each in its own savepoint: one call's failure undoes only what
// it wrote. Once handed to the writer, a call waits for its outcome even
// if ctx ends meanwhile, so that an error always means nothing was written.
func (s *Store) write(ctx context.Context, doc string, fn func(t *txn) error) error {
	return s.writeReq(&writeReq{ctx: ctx, doc: doc, fn: fn})
}

func (s *Store) writeReq(req *writeReq) error {
	ctx := req.ctx
	if s.salvage != "" {
		return fmt.Errorf("store/sqlite: %s: %w", s.Salvage(), store.ErrCorrupt)
	}
	req.done = make(chan error, 1)
	select {
	case s.writes <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}

// maxGroup bounds the calls committed together, so that a long queue
// still sees commits, and errors, at a steady pace.
const maxGroup = 256

// Under a steady stream of writes, the writer waits a little for more
// before committing (like PostgreSQL's commit_delay): a commit's cost is
// mostly fixed (the WAL write, the fsync), so a server receiving thousands
// of changes a second spends far less per change when a few share one.
// It waits only when writes arrive, on average, more than twice per
// maxLinger (see arrivals), so that at a lower rate, where the wait would
// rarely catch another write, no write is kept waiting for nothing.
const maxLinger = time.Millisecond

// lingerFor is the group size from which the writer commits without
// waiting: so many calls share the commit widely already, and when they
// are a backlog (a server whose documents all wait for this commit before
// they can write again), waiting only adds dead time to every write.
const lingerFor = 16

// arrivals keeps the mean time between write calls, an exponentially
// weighted mean (weight 1/8) of the gaps, each counted as at most
// 8*maxLinger so that the mean comes down within a few dozen calls when
// writes resume after a quiet spell.
type arrivals struct {
	gap  time.Duration
	last time.Time
}

func newArrivals(now time.Time) arrivals { return arrivals{gap: maxLinger, last: now} }

func (a *arrivals) add(now time.Time) {
	gap := min(now.Sub(a.last), 8*maxLinger)
	a.gap += (gap - a.gap) / 8
	a.last = now
}

// busy reports whether writes come fast enough to wait for more.
func (a *arrivals) busy() bool { return a.gap <= maxLinger/2 }

// writer runs the write calls until Close, grouping those that wait.
func (s *Store) writer() {
	defer close(s.writerDone)
	var group []*writeReq
	rate := newArrivals(time.Now())
	arrived := func() { rate.add(time.Now()) }
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for req := range s.writes {
		arrived()
		group = append(group[:0], req)
		waited := false
	more:
		for len(group) < maxGroup {
			select {
			case r, ok := <-s.writes:
				if !ok {
					break more
				}
				arrived()
				group = append(group, r)
				continue
			default:
			}
			if waited || !rate.busy() || len(group) >= lingerFor {
				break
			}
			waited = true
			linger.Reset(maxLinger)
			for len(group) < lingerFor {
				select {
				case r, ok := <-s.writes:
					if !ok {
						linger.Stop()
						break more
					}
					arrived()
					group = append(group, r)
					continue
				case <-linger.C:
				}
				break more
			}
			linger.Stop()
		}
		s.commit(group)
		clear(group)
	}
}

// commit runs a group of write calls in one transaction and tells each
// its outcome.
func (s *Store) commit(group []*writeReq) {
	if len(group) == 1 {
		r := group[0]
		r.done <- s.writeOne(r)
		return
	}
	s.grouped.Add(1)
	// The transaction is the group's, not any one caller's: a caller's
	// context ending must not roll back the others' writes.
	bg := context.Background()
	errs := make([]error, len(group))
	abort := func(tx *sql.Tx, err error) {
		s.forgetAll()
		if tx != nil {
			_ = tx.Rollback()
		}
		for _, r := range group {
			r.done <- s.fail(r.ctx, r.doc, err)
		}
	}
	tx, err := s.db.BeginTx(bg, nil)
	if err != nil {
		abort(nil, err)
		return
	}
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.StmtContext(bg, s.st.savepoint).ExecContext(bg); err != nil {
			abort(tx, err)
			return
		}
		if errs[i] = s.run(r, &txn{Tx: tx, ctx: context.WithoutCancel(r.ctx), doc: r.doc}); errs[i] != nil {
			if _, err := tx.StmtContext(bg, s.st.rollbackTo).ExecContext(bg); err != nil {
				abort(tx, errors.Join(errs[i], err))
				return
			}
		}
		if _, err := tx.StmtContext(bg, s.st.release).ExecContext(bg); err != nil {
			abort(tx, err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		abort(nil, err)
		return
	}
	for i, r := range group {
		r.done <- s.fail(r.ctx, r.doc, errs[i])
	}
}

// run calls r's function in t. The document's cached rows are dropped
// before a call that does not keep them up to date, and after one that
// failed (its writes are rolled back).
func (s *Store) run(r *writeReq, t *txn) error {
	if !r.cached {
		s.forget(r.doc)
	}
	err := r.fn(t)
	if err != nil {
		s.forget(r.doc)
	}
	return err
}

// writeOne runs one write call in its own transaction.
func (s *Store) writeOne(r *writeReq) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	// Once started, a write runs to its end whatever happens to the
	// caller's context (see write). A context that cannot end also spares
	// the driver a goroutine per statement, which it starts to interrupt
	// the statement if the context ends.
	ctx := context.WithoutCancel(r.ctx)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(r.ctx, r.doc, err)
	}
	if err := s.run(r, &txn{Tx: tx, ctx: ctx, doc: r.doc}); err != nil {
		_ = tx.Rollback()
		return s.fail(r.ctx, r.doc, err)
	}
	if err := tx.Commit(); err != nil {
		s.forgetAll()
		return s.fail(r.ctx, r.doc, err)
	}
	return nil
}

// docRow is a row of the docs table.
type docRow struct {
	id         int64
	name       string
	nextN      int64
	logChanges int64
	logBytes   int64
	snapBytes  int64
}

// findDoc reads doc's row, checking it; ok is false if there is none.
func (s *Store) findDoc(t *txn) (d docRow, ok bool, err error) {
	var crc int64
	d.name = t.doc
	err = t.stmt(s.st.findDoc).QueryRowContext(t.ctx, []byte(t.doc)).Scan(&d.id, &d.nextN, &d.logChanges, &d.logBytes, &d.snapBytes, &crc)
	if errors.Is(err, sql.ErrNoRows) {
		return d, false, nil
	}
	if err != nil {
		return d, false, err
	}
	if d.crc() != crc {
		return d, false, corrupt(t.doc, "its entry in the document list fails its checksum")
	}
	return d, true, nil
}

func (s *Store) mustFindDoc(t *txn) (docRow, error) {
	d, ok, err := s.findDoc(t)
	if err == nil && !ok {
		err = fmt.Errorf("%w: %q", store.ErrNotFound, t.doc)
	}
	return d, err
}

func (s *Store) saveDoc(t *txn, d *docRow, isNew bool) error {
	if isNew {
		return t.stmt(s.st.insertDoc).QueryRowContext(t.ctx, []byte(d.name), d.nextN, d.logChanges, d.logBytes, d.snapBytes, d.crc()).Scan(&d.id)
	}
	_, err := t.stmt(s.st.updateDoc).ExecContext(t.ctx, d.nextN, d.logChanges, d.logBytes, d.snapBytes, d.crc(), d.id)
	return err
}

// verRow is a row of the versions table.
type verRow struct {
	seq, snapSeq int64
	dirty        bool
}

// versions reads every versions row of doc, checking each.
func (s *Store) versions(t *txn, doc int64) (map[causal.ActorID]*verRow, error) {
	rows, err := t.stmt(s.st.versions).QueryContext(t.ctx, doc)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[causal.ActorID]*verRow)
	for rows.Next() {
		var actor []byte
		var v verRow
		var crc int64
		if err := rows.Scan(&actor, &v.seq, &v.snapSeq, &crc); err != nil {
			return nil, err
		}
		a, ok := actorOf(actor)
		if !ok || versionCRC(doc, actor, v.seq, v.snapSeq) != crc {
			return nil, corrupt(t.doc, "a version entry fails its checksum")
		}
		out[a] = &v
	}
	return out, rows.Err()
}

// version reads one actor's versions row (zero if none), checking it.
func (s *Store) version(t *txn, doc int64, a causal.ActorID) (*verRow, error) {
	var v verRow
	var crc int64
	err := t.stmt(s.st.version).QueryRowContext(t.ctx, doc, a[:]).Scan(&v.seq, &v.snapSeq, &crc)
	if errors.Is(err, sql.ErrNoRows) {
		return &v, nil
	}
	if err != nil {
		return nil, err
	}
	if versionCRC(doc, a[:], v.seq, v.snapSeq) != crc {
		return nil, corrupt(t.doc, "the version entry of actor %s fails its checksum", a.Short())
	}
	return &v, nil
}

func (s *Store) saveVersions(t *txn, doc int64, vs map[causal.ActorID]*verRow) error {
	// In actor order, so that a transaction writes the same pages in the
	// same order every time (no behaviour depends on it; it keeps runs
	// reproducible).
	var dirty []causal.ActorID
	for _, a := range slices.SortedFunc(maps.Keys(vs), causal.ActorID.Compare) {
		if vs[a].dirty {
			dirty = append(dirty, a)
		}
	}
	return execRows(t, &s.st.putVersions, len(dirty), func(args []any, i int) []any {
		a, v := dirty[i], vs[dirty[i]]
		return append(args, doc, a[:], v.seq, v.snapSeq, versionCRC(doc, a[:], v.seq, v.snapSeq))
	})
}

// execRows runs stmts (stmts[k] writes 2^k rows) over n rows, as few
// statements as can be (8, 4, 2 or 1 rows each); row appends the
// arguments of row i.
func execRows(t *txn, stmts *[4]*sql.Stmt, n int, row func(args []any, i int) []any) error {
	var args []any
	for i := 0; i < n; {
		k := min(3, bits.Len(uint(n-i))-1)
		args = args[:0]
		for j := i; j < i+1<<k; j++ {
			args = row(args, j)
		}
		if _, err := t.stmt(stmts[k]).ExecContext(t.ctx, args...); err != nil {
			return err
		}
		i += 1 << k
	}
	return nil
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, doc string, changes []store.Change) error {
	if err := s.enter(ctx, doc); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	for _, c := range changes {
		if err := store.CheckChangeID(c.ID); err != nil {
			return err
		}
	}
	if len(changes) == 0 {
		return nil
	}
	return s.writeReq(&writeReq{ctx: ctx, doc: doc, cached: true, fn: func(t *txn) error {
		m := s.metaOf(doc)
		var d docRow
		exists := m != nil
		if exists {
			d = m.row
		} else {
			var err error
			if d, exists, err = s.findDoc(t); err != nil {
				return err
			}
		}
		// Decide first, writing nothing: a conflict anywhere in the call
		// must leave no trace (the rollback would undo it anyway, but
		// deciding first keeps the doc row out of a refused call).
		vs := make(map[causal.ActorID]*verRow)
		fresh := make(map[causal.ChangeID][]byte)
		var add []store.Change
		var err error
		for _, c := range changes {
			v := vs[c.ID.Actor]
			if v == nil {
				v = &verRow{}
				if cv, ok := m.version(c.ID.Actor); ok {
					*v = cv
				} else if exists {
					if v, err = s.version(t, d.id, c.ID.Actor); err != nil {
						return err
					}
				}
				vs[c.ID.Actor] = v
			}
			seq := int64(c.ID.Seq)
			if seq <= v.snapSeq {
				continue // folded into the snapshot: held
			}
			held, ok := fresh[c.ID]
			if !ok && seq <= v.seq {
				if held, ok, err = s.logged(t, d.id, c.ID); err != nil {
					return err
				}
			}
			if ok {
				if !bytes.Equal(held, c.Bytes) {
					return fmt.Errorf("%w: %v in %q", store.ErrConflict, c.ID, doc)
				}
				continue
			}
			fresh[c.ID] = c.Bytes
			add = append(add, c)
		}
		if len(add) == 0 {
			if exists {
				s.remember(d, vs)
			}
			return nil
		}
		if !exists {
			d = docRow{name: doc}
			if err := s.saveDoc(t, &d, true); err != nil {
				return err
			}
		}
		first := d.nextN
		err = execRows(t, &s.st.insertLogs, len(add), func(args []any, i int) []any {
			c := add[i]
			b := c.Bytes
			if b == nil {
				b = []byte{} // NOT NULL: an empty change is stored as empty
			}
			n, seq := first+int64(i), int64(c.ID.Seq)
			return append(args, d.id, n, c.ID.Actor[:], seq, b, logCRC(d.id, n, c.ID.Actor[:], seq, b))
		})
		if err != nil {
			return err
		}
		for _, c := range add {
			d.nextN++
			d.logChanges++
			d.logBytes += int64(len(c.Bytes))
			if v := vs[c.ID.Actor]; int64(c.ID.Seq) > v.seq {
				v.seq, v.dirty = int64(c.ID.Seq), true
			}
		}
		if err := s.saveVersions(t, d.id, vs); err != nil {
			return err
		}
		if err := s.addOrigins(t, d.id, add); err != nil {
			return err
		}
		if err := s.saveDoc(t, &d, false); err != nil {
			return err
		}
		s.remember(d, vs)
		return nil
	}})
}

// addOrigins records the origins of the changes an Append stores. Per
// actor it reads only the runs the new changes can touch (the one before
// the lowest sequence number, and those starting up to just past the
// highest), merges the changes in with store.AddOrigin, and writes back
// the runs that differ.
func (s *Store) addOrigins(t *txn, doc int64, add []store.Change) error {
	byActor := make(map[causal.ActorID][]store.Change)
	for _, c := range add {
		if c.Origin != "" {
			byActor[c.ID.Actor] = append(byActor[c.ID.Actor], c)
		}
	}
	for _, a := range slices.SortedFunc(maps.Keys(byActor), causal.ActorID.Compare) {
		cs := byActor[a]
		lo, hi := cs[0].ID.Seq, cs[0].ID.Seq
		for _, c := range cs {
			lo, hi = min(lo, c.ID.Seq), max(hi, c.ID.Seq)
		}
		var old []store.Origin
		rows, err := t.stmt(s.st.originBefore).QueryContext(t.ctx, doc, a[:], int64(lo))
		if err != nil {
			return err
		}
		if old, err = s.scanOrigins(t, doc, a, rows, old); err != nil {
			return err
		}
		// hi+1 fits: sequence numbers stop at store.MaxSeq.
		rows, err = t.stmt(s.st.originsFrom).QueryContext(t.ctx, doc, a[:], int64(lo), int64(hi)+1)
		if err != nil {
			return err
		}
		if old, err = s.scanOrigins(t, doc, a, rows, old); err != nil {
			return err
		}
		runs := slices.Clone(old)
		for _, c := range cs {
			runs = store.AddOrigin(runs, c.ID, c.Origin)
		}
		keep := make(map[store.Origin]bool, len(runs))
		for _, r := range runs {
			keep[r] = true
		}
		for _, r := range old {
			if !keep[r] {
				if _, err := t.stmt(s.st.deleteOrigin).ExecContext(t.ctx, doc, a[:], int64(r.First)); err != nil {
					return err
				}
			}
		}
		had := make(map[store.Origin]bool, len(old))
		for _, r := range old {
			had[r] = true
		}
		for _, r := range runs {
			if had[r] {
				continue
			}
			sub := []byte(r.Subject)
			if _, err := t.stmt(s.st.putOrigin).ExecContext(t.ctx, doc, a[:], int64(r.First), int64(r.Last), sub,
				originCRC(doc, a[:], int64(r.First), int64(r.Last), sub)); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanOrigins reads rows of (first_seq, last_seq, subject, crc) of actor
// a, checking each, and appends them to out.
func (s *Store) scanOrigins(t *txn, doc int64, a causal.ActorID, rows *sql.Rows, out []store.Origin) ([]store.Origin, error) {
	defer rows.Close()
	for rows.Next() {
		var first, last, crc int64
		var sub []byte
		if err := rows.Scan(&first, &last, &sub, &crc); err != nil {
			return nil, err
		}
		if first <= 0 || last < first || originCRC(doc, a[:], first, last, sub) != crc {
			return nil, corrupt(t.doc, "an origin entry of actor %s fails its checksum", a.Short())
		}
		out = append(out, store.Origin{Actor: a, First: uint64(first), Last: uint64(last), Subject: string(sub)})
	}
	return out, rows.Err()
}

// Origins implements store.Store.
func (s *Store) Origins(ctx context.Context, doc string) ([]store.Origin, error) {
	if err := s.enter(ctx, doc); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := []store.Origin{}
	err := s.read(ctx, doc, func(t *txn) error {
		d, err := s.mustFindDoc(t)
		if err != nil {
			return err
		}
		rows, err := t.stmt(s.st.origins).QueryContext(t.ctx, d.id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var first, last, crc int64
			var actor, sub []byte
			if err := rows.Scan(&actor, &first, &last, &sub, &crc); err != nil {
				return err
			}
			a, ok := actorOf(actor)
			if !ok || first <= 0 || last < first || originCRC(d.id, actor, first, last, sub) != crc {
				return corrupt(doc, "an origin entry fails its checksum")
			}
			out = append(out, store.Origin{Actor: a, First: uint64(first), Last: uint64(last), Subject: string(sub)})
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// logged returns the bytes of a logged change, checked.
func (s *Store) logged(t *txn, doc int64, id causal.ChangeID) ([]byte, bool, error) {
	var n, crc int64
	var b []byte
	err := t.stmt(s.st.logged).QueryRowContext(t.ctx, doc, id.Actor[:], int64(id.Seq)).Scan(&n, &b, &crc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if logCRC(doc, n, id.Actor[:], int64(id.Seq), b) != crc {
		return nil, false, corrupt(t.doc, "change %v fails its checksum", id)
	}
	return b, true, nil
}

// logEntry is a change read from the log with its place in append order.
type logEntry struct {
	n int64
	c store.Change
}

// scanLog reads rows of (n, actor, seq, bytes, crc), checking each.
func scanLog(t *txn, doc int64, rows *sql.Rows, out []logEntry) ([]logEntry, error) {
	defer rows.Close()
	for rows.Next() {
		var n, seq, crc int64
		var actor, b []byte
		if err := rows.Scan(&n, &actor, &seq, &b, &crc); err != nil {
			return nil, err
		}
		a, ok := actorOf(actor)
		if !ok || seq <= 0 || logCRC(doc, n, actor, seq, b) != crc {
			return nil, corrupt(t.doc, "a logged change (number %d in append order) fails its checksum", n)
		}
		if b == nil {
			b = []byte{}
		}
		out = append(out, logEntry{n, store.Change{ID: causal.ChangeID{Actor: a, Seq: uint64(seq)}, Bytes: b}})
	}
	return out, rows.Err()
}

func changesOf(es []logEntry) []store.Change {
	out := make([]store.Change, len(es))
	for i, e := range es {
		out[i] = e.c
	}
	return out
}

// Changes implements store.Store. It costs one index seek per actor that
// since lacks something of, plus the rows returned.
func (s *Store) Changes(ctx context.Context, doc string, since causal.VersionVector) ([]store.Change, error) {
	if err := s.enter(ctx, doc); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var out []store.Change
	err := s.read(ctx, doc, func(t *txn) error {
		d, err := s.mustFindDoc(t)
		if err != nil {
			return err
		}
		if len(since) == 0 {
			es, err := s.allLog(t, d.id)
			out = changesOf(es)
			return err
		}
		vs, err := s.versions(t, d.id)
		if err != nil {
			return err
		}
		var es []logEntry
		for a, v := range vs {
			have := min(since.Get(a), store.MaxSeq)
			if uint64(v.seq) <= have {
				continue // nothing of this actor is missing
			}
			rows, err := t.stmt(s.st.since).QueryContext(t.ctx, d.id, a[:], int64(have))
			if err != nil {
				return err
			}
			if es, err = scanLog(t, d.id, rows, es); err != nil {
				return err
			}
		}
		slices.SortFunc(es, func(x, y logEntry) int { return cmp.Compare(x.n, y.n) })
		out = changesOf(es)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) allLog(t *txn, doc int64) ([]logEntry, error) {
	rows, err := t.stmt(s.st.allLog).QueryContext(t.ctx, doc)
	if err != nil {
		return nil, err
	}
	return scanLog(t, doc, rows, nil)
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, doc string) (*store.Snapshot, []store.Change, error) {
	if err := s.enter(ctx, doc); err != nil {
		return nil, nil, err
	}
	defer s.mu.RUnlock()
	var snap *store.Snapshot
	var log []store.Change
	err := s.read(ctx, doc, func(t *txn) error {
		d, err := s.mustFindDoc(t)
		if err != nil {
			return err
		}
		var version, b []byte
		var crc int64
		err = t.stmt(s.st.snapshot).QueryRowContext(t.ctx, d.id).Scan(&version, &b, &crc)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			if snapshotCRC(d.id, version, b) != crc || int64(len(b)) != d.snapBytes {
				return corrupt(doc, "its snapshot fails its checksum")
			}
			v, err := decodeVersion(version)
			if err != nil {
				return corrupt(doc, "its snapshot's version: %v", err)
			}
			if b == nil {
				b = []byte{}
			}
			snap = &store.Snapshot{Version: v, Bytes: b}
		}
		es, err := s.allLog(t, d.id)
		log = changesOf(es)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return snap, log, nil
}

// SaveSnapshot implements store.Store.
func (s *Store) SaveSnapshot(ctx context.Context, doc string, snap store.Snapshot) error {
	if err := s.enter(ctx, doc); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := store.CheckVersion(snap.Version); err != nil {
		return err
	}
	return s.write(ctx, doc, func(t *txn) error {
		d, exists, err := s.findDoc(t)
		if err != nil {
			return err
		}
		vs := make(map[causal.ActorID]*verRow)
		if exists {
			if vs, err = s.versions(t, d.id); err != nil {
				return err
			}
		} else {
			d = docRow{name: doc}
			if err := s.saveDoc(t, &d, true); err != nil {
				return err
			}
		}
		for a, v := range vs {
			if uint64(v.snapSeq) > snap.Version.Get(a) {
				return fmt.Errorf("%w: %q holds %s:%d, given %v", store.ErrStaleSnapshot, doc, a.Short(), v.snapSeq, snap.Version)
			}
		}
		prune := t.stmt(s.st.prune)
		for _, a := range snap.Version.Actors() {
			seq := int64(snap.Version[a])
			v := vs[a]
			if v == nil {
				v = &verRow{}
				vs[a] = v
			}
			if seq > v.snapSeq && v.seq > v.snapSeq {
				// Some of this actor's logged changes may be folded now.
				rows, err := prune.QueryContext(t.ctx, d.id, a[:], seq)
				if err != nil {
					return err
				}
				for rows.Next() {
					var n int64
					if err := rows.Scan(&n); err != nil {
						rows.Close()
						return err
					}
					d.logChanges--
					d.logBytes -= n
				}
				if err := rows.Close(); err != nil {
					return err
				}
			}
			v.snapSeq, v.seq, v.dirty = seq, max(v.seq, seq), true
		}
		if err := s.saveVersions(t, d.id, vs); err != nil {
			return err
		}
		version := encodeVersion(snap.Version)
		b := snap.Bytes
		if b == nil {
			b = []byte{}
		}
		if _, err := t.stmt(s.st.putSnapshot).ExecContext(t.ctx, d.id, version, b, snapshotCRC(d.id, version, b)); err != nil {
			return err
		}
		d.snapBytes = int64(len(b))
		return s.saveDoc(t, &d, false)
	})
}

// Version implements store.Store.
func (s *Store) Version(ctx context.Context, doc string) (causal.VersionVector, error) {
	if err := s.enter(ctx, doc); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := causal.VersionVector{}
	err := s.read(ctx, doc, func(t *txn) error {
		d, err := s.mustFindDoc(t)
		if err != nil {
			return err
		}
		vs, err := s.versions(t, d.id)
		for a, v := range vs {
			if v.seq > 0 {
				out[a] = uint64(v.seq)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Docs implements store.Store. A damaged entry makes it fail with a
// *store.CorruptError naming that document, which can then be deleted or
// restored.
func (s *Store) Docs(ctx context.Context) ([]store.DocInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []store.DocInfo
	err := s.read(ctx, "", func(t *txn) error {
		rows, err := t.stmt(s.st.docs).QueryContext(t.ctx)
		if err != nil {
			return err
		}
		byID := make(map[int64]int)
		for rows.Next() {
			var d docRow
			var name []byte
			var crc int64
			if err := rows.Scan(&d.id, &name, &d.nextN, &d.logChanges, &d.logBytes, &d.snapBytes, &crc); err != nil {
				rows.Close()
				return err
			}
			d.name = string(name)
			if d.crc() != crc {
				rows.Close()
				return corrupt(d.name, "its entry in the document list fails its checksum")
			}
			byID[d.id] = len(out)
			out = append(out, store.DocInfo{ID: d.name, Version: causal.VersionVector{}, LogChanges: int(d.logChanges), Bytes: d.logBytes + d.snapBytes})
		}
		if err := rows.Close(); err != nil {
			return err
		}
		rows, err = t.stmt(s.st.allVersions).QueryContext(t.ctx)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var doc, seq, snapSeq, crc int64
			var actor []byte
			if err := rows.Scan(&doc, &actor, &seq, &snapSeq, &crc); err != nil {
				return err
			}
			i, known := byID[doc]
			a, ok := actorOf(actor)
			if !known || !ok || versionCRC(doc, actor, seq, snapSeq) != crc {
				if known {
					return corrupt(out[i].ID, "a version entry fails its checksum")
				}
				return fmt.Errorf("store/sqlite: %s: a version entry belongs to no document: %w", s.path, store.ErrCorrupt)
			}
			if seq > 0 {
				out[i].Version[a] = uint64(seq)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []store.DocInfo{}
	}
	return out, nil
}

// Delete implements store.Store. It checks no checksum of the document's
// rows, so that a damaged document can always be deleted; only its
// deletion count must be sound, since counting on from a damaged one
// could hand out an incarnation again.
func (s *Store) Delete(ctx context.Context, doc string) error {
	if err := s.enter(ctx, doc); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return s.write(ctx, doc, func(t *txn) error {
		var id int64
		err := t.stmt(s.st.docID).QueryRowContext(t.ctx, []byte(doc)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		n, err := s.deletions(t)
		if err != nil {
			return err
		}
		for _, st := range []*sql.Stmt{s.st.deleteLog, s.st.deleteVersions, s.st.deleteSnapshot, s.st.deleteOrigins, s.st.deleteDoc} {
			if _, err := t.stmt(st).ExecContext(t.ctx, id); err != nil {
				return err
			}
		}
		name := []byte(doc)
		_, err = t.stmt(s.st.putDeletions).ExecContext(t.ctx, name, int64(n+1), deletionsCRC(name, int64(n+1)))
		return err
	})
}

// deletions reads t's document's deletion count (0 if none), checking it.
func (s *Store) deletions(t *txn) (uint64, error) {
	var n, crc int64
	name := []byte(t.doc)
	err := t.stmt(s.st.deletions).QueryRowContext(t.ctx, name).Scan(&n, &crc)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if n < 0 || deletionsCRC(name, n) != crc {
		return 0, corrupt(t.doc, "its deletion count fails its checksum")
	}
	return uint64(n), nil
}

// Deletions implements store.Store.
func (s *Store) Deletions(ctx context.Context, doc string) (uint64, error) {
	if err := s.enter(ctx, doc); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	var n uint64
	err := s.read(ctx, doc, func(t *txn) (err error) {
		n, err = s.deletions(t)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Close implements store.Store. It waits for calls in progress, closes the
// database (SQLite checkpoints the WAL into the main file) and releases the
// lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.closed = true
	// Every write call holds s.mu shared until its outcome: none is waiting.
	close(s.writes)
	<-s.writerDone
	s.st.close()
	err := s.db.Close()
	if uerr := unlockFile(s.lock); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: closing %s: %w", s.path, err)
	}
	return nil
}
