package crdt

// PatchAction is the kind of change a Patch describes.
type PatchAction uint8

const (
	// PatchPut: the value at Path is now Value (a map key set, a list
	// element overwritten, or the shown value of a conflict changed).
	PatchPut PatchAction = iota + 1
	// PatchDelete: the map key at Path is gone.
	PatchDelete
	// PatchInsert: Values were inserted into the list at Path, from Index.
	PatchInsert
	// PatchRemove: Count elements were removed from the list or text at
	// Path, from Index.
	PatchRemove
	// PatchSplice: Text was inserted into the text at Path, at Index.
	PatchSplice
	// PatchIncrement: the counter at Path changed by Delta.
	PatchIncrement
	// PatchConflict: the value at Path now has concurrent values (Conflict
	// true: a conflict appeared) or no longer has them (false: resolved).
	PatchConflict
)

var patchNames = [...]string{"?", "put", "delete", "insert", "remove", "splice", "increment", "conflict"}

func (a PatchAction) String() string {
	if int(a) < len(patchNames) {
		return patchNames[a]
	}
	return "patch?"
}

// Patch describes one visible effect of a change, in the order the effects
// happened, so that a UI holding the previous state can update itself
// without re-reading the document. Only values reachable from the root are
// patched; edits inside a container hidden by a conflict are not.
type Patch struct {
	Action PatchAction
	// Path is the value's path for put, delete, increment and conflict, and
	// the list's or text's path for insert, remove and splice.
	Path   Path
	Index  int
	Count  int
	Value  Value   // put
	Values []Value // insert
	Text   string  // splice
	Delta  int64   // increment
	// Conflict, for put and conflict patches: whether the value now has
	// concurrent values that were not chosen (see Doc.Conflicts).
	Conflict bool
}
