package crdt

import (
	"errors"
	"slices"
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt/seq"
)

// applier applies ops to a document, one at a time, keeping what is needed
// to undo them (a transaction that fails, or a remote change refused half
// way, leaves the document as it was) and collecting patches.
//
// Every op is checked against the document before it changes anything, so
// an op either applies whole or fails with nothing to undo.
type applier struct {
	d       *Doc
	time    int64
	undo    []undoRec
	patches *[]Patch // nil: the caller wants none
	noText  bool     // leave text ops out (Doc.LeaveOutTextOps)
}

func (a *applier) patch(p Patch) {
	if a.patches != nil {
		*a.patches = append(*a.patches, p)
	}
}

// apply applies op, whose ID is id.
func (a *applier) apply(id causal.OpID, op *Op) error {
	if a.noText && (op.Action == ActInsertText || op.Action == ActDeleteText) {
		return nil
	}
	o, err := a.d.object(op.Obj)
	if err != nil {
		return err
	}
	if err := checkCausal(id, op); err != nil {
		return err
	}
	return a.applyTo(o, id, op)
}

// applyTo applies op, whose ID is id, to its container o. A local op needs
// no causal check: every ID it names was found in the document, so it is
// before the transaction's next counter.
func (a *applier) applyTo(o *object, id causal.OpID, op *Op) error {
	switch op.Action {
	case ActPut, ActDelete, ActIncrement:
		return a.register(id, o, op)
	case ActInsert:
		return a.insert(id, o, op)
	case ActInsertText:
		return a.insertText(id, o, op)
	case ActDeleteText:
		return a.deleteText(o, op)
	}
	return invalidOp(nil, "unknown action %d", op.Action)
}

// checkCausal refuses ops that refer to an op that cannot have happened
// before them: every ID an op names must have a smaller counter than its own.
func checkCausal(id causal.OpID, op *Op) error {
	// A zero ID has counter 0, always before: only a named ID can fail.
	if op.Elem.Counter >= id.Counter || op.Left.Counter >= id.Counter || op.Right.Counter >= id.Counter {
		for _, ref := range [...]causal.OpID{op.Elem, op.Left, op.Right} {
			if !ref.IsZero() && ref.Counter >= id.Counter {
				return invalidOp(nil, "op %v names %v, which is not before it", id, ref)
			}
		}
	}
	for _, p := range op.Pred {
		if p.Counter >= id.Counter || p.IsZero() {
			return invalidOp(nil, "op %v replaces %v, which is not before it", id, p)
		}
	}
	return nil
}

func checkValue(v Value) error {
	if !v.kind.Valid() {
		return invalidOp(ErrBadValue, "unknown value kind %d", v.kind)
	}
	if v.kind.IsContainer() && !v.obj.IsZero() {
		return invalidOp(ErrBadValue, "a container read from a document cannot be written again; write NewMap(), NewList() or NewText()")
	}
	if v.kind == KindBool && v.num > 1 {
		return invalidOp(ErrBadValue, "bool out of range")
	}
	return nil
}

// register applies a put, delete or increment to a map key or list element.
func (a *applier) register(id causal.OpID, o *object, op *Op) error {
	var r *register
	switch o.kind {
	case KindMap:
		if !op.Elem.IsZero() {
			return invalidOp(ErrWrongKind, "list element in a map op")
		}
		r = o.fields[op.Key]
	case KindList:
		r = o.elems[op.Elem]
		if r == nil {
			return invalidOp(ErrNotFound, "no element %v in list %v", op.Elem, o.id)
		}
	default:
		return invalidOp(ErrWrongKind, "%s on a %s", op.Action, o.kind)
	}
	switch op.Action {
	case ActPut:
		if err := checkValue(op.Value); err != nil {
			return err
		}
	case ActIncrement:
		return a.increment(o, r, op)
	}

	before, hadBefore := r.winner()
	conflictedBefore := r.conflicted()
	if r == nil { // a map key never written
		r = &register{}
	}
	var add *entry
	if op.Action == ActPut {
		v := op.Value
		if v.kind.IsContainer() {
			v = v.withObj(id)
		}
		add = &entry{op: id, value: v, time: a.time}
	}
	old := r.replace(op.Pred, add)
	a.push(undoRec{kind: undoRegister, o: o, r: r, old: old, key: op.Key})
	if o.kind == KindMap {
		if len(r.vals) == 0 {
			delete(o.fields, op.Key)
		} else {
			o.fields[op.Key] = r
		}
	}
	var child *object
	if add != nil && add.value.kind.IsContainer() {
		child = newObject(id, add.value.kind, o, op.Key, op.Elem)
		a.d.objs[id] = child
		a.push(undoRec{kind: undoObject, id: id})
	}

	// Lists show an element while its register holds a value.
	var runs []seq.Run
	if o.kind == KindList && (len(old) == 0) != (len(r.vals) == 0) {
		runs, _ = o.seq.SetVisible(op.Elem, 1, len(r.vals) > 0)
		a.push(undoRec{kind: undoSeqVisible, o: o, id: op.Elem, n: 1, visible: len(old) > 0})
	}
	if a.patches != nil {
		a.registerPatches(o, op, r, before, hadBefore, conflictedBefore, runs)
	}
	return nil
}

func (a *applier) registerPatches(o *object, op *Op, r *register, before entry, hadBefore, conflictedBefore bool, runs []seq.Run) {
	base, ok := a.d.pathOf(o)
	if !ok {
		return
	}
	after, hasAfter := r.winner()
	if o.kind == KindList {
		if len(runs) > 0 {
			if hasAfter {
				a.patch(Patch{Action: PatchInsert, Path: base, Index: runs[0].Index, Values: []Value{after.value}})
				a.contents(after.value, base.append(Index(runs[0].Index)))
			} else {
				a.patch(Patch{Action: PatchRemove, Path: base, Index: runs[0].Index, Count: 1})
			}
		}
		if !hasAfter {
			return
		}
		idx, _, _ := o.seq.Index(op.Elem)
		path := base.append(Index(idx))
		if len(runs) == 0 && (!hadBefore || before.op != after.op) {
			a.patch(Patch{Action: PatchPut, Path: path, Value: after.value, Conflict: r.conflicted()})
			a.contents(after.value, path)
		}
		if conflictedBefore != r.conflicted() {
			a.patch(Patch{Action: PatchConflict, Path: path, Conflict: r.conflicted()})
		}
		return
	}
	path := base.append(Key(op.Key))
	switch {
	case !hasAfter && hadBefore:
		a.patch(Patch{Action: PatchDelete, Path: path})
	case hasAfter && (!hadBefore || before.op != after.op):
		a.patch(Patch{Action: PatchPut, Path: path, Value: after.value, Conflict: r.conflicted()})
		a.contents(after.value, path)
	}
	if hasAfter && conflictedBefore != r.conflicted() {
		a.patch(Patch{Action: PatchConflict, Path: path, Conflict: r.conflicted()})
	}
}

// contents follows a patch that shows container v at path with patches that
// fill it in, so that the patch stream alone rebuilds what is shown: a
// container shown again after a conflict or delete may already hold values.
func (a *applier) contents(v Value, path Path) {
	if !v.kind.IsContainer() {
		return
	}
	o := a.d.objs[v.obj]
	switch o.kind {
	case KindMap:
		for _, k := range a.d.Keys(o.id) {
			r := o.fields[k]
			w, _ := r.winner()
			p := path.append(Key(k))
			a.patch(Patch{Action: PatchPut, Path: p, Value: w.value, Conflict: r.conflicted()})
			if r.conflicted() {
				a.patch(Patch{Action: PatchConflict, Path: p, Conflict: true})
			}
			a.contents(w.value, p)
		}
	case KindList:
		for i := 0; i < o.seq.Len(); i++ {
			id, _ := o.seq.IDAt(i)
			r := o.elems[id]
			w, _ := r.winner()
			a.patch(Patch{Action: PatchInsert, Path: path, Index: i, Values: []Value{w.value}})
			if r.conflicted() {
				a.patch(Patch{Action: PatchConflict, Path: path.append(Index(i)), Conflict: true})
			}
			a.contents(w.value, path.append(Index(i)))
		}
	case KindText:
		if o.seq.Len() > 0 {
			a.patch(Patch{Action: PatchSplice, Path: path, Text: o.seq.Text()})
		}
	}
}

func (a *applier) increment(o *object, r *register, op *Op) error {
	if len(op.Pred) != 1 {
		return invalidOp(nil, "increment names %d counters, not 1", len(op.Pred))
	}
	if op.Value.kind != KindInt {
		return invalidOp(ErrBadValue, "increment by a %s", op.Value.kind)
	}
	i := r.find(op.Pred[0])
	if i < 0 {
		// The counter was replaced or deleted concurrently: the increment
		// has nothing left to add to, on every replica.
		return nil
	}
	if r.vals[i].value.kind != KindCounter {
		return invalidOp(ErrWrongKind, "increment of a %s", r.vals[i].value.kind)
	}
	delta := op.Value.num
	r.vals[i].value.num += delta // wraps like int64 arithmetic, the same everywhere
	a.push(undoRec{kind: undoIncrement, r: r, n: i, delta: delta})
	if a.patches != nil && i == len(r.vals)-1 {
		if base, ok := a.d.pathOf(o); ok {
			var step PathElem
			if o.kind == KindList {
				idx, _, _ := o.seq.Index(op.Elem)
				step = Index(idx)
			} else {
				step = Key(op.Key)
			}
			a.patch(Patch{Action: PatchIncrement, Path: base.append(step), Delta: int64(delta)})
		}
	}
	return nil
}

func (a *applier) insert(id causal.OpID, o *object, op *Op) error {
	if o.kind != KindList {
		return invalidOp(ErrWrongKind, "list insert into a %s", o.kind)
	}
	if err := checkValue(op.Value); err != nil {
		return err
	}
	idx, err := o.seq.Insert(id, 1, op.Left, op.Right, "")
	if err != nil {
		return invalidOp(seqError(err), "%v", err)
	}
	v := op.Value
	if v.kind.IsContainer() {
		v = v.withObj(id)
		a.d.objs[id] = newObject(id, v.kind, o, "", id)
	}
	a.push(undoRec{kind: undoSeqInsert, o: o, id: id, n: 1})
	if v.kind.IsContainer() {
		a.push(undoRec{kind: undoObject, id: id})
	}
	o.elems[id] = &register{vals: []entry{{op: id, value: v, time: a.time}}}
	a.push(undoRec{kind: undoElement, o: o, id: id})
	if a.patches != nil {
		if base, ok := a.d.pathOf(o); ok {
			a.patch(Patch{Action: PatchInsert, Path: base, Index: idx, Values: []Value{v}})
		}
	}
	return nil
}

func (a *applier) insertText(id causal.OpID, o *object, op *Op) error {
	if o.kind != KindText {
		return invalidOp(ErrWrongKind, "text insert into a %s", o.kind)
	}
	if op.Text == "" || !utf8.ValidString(op.Text) {
		return invalidOp(ErrBadValue, "text insert must be non-empty UTF-8")
	}
	n := utf8.RuneCountInString(op.Text)
	idx, err := o.seq.Insert(id, n, op.Left, op.Right, op.Text)
	if err != nil {
		return invalidOp(seqError(err), "%v", err)
	}
	a.push(undoRec{kind: undoSeqInsert, o: o, id: id, n: n})
	if a.patches != nil {
		a.splicePatch(o, idx, op.Text)
	}
	return nil
}

// maxDeleteLen bounds one deleteText op, so that a hostile change cannot
// make a replica loop over billions of IDs.
const maxDeleteLen = 1 << 31

func (a *applier) deleteText(o *object, op *Op) error {
	if o.kind != KindText {
		return invalidOp(ErrWrongKind, "text delete in a %s", o.kind)
	}
	if op.Len == 0 || op.Len > maxDeleteLen || op.Elem.IsZero() {
		return invalidOp(ErrOutOfRange, "text delete of %d characters from %v", op.Len, op.Elem)
	}
	if !o.seq.Has(op.Elem, int(op.Len)) {
		return invalidOp(ErrNotFound, "text %v has no characters %v+%d", o.id, op.Elem, op.Len)
	}
	runs, err := o.seq.SetVisible(op.Elem, int(op.Len), false)
	if err != nil {
		return invalidOp(seqError(err), "%v", err)
	}
	if len(runs) == 0 {
		return nil
	}
	for _, r := range runs {
		a.push(undoRec{kind: undoSeqVisible, o: o, id: r.Start, n: r.Len, visible: true})
	}
	if a.patches != nil {
		a.removePatches(o, runs)
	}
	return nil
}

// removePatches reports runs of o's characters removed.
// splicePatch reports text inserted at index of the text o, if it is shown.
func (a *applier) splicePatch(o *object, index int, text string) {
	if base, ok := a.d.pathOf(o); ok {
		a.patch(Patch{Action: PatchSplice, Path: base, Index: index, Text: text})
	}
}

func (a *applier) removePatches(o *object, runs []seq.Run) {
	if base, ok := a.d.pathOf(o); ok {
		for _, r := range runs {
			a.patch(Patch{Action: PatchRemove, Path: base, Index: r.Index, Count: r.Len})
		}
	}
}

func seqError(err error) error {
	switch {
	case errors.Is(err, seq.ErrUnknownElement):
		return ErrNotFound
	case errors.Is(err, seq.ErrOutOfRange):
		return ErrOutOfRange
	}
	return nil
}

// pathOf returns the path of a container, or false if it is not shown
// (it, or a container above it, lost a conflict or was deleted).
func (d *Doc) pathOf(o *object) (Path, bool) {
	depth := 0
	for p := o; p.parent != nil; p = p.parent {
		depth++
	}
	path := make(Path, depth)
	for o.parent != nil {
		p := o.parent
		depth--
		if p.kind == KindMap {
			w, ok := p.fields[o.key].winner()
			if !ok || w.op != o.id {
				return nil, false
			}
			path[depth] = Key(o.key)
		} else {
			w, ok := p.elems[o.elem].winner()
			if !ok || w.op != o.id {
				return nil, false
			}
			idx, vis, _ := p.seq.Index(o.elem)
			if !vis {
				return nil, false
			}
			path[depth] = Index(idx)
		}
		o = p
	}
	return path, true
}

// applyChange applies a remote change whose dependencies are all present.
func (d *Doc) applyChange(c *Change, patches *[]Patch) error {
	if err := d.checkLamport(c); err != nil {
		return err
	}
	mark := 0
	if patches != nil {
		mark = len(*patches)
	}
	a := &d.apply
	a.time, a.patches = c.Time, patches
	defer a.forget()
	id := causal.OpID{Counter: c.StartOp, Actor: c.Actor}
	for i := range c.Ops {
		if err := a.apply(id, &c.Ops[i]); err != nil {
			a.rollback()
			if patches != nil {
				*patches = (*patches)[:mark]
			}
			return wrapOpError(c, i, err)
		}
		id.Counter += c.Ops[i].Width()
	}
	d.record(c, id.Counter-1)
	return nil
}

func wrapOpError(c *Change, i int, err error) error {
	ce := &ChangeError{Change: c.ID(), Op: i, Reason: err.Error()}
	var oe *opError
	if errors.As(err, &oe) {
		ce.Err = oe.err
	}
	return ce
}

// checkHeader refuses changes whose header cannot be right, before they are
// queued or applied.
func checkHeader(c *Change) error {
	bad := func(reason string) error { return &ChangeError{Change: c.ID(), Op: -1, Reason: reason} }
	switch {
	case c.Actor.IsZero():
		return bad("zero actor")
	case c.Seq == 0:
		return bad("sequence number 0")
	case c.StartOp == 0:
		return bad("start op 0")
	}
	var width uint64
	for i := range c.Ops {
		w := c.Ops[i].Width()
		if w == 0 && c.Ops[i].Action == ActInsertText {
			return &ChangeError{Change: c.ID(), Op: i, Reason: "empty text insert", Err: ErrBadValue}
		}
		width += w
		if width > 1<<40 {
			return bad("too many op counters")
		}
	}
	if c.StartOp > 1<<62 {
		return bad("op counter out of range")
	}
	for i, dep := range c.Deps {
		if dep.Seq == 0 || dep.Actor.IsZero() {
			return bad("dependency " + dep.String() + " is not a change")
		}
		if i > 0 && c.Deps[i-1].Compare(dep) >= 0 {
			return bad("dependencies not sorted or repeated")
		}
		if dep.Actor == c.Actor && dep.Seq >= c.Seq {
			return bad("depends on its own later change " + dep.String())
		}
	}
	return nil
}

// checkLamport refuses a change whose ops do not come after every op of the
// changes it depends on.
func (d *Doc) checkLamport(c *Change) error {
	// AllDeps, without the slice it makes: this runs for every change
	// applied, and opening a long history applies hundreds of thousands.
	if c.Seq > 1 {
		if err := d.startsAfter(c, causal.ChangeID{Actor: c.Actor, Seq: c.Seq - 1}); err != nil {
			return err
		}
	}
	for _, dep := range c.Deps {
		if err := d.startsAfter(c, dep); err != nil {
			return err
		}
	}
	return nil
}

// startsAfter checks that c's ops come after those of its dependency dep.
func (d *Doc) startsAfter(c *Change, dep causal.ChangeID) error {
	if maxOp, ok := d.history.MaxOp(dep); ok && maxOp >= c.StartOp {
		return &ChangeError{Change: c.ID(), Op: -1,
			Reason: "start op " + itoa(c.StartOp) + " is not after dependency " + dep.String() + "'s ops"}
	}
	return nil
}

func itoa(n uint64) string { return string(appendUint(nil, n)) }

func appendUint(b []byte, n uint64) []byte {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, buf[i:]...)
}

// missingDep returns a dependency of c that has not been applied.
func (d *Doc) missingDep(c *Change) (causal.ChangeID, bool) {
	applied := d.applied()
	if applied[c.Actor] < c.Seq-1 {
		return causal.ChangeID{Actor: c.Actor, Seq: c.Seq - 1}, true
	}
	for _, dep := range c.Deps {
		if !applied.Includes(dep) {
			return dep, true
		}
	}
	return causal.ChangeID{}, false
}

// Apply applies remote changes, in any order and grouping, any number of
// times. A change whose dependencies have not arrived is held until they
// do; a change already applied is ignored. Each change is applied whole or
// not at all: an invalid change is refused with a *ChangeError (wrapping
// ErrInvalidChange) and leaves the document as it was. Apply goes on with the
// other changes and returns the errors joined, with the patches of every
// change that was applied.
func (d *Doc) Apply(changes ...*Change) ([]Patch, error) {
	if d.inTxn {
		return nil, ErrTxnDone
	}
	var patches []Patch
	sink := &patches
	if d.noPatches {
		sink = nil
	}
	var errs []error
	for _, c := range changes {
		if c == nil {
			continue
		}
		if err := checkHeader(c); err != nil {
			errs = append(errs, err)
			continue
		}
		id := c.ID()
		if d.applied().Includes(id) {
			continue
		}
		if _, held := d.pending[id]; held {
			continue
		}
		if missing, ok := d.missingDep(c); ok {
			d.hold(c, missing)
			continue
		}
		errs = append(errs, d.applyReady(c, sink)...)
	}
	return patches, errors.Join(errs...)
}

func (d *Doc) hold(c *Change, missing causal.ChangeID) {
	d.pending[c.ID()] = c
	d.waitingOn[missing] = append(d.waitingOn[missing], c.ID())
}

// applyReady applies c and then every held change it makes ready.
func (d *Doc) applyReady(c *Change, patches *[]Patch) []error {
	var errs []error
	queue := []*Change{c}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if err := d.applyChange(c, patches); err != nil {
			errs = append(errs, err)
			continue
		}
		id := c.ID()
		waiters := d.waitingOn[id]
		delete(d.waitingOn, id)
		for _, w := range waiters {
			wc := d.pending[w]
			delete(d.pending, w)
			if missing, ok := d.missingDep(wc); ok {
				d.hold(wc, missing)
			} else {
				queue = append(queue, wc)
			}
		}
	}
	return errs
}

// Pending returns the held changes: received, but waiting for changes they
// depend on. Sorted by ChangeID.
func (d *Doc) Pending() []causal.ChangeID {
	out := make([]causal.ChangeID, 0, len(d.pending))
	for id := range d.pending {
		out = append(out, id)
	}
	slices.SortFunc(out, causal.ChangeID.Compare)
	return out
}

// Held reports whether the change with id is held: received, but waiting
// for changes it depends on.
func (d *Doc) Held(id causal.ChangeID) bool {
	_, ok := d.pending[id]
	return ok
}

// Forget drops the held changes among ids, as if they had never arrived,
// and returns how many it dropped; applied changes are not touched. A
// server uses it to let go of what a peer that has gone sent out of
// order: held changes live in memory only, and the peer will send them
// again.
func (d *Doc) Forget(ids ...causal.ChangeID) int {
	n := 0
	for _, id := range ids {
		if _, ok := d.pending[id]; ok {
			delete(d.pending, id)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	// Every change listed as waiting is held; drop the forgotten ones.
	for dep, ws := range d.waitingOn {
		ws = slices.DeleteFunc(ws, func(w causal.ChangeID) bool { _, ok := d.pending[w]; return !ok })
		if len(ws) == 0 {
			delete(d.waitingOn, dep)
		} else {
			d.waitingOn[dep] = ws
		}
	}
	return n
}

// Missing returns the changes that held changes are waiting for.
func (d *Doc) Missing() []causal.ChangeID {
	out := make([]causal.ChangeID, 0, len(d.waitingOn))
	for id := range d.waitingOn {
		out = append(out, id)
	}
	slices.SortFunc(out, causal.ChangeID.Compare)
	return out
}
