package converge

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/syncproto"
)

// Replica is a folder of documents on this device, edited by one actor.
// It is safe for concurrent use.
type Replica struct {
	st      store.Store
	ownsSt  bool
	actor   causal.ActorID
	log     *slog.Logger
	now     func() time.Time
	batched bool
	compact int
	// maxChange bounds a local change, encoded (0: no bound).
	maxChange int

	presence *presenceHub

	mu      sync.Mutex
	docs    map[string]*Doc
	syncers []*Syncer
	// closed is set under mu by Close, and read without it by checkOpen,
	// which documents call with their own lock held: taking mu there
	// would order the locks doc-then-replica, against Evict and Delete,
	// which take the replica's lock and then a document's.
	closed atomic.Bool
	bg     sync.WaitGroup // background compactions
	writes writeLog       // how store writes went (StoreWrites)
}

type config struct {
	store     store.Store
	log       *slog.Logger
	now       func() time.Time
	batched   bool
	compact   int
	maxChange int
}

// Option configures Open.
type Option func(*config)

// WithStore keeps the replica's documents in s instead of the folder's
// embedded SQLite database (for example store/memory in tests). The folder
// still holds the replica's actor ID unless dir is "", in which case a new
// actor is made each time.
func WithStore(s store.Store) Option { return func(c *config) { c.store = s } }

// WithLogger sends the replica's logs to l (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithClock sets the wall clock stamped on changes (default: time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithBatchedWrites makes Change return before its change is on disk; the
// changes of all documents become durable together when Flush (or Close)
// returns. Much faster for bursts of small changes; a crash loses what was
// not flushed, never more.
func WithBatchedWrites() Option { return func(c *config) { c.batched = true } }

// WithCompactAfter sets how many logged changes a document gathers before
// they are folded into its saved copy in the background (default 1000;
// 0: never in the background, only when Compact is called). A document of
// a long history waits for more: an eighth of its history, if that is more
// than n, so that each compaction, which encodes the whole history, is
// paid for by as many new changes (docs/replica.md, "Compaction").
func WithCompactAfter(n int) Option { return func(c *config) { c.compact = n } }

// WithMaxChangeSize sets the largest change Doc.Change makes, in bytes
// encoded; a larger one is refused with ErrChangeTooLarge and nothing of
// it is kept. The default is the most a change may have to sync (8 MiB,
// syncproto.DefaultLimits.MaxChangeLen): a larger change would stop its
// document syncing for good. n ≤ 0 lifts the bound, for a replica that
// never syncs. (Changes merged from peers are not bounded here.)
func WithMaxChangeSize(n int) Option { return func(c *config) { c.maxChange = max(n, 0) } }

// actorFile holds the replica's actor ID in its folder.
const actorFile = "actor"

// Open opens the replica in folder dir, creating the folder and an empty
// replica if there is none. Only one process may have a folder open; a
// second gets ErrLocked. A damaged actor file is an error, not a new
// actor in its place.
func Open(ctx context.Context, dir string, opts ...Option) (*Replica, error) {
	cfg := config{log: slog.Default(), now: time.Now, compact: 1000, maxChange: syncproto.DefaultLimits.MaxChangeLen}
	for _, o := range opts {
		o(&cfg)
	}
	var actor causal.ActorID
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("converge: creating replica folder: %w", err)
		}
	}
	r := &Replica{st: cfg.store, log: cfg.log, now: cfg.now, batched: cfg.batched,
		compact: cfg.compact, maxChange: cfg.maxChange, docs: make(map[string]*Doc), presence: newPresenceHub(cfg.now)}
	if r.st == nil {
		if dir == "" {
			return nil, errors.New("converge: Open needs a folder, or WithStore")
		}
		st, err := openDefaultStore(ctx, dir)
		if err != nil {
			return nil, err
		}
		r.st, r.ownsSt = st, true
	}
	// The actor file is read after the store is open: the store's lock is
	// what keeps two processes from sharing one actor.
	if dir != "" {
		var err error
		if actor, err = loadActor(dir); err != nil {
			r.closeStore()
			return nil, err
		}
	} else {
		actor = causal.NewActorID()
	}
	r.actor = actor
	r.log.Debug("replica open", "dir", dir, "actor", actor.Short())
	return r, nil
}

// loadActor reads the folder's actor ID, making one if it has none.
func loadActor(dir string) (causal.ActorID, error) {
	path := filepath.Join(dir, actorFile)
	b, err := os.ReadFile(path)
	if err == nil {
		a, err := causal.ParseActorID(strings.TrimSpace(string(b)))
		if err != nil {
			return a, fmt.Errorf("converge: %s is damaged: %w", path, err)
		}
		return a, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return causal.ActorID{}, fmt.Errorf("converge: reading actor ID: %w", err)
	}
	a := causal.NewActorID()
	if err := writeFileSync(path, []byte(a.String()+"\n")); err != nil {
		return a, fmt.Errorf("converge: saving actor ID: %w", err)
	}
	return a, nil
}

// writeFileSync writes a file durably: to a temporary name, synced, then
// renamed into place, so a crash leaves the old file or the new one.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Actor returns the actor ID of this replica's changes. A document
// deleted and written again is written under an actor of its own (see
// Delete); every other document's changes are under this one.
func (r *Replica) Actor() causal.ActorID { return r.actor }

// Store returns the replica's store (for sync and tools).
func (r *Replica) Store() store.Store { return r.st }

// Doc opens a document, loading it from the store, or an empty one if the
// replica has none by that ID (it is stored on its first change). The same
// *Doc is returned for the same ID until the replica is closed.
func (r *Replica) Doc(ctx context.Context, id string) (*Doc, error) {
	if err := checkDocID(id); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if d, ok := r.docs[id]; ok {
		return d, nil
	}
	d := &Doc{r: r, id: id}
	if err := d.load(ctx); err != nil {
		return nil, err
	}
	r.docs[id] = d
	for _, s := range r.syncers {
		s.opened(id)
	}
	return d, nil
}

// Loaded returns how many documents are in memory.
func (r *Replica) Loaded() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.docs)
}

// Evict unloads document id from memory if nothing follows it (no sync
// connection streams it, no subscriber watches it) and all its changes are
// durable; it reports whether it did. The next Doc call loads it again. A
// server calls it to keep memory within a budget; a handle to the evicted
// document refuses changes (ErrEvicted).
func (r *Replica) Evict(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.docs[id]
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.feeds) > 0 || len(d.subs) > 0 || len(d.unflushed) > 0 || d.compactng {
		return false
	}
	d.evicted = true
	delete(r.docs, id)
	return true
}

func checkDocID(id string) error {
	if id == "" || len(id) > store.MaxDocIDLen || !validUTF8(id) {
		return fmt.Errorf("converge: document ID %q: %w", id, ErrBadDocID)
	}
	return nil
}

// DocInfo describes a stored document.
type DocInfo = store.DocInfo

// Docs lists the replica's stored documents, sorted by ID.
func (r *Replica) Docs(ctx context.Context) ([]DocInfo, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	return r.st.Docs(ctx)
}

// Delete removes a document from the replica. (Other replicas keep theirs:
// deleting here is forgetting, not a change that syncs.) A *Doc handle to
// it refuses changes afterwards (ErrEvicted), as after Evict: its changes
// would otherwise be stored after the deletion, depending on changes the
// store no longer has.
//
// The document may be used again afterwards: Doc gives an empty one, and
// syncing or importing brings the old one back, merged with whatever was
// written since. The store keeps a tombstone of the deletion (a count,
// nothing of the document; see store.Store.Deletions), and the replica
// writes each incarnation of a document under an actor of its own,
// derived from Actor: the new document's changes never take the IDs of
// the old one's, which other replicas hold. Deleting a document the
// replica does not hold does nothing.
//
// A Syncer connected at the time that syncs the document goes on
// syncing it: it fetches the old document back at once. To keep a
// document off this device, name the documents to sync (SyncDocs)
// without it.
func (r *Replica) Delete(ctx context.Context, id string) error {
	// The replica stays locked until the store has deleted the document,
	// so that no Doc call loads the old document in between, under the
	// old incarnation's actor.
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	followed := false // by a sync connection
	if d := r.docs[id]; d != nil {
		d.mu.Lock()
		d.evicted = true
		followed = len(d.feeds) > 0
		d.mu.Unlock()
		// A compaction under way ends before the deletion; one not yet
		// started finds the handle evicted and writes nothing.
		d.saving.Lock()
		//lint:ignore SA2001 the lock is taken only to wait for its holder
		d.saving.Unlock()
	}
	delete(r.docs, id)
	err := r.st.Delete(ctx, id)
	// Even if the store failed to delete, the connections must let the
	// stale handle go: a new one loads what the store holds.
	r.followAgain(id, followed)
	return err
}

// followAgain lets the connections that sync document id know that it
// was deleted. A connection that followed it holds the deleted document's
// handle, which refuses what the peer sends (ErrEvicted) and is fed
// nothing of the new document: the document would stall there until the
// next connection. So each such connection, the replica's Syncers' and
// those it serves (Serve) alike, lets the handle go and refuses the
// document to the peer (unavailable), which makes the peer forget what it
// believed this side holds of it (docs/protocol.md). A Syncer that syncs
// the document (by name, or every document when a connection followed
// this one) then subscribes again: the peer sends back the old document's
// changes, as on a new connection, and this side sends the new ones. A
// peer this replica serves subscribes again itself, as after any
// unavailable refusal. Called with r.mu held; the work is queued to each
// connection's goroutine, which owns its documents.
func (r *Replica) followAgain(id string, followed bool) {
	resubscribe := map[*peer]*Syncer{}
	for _, s := range r.syncers {
		if s.cfg.docs == nil && !followed || s.cfg.docs != nil && !slices.Contains(s.cfg.docs, id) {
			continue
		}
		s.mu.Lock()
		p := s.conn
		s.mu.Unlock()
		if p != nil { // else the next connection starts from the store
			resubscribe[p] = s
		}
	}
	h := r.presence // it knows the connections streaming each document
	h.mu.Lock()
	conns := make([]*peer, 0, len(h.peers[id])+len(resubscribe))
	for p := range h.peers[id] {
		if resubscribe[p] == nil {
			conns = append(conns, p)
		}
	}
	h.mu.Unlock()
	for p := range resubscribe {
		conns = append(conns, p)
	}
	for _, p := range conns {
		s := resubscribe[p]
		p.do(func() {
			if d := p.docs[id]; d != nil {
				if !d.stale() {
					return // following the new document already
				}
				p.unfollow(id)
				p.s.Refuse(id, syncproto.CodeUnavailable, "the document was deleted on this replica: what it held of it is gone")
			}
			if s != nil {
				s.subscribe(p, id)
			}
		})
	}
}

// stale reports whether the handle was evicted or deleted.
func (d *Doc) stale() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.evicted
}

// docActor returns the actor under which the replica writes the n-th
// incarnation of document id, n being the times the store deleted it
// (store.Store.Deletions). A document never deleted, as every document was
// before deletions were counted, keeps the replica's actor. Later
// incarnations get an actor derived from the replica's actor, the
// document's ID and n, by SHA-256: as unlikely to collide with any other
// actor as a random one (the replica's actor is random), and needing
// nothing stored but the count, which the store keeps anyway to know that
// a deletion happened; a random actor would have to be stored with the
// tombstone and kept in step with it.
func (r *Replica) docActor(id string, n uint64) causal.ActorID {
	if n == 0 {
		return r.actor
	}
	h := sha256.New()
	h.Write([]byte("converge: document incarnation\x00"))
	h.Write(r.actor[:])
	h.Write(binary.BigEndian.AppendUint64(nil, n))
	h.Write([]byte(id)) // last: the fields before it have fixed lengths
	var a causal.ActorID
	copy(a[:], h.Sum(nil))
	if a.IsZero() {
		a[0] = 1 // the zero actor is no one's; chance 2^-128
	}
	return a
}

// Flush makes every change made so far durable. Without WithBatchedWrites
// they already are, and Flush returns at once.
func (r *Replica) Flush(ctx context.Context) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	r.mu.Lock()
	docs := make([]*Doc, 0, len(r.docs))
	for _, d := range r.docs {
		docs = append(docs, d)
	}
	r.mu.Unlock()
	var errs []error
	for _, d := range docs {
		errs = append(errs, d.Flush(ctx))
	}
	return errors.Join(errs...)
}

// Close stops the replica's Syncers (as Syncer.Stop does), flushes, waits
// for background compactions, and closes the store. The replica cannot be
// used afterwards; its methods return ErrClosed. Close must not be called
// from a subscriber (Doc.Subscribe), which may run on a Syncer's
// connection. Closing a closed replica does nothing.
func (r *Replica) Close() error {
	r.mu.Lock()
	syncers := slices.Clone(r.syncers)
	r.mu.Unlock()
	for _, s := range syncers {
		s.cancel()
	}
	for _, s := range syncers {
		if s.looping {
			<-s.done // a Syncer left running would use the closed store
		}
	}
	flushErr := r.Flush(context.Background())
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		return nil
	}
	r.closed.Store(true)
	r.docs = nil
	r.mu.Unlock()
	r.bg.Wait()
	return errors.Join(flushErr, r.closeStore())
}

func (r *Replica) closeStore() error {
	if r.ownsSt {
		return r.st.Close()
	}
	return nil
}

func (r *Replica) checkOpen() error {
	if r.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Compact folds every document's change log into its saved copy now (it
// otherwise happens in the background, see WithCompactAfter). progress, if
// not nil, is called after each document with the count done and the
// total.
func (r *Replica) Compact(ctx context.Context, progress func(done, total int)) error {
	// Batched changes are folded too: they must be in the log first.
	if err := r.Flush(ctx); err != nil {
		return err
	}
	docs, err := r.Docs(ctx)
	if err != nil {
		return err
	}
	for i, info := range docs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if info.LogChanges > 0 {
			d, err := r.Doc(ctx, info.ID)
			if err != nil {
				return err
			}
			d.mu.Lock()
			d.logged = max(d.logged, info.LogChanges)
			d.mu.Unlock()
			if err := d.compactNow(ctx, 1); err != nil {
				return fmt.Errorf("converge: compacting %q: %w", info.ID, err)
			}
		}
		if progress != nil {
			progress(i+1, len(docs))
		}
	}
	return nil
}
