package crdt

import (
	"fmt"

	"github.com/converge-sync/converge/crdt/seq"
)

// Loading a trusted history with its texts built apart. Replaying a long
// history applies every keystroke through the remote-merge path: each
// insert is integrated by its origins, each delete found by ID. A loader
// that knows where every character of a text ends up (it has worked the
// final order out from the whole history, see encoding.LoadDoc) builds the
// text's sequence in one pass instead, and has the document apply only the
// rest of each change.

// LeaveOutTextOps makes Apply leave out the text ops (insertText and
// deleteText) of the changes it applies, on or off, while applying and
// recording everything else as usual. It is for a loader that builds the
// sequence of every text of the changes itself and installs it with
// SetTextSequence before the document is used: until then the document's
// texts lack those ops. Those ops are not checked either, and make no
// patches.
func (d *Doc) LeaveOutTextOps(on bool) { d.apply.noText = on }

// SetTextSequence makes s the sequence of the text obj, whose ops Apply
// left out (LeaveOutTextOps): s must hold exactly the elements those ops
// inserted, in the order integrating them would give, hidden where they
// deleted them. It fails if obj is not a text of the document, or a text
// whose sequence is not empty.
func (d *Doc) SetTextSequence(obj ObjID, s seq.Sequence) error {
	o, ok := d.lookup(obj)
	switch {
	case !ok:
		return fmt.Errorf("crdt: set sequence: no container %v: %w", obj, ErrNotFound)
	case o.kind != KindText:
		return fmt.Errorf("crdt: set sequence: %v is a %s: %w", obj, o.kind, ErrWrongKind)
	case hasElements(o.seq):
		return fmt.Errorf("crdt: set sequence: text %v is not empty", obj)
	}
	o.seq = s
	return nil
}

// hasElements reports whether s holds any element, visible or not: with
// none visible, the place of an insert at 0 has a left neighbour only if
// there are tombstones.
func hasElements(s seq.Sequence) bool {
	if s.Len() > 0 {
		return true
	}
	l, r, _ := s.Origins(0)
	return !l.IsZero() || !r.IsZero()
}
