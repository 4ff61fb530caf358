package crdt

import (
	"slices"

	"github.com/converge-sync/converge/causal"
)

// Doc is one replica of a document. It is not safe for concurrent use; the
// layers above serialise access to it.
type Doc struct {
	actor causal.ActorID
	objs  map[ObjID]*object

	// Causal bookkeeping.
	maxOp   uint64               // highest op counter seen
	ownSeq  uint64               // the seq of the last change by this replica's actor
	version causal.VersionVector // the changes applied; read it through applied()
	// ownStale: version[actor] lags behind ownSeq. Recording a local
	// change writes ownSeq only, because a map write per keystroke shows
	// in a profile; applied() catches the map up when it is read.
	ownStale bool
	heads    []causal.ChangeID // applied changes no other applied change depends on, sorted
	history  History           // every applied change, in the order applied

	// Remote changes whose dependencies have not arrived yet, and for each
	// missing change the waiting changes that found it missing first.
	pending   map[causal.ChangeID]*Change
	waitingOn map[causal.ChangeID][]causal.ChangeID

	// The container last looked up by an op: an editing session writes
	// into one text over and over, and hashing its 24-byte ID twice per
	// keystroke shows in a profile. Cleared when a container is forgotten.
	lastObjID ObjID
	lastObj   *object

	slab []oneOpChange // what is left of the slab newChange cuts changes from

	// copier: the history keeps nothing of the changes it is given, so
	// Edit builds each change in scratch.
	copier  bool
	scratch Change

	inTxn     bool
	apply     applier // reused for every change, with its undo records
	txn       Txn     // reused for every local change
	noPatches bool
}

// NewDoc returns an empty document (an empty root map) whose local changes
// are made by actor. A read-only replica may use the zero actor.
func NewDoc(actor causal.ActorID, opts ...Option) *Doc {
	d := &Doc{
		actor:     actor,
		objs:      make(map[ObjID]*object),
		version:   causal.VersionVector{},
		pending:   make(map[causal.ChangeID]*Change),
		waitingOn: make(map[causal.ChangeID][]causal.ChangeID),
	}
	d.objs[Root] = newObject(Root, KindMap, nil, "", causal.OpID{})
	d.apply.d = d
	for _, o := range opts {
		o(d)
	}
	if d.history == nil {
		d.history = NewSliceHistory()
	}
	if c, ok := d.history.(ChangeCopier); ok {
		d.copier = c.CopiesChanges()
	}
	return d
}

// SetPatches turns the patches returned by Change and Apply on or off (on
// by default). A replica with no one watching saves their cost.
func (d *Doc) SetPatches(on bool) { d.noPatches = !on }

// Actor returns the actor that makes this replica's local changes.
func (d *Doc) Actor() causal.ActorID { return d.actor }

// OwnSeq is the seq of the last change by the document's actor: the next
// local change is OwnSeq()+1.
func (d *Doc) OwnSeq() uint64 { return d.ownSeq }

// Version returns the version vector of the applied changes (a copy).
func (d *Doc) Version() causal.VersionVector { return d.applied().Clone() }

// applied returns the version vector of the applied changes, up to date.
func (d *Doc) applied() causal.VersionVector {
	if d.ownStale {
		d.version[d.actor] = d.ownSeq
		d.ownStale = false
	}
	return d.version
}

// Heads returns the applied changes that no other applied change depends on,
// sorted by ChangeID. Two replicas with equal heads hold the same changes.
func (d *Doc) Heads() []causal.ChangeID { return slices.Clone(d.heads) }

// MaxOp returns the highest op counter the document has seen.
func (d *Doc) MaxOp() uint64 { return d.maxOp }

// record adds an applied change, whose last op counter is maxOp (its
// MaxOp, which the caller knows), to the causal bookkeeping.
func (d *Doc) record(c *Change, maxOp uint64) {
	d.history.Append(c)
	if c.Actor == d.actor {
		d.ownSeq, d.ownStale = c.Seq, true
	} else {
		d.version[c.Actor] = c.Seq
	}
	d.maxOp = max(d.maxOp, maxOp)
	// Typing, or a single writer's remote changes: the one head is the
	// actor's previous change, which c replaces.
	if len(d.heads) == 1 && len(c.Deps) == 0 && d.heads[0].Actor == c.Actor && d.heads[0].Seq == c.Seq-1 {
		d.heads[0].Seq = c.Seq
		return
	}
	heads := d.heads[:0]
	for _, h := range d.heads {
		if !(h.Actor == c.Actor && h.Seq == c.Seq-1) && !slices.Contains(c.Deps, h) {
			heads = append(heads, h)
		}
	}
	id := c.ID()
	i, _ := slices.BinarySearchFunc(heads, id, causal.ChangeID.Compare)
	d.heads = slices.Insert(heads, i, id)
}

// History returns the document's change log, for encoders that can save a
// History they know more cheaply than by decoding its changes. It must not
// be appended to.
func (d *Doc) History() History { return d.history }

// Option configures a new Doc.
type Option func(*Doc)

// WithHistory makes the document keep its applied changes in h (which must
// be empty) instead of a plain slice: for example a compact, encoded history
// that keeps a long-lived document's memory small.
func WithHistory(h History) Option { return func(d *Doc) { d.history = h } }

func (d *Doc) object(id ObjID) (*object, error) {
	o, ok := d.lookup(id)
	if !ok {
		return nil, invalidOp(ErrNotFound, "no container %v", id)
	}
	return o, nil
}

// lookup returns the container id, through the one-entry cache.
func (d *Doc) lookup(id ObjID) (*object, bool) {
	if d.lastObj != nil && id == d.lastObjID {
		return d.lastObj, true
	}
	o, ok := d.objs[id]
	if ok {
		d.lastObjID, d.lastObj = id, o
	}
	return o, ok
}
