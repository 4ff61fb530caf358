package crdt

import (
	"fmt"

	"github.com/converge-sync/converge/causal"
)

// Cursor is a stable position in a list or text: it names the element it
// sits before, so it moves with that element as others insert and delete
// around it. If that element is deleted, the cursor stays where the element
// was. The zero Elem is the end of the sequence.
type Cursor struct {
	Obj  ObjID
	Elem causal.OpID
}

// String formats the cursor as "elem@obj" op IDs, for presence messages.
func (c Cursor) String() string { return c.Elem.String() + "/" + c.Obj.String() }

// Cursor returns a stable cursor for index i (0 ≤ i ≤ length) of the list or
// text obj.
func (d *Doc) Cursor(obj ObjID, i int) (Cursor, error) {
	o, ok := d.objs[obj]
	if !ok {
		return Cursor{}, fmt.Errorf("crdt: no container %v: %w", obj, ErrNotFound)
	}
	if o.seq == nil {
		return Cursor{}, fmt.Errorf("crdt: cursor in a %s: %w", o.kind, ErrWrongKind)
	}
	if i < 0 || i > o.seq.Len() {
		return Cursor{}, fmt.Errorf("crdt: cursor at %d of %d: %w", i, o.seq.Len(), ErrOutOfRange)
	}
	if i == o.seq.Len() {
		return Cursor{Obj: obj}, nil
	}
	id, err := o.seq.IDAt(i)
	return Cursor{Obj: obj, Elem: id}, err
}

// CursorIndex returns the cursor's current index.
func (d *Doc) CursorIndex(c Cursor) (int, error) {
	o, ok := d.objs[c.Obj]
	if !ok || o.seq == nil {
		return 0, fmt.Errorf("crdt: cursor in unknown sequence %v: %w", c.Obj, ErrNotFound)
	}
	if c.Elem.IsZero() {
		return o.seq.Len(), nil
	}
	idx, _, ok := o.seq.Index(c.Elem)
	if !ok {
		return 0, fmt.Errorf("crdt: cursor at unknown element %v: %w", c.Elem, ErrNotFound)
	}
	return idx, nil
}

// ElemIndex returns where element id of the list or text obj is: the
// number of visible elements before it, whether it is visible itself, and
// whether obj holds it at all. It costs a lookup, not a walk of the
// sequence.
func (d *Doc) ElemIndex(obj ObjID, id causal.OpID) (index int, visible, ok bool) {
	o, found := d.objs[obj]
	if !found || o.seq == nil || id.IsZero() {
		return 0, false, false
	}
	return o.seq.Index(id)
}
