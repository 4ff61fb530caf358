package crdt

import (
	"slices"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt/seq"
)

// object is one container in a document.
type object struct {
	id   ObjID
	kind Kind
	// Where the object sits: the container holding it and the map key or
	// list element whose register holds the op that created it. The object
	// is shown only while that op is its register's winner.
	parent *object
	key    string
	elem   causal.OpID

	fields map[string]*register      // map
	seq    seq.Sequence              // list and text
	elems  map[causal.OpID]*register // list: the values of each element
}

func newObject(id ObjID, kind Kind, parent *object, key string, elem causal.OpID) *object {
	o := &object{id: id, kind: kind, parent: parent, key: key, elem: elem}
	switch kind {
	case KindMap:
		o.fields = make(map[string]*register)
	case KindList:
		o.seq = newSequence()
		o.elems = make(map[causal.OpID]*register)
	case KindText:
		o.seq = newSequence()
	}
	return o
}

// newSequence is the sequence engine used for lists and text.
var newSequence = func() seq.Sequence { return seq.NewFast() }

// register is a multi-value register: the values written to one map key or
// list element that no later write has replaced. Most registers hold one
// value; two or more are a conflict.
type register struct {
	vals []entry // sorted by op ID; the last is the winner
}

// entry is one value in a register, with the op that wrote it.
type entry struct {
	op    causal.OpID
	value Value // containers carry their ObjID (= op); counters their total
	time  int64 // wall time of the writing change, for showing conflicts
}

func (r *register) winner() (entry, bool) {
	if r == nil || len(r.vals) == 0 {
		return entry{}, false
	}
	return r.vals[len(r.vals)-1], true
}

func (r *register) conflicted() bool { return r != nil && len(r.vals) > 1 }

// replace drops the entries named in pred and, if add is non-nil, adds it.
// It returns the previous entries for undo.
func (r *register) replace(pred []causal.OpID, add *entry) []entry {
	old := r.vals
	out := make([]entry, 0, len(old)+1)
	for _, e := range old {
		if !slices.Contains(pred, e.op) {
			out = append(out, e)
		}
	}
	if add != nil {
		i, _ := slices.BinarySearchFunc(out, add.op, func(e entry, id causal.OpID) int { return e.op.Compare(id) })
		out = slices.Insert(out, i, *add)
	}
	r.vals = out
	return old
}

func (r *register) find(op causal.OpID) int {
	if r == nil {
		return -1
	}
	for i := range r.vals {
		if r.vals[i].op == op {
			return i
		}
	}
	return -1
}

func (r *register) ops() []causal.OpID {
	if r == nil || len(r.vals) == 0 {
		return nil
	}
	out := make([]causal.OpID, len(r.vals))
	for i, e := range r.vals {
		out[i] = e.op
	}
	return out
}
