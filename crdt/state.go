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
	version causal.VersionVector // the changes applied
	heads   []causal.ChangeID    // applied changes no other applied change depends on, sorted
	history []*Change            // in the order applied (a causal order)
	byActor map[causal.ActorID][]*Change

	// Remote changes whose dependencies have not arrived yet, and for each
	// missing change the waiting changes that found it missing first.
	pending   map[causal.ChangeID]*Change
	waitingOn map[causal.ChangeID][]causal.ChangeID

	inTxn bool
}

// NewDoc returns an empty document (an empty root map) whose local changes
// are made by actor. A read-only replica may use the zero actor.
func NewDoc(actor causal.ActorID) *Doc {
	d := &Doc{
		actor:     actor,
		objs:      make(map[ObjID]*object),
		version:   causal.VersionVector{},
		byActor:   make(map[causal.ActorID][]*Change),
		pending:   make(map[causal.ChangeID]*Change),
		waitingOn: make(map[causal.ChangeID][]causal.ChangeID),
	}
	d.objs[Root] = newObject(Root, KindMap, nil, "", causal.OpID{})
	return d
}

// Actor returns the actor that makes this replica's local changes.
func (d *Doc) Actor() causal.ActorID { return d.actor }

// Version returns the version vector of the applied changes (a copy).
func (d *Doc) Version() causal.VersionVector { return d.version.Clone() }

// Heads returns the applied changes that no other applied change depends on,
// sorted by ChangeID. Two replicas with equal heads hold the same changes.
func (d *Doc) Heads() []causal.ChangeID { return slices.Clone(d.heads) }

// MaxOp returns the highest op counter the document has seen.
func (d *Doc) MaxOp() uint64 { return d.maxOp }

// record adds an applied change to the causal bookkeeping.
func (d *Doc) record(c *Change) {
	d.history = append(d.history, c)
	d.byActor[c.Actor] = append(d.byActor[c.Actor], c)
	d.version[c.Actor] = c.Seq
	if m := c.MaxOp(); m > d.maxOp {
		d.maxOp = m
	}
	deps := c.AllDeps()
	heads := d.heads[:0]
	for _, h := range d.heads {
		if !slices.Contains(deps, h) {
			heads = append(heads, h)
		}
	}
	id := c.ID()
	i, _ := slices.BinarySearchFunc(heads, id, causal.ChangeID.Compare)
	d.heads = slices.Insert(heads, i, id)
}

// changeByID returns an applied change.
func (d *Doc) changeByID(id causal.ChangeID) (*Change, bool) {
	log := d.byActor[id.Actor]
	if id.Seq == 0 || id.Seq > uint64(len(log)) {
		return nil, false
	}
	return log[id.Seq-1], true
}

func (d *Doc) object(id ObjID) (*object, error) {
	o, ok := d.objs[id]
	if !ok {
		return nil, invalidOp(ErrNotFound, "no container %v", id)
	}
	return o, nil
}
