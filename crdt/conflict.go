package crdt

import "github.com/converge-sync/converge/causal"

// Candidate is one of the values held at a map key or list element: the
// value, the op that wrote it (its Actor says who), and the wall time of
// that op's change.
type Candidate struct {
	Value Value
	Op    causal.OpID
	Time  int64
}

// Conflict is a place where concurrent writes left more than one value. The
// last candidate (highest op ID) is the one shown.
type Conflict struct {
	Path       Path
	Candidates []Candidate
}

func candidates(r *register) []Candidate {
	if r == nil {
		return nil
	}
	out := make([]Candidate, len(r.vals))
	for i, e := range r.vals {
		out[i] = Candidate{Value: e.value, Op: e.op, Time: e.time}
	}
	return out
}

// Values returns every value held at key of the map obj, in op ID order:
// one when there is no conflict, none when the key is absent.
func (d *Doc) Values(obj ObjID, key string) []Candidate {
	o, ok := d.objs[obj]
	if !ok || o.kind != KindMap {
		return nil
	}
	return candidates(o.fields[key])
}

// ValuesAt returns every value held at index i of the list obj.
func (d *Doc) ValuesAt(obj ObjID, i int) []Candidate {
	o, ok := d.objs[obj]
	if !ok || o.kind != KindList || i < 0 || i >= o.seq.Len() {
		return nil
	}
	id, err := o.seq.IDAt(i)
	if err != nil {
		return nil
	}
	return candidates(o.elems[id])
}

// Conflicts returns every unresolved conflict in the shown document, in
// path order (map keys sorted, list indexes ascending): an inbox the
// application can show and work through.
func (d *Doc) Conflicts() []Conflict {
	var out []Conflict
	d.walkConflicts(d.objs[Root], nil, &out)
	return out
}

func (d *Doc) walkConflicts(o *object, path Path, out *[]Conflict) {
	visit := func(r *register, step PathElem) {
		p := path.append(step)
		if r.conflicted() {
			*out = append(*out, Conflict{Path: p, Candidates: candidates(r)})
		}
		if w, ok := r.winner(); ok && w.value.kind.IsContainer() {
			d.walkConflicts(d.objs[w.op], p, out)
		}
	}
	switch o.kind {
	case KindMap:
		for _, k := range d.Keys(o.id) {
			visit(o.fields[k], Key(k))
		}
	case KindList:
		for i := 0; i < o.seq.Len(); i++ {
			id, _ := o.seq.IDAt(i)
			visit(o.elems[id], Index(i))
		}
	}
}
