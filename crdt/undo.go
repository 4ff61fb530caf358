package crdt

import "github.com/converge-sync/converge/causal"

// undoKind says how to reverse one effect of an op.
type undoKind uint8

const (
	undoRegister   undoKind = iota // restore r.vals to old (and the map key's presence)
	undoObject                     // forget the container created with ID id
	undoElement                    // forget list element id (its register)
	undoSeqInsert                  // remove n sequence elements from id
	undoSeqVisible                 // set n elements from id back to visible
	undoIncrement                  // subtract delta from r.vals[idx]
)

// undoRec is one reversible effect. Records live in a slice that the
// document reuses, so that undo costs no allocation on the edit path.
type undoRec struct {
	kind    undoKind
	visible bool
	o       *object
	r       *register
	old     []entry
	key     string
	id      causal.OpID
	n       int
	delta   uint64
}

func (a *applier) push(u undoRec) { a.undo = append(a.undo, u) }

func (a *applier) rollback() {
	for i := len(a.undo) - 1; i >= 0; i-- {
		u := &a.undo[i]
		switch u.kind {
		case undoRegister:
			u.r.vals = u.old
			if u.o.kind == KindMap {
				if len(u.old) == 0 {
					delete(u.o.fields, u.key)
				} else {
					u.o.fields[u.key] = u.r
				}
			}
		case undoObject:
			delete(a.d.objs, u.id)
			a.d.lastObj = nil
		case undoElement:
			delete(u.o.elems, u.id)
		case undoSeqInsert:
			_ = u.o.seq.Remove(u.id, u.n)
		case undoSeqVisible:
			_, _ = u.o.seq.SetVisible(u.id, u.n, u.visible)
		case undoIncrement:
			u.r.vals[u.n].value.num -= u.delta
		}
	}
	a.forget()
}

// forget drops the undo records once their op is committed for good.
func (a *applier) forget() {
	clear(a.undo) // let the old entries be collected
	a.undo = a.undo[:0]
}
