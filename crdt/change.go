package crdt

import (
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
)

// Action is what an operation does. The numbers are part of the binary
// format and never change.
type Action uint8

const (
	// ActPut writes Value to a map key (Key) or a list element (Elem),
	// replacing the values named in Pred. A container Value creates an empty
	// container whose ObjID is the op's ID.
	ActPut Action = 1
	// ActDelete removes the values named in Pred from a map key or list
	// element. Values written concurrently (not in Pred) survive.
	ActDelete Action = 2
	// ActIncrement adds Value (an int) to the counter whose ID is Pred[0], at
	// a map key or list element.
	ActIncrement Action = 3
	// ActInsert inserts one list element holding Value between the elements
	// Left and Right (zero: the start / the end). The element's ID, and the ID
	// of its first value, is the op's ID.
	ActInsert Action = 4
	// ActInsertText inserts the characters of Text into a text, between Left
	// and Right. Character k gets the op's ID plus k, so the op uses
	// RuneCount(Text) counters.
	ActInsertText Action = 5
	// ActDeleteText deletes Len characters of a text, those whose IDs are
	// Elem, Elem+1, …, Elem+Len-1. Deleting a deleted character does nothing.
	ActDeleteText Action = 6
)

var actionNames = [...]string{"?", "put", "delete", "increment", "insert", "insertText", "deleteText"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action?"
}

// Op is one operation of a change. Which fields are used depends on Action
// (see the Act constants); the others are zero.
type Op struct {
	Action Action
	Obj    ObjID  // the container the op acts on
	Key    string // map key, for put/delete/increment in a map
	// Elem is the list element for put/delete/increment in a list, and the
	// first deleted character for deleteText.
	Elem        causal.OpID
	Left, Right causal.OpID   // insert origins: the neighbours at insert time
	Value       Value         // put, insert, increment (the delta)
	Text        string        // insertText
	Len         uint64        // deleteText
	Pred        []causal.OpID // put, delete, increment: the values this op saw at its target
}

// Width is the number of op counters the op uses: the number of characters
// for insertText, 1 for every other action.
func (o *Op) Width() uint64 {
	if o.Action == ActInsertText {
		return uint64(utf8.RuneCountInString(o.Text))
	}
	return 1
}

// Change is one atomic transaction by one actor: the unit of history, sync
// and storage. A change is immutable once made.
type Change struct {
	Actor causal.ActorID
	// Seq numbers the actor's changes 1, 2, 3, … with no gaps. A change
	// implicitly depends on its actor's previous change.
	Seq uint64
	// StartOp is the Lamport counter of the first op; each op uses Width()
	// counters after it. It is greater than every counter of every change this
	// one depends on.
	StartOp uint64
	// Deps are the change's other direct dependencies: the heads of the
	// document when it was made, except the actor's own previous change.
	// Sorted by ChangeID.
	Deps []causal.ChangeID
	// Time (Unix milliseconds) and Message are informational: shown in
	// history and conflicts, never used for merging.
	Time    int64
	Message string
	Ops     []Op
}

// ID returns the change's identity.
func (c *Change) ID() causal.ChangeID { return causal.ChangeID{Actor: c.Actor, Seq: c.Seq} }

// Width is the number of op counters the change uses.
func (c *Change) Width() uint64 {
	var n uint64
	for i := range c.Ops {
		n += c.Ops[i].Width()
	}
	return n
}

// MaxOp is the counter of the change's last op (StartOp-1 if it has none).
func (c *Change) MaxOp() uint64 { return c.StartOp + c.Width() - 1 }

// AllDeps returns every direct dependency, including the actor's previous
// change.
func (c *Change) AllDeps() []causal.ChangeID {
	if c.Seq <= 1 {
		return c.Deps
	}
	out := make([]causal.ChangeID, 0, len(c.Deps)+1)
	out = append(out, causal.ChangeID{Actor: c.Actor, Seq: c.Seq - 1})
	return append(out, c.Deps...)
}
