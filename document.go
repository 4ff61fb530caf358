package converge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
	"github.com/converge-sync/converge/store"
)

// Doc is one document of a replica. It is safe for concurrent use.
type Doc struct {
	r  *Replica
	id string

	mu        sync.Mutex
	doc       *crdt.Doc
	unflushed []store.Change             // batched writes not yet durable
	unfed     []*crdt.Change             // the same changes, for the feeds once durable
	feeds     []*feed                    // sync connections following the document
	logged    int                        // changes in the store's log since the last snapshot
	compactng bool                       // a background compaction is running
	evicted   bool                       // unloaded by Replica.Evict or Delete: this handle is stale
	heldFrom  map[causal.ChangeID]string // who sent the changes crdt holds for missing dependencies, for audit once they apply

	// saving is held by a compaction from its reading of the document to
	// the end of its store write, so that Replica.Delete can wait for one
	// under way: written after the deletion, the saved copy would bring
	// the document back.
	saving sync.Mutex

	inMu     sync.Mutex  // guards incoming and merging
	incoming []*mergeReq // merges queued (see mergeFrom)
	merging  bool        // a merge leads: it will merge those queued, or pass the lead

	notify sync.Mutex // held while subscribers run, so they see events in order
	subs   []*subscription
}

// Event is what subscribers receive after each change to a document.
type Event struct {
	Doc     string       // the document's ID
	Local   bool         // made by this replica, not received from another
	Patches []crdt.Patch // what changed, in order (see crdt.Patch)
}

type subscription struct{ fn func(Event) }

func validUTF8(s string) bool { return utf8.ValidString(s) }

// ID returns the document's ID.
func (d *Doc) ID() string { return d.id }

// load builds the document from the store: its saved copy, then its log.
func (d *Doc) load(ctx context.Context) error {
	// The document's changes are written under its incarnation's actor
	// (see Replica.docActor).
	deletions, err := d.r.st.Deletions(ctx, d.id)
	if err != nil {
		return fmt.Errorf("converge: loading %q: %w", d.id, err)
	}
	actor := d.r.docActor(d.id, deletions)
	snap, log, err := d.r.st.Load(ctx, d.id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("converge: loading %q: %w", d.id, err)
	}
	var doc *crdt.Doc
	if snap != nil {
		if doc, err = encoding.LoadDoc(snap.Bytes, actor); err != nil {
			return &store.CorruptError{Doc: d.id, Detail: "saved copy: " + err.Error(), Err: err}
		}
	} else {
		doc = crdt.NewDoc(actor, crdt.WithHistory(encoding.NewHistory()))
	}
	changes := make([]*crdt.Change, 0, len(log))
	for _, sc := range log {
		c, err := encoding.DecodeChange(sc.Bytes)
		if err != nil {
			return &store.CorruptError{Doc: d.id, Detail: "change " + sc.ID.String() + ": " + err.Error(), Err: err}
		}
		changes = append(changes, c)
	}
	doc.SetPatches(false) // no one has seen the document yet: its patches would be thrown away
	_, err = doc.Apply(changes...)
	doc.SetPatches(true)
	if err != nil {
		return &store.CorruptError{Doc: d.id, Detail: "log: " + err.Error(), Err: err}
	}
	d.doc, d.logged, d.unflushed, d.unfed, d.heldFrom = doc, len(log), nil, nil, nil
	return nil
}

// Change runs fn as one atomic change to the document. If fn returns an
// error, nothing of it is kept and the error is returned. Otherwise the
// change is durable on the device when Change returns (see
// WithBatchedWrites), and subscribers get its patches.
//
// Subscribers are called after Change has released the document, in order;
// a subscriber may read the document but must not change it synchronously.
//
// fn must not keep tx, nor call the document's other methods: the
// document is locked while fn runs. If fn panics, nothing of it is kept,
// the document stays usable, and the panic goes on to the caller. A nil fn
// is an error.
func (d *Doc) Change(ctx context.Context, fn func(tx *Txn) error, opts ...ChangeOption) error {
	co := crdt.ChangeOptions{Time: d.r.now().UnixMilli()}
	for _, o := range opts {
		o(&co)
	}
	if fn == nil {
		return errNilFunc
	}
	// The change is encoded once, here: refused if too large (undone
	// before anything of it is kept), stored as it is if not.
	var enc []byte
	co.Check = func(c *crdt.Change) error {
		enc = encoding.EncodeChange(c)
		if max := d.r.maxChange; max > 0 && len(enc) > max {
			return fmt.Errorf("converge: a change of %d bytes is over the %d a change may have to sync (WithMaxChangeSize): %w", len(enc), max, ErrChangeTooLarge)
		}
		return nil
	}
	d.mu.Lock()
	if err := d.usable(); err != nil {
		d.mu.Unlock()
		return err
	}
	c, patches, err := d.changeLocked(co, fn)
	if err != nil || c == nil {
		d.mu.Unlock()
		return err
	}
	if err := d.persistEncoded(ctx, []*crdt.Change{c}, []store.Change{{ID: c.ID(), Bytes: enc}}); err != nil {
		d.mu.Unlock()
		return err
	}
	d.publish(Event{Doc: d.id, Local: true, Patches: patches}) // unlocks d.mu
	return nil
}

// errNilFunc is Change's error for a nil function: a caller's mistake,
// said rather than a nil dereference with the document locked.
var errNilFunc = errors.New("converge: Doc.Change needs a function (fn is nil)")

// changeLocked runs fn as a change of the document model. Called with d.mu
// held. If fn panics, the document model has rolled the change back; the
// lock is released before the panic goes on, so that a caller that
// recovers (an HTTP server does) still has a usable document instead of
// one locked for ever.
func (d *Doc) changeLocked(co crdt.ChangeOptions, fn func(tx *Txn) error) (*crdt.Change, []crdt.Patch, error) {
	done := false
	defer func() {
		if !done {
			d.mu.Unlock()
		}
	}()
	var t *Txn
	c, patches, err := d.doc.Change(co, func(tx *crdt.Txn) error {
		t = &Txn{tx: tx, doc: d.doc}
		return fn(t)
	})
	if t != nil {
		t.done = true
	}
	done = true
	return c, patches, err
}

// usable says why the document cannot take changes, if it cannot. Called
// with d.mu held.
func (d *Doc) usable() error {
	if d.evicted {
		return ErrEvicted
	}
	return d.r.checkOpen()
}

// ChangeOption sets the informational parts of a change.
type ChangeOption func(*crdt.ChangeOptions)

// WithMessage attaches a message to the change, shown in history.
func WithMessage(m string) ChangeOption { return func(o *crdt.ChangeOptions) { o.Message = m } }

// persist makes applied changes durable (or queues them, batched). If the
// store fails, the document is reloaded from the store, so that the
// in-memory document never holds a change the device could lose: such a
// change must not be synced, nor its sequence number reused. origins, if
// not nil, holds who sent each change (store.Change.Origin).
func (d *Doc) persist(ctx context.Context, cs []*crdt.Change, origins []string) error {
	batch := make([]store.Change, len(cs))
	for i, c := range cs {
		batch[i] = store.Change{ID: c.ID(), Bytes: encoding.EncodeChange(c)}
		if origins != nil {
			batch[i].Origin = origins[i]
		}
	}
	return d.persistEncoded(ctx, cs, batch)
}

// persistEncoded is persist of changes already encoded, as batch.
func (d *Doc) persistEncoded(ctx context.Context, cs []*crdt.Change, batch []store.Change) error {
	if d.r.batched {
		d.unflushed = append(d.unflushed, batch...)
		d.unfed = append(d.unfed, cs...)
		return nil
	}
	if err := d.r.appendToStore(ctx, d.id, batch); err != nil {
		if lerr := d.load(context.WithoutCancel(ctx)); lerr != nil {
			err = errors.Join(err, lerr)
		}
		return fmt.Errorf("converge: saving change to %q: %w", d.id, err)
	}
	d.logged += len(batch)
	d.maybeCompact()
	d.feed(cs, batch)
	return nil
}

// Flush makes the document's batched changes durable.
func (d *Doc) Flush(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return err
	}
	return d.flushLocked(ctx)
}

// durable runs fn with the document locked and every change it holds
// durable: what may be offered to a peer.
func (d *Doc) durable(ctx context.Context, fn func(doc *crdt.Doc)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.flushLocked(ctx); err != nil {
		return err
	}
	fn(d.doc)
	return nil
}

func (d *Doc) flushLocked(ctx context.Context) error {
	if len(d.unflushed) == 0 {
		return nil
	}
	if err := d.r.appendToStore(ctx, d.id, d.unflushed); err != nil {
		lost := len(d.unflushed)
		if lerr := d.load(context.WithoutCancel(ctx)); lerr != nil {
			err = errors.Join(err, lerr)
		}
		return fmt.Errorf("converge: flushing %q lost %d unflushed change(s): %w", d.id, lost, err)
	}
	d.logged += len(d.unflushed)
	d.feed(d.unfed, d.unflushed)
	d.unflushed, d.unfed = nil, nil
	d.maybeCompact()
	return nil
}

// publish hands the document lock over to the notify lock and calls the
// subscribers. Called with d.mu held; returns with it released.
func (d *Doc) publish(ev Event) {
	if len(ev.Patches) == 0 || len(d.subs) == 0 {
		d.mu.Unlock()
		return
	}
	subs := append([]*subscription(nil), d.subs...)
	d.notify.Lock()
	d.mu.Unlock()
	defer d.notify.Unlock()
	for _, s := range subs {
		s.fn(ev)
	}
}

// Subscribe calls fn with every later change's patches, local or remote,
// in order. The returned function ends the subscription. fn runs on the
// goroutine that made the change: the caller of Change or Merge, or a
// Syncer's connection for remote changes; a slow fn delays them. A nil fn
// subscribes to nothing (it would otherwise fail later, on whichever
// goroutine made the next change).
func (d *Doc) Subscribe(fn func(Event)) (cancel func()) {
	if fn == nil {
		return func() {}
	}
	s := &subscription{fn: fn}
	d.mu.Lock()
	d.subs = append(d.subs, s)
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for i, x := range d.subs {
			if x == s {
				d.subs = append(d.subs[:i:i], d.subs[i+1:]...)
				return
			}
		}
	}
}

// Merge applies changes received from another replica, in any order; those
// whose dependencies are missing wait for them. Newly applied changes are
// made durable before Merge returns, and subscribers get their patches. An
// invalid change is refused (crdt.ErrInvalidChange) without harming the
// others.
func (d *Doc) Merge(ctx context.Context, changes ...*crdt.Change) error {
	_, err := d.mergeFrom(ctx, "", changes)
	return err
}

// mergeFrom is Merge of changes sent by origin (a token's subject, "" if
// unknown), which the store records with each change it stores. A change
// held for missing dependencies keeps its sender until it applies, even
// if what releases it comes from someone else.
//
// Merges of one document wait for each other: the document is locked
// while its changes are made durable, so that what it holds is always
// durable when it is unlocked. So that a busy document (a server receiving
// from many clients at once) is not written one merge per store commit,
// merges queue, and one at a time (the leader) applies and stores every
// merge queued, in one write; then it wakes them with their outcomes, and
// hands the lead to the first merge that queued meanwhile. Those waiting
// wait on their own channel, not on the document's lock: a lock would wake
// them one after another, each only to find its merge done.
//
// What it returns saves a sync connection taking the lock again, behind
// the next write: how many of changes were new, which of them the
// document holds for missing dependencies, and (unless writes are
// batched) the document's version once they were durable.
func (d *Doc) mergeFrom(ctx context.Context, origin string, changes []*crdt.Change) (mergeResult, error) {
	m := &mergeReq{origin: origin, changes: changes, wake: make(chan bool, 1)}
	d.inMu.Lock()
	d.incoming = append(d.incoming, m)
	lead := !d.merging
	d.merging = true
	d.inMu.Unlock()
	if !lead && !<-m.wake {
		return m.res, m.err // merged by a leader
	}
	d.mu.Lock()
	d.inMu.Lock()
	batch := d.incoming
	d.incoming = nil
	d.inMu.Unlock()
	if len(batch) > 1 {
		// The write is the batch's: one caller going away must not fail
		// the others' (a started store write runs to its end anyway).
		ctx = context.WithoutCancel(ctx)
	}
	d.mergeBatch(ctx, batch) // unlocks
	d.inMu.Lock()
	var next *mergeReq
	if len(d.incoming) > 0 {
		next = d.incoming[0]
	} else {
		d.merging = false
	}
	d.inMu.Unlock()
	if next != nil {
		next.wake <- true
	}
	for _, o := range batch {
		if o != m {
			o.wake <- false
		}
	}
	return m.res, m.err
}

// mergeReq is one merge waiting for the document (see mergeFrom).
type mergeReq struct {
	origin  string
	changes []*crdt.Change
	wake    chan bool // true: lead; false: merged, res and err are set
	res     mergeResult
	err     error
}

// mergeResult is what mergeFrom says of a merge besides its error.
type mergeResult struct {
	fresh   int                  // changes given that were new and applied
	held    int                  // changes given that wait for missing dependencies
	version causal.VersionVector // the document's version, durable; nil with batched writes
}

// mergeBatch applies the merges of batch in order, stores what is new in
// one write, and publishes the patches. Called with d.mu held; returns
// with it released.
func (d *Doc) mergeBatch(ctx context.Context, batch []*mergeReq) {
	finish := func(err error) {
		for _, m := range batch {
			m.err = errors.Join(err, m.err)
		}
	}
	if err := d.usable(); err != nil {
		finish(err)
		d.mu.Unlock()
		return
	}
	var patches []crdt.Patch
	var fresh []*crdt.Change
	var origins []string
	withOrigins := len(d.heldFrom) > 0
	for _, m := range batch {
		withOrigins = withOrigins || m.origin != ""
	}
	before := d.doc.Version()
	for _, m := range batch {
		if err := d.notOwn(m.changes); err != nil {
			m.err = err
			continue
		}
		ps, applyErr := d.doc.Apply(m.changes...)
		m.err = applyErr
		patches = append(patches, ps...)
		after := d.doc.Version()
		f := freshChanges(d.doc, before, after, m.changes)
		before = after
		given := givenSet{changes: m.changes}
		m.res.fresh = given.count(f)
		if withOrigins {
			origins = append(origins, d.originsOf(m, f, &given)...)
		}
		fresh = append(fresh, f...)
	}
	if len(fresh) > 0 {
		if err := d.persist(ctx, fresh, origins); err != nil {
			finish(err)
			d.mu.Unlock()
			return
		}
	}
	var version causal.VersionVector
	if !d.r.batched {
		version = before // the version now, shared by the batch: read only
	}
	for _, m := range batch {
		m.res.version = version
		for _, c := range m.changes {
			if d.doc.Held(c.ID()) {
				m.res.held++
			}
		}
	}
	d.publish(Event{Doc: d.id, Patches: patches})
}

// notOwn refuses changes of the document's own actor past the last it
// made (see ErrRolledBack): merged, they would be taken for this
// replica's, and its next change would take the seq after them. Called
// with d.mu held.
func (d *Doc) notOwn(cs []*crdt.Change) error {
	own, last := d.doc.Actor(), d.doc.OwnSeq()
	for _, c := range cs {
		if c.Seq > last && c.Actor == own {
			return fmt.Errorf("converge: %q: a merge brings change %v of this replica's own writer, which has made only %d: %w", d.id, c.ID(), last, ErrRolledBack)
		}
	}
	return nil
}

// givenSet answers which changes a merge was given. The usual merge
// applies just what it was given, in order (freshChanges then returns
// them), and needs no set; otherwise the IDs are hashed once, for
// whichever question comes first.
type givenSet struct {
	changes []*crdt.Change
	ids     map[causal.ChangeID]bool
}

// all reports whether fresh is exactly the changes given.
func (g *givenSet) all(fresh []*crdt.Change) bool {
	if len(fresh) != len(g.changes) {
		return false
	}
	for i, c := range fresh {
		if c != g.changes[i] {
			return false
		}
	}
	return true
}

func (g *givenSet) has(id causal.ChangeID) bool {
	if g.ids == nil {
		g.ids = make(map[causal.ChangeID]bool, len(g.changes))
		for _, c := range g.changes {
			g.ids[c.ID()] = true
		}
	}
	return g.ids[id]
}

// count counts the changes of fresh that were given.
func (g *givenSet) count(fresh []*crdt.Change) int {
	if g.all(fresh) {
		return len(fresh)
	}
	n := 0
	for _, c := range fresh {
		if g.has(c.ID()) {
			n++
		}
	}
	return n
}

// originsOf returns who sent each of fresh, the changes m's merge
// applied (given: m's changes), and keeps the sender of those it holds
// for missing dependencies. Called with d.mu held.
func (d *Doc) originsOf(m *mergeReq, fresh []*crdt.Change, given *givenSet) []string {
	allGiven := given.all(fresh)
	origins := make([]string, len(fresh))
	for i, c := range fresh {
		id := c.ID()
		if o, ok := d.heldFrom[id]; ok {
			origins[i] = o // it arrived earlier, from o
			delete(d.heldFrom, id)
		} else if allGiven || given.has(id) {
			origins[i] = m.origin
		}
	}
	if m.origin != "" {
		for _, c := range m.changes {
			if id := c.ID(); d.doc.Held(id) {
				if _, ok := d.heldFrom[id]; !ok {
					if d.heldFrom == nil {
						d.heldFrom = make(map[causal.ChangeID]string)
					}
					d.heldFrom[id] = m.origin
				}
			}
		}
	}
	return origins
}

// freshChanges returns the changes Apply just applied to doc, which held
// before: those of changes that are new, when they applied in the order
// given (the common case: a peer sends dependencies first). Otherwise
// (changes held for a missing dependency, released now) it asks the
// history, which decodes what it keeps compressed: much slower.
//
// after is doc's version now; neither vector is changed.
func freshChanges(doc *crdt.Doc, before, after causal.VersionVector, changes []*crdt.Change) []*crdt.Change {
	added := after.Total() - before.Total()
	if added == 0 {
		return nil
	}
	if len(changes) == 1 && added == 1 {
		// One change, the one applied (the usual case), unless it was
		// held and what was released instead is another.
		c := changes[0]
		id := c.ID()
		if before.Includes(id) || !after.Includes(id) || id.Seq != before.Get(id.Actor)+1 {
			return doc.ChangesSince(before)
		}
		for _, dep := range c.Deps {
			if !before.Includes(dep) {
				return doc.ChangesSince(before)
			}
		}
		return changes
	}
	seen := before.Clone() // before stays for the slow path
	fresh := make([]*crdt.Change, 0, added)
	for _, c := range changes {
		id := c.ID()
		if seen.Includes(id) || !after.Includes(id) {
			continue // a duplicate, or refused, or held
		}
		if id.Seq != seen.Get(id.Actor)+1 {
			return doc.ChangesSince(before)
		}
		for _, dep := range c.Deps {
			if !seen.Includes(dep) {
				return doc.ChangesSince(before) // applied after a later change
			}
		}
		seen.Observe(id)
		fresh = append(fresh, c)
	}
	if uint64(len(fresh)) != added {
		return doc.ChangesSince(before) // held changes were released too
	}
	return fresh
}

// held returns which of ids the document holds for missing dependencies.
func (d *Doc) held(ids []causal.ChangeID) []causal.ChangeID {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []causal.ChangeID
	for _, id := range ids {
		if d.doc.Held(id) {
			out = append(out, id)
		}
	}
	return out
}

// forget drops the held changes among ids (see crdt.Doc.Forget).
func (d *Doc) forget(ids []causal.ChangeID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.doc.Forget(ids...)
	for _, id := range ids {
		delete(d.heldFrom, id)
	}
}

// read runs fn with the document locked.
func (d *Doc) read(fn func(doc *crdt.Doc)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d.doc)
}

// Get returns the value at pointer ("" for the whole document) as plain Go
// values: map[string]any, []any, string (scalar strings and texts), int64
// (ints and counters), float64, bool, []byte, nil. Nothing at pointer is
// an error wrapping ErrNotFound; a step into a scalar or a text, one
// wrapping ErrWrongKind.
func (d *Doc) Get(pointer string) (v any, err error) {
	d.read(func(doc *crdt.Doc) { v, err = getValue(doc, pointer) })
	return v, err
}

// JSON returns the value at pointer ("" for the whole document) as JSON.
func (d *Doc) JSON(pointer string) (b []byte, err error) {
	d.read(func(doc *crdt.Doc) { b, err = valueJSON(doc, pointer) })
	return b, err
}

// Conflict is an unresolved conflict: where, and every candidate value.
type Conflict struct {
	Path       string      `json:"path"`
	Candidates []Candidate `json:"candidates"`
}

// Candidate is one of a conflict's values, who wrote it and when. The last
// candidate of a conflict is the one shown.
type Candidate struct {
	Value any         `json:"value"` // as Doc.Get gives it
	Op    causal.OpID `json:"-"`     // the op that wrote it: what Txn.Resolve keeps
	OpID  string      `json:"op"`    // Op as text ("counter@actor")
	Actor string      `json:"actor"` // who wrote it (Op's actor, as text)
	Time  int64       `json:"time"`  // when, in Unix milliseconds (the writer's clock)
}

func candidatesOf(doc *crdt.Doc, cs []crdt.Candidate) []Candidate {
	out := make([]Candidate, len(cs))
	for i, c := range cs {
		out[i] = Candidate{Value: doc.ToGo(c.Value), Op: c.Op, OpID: c.Op.String(), Actor: c.Op.Actor.String(), Time: c.Time}
	}
	return out
}

// Conflicts lists every unresolved conflict in the document.
func (d *Doc) Conflicts() (out []Conflict) {
	d.read(func(doc *crdt.Doc) { out = conflictsOf(doc) })
	return out
}

// ConflictsAt returns every value held at pointer: one if there is no
// conflict.
func (d *Doc) ConflictsAt(pointer string) (out []Candidate, err error) {
	d.read(func(doc *crdt.Doc) { out, err = candidatesAt(doc, pointer) })
	return out, err
}

// ChangeInfo describes one change of a document's history. ID names it
// for Doc.AtChange: the document just after it.
type ChangeInfo struct {
	ID      causal.ChangeID `json:"-"`
	Actor   string          `json:"actor"`
	Seq     uint64          `json:"seq"`
	Time    int64           `json:"time"` // Unix milliseconds
	Message string          `json:"message,omitempty"`
	Ops     int             `json:"ops"`
	Deps    int             `json:"deps"`
}

// History lists the document's changes in the order this replica applied
// them (each after the changes it depends on).
func (d *Doc) History() (out []ChangeInfo) {
	d.read(func(doc *crdt.Doc) {
		for _, c := range doc.Changes() {
			out = append(out, changeInfo(c))
		}
	})
	return out
}

// Version returns the version vector of the changes the document holds.
func (d *Doc) Version() (v causal.VersionVector) {
	d.read(func(doc *crdt.Doc) { v = doc.Version() })
	return v
}

// ChangesSince returns the changes that version v lacks: what a replica at
// v needs to catch up.
func (d *Doc) ChangesSince(v causal.VersionVector) (out []*crdt.Change) {
	d.read(func(doc *crdt.Doc) { out = doc.ChangesSince(v) })
	return out
}

// Save encodes the whole document with its history, in the portable binary
// format (docs/format.md): what `converge export` writes.
func (d *Doc) Save() ([]byte, error) {
	var save func() ([]byte, error)
	var err error
	d.read(func(doc *crdt.Doc) {
		if err = d.usable(); err == nil {
			save = encoding.SaveDocLater(doc, encoding.Options{Compress: true})
		}
	})
	if err != nil {
		return nil, err
	}
	return save() // a history out of canonical order is encoded here, the document free meanwhile
}

// Import merges a saved document (from Doc.Save or `converge export`) into
// the replica's document id. Bytes that are not a saved document give the
// encoding package's error (wrapped) and change nothing.
func (r *Replica) Import(ctx context.Context, id string, saved []byte) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	dec, err := encoding.DecodeDocument(saved)
	if err != nil {
		return fmt.Errorf("converge: import %q: %w", id, err)
	}
	changes, err := dec.Changes()
	if err != nil {
		return fmt.Errorf("converge: import %q: %w", id, err)
	}
	d, err := r.Doc(ctx, id)
	if err != nil {
		return err
	}
	return d.Merge(ctx, changes...)
}

// maybeCompact starts a background compaction once the log is long enough.
// Called with d.mu held.
func (d *Doc) maybeCompact() {
	if d.r.compact <= 0 || d.logged < compactAfter(d.r.compact, d.doc.History().Len()) || d.compactng {
		return
	}
	d.compactng = true
	d.r.bg.Add(1)
	go func() {
		defer d.r.bg.Done()
		if err := d.compactNow(context.Background(), d.r.compact); err != nil {
			d.r.log.Warn("compaction failed; the log keeps the changes", "doc", d.id, "err", err)
		}
		d.mu.Lock()
		d.compactng = false
		d.mu.Unlock()
	}()
}

// compactAfter is how many logged changes a document of history changes
// gathers before they are folded into its saved copy: min, or an eighth
// of its history if that is more. A compaction encodes the whole history
// (one that arrived out of canonical order, as a shared document's does,
// from its changes), so folding every min changes would cost a long
// history time in proportion to its length at every step, and a busy long
// document would be compacted without pause. Growing the log with the
// history keeps what compactions cost per change the same at any length,
// at the price of a load replaying up to an eighth of the history from
// the log (docs/replica.md, "Compaction").
func compactAfter(min, history int) int {
	return max(min, history/8)
}

// compactNow folds the document's log into a new saved copy, if the log
// holds at least min changes. The document stays usable meanwhile: it is
// read under the lock and written without it; a history out of canonical
// order is also encoded without it (see encoding.SaveDocLater).
func (d *Doc) compactNow(ctx context.Context, min int) error {
	d.saving.Lock()
	defer d.saving.Unlock()
	d.mu.Lock()
	if d.evicted || d.logged < min || d.doc.Version().Total() == 0 {
		d.mu.Unlock()
		return nil
	}
	if len(d.unflushed) > 0 {
		// Only what is durable may go into the saved copy; the next flush
		// triggers compaction again.
		d.mu.Unlock()
		return nil
	}
	version := d.doc.Version()
	// What the saved copy needs is read under the lock; a history that
	// arrived out of canonical order (a server's, usually) is encoded
	// after it, so that merges into the document wait for the reading
	// only.
	save := encoding.SaveDocLater(d.doc, encoding.Options{Compress: true})
	logged := d.logged
	d.mu.Unlock()
	b, err := save()
	if err != nil {
		return err
	}
	if err := d.r.saveSnapshot(ctx, d.id, store.Snapshot{Version: version, Bytes: b}); err != nil {
		return err
	}
	d.mu.Lock()
	d.logged -= logged
	d.mu.Unlock()
	return nil
}
