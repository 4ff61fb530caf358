package converge

import (
	"fmt"
	"strconv"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// Txn is an open change to one document, addressed by JSON Pointers. Reads
// through it see its own writes. See Doc.Change; a Txn is valid only
// inside the function given to Change (later, its methods return an error
// wrapping crdt.ErrTxnDone).
//
// Its methods' errors wrap ErrNotFound (nothing at the pointer),
// ErrWrongKind (a value of another kind there), crdt.ErrOutOfRange (an
// index or a text position past the end) or ErrBadValue (a Go value with
// no document equivalent), for errors.Is. A failed call may have written
// part of its value (a nested list or map up to the bad element): return
// its error from the function to discard the whole change.
type Txn struct {
	tx   *crdt.Txn
	doc  *crdt.Doc
	done bool // Change has returned: the document is no longer locked for it
}

// open refuses a Txn kept past its Change: its document is no longer
// locked for it, so even a read through it would race with other calls.
func (t *Txn) open() error {
	if t.done {
		return fmt.Errorf("converge: a Txn used after its Change returned: %w", crdt.ErrTxnDone)
	}
	return nil
}

// place is where a pointer leads: a container and a key or index in it.
type place struct {
	obj   crdt.ObjID
	kind  crdt.Kind
	key   string
	index int // list or text index; len for "-" (the end)
}

// locate resolves all but the last token of pointer to a container.
func locate(d *crdt.Doc, pointer string) (place, error) {
	tokens, err := crdt.ParsePointer(pointer)
	if err != nil {
		return place{}, err
	}
	if len(tokens) == 0 {
		return place{}, &crdt.PathError{Pointer: pointer, Reason: "the root itself cannot be written", Err: ErrWrongKind}
	}
	parentPtr := ""
	for _, t := range tokens[:len(tokens)-1] {
		parentPtr += "/" + escape(t)
	}
	parent, err := d.Lookup(parentPtr)
	if err != nil {
		return place{}, err
	}
	p := place{obj: parent.Obj(), kind: parent.Kind()}
	last := tokens[len(tokens)-1]
	switch p.kind {
	case crdt.KindMap:
		p.key = last
	case crdt.KindList, crdt.KindText:
		if last == "-" {
			p.index = d.Len(p.obj)
			break
		}
		n, err := strconv.Atoi(last)
		if err != nil || n < 0 || (len(last) > 1 && last[0] == '0') {
			return place{}, &crdt.PathError{Pointer: pointer, Reason: fmt.Sprintf("%q is not a list index", last), Err: ErrNotFound}
		}
		p.index = n
	default:
		return place{}, &crdt.PathError{Pointer: pointer, Reason: "cannot step into a " + p.kind.String(), Err: ErrWrongKind}
	}
	return p, nil
}

func escape(t string) string { return crdt.Path{crdt.Key(t)}.String()[1:] }

// Set writes value at pointer: a map key (created or replaced) or an
// existing list element. Go maps and slices become nested maps and lists;
// Text and Counter create a text and a counter; other values are scalars.
// "/-" past a list's last index appends.
func (t *Txn) Set(pointer string, value any) error {
	if err := t.open(); err != nil {
		return err
	}
	p, err := locate(t.doc, pointer)
	if err != nil {
		return err
	}
	switch p.kind {
	case crdt.KindMap:
		return put(t.tx, p.obj, p.key, value)
	case crdt.KindList:
		if p.index == t.doc.Len(p.obj) {
			return insert(t.tx, p.obj, p.index, value)
		}
		return set(t.tx, p.obj, p.index, value)
	}
	return fmt.Errorf("converge: set %s: a text is edited with Splice: %w", pointer, ErrWrongKind)
}

// Insert inserts value into a list before the element at pointer's index
// ("-" appends).
func (t *Txn) Insert(pointer string, value any) error {
	if err := t.open(); err != nil {
		return err
	}
	p, err := locate(t.doc, pointer)
	if err != nil {
		return err
	}
	if p.kind != crdt.KindList {
		return fmt.Errorf("converge: insert %s: not in a list: %w", pointer, ErrWrongKind)
	}
	return insert(t.tx, p.obj, p.index, value)
}

// Delete removes a map key or a list element.
func (t *Txn) Delete(pointer string) error {
	if err := t.open(); err != nil {
		return err
	}
	p, err := locate(t.doc, pointer)
	if err != nil {
		return err
	}
	switch p.kind {
	case crdt.KindMap:
		return t.tx.Delete(p.obj, p.key)
	case crdt.KindList:
		return t.tx.Remove(p.obj, p.index, 1)
	}
	return fmt.Errorf("converge: delete %s: a text is edited with Splice: %w", pointer, ErrWrongKind)
}

// Splice edits the text at pointer: it deletes del characters at pos and
// inserts text there. Positions count Unicode code points (see
// crdt.UTF16ToIndex for offsets from a browser editor).
func (t *Txn) Splice(pointer string, pos, del int, text string) error {
	if err := t.open(); err != nil {
		return err
	}
	v, err := t.doc.Lookup(pointer)
	if err != nil {
		return err
	}
	if v.Kind() != crdt.KindText {
		return fmt.Errorf("converge: splice %s: it holds a %s, not a text: %w", pointer, v.Kind(), ErrWrongKind)
	}
	return t.tx.Splice(v.Obj(), pos, del, text)
}

// Increment adds delta to the counter at pointer. A map key with no value
// becomes a counter starting at delta.
func (t *Txn) Increment(pointer string, delta int64) error {
	if err := t.open(); err != nil {
		return err
	}
	p, err := locate(t.doc, pointer)
	if err != nil {
		return err
	}
	switch p.kind {
	case crdt.KindMap:
		if _, ok := t.doc.Get(p.obj, p.key); !ok {
			_, err := t.tx.Put(p.obj, p.key, crdt.Counter(delta))
			return err
		}
		return t.tx.Increment(p.obj, p.key, delta)
	case crdt.KindList:
		return t.tx.IncrementAt(p.obj, p.index, delta)
	}
	return fmt.Errorf("converge: increment %s: %w", pointer, ErrWrongKind)
}

// Resolve ends the conflict at pointer by keeping the value written by op
// keep (one of Doc.ConflictsAt's candidates) and removing the others.
func (t *Txn) Resolve(pointer string, keep causal.OpID) error {
	if err := t.open(); err != nil {
		return err
	}
	p, err := locate(t.doc, pointer)
	if err != nil {
		return err
	}
	switch p.kind {
	case crdt.KindMap:
		return t.tx.Resolve(p.obj, p.key, keep)
	case crdt.KindList:
		return t.tx.ResolveAt(p.obj, p.index, keep)
	}
	return fmt.Errorf("converge: resolve %s: %w", pointer, ErrWrongKind)
}

// Get returns the value at pointer as plain Go values (see Doc.Get).
func (t *Txn) Get(pointer string) (any, error) {
	if err := t.open(); err != nil {
		return nil, err
	}
	v, err := t.doc.Lookup(pointer)
	if err != nil {
		return nil, err
	}
	return t.doc.ToGo(v), nil
}

// Raw returns the document-model transaction, for what paths cannot say
// (object IDs, cursors).
func (t *Txn) Raw() *crdt.Txn { return t.tx }
