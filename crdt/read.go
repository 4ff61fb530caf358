package crdt

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/converge-sync/converge/causal"
)

// Kind returns the kind of the container obj, and false if there is none.
func (d *Doc) Kind(obj ObjID) (Kind, bool) {
	o, ok := d.objs[obj]
	if !ok {
		return 0, false
	}
	return o.kind, true
}

// Keys returns the keys of the map obj that hold a value, sorted.
func (d *Doc) Keys(obj ObjID) []string {
	o, ok := d.objs[obj]
	if !ok || o.kind != KindMap {
		return nil
	}
	keys := make([]string, 0, len(o.fields))
	for k := range o.fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Get returns the value shown at key of the map obj: the winner among
// concurrent values (see Values for all of them).
func (d *Doc) Get(obj ObjID, key string) (Value, bool) {
	o, ok := d.objs[obj]
	if !ok || o.kind != KindMap {
		return Value{}, false
	}
	e, ok := o.fields[key].winner()
	return e.value, ok
}

// Len returns the number of elements of a list, characters of a text, or
// keys of a map.
func (d *Doc) Len(obj ObjID) int {
	o, ok := d.objs[obj]
	if !ok {
		return 0
	}
	if o.kind == KindMap {
		return len(o.fields)
	}
	return o.seq.Len()
}

// GetIndex returns the value shown at index i of the list obj.
func (d *Doc) GetIndex(obj ObjID, i int) (Value, bool) {
	o, ok := d.objs[obj]
	if !ok || o.kind != KindList || i < 0 || i >= o.seq.Len() {
		return Value{}, false
	}
	id, err := o.seq.IDAt(i)
	if err != nil {
		return Value{}, false
	}
	e, ok := o.elems[id].winner()
	return e.value, ok
}

// Text returns the content of the text obj.
func (d *Doc) Text(obj ObjID) string {
	o, ok := d.objs[obj]
	if !ok || o.kind != KindText {
		return ""
	}
	return o.seq.Text()
}

// TextRuns calls fn for each run of the text obj's characters, in order: a
// run's characters were inserted by one actor with consecutive counters and
// sit next to each other, first is the ID of the first and n their number.
// It says where each character of a text is, as an encoder placing a
// history's characters in the saved text needs.
func (d *Doc) TextRuns(obj ObjID, fn func(first causal.OpID, n int)) {
	o, ok := d.objs[obj]
	if !ok || o.kind != KindText {
		return
	}
	o.seq.Runs(fn)
}

// Lookup follows a JSON Pointer from the root and returns the value there.
// The root itself is returned as a map value with the Root ObjID.
func (d *Doc) Lookup(pointer string) (Value, error) {
	tokens, err := ParsePointer(pointer)
	if err != nil {
		return Value{}, err
	}
	v := Value{kind: KindMap, obj: Root}
	for i, tok := range tokens {
		fail := func(reason string, err error) (Value, error) {
			return Value{}, &PathError{Pointer: pointer, Reason: fmt.Sprintf("%s at %q (step %d)", reason, tok, i+1), Err: err}
		}
		switch v.kind {
		case KindMap:
			next, ok := d.Get(v.obj, tok)
			if !ok {
				return fail("no such key", ErrNotFound)
			}
			v = next
		case KindList:
			idx, ok := parseIndex(tok)
			if !ok {
				return fail("not a list index", ErrNotFound)
			}
			next, ok := d.GetIndex(v.obj, idx)
			if !ok {
				return fail("index out of range", ErrOutOfRange)
			}
			v = next
		default:
			return fail("cannot step into a "+v.kind.String(), ErrWrongKind)
		}
	}
	return v, nil
}

func parseIndex(tok string) (int, bool) {
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(tok)
	return n, err == nil && n >= 0
}

// ToGo returns the value v as plain Go values: containers become
// map[string]any, []any and string (for text); scalars as Value.Interface.
func (d *Doc) ToGo(v Value) any {
	switch v.kind {
	case KindMap:
		out := make(map[string]any)
		for _, k := range d.Keys(v.obj) {
			e, _ := d.Get(v.obj, k)
			out[k] = d.ToGo(e)
		}
		return out
	case KindList:
		n := d.Len(v.obj)
		out := make([]any, 0, n)
		for i := 0; i < n; i++ {
			e, _ := d.GetIndex(v.obj, i)
			out = append(out, d.ToGo(e))
		}
		return out
	case KindText:
		return d.Text(v.obj)
	case KindFloat:
		// JSON has no NaN or infinities.
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
	}
	return v.Interface()
}

// JSON returns the document (from the root) as JSON, with map keys sorted,
// so equal documents give equal bytes. Texts are strings, counters numbers,
// bytes base64 strings, and non-finite floats null.
func (d *Doc) JSON() []byte {
	return d.ValueJSON(Value{kind: KindMap, obj: Root})
}

// ValueJSON returns one value as JSON (see JSON).
func (d *Doc) ValueJSON(v Value) []byte {
	b, err := json.Marshal(d.ToGo(v))
	if err != nil {
		// ToGo yields only JSON-encodable values.
		panic("crdt: " + err.Error())
	}
	return b
}
