package encoding

import (
	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// StateOf walks a document's visible values into a State: the only place
// where this package reads a crdt.Doc.
func StateOf(d *crdt.Doc) *State {
	return &State{Root: nodeOf(d, crdt.NewMap(), crdt.Root)}
}

func nodeOf(d *crdt.Doc, v crdt.Value, obj crdt.ObjID) *Node {
	n := &Node{Kind: v.Kind()}
	switch v.Kind() {
	case crdt.KindMap:
		n.Obj = obj
		n.Keys = d.Keys(obj)
		for _, k := range n.Keys {
			c, _ := d.Get(obj, k)
			n.Items = append(n.Items, nodeOf(d, c, c.Obj()))
		}
	case crdt.KindList:
		n.Obj = obj
		for i := 0; i < d.Len(obj); i++ {
			c, _ := d.GetIndex(obj, i)
			n.Items = append(n.Items, nodeOf(d, c, c.Obj()))
		}
	case crdt.KindText:
		n.Obj, n.Text = obj, d.Text(obj)
	default:
		n.Value = v
	}
	return n
}

// SaveDoc encodes a document with its state and full history. A document
// kept with a History (see NewHistory) whose changes arrived in canonical
// order is saved without decoding its history (see History.save). The
// document tells where each character of its history is in its text, so
// the history's text is placed without searching (see textPlaces): the
// same document always saves to the same bytes, though not always to
// EncodeDocument's.
func SaveDoc(d *crdt.Doc, opt Options) ([]byte, error) {
	st := StateOf(d)
	if h, ok := d.History().(*History); ok {
		if b, ok, err := h.save(st, placesOf(d, st, h.actors), opt); ok {
			return b, err
		}
	}
	return encodeDocument(st, d.Changes(), opt, d)
}

// LoadDoc decodes a saved document and replays its history into a
// crdt.Doc whose local changes will be made by actor. The document keeps
// its history in a compact History.
func LoadDoc(b []byte, actor causal.ActorID) (*crdt.Doc, error) {
	saved, err := DecodeDocument(b)
	if err != nil {
		return nil, err
	}
	saved.trusted = true
	cs, err := saved.Changes()
	if err != nil {
		return nil, err
	}
	d := crdt.NewDoc(actor, crdt.WithHistory(NewHistory()))
	// The replay's patches would be thrown away: not making them halves
	// the time a big document takes to load. Later changes make patches.
	d.SetPatches(false)
	if _, err := d.Apply(cs...); err != nil {
		return nil, err
	}
	d.SetPatches(true)
	return d, nil
}

// replayState computes the state of a history by applying it to a
// read-only document (the zero actor makes no changes).
func replayState(cs []*crdt.Change) (*State, error) {
	d := crdt.NewDoc(causal.ActorID{})
	d.SetPatches(false) // only the state is wanted
	if _, err := d.Apply(cs...); err != nil {
		return nil, err
	}
	return StateOf(d), nil
}
