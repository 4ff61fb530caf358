package crdt

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
)

// ChangeOptions are the informational parts of a local change.
type ChangeOptions struct {
	Time    int64  // wall-clock time, Unix milliseconds, supplied by the caller
	Message string // optional, shown in history
	// Check, if set, sees the change once it is built, before it is
	// recorded: an error from it undoes the change, as one from the
	// transaction's function does, and is returned. (A replica refuses
	// there a change too large to sync.)
	Check func(*Change) error
}

// Txn is an open local transaction. Its writes are visible to reads of the
// document at once; they become one Change when the function given to
// Doc.Change or Doc.Edit returns nil, and are all undone if it returns an
// error.
type Txn struct {
	d     *Doc
	a     *applier
	ops   []Op
	start uint64
	next  uint64
	done  bool
}

// Change runs fn as one atomic local change. If fn returns an error (or
// panics), every write it made is undone and the error is returned (the
// panic goes on). Otherwise Change returns the new Change (to persist and
// send; nil if fn wrote nothing) and the patches it caused.
func (d *Doc) Change(opts ChangeOptions, fn func(*Txn) error) (*Change, []Patch, error) {
	return d.change(opts, fn, true)
}

// Edit runs fn as one atomic local change, as Change does, for a caller
// that does not need the Change value: an editor whose document keeps its
// own history and is saved whole. The change is recorded in the history all
// the same (ChangeByID reads it back, with the ID {Actor(), seq}); Edit
// returns its seq (0 if fn wrote nothing) and the patches it caused.
//
// When the document's History keeps nothing of what it is given (see
// ChangeCopier), the change is built in memory reused by the next one, so a
// keystroke allocates nothing for it.
func (d *Doc) Edit(opts ChangeOptions, fn func(*Txn) error) (seq uint64, patches []Patch, err error) {
	c, patches, err := d.change(opts, fn, !d.copier)
	if c == nil {
		return 0, patches, err
	}
	return c.Seq, patches, err
}

// change is Change; keep says whether the returned change must stay valid
// after the next one (false: it is built in d.scratch).
func (d *Doc) change(opts ChangeOptions, fn func(*Txn) error, keep bool) (*Change, []Patch, error) {
	if d.inTxn {
		return nil, nil, ErrTxnDone
	}
	if d.actor.IsZero() {
		return nil, nil, fmt.Errorf("crdt: a document opened without an actor is read-only: %w", ErrTxnDone)
	}
	d.inTxn = true
	var patches *[]Patch // allocated only when wanted: it escapes
	tx := &d.txn
	tx.d, tx.a, tx.ops, tx.done = d, &d.apply, tx.ops[:0], false
	tx.start, tx.next = d.maxOp+1, d.maxOp+1
	tx.a.time, tx.a.patches = opts.Time, nil
	if !d.noPatches {
		patches = new([]Patch)
		tx.a.patches = patches
	}
	ok := false
	defer func() {
		tx.done = true
		d.inTxn = false
		if !ok {
			tx.undoText()
			tx.a.rollback()
		}
		tx.a.forget()
	}()
	if err := fn(tx); err != nil {
		return nil, nil, err
	}
	if len(tx.ops) == 0 {
		ok = true
		return nil, nil, nil
	}
	var c *Change
	if keep {
		c = d.newChange(tx.ops)
	} else {
		// The history copies what it needs and the caller gets no
		// pointer: the transaction's own op buffer will do.
		c = &d.scratch
		c.Ops, c.Deps = tx.ops, c.Deps[:0] // the other fields are set below
	}
	c.Actor, c.Seq, c.StartOp = d.actor, d.ownSeq+1, tx.start
	c.Time, c.Message = opts.Time, opts.Message
	// Typing, the one head is this actor's last change: no dependency.
	if hs := d.heads; len(hs) != 1 || hs[0].Actor != d.actor {
		for i := range hs {
			if hs[i].Actor != d.actor {
				c.Deps = append(c.Deps, hs[i])
			}
		}
	}
	if opts.Check != nil {
		if err := opts.Check(c); err != nil {
			return nil, nil, err
		}
	}
	ok = true
	d.record(c, tx.next-1)
	// The buffer is reused: the change owns a copy, or the history has
	// copied what it needs. (What it still holds, the last ops' strings,
	// the next change overwrites.)
	tx.ops = tx.ops[:0]
	if !keep {
		d.scratch.Ops = nil
	}
	if patches == nil {
		return c, nil, nil
	}
	return c, *patches, nil
}

// oneOpChange is a change of one op (a keystroke) with its op beside it.
type oneOpChange struct {
	Change
	op [1]Op
}

// changeSlab is how many one-op changes newChange allocates at once.
// Allocating them one by one was a tenth of a keystroke's time; a slab
// stays in memory while any of its changes is referenced, which is a few
// KB for a caller that keeps a change.
const changeSlab = 16

// newChange returns a change holding a copy of ops. The common change of
// one op (a keystroke) is cut from a slab.
func (d *Doc) newChange(ops []Op) *Change {
	if len(ops) == 1 {
		if len(d.slab) == 0 {
			d.slab = make([]oneOpChange, changeSlab)
		}
		c := &d.slab[0]
		d.slab = d.slab[1:]
		c.op[0] = ops[0]
		c.Ops = c.op[:]
		return &c.Change
	}
	return &Change{Ops: slices.Clone(ops)}
}

// Doc returns the document, for reads inside the transaction.
func (tx *Txn) Doc() *Doc { return tx.d }

// add applies one local op to its container o and appends it to the
// change.
//
// op is taken by pointer: an Op is over 200 bytes, and copying it into
// the call showed in a keystroke's profile.
func (tx *Txn) add(o *object, op *Op) (causal.OpID, error) {
	if tx.done {
		return causal.OpID{}, ErrTxnDone
	}
	id := causal.OpID{Counter: tx.next, Actor: tx.d.actor}
	if err := tx.a.applyTo(o, id, op); err != nil {
		return causal.OpID{}, localError(err)
	}
	tx.next += op.Width()
	tx.ops = append(tx.ops, *op)
	return id, nil
}

// localError is the error a local op that failed to apply returns.
func localError(err error) error {
	var oe *opError
	if errors.As(err, &oe) && oe.err != nil {
		return fmt.Errorf("crdt: %s: %w", oe.reason, oe.err)
	}
	return fmt.Errorf("crdt: %w", err)
}

// textObj is container(*obj, KindText), with the document's last
// container checked first without copying the ID.
func (tx *Txn) textObj(obj *ObjID) (*object, error) {
	if d := tx.d; !tx.done && d.lastObj != nil && d.lastObj.kind == KindText && *obj == d.lastObjID {
		return d.lastObj, nil
	}
	return tx.container(*obj, KindText)
}

func (tx *Txn) container(id ObjID, kinds ...Kind) (*object, error) {
	if tx.done {
		return nil, ErrTxnDone
	}
	o, ok := tx.d.lookup(id)
	if !ok {
		return nil, fmt.Errorf("crdt: no container %v: %w", id, ErrNotFound)
	}
	if !slices.Contains(kinds, o.kind) {
		return nil, fmt.Errorf("crdt: container %v is a %s, not a %s: %w", id, o.kind, kinds[0], ErrWrongKind)
	}
	return o, nil
}

func created(id causal.OpID, v Value) ObjID {
	if v.kind.IsContainer() {
		return id
	}
	return ObjID{}
}

// Put writes v at key of the map obj, replacing every value there. If v is
// NewMap(), NewList() or NewText(), it creates that container and returns
// its ObjID.
func (tx *Txn) Put(obj ObjID, key string, v Value) (ObjID, error) {
	o, err := tx.container(obj, KindMap)
	if err != nil {
		return ObjID{}, err
	}
	id, err := tx.add(o, &Op{Action: ActPut, Obj: obj, Key: key, Value: v, Pred: o.fields[key].ops()})
	return created(id, v), err
}

// Delete removes key from the map obj. Values written concurrently by other
// replicas, which this replica has not seen, survive.
func (tx *Txn) Delete(obj ObjID, key string) error {
	o, err := tx.container(obj, KindMap)
	if err != nil {
		return err
	}
	pred := o.fields[key].ops()
	if len(pred) == 0 {
		return fmt.Errorf("crdt: no key %q: %w", key, ErrNotFound)
	}
	_, err = tx.add(o, &Op{Action: ActDelete, Obj: obj, Key: key, Pred: pred})
	return err
}

// Increment adds delta to the counter at key of the map obj.
func (tx *Txn) Increment(obj ObjID, key string, delta int64) error {
	o, err := tx.container(obj, KindMap)
	if err != nil {
		return err
	}
	return tx.increment(o, o.fields[key], strconv.Quote(key), Op{Action: ActIncrement, Obj: obj, Key: key}, delta)
}

// increment adds delta to the counter shown in r, at the place where names
// for errors; op carries the target (map key or list element).
func (tx *Txn) increment(o *object, r *register, where string, op Op, delta int64) error {
	w, ok := r.winner()
	if !ok {
		return fmt.Errorf("crdt: no counter at %s: %w", where, ErrNotFound)
	}
	if w.value.kind != KindCounter {
		return fmt.Errorf("crdt: %s holds a %s value, not a counter: %w", where, w.value.kind, ErrWrongKind)
	}
	op.Value, op.Pred = Int(delta), []causal.OpID{w.op}
	_, err := tx.add(o, &op)
	return err
}

// Resolve ends a conflict at key of the map obj by keeping the value written
// by op keep and removing the others (see Doc.Values). Unlike writing the
// chosen value again, it keeps a chosen container with its contents.
func (tx *Txn) Resolve(obj ObjID, key string, keep causal.OpID) error {
	o, err := tx.container(obj, KindMap)
	if err != nil {
		return err
	}
	return tx.resolve(o, o.fields[key], keep, Op{Action: ActDelete, Obj: obj, Key: key})
}

func (tx *Txn) resolve(o *object, r *register, keep causal.OpID, op Op) error {
	if r.find(keep) < 0 {
		return fmt.Errorf("crdt: no value by op %v: %w", keep, ErrNotFound)
	}
	for _, id := range r.ops() {
		if id != keep {
			op.Pred = append(op.Pred, id)
		}
	}
	if len(op.Pred) == 0 {
		return nil
	}
	_, err := tx.add(o, &op)
	return err
}

// elementAt returns the ID and register of the visible list element at i.
func (tx *Txn) elementAt(o *object, i int) (causal.OpID, *register, error) {
	if i < 0 || i >= o.seq.Len() {
		return causal.OpID{}, nil, fmt.Errorf("crdt: index %d of a list of %d: %w", i, o.seq.Len(), ErrOutOfRange)
	}
	id, err := o.seq.IDAt(i)
	if err != nil {
		return causal.OpID{}, nil, err
	}
	return id, o.elems[id], nil
}

// Insert inserts v into the list obj at index (0 ≤ index ≤ length). A
// container value creates the container and returns its ObjID.
func (tx *Txn) Insert(obj ObjID, index int, v Value) (ObjID, error) {
	o, err := tx.container(obj, KindList)
	if err != nil {
		return ObjID{}, err
	}
	if index < 0 || index > o.seq.Len() {
		return ObjID{}, fmt.Errorf("crdt: insert at %d of a list of %d: %w", index, o.seq.Len(), ErrOutOfRange)
	}
	left, right, err := o.seq.Origins(index)
	if err != nil {
		return ObjID{}, err
	}
	id, err := tx.add(o, &Op{Action: ActInsert, Obj: obj, Left: left, Right: right, Value: v})
	return created(id, v), err
}

// Set overwrites the list element at index.
func (tx *Txn) Set(obj ObjID, index int, v Value) (ObjID, error) {
	o, err := tx.container(obj, KindList)
	if err != nil {
		return ObjID{}, err
	}
	elem, r, err := tx.elementAt(o, index)
	if err != nil {
		return ObjID{}, err
	}
	id, err := tx.add(o, &Op{Action: ActPut, Obj: obj, Elem: elem, Value: v, Pred: r.ops()})
	return created(id, v), err
}

// IncrementAt adds delta to the counter at index of the list obj.
func (tx *Txn) IncrementAt(obj ObjID, index int, delta int64) error {
	o, err := tx.container(obj, KindList)
	if err != nil {
		return err
	}
	elem, r, err := tx.elementAt(o, index)
	if err != nil {
		return err
	}
	return tx.increment(o, r, "index "+strconv.Itoa(index), Op{Action: ActIncrement, Obj: obj, Elem: elem}, delta)
}

// ResolveAt ends a conflict at index of the list obj, keeping op keep's value.
func (tx *Txn) ResolveAt(obj ObjID, index int, keep causal.OpID) error {
	o, err := tx.container(obj, KindList)
	if err != nil {
		return err
	}
	elem, r, err := tx.elementAt(o, index)
	if err != nil {
		return err
	}
	return tx.resolve(o, r, keep, Op{Action: ActDelete, Obj: obj, Elem: elem})
}

// Remove deletes n elements of the list obj from index. An element that
// another replica overwrites concurrently survives.
func (tx *Txn) Remove(obj ObjID, index, n int) error {
	o, err := tx.container(obj, KindList)
	if err != nil {
		return err
	}
	if n < 0 || index < 0 || index+n > o.seq.Len() {
		return fmt.Errorf("crdt: remove %d from %d of a list of %d: %w", n, index, o.seq.Len(), ErrOutOfRange)
	}
	for ; n > 0; n-- {
		elem, r, err := tx.elementAt(o, index)
		if err != nil {
			return err
		}
		if _, err := tx.add(o, &Op{Action: ActDelete, Obj: obj, Elem: elem, Pred: r.ops()}); err != nil {
			return err
		}
	}
	return nil
}

// Splice deletes del characters of the text obj at pos and inserts text
// there. Positions count Unicode code points (see docs/semantics.md for
// converting from UTF-16 offsets).
func (tx *Txn) Splice(obj ObjID, pos, del int, text string) error {
	o, err := tx.textObj(&obj)
	if err != nil {
		return err
	}
	if pos < 0 || del < 0 || pos+del > o.seq.Len() {
		return spliceRangeError(pos, del, o.seq.Len())
	}
	if !oneASCII(text) && !utf8.ValidString(text) {
		return spliceTextError()
	}
	if del > 0 {
		if err := tx.deleteText(o, obj, pos, del); err != nil {
			return err
		}
	}
	if text == "" {
		return nil
	}
	return tx.insertText(o, obj, pos, text)
}

// deleteText and insertText make Splice's ops as add and the applier
// would, but with the sequence finding the characters and changing them
// in one step, and with no undo records (see undoText). Patches and errors
// are made in functions of their own, out of the common path.
func (tx *Txn) deleteText(o *object, obj ObjID, pos, del int) error {
	runs, err := o.seq.HideAt(pos, del)
	if err != nil {
		return seqLocalError(err)
	}
	if tx.a.patches != nil {
		tx.a.removePatches(o, runs)
	}
	for _, r := range runs {
		op := tx.newOp(ActDeleteText)
		op.Obj, op.Elem, op.Len = obj, r.Start, uint64(r.Len)
		tx.next++
	}
	return nil
}

func (tx *Txn) insertText(o *object, obj ObjID, pos int, text string) error {
	id := causal.OpID{Counter: tx.next, Actor: tx.d.actor}
	n := 1
	if !oneASCII(text) {
		n = utf8.RuneCountInString(text)
	}
	op := tx.newOp(ActInsertText) // the sequence writes the origins into it
	if err := o.seq.InsertAt(pos, id, n, text, &op.Left, &op.Right); err != nil {
		tx.ops = tx.ops[:len(tx.ops)-1]
		return seqLocalError(err)
	}
	if tx.a.patches != nil {
		tx.a.splicePatch(o, pos, text)
	}
	tx.next += uint64(n)
	op.Obj, op.Text = obj, text
	return nil
}

// oneASCII reports whether s is one ASCII character, as a keystroke
// mostly is: valid UTF-8 of one code point, found without a call.
func oneASCII(s string) bool { return len(s) == 1 && s[0] < utf8.RuneSelf }

// newOp appends an op of action to the transaction's ops and returns it,
// for Splice to fill in place with the fields of action (building an Op,
// over 200 bytes, and copying it in cost more). The ops' memory is reused
// from change to change: a slot whose last op had the same action holds
// only fields that action sets, which its caller sets again, so it is not
// cleared first (clearing was a tenth of a keystroke's insertText). Only
// Splice makes text ops, with the fields deleteText and insertText set.
func (tx *Txn) newOp(action Action) *Op {
	n := len(tx.ops)
	if n == cap(tx.ops) {
		tx.ops = append(tx.ops, Op{Action: action})
		return &tx.ops[n]
	}
	tx.ops = tx.ops[:n+1]
	op := &tx.ops[n]
	if op.Action != action {
		*op = Op{Action: action}
	}
	return op
}

// undoText reverses the transaction's text ops, last first. Splice pushes
// no undo records: each op says what to reverse (its counter follows from
// the ops before it), and a keystroke is spared writing one. Text ops
// touch nothing but their text's sequence, so they may be reversed before
// the undo records, while every container they name still exists. (Only
// Splice makes text ops in a transaction: one made through add would also
// have an undo record, and be reversed twice.)
func (tx *Txn) undoText() {
	ctr := tx.next
	for i := len(tx.ops) - 1; i >= 0; i-- {
		op := &tx.ops[i]
		w := op.Width()
		ctr -= w
		switch op.Action {
		case ActInsertText:
			if o, ok := tx.d.objs[op.Obj]; ok {
				_ = o.seq.Remove(causal.OpID{Counter: ctr, Actor: tx.d.actor}, int(w))
			}
		case ActDeleteText:
			if o, ok := tx.d.objs[op.Obj]; ok {
				_, _ = o.seq.SetVisible(op.Elem, int(op.Len), true)
			}
		}
	}
}

func spliceRangeError(pos, del, n int) error {
	return fmt.Errorf("crdt: splice %d+%d of a text of %d: %w", pos, del, n, ErrOutOfRange)
}

func spliceTextError() error { return fmt.Errorf("crdt: splice text is not UTF-8: %w", ErrBadValue) }

// seqLocalError is the error of a local op the sequence refused.
func seqLocalError(err error) error { return localError(invalidOp(seqError(err), "%v", err)) }
