package encoding

import (
	"slices"
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/crdt/seq"
)

// Working out the final order of a text from its history, to build its
// sequence in one pass (seq.Fast.Append) instead of integrating every
// insert by its origins (LoadDoc).
//
// An insert made with nothing concurrent to it goes directly after its
// left origin L, before whatever was after L then: its right origin R.
// Picture every character as a child of its left origin (the start of the
// text for a zero one): if every insert of a history went in that way,
// the text in the end is this tree walked depth first, each character
// followed by its children newest first (the newest was put directly
// after it, pushing the older ones right), each followed by its own
// subtree.
//
// Whether every insert did go in that way is checked on the same walk: an
// insert x went directly between L and R if and only if, in the order the
// walk gives, what lies between L and R is x and things inserted after x.
// Between L and x there are only L's newer children and their subtrees,
// all newer than x; so the condition is that R is the first character the
// walk reaches after x's subtree (or the end, for a zero R). The walk
// then is, by induction over the history, the order integration gives:
// applying the inserts one after another in history order puts each one
// where it is in the walk. If any insert fails the check (an insert
// concurrent with another, as merged histories have; a history this
// program did not write) the text is not built this way: the loader
// replays the history instead.
//
// A run of typing (an insert whose first character is typed right after
// the last character of the insert just before it, by the same actor,
// with the same right origin) makes one piece: the continuation is the
// oldest child of the character before it, so the walk goes on along the
// piece after that character's other children.

// textOrder collects the text ops of a history, in the order they are
// applied, and builds the sequence of each text they touch.
type textOrder struct {
	actors  []causal.ActorID
	actorIx map[causal.ActorID]int32
	lastA   causal.ActorID
	lastAi  int32

	texts   map[crdt.ObjID]*textTree
	created map[crdt.ObjID]bool // the texts made so far
	objs    []crdt.ObjID        // in order of first mention, for a deterministic build
	lastObj crdt.ObjID
	last    *textTree
	// The text and piece of the insert applied last (of any text):
	// only an insert that comes right after it may continue its piece.
	prevTree  *textTree
	prevPiece int32

	failed bool
	placed bool // the loader built the texts this way
}

// textTree is one text's characters as pieces, with their parents.
type textTree struct {
	pieces  []textPieceNode
	byActor [][]int32 // each actor's pieces, ascending by counter, by actor index
	text    []byte    // every character, piece after piece
	deleted []uint64  // bit per character (piece.charStart + k)
	nChars  uint64
}

// textPieceNode is a piece: n characters by actor, counters ctr…ctr+n-1,
// each after the one before, the first after character parentK of piece
// parent (-1: the start of the text), all with right origin
// (ractor, rctr) (rctr 0: the end).
type textPieceNode struct {
	ctr       uint64
	rctr      uint64
	charStart uint64
	textStart uint64
	nBytes    uint64
	n         uint32
	parentK   uint32
	parent    int32
	actor     int32
	ractor    int32
	ascii     bool
}

func newTextOrder() *textOrder {
	return &textOrder{actorIx: map[causal.ActorID]int32{}, texts: map[crdt.ObjID]*textTree{}, created: map[crdt.ObjID]bool{}, lastAi: -1, prevPiece: -1}
}

func (t *textOrder) actor(a causal.ActorID) int32 {
	if t.lastAi >= 0 && a == t.lastA {
		return t.lastAi
	}
	i, ok := t.actorIx[a]
	if !ok {
		i = int32(len(t.actors))
		t.actors = append(t.actors, a)
		t.actorIx[a] = i
	}
	t.lastA, t.lastAi = a, i
	return i
}

func (t *textOrder) tree(obj crdt.ObjID, create bool) *textTree {
	if t.last != nil && obj == t.lastObj {
		return t.last
	}
	tr, ok := t.texts[obj]
	if !ok {
		if !create || !t.created[obj] {
			return nil // ops on a text not made yet: Apply refuses them
		}
		tr = &textTree{}
		t.texts[obj] = tr
		t.objs = append(t.objs, obj)
	}
	t.lastObj, t.last = obj, tr
	return tr
}

// change takes the text ops of c, the next change applied.
func (t *textOrder) change(c *crdt.Change) {
	if t.failed {
		return
	}
	own := c.StartOp
	for i := range c.Ops {
		op := &c.Ops[i]
		switch op.Action {
		case crdt.ActInsertText:
			t.insert(op, causal.OpID{Counter: own, Actor: c.Actor})
		case crdt.ActDeleteText:
			t.delete(op, own)
		case crdt.ActPut, crdt.ActInsert:
			if op.Value.Kind() == crdt.KindText {
				t.created[causal.OpID{Counter: own, Actor: c.Actor}] = true
			}
		}
		own += op.Width()
		if t.failed {
			return
		}
	}
}

// find returns the piece of tr holding character (a, ctr) and its offset.
func (tr *textTree) find(a int32, ctr uint64) (int32, uint32, bool) {
	if int(a) >= len(tr.byActor) {
		return 0, 0, false
	}
	ps := tr.byActor[a]
	if n := len(ps); n > 0 {
		if p := &tr.pieces[ps[n-1]]; ctr >= p.ctr && ctr-p.ctr < uint64(p.n) {
			return ps[n-1], uint32(ctr - p.ctr), true
		}
	}
	i, _ := slices.BinarySearchFunc(ps, ctr, func(pi int32, c uint64) int {
		switch p := &tr.pieces[pi]; {
		case c < p.ctr:
			return 1
		case c-p.ctr >= uint64(p.n):
			return -1
		}
		return 0
	})
	if i == len(ps) {
		return 0, 0, false
	}
	p := &tr.pieces[ps[i]]
	if ctr < p.ctr || ctr-p.ctr >= uint64(p.n) {
		return 0, 0, false
	}
	return ps[i], uint32(ctr - p.ctr), true
}

func (t *textOrder) insert(op *crdt.Op, id causal.OpID) {
	n := utf8.RuneCountInString(op.Text)
	if n == 0 || !utf8.ValidString(op.Text) || uint64(n) >= 1<<31 ||
		op.Left.Counter >= id.Counter || op.Right.Counter >= id.Counter ||
		id.Counter+uint64(n) <= id.Counter {
		t.failed = true // Apply refuses it: let the replay say why
		return
	}
	tr := t.tree(op.Obj, true)
	if tr == nil {
		t.failed = true
		return
	}
	a := t.actor(id.Actor)
	ra := int32(-1)
	if !op.Right.IsZero() {
		ra = t.actor(op.Right.Actor)
	}
	if t.prevTree == tr && t.prevPiece >= 0 {
		p := &tr.pieces[t.prevPiece]
		if p.actor == a && id.Counter == p.ctr+uint64(p.n) && op.Left.Actor == id.Actor &&
			op.Left.Counter == id.Counter-1 && p.ractor == ra && p.rctr == op.Right.Counter &&
			uint64(p.n)+uint64(n) < 1<<31 {
			// Typing on.
			p.n += uint32(n)
			p.nBytes += uint64(len(op.Text))
			p.ascii = p.ascii && len(op.Text) == n
			tr.text = append(tr.text, op.Text...)
			tr.nChars += uint64(n)
			return
		}
	}
	node := textPieceNode{ctr: id.Counter, rctr: op.Right.Counter, charStart: tr.nChars, textStart: uint64(len(tr.text)),
		nBytes: uint64(len(op.Text)), n: uint32(n), parent: -1, actor: a, ractor: ra, ascii: len(op.Text) == n}
	if !op.Left.IsZero() {
		la, ok := t.actorIx[op.Left.Actor]
		var pi int32
		var k uint32
		if ok {
			pi, k, ok = tr.find(la, op.Left.Counter)
		}
		if !ok {
			t.failed = true // a left origin not in this text
			return
		}
		node.parent, node.parentK = pi, k
	}
	for int(a) >= len(tr.byActor) {
		tr.byActor = append(tr.byActor, nil)
	}
	ps := tr.byActor[a]
	if len(ps) > 0 {
		if p := &tr.pieces[ps[len(ps)-1]]; id.Counter < p.ctr+uint64(p.n) {
			t.failed = true // an actor's counters going back
			return
		}
	}
	pi := int32(len(tr.pieces))
	if pi == 1<<31-1 {
		t.failed = true
		return
	}
	tr.byActor[a] = append(ps, pi)
	tr.pieces = append(tr.pieces, node)
	tr.text = append(tr.text, op.Text...)
	tr.nChars += uint64(n)
	t.prevTree, t.prevPiece = tr, pi
}

func (t *textOrder) delete(op *crdt.Op, own uint64) {
	tr := t.tree(op.Obj, false)
	if tr == nil || op.Len == 0 || op.Len > 1<<31 || op.Elem.IsZero() || op.Elem.Counter >= own {
		t.failed = true
		return
	}
	a, ok := t.actorIx[op.Elem.Actor]
	if !ok {
		t.failed = true
		return
	}
	if need := (tr.nChars + 63) / 64; uint64(len(tr.deleted)) < need {
		tr.deleted = append(tr.deleted, make([]uint64, need-uint64(len(tr.deleted)))...)
	}
	ctr, left := op.Elem.Counter, op.Len
	for left > 0 {
		pi, k, ok := tr.find(a, ctr)
		if !ok {
			t.failed = true // not every character is in this text
			return
		}
		p := &tr.pieces[pi]
		m := min(left, uint64(p.n-k))
		setBits(tr.deleted, p.charStart+uint64(k), m)
		ctr += m
		left -= m
	}
}

func (tr *textTree) isDeleted(c uint64) bool {
	return c/64 < uint64(len(tr.deleted)) && bitAt(tr.deleted, c)
}

// build returns the sequence of every text, or false if a text's history
// is not one the walk reproduces (see above).
func (t *textOrder) build() (map[crdt.ObjID]*seq.Fast, bool) {
	if t.failed {
		return nil, false
	}
	out := make(map[crdt.ObjID]*seq.Fast, len(t.objs))
	for _, obj := range t.objs {
		f, ok := t.texts[obj].build(t.actors)
		if !ok {
			return nil, false
		}
		out[obj] = f
	}
	return out, true
}

// walkFrame is a piece being walked: the next character to emit, its
// byte in the piece's text, and the next of its children.
type walkFrame struct {
	p    int32
	k    uint32
	b    uint64
	kids int32 // position in kidList
}

func (tr *textTree) build(actors []causal.ActorID) (*seq.Fast, bool) {
	np := len(tr.pieces)
	// The children of every piece (the start of the text is piece np),
	// grouped by parent, by character ascending, newest first.
	start := make([]int32, np+2)
	for i := range tr.pieces {
		p := tr.pieces[i].parent
		if p < 0 {
			p = int32(np)
		}
		start[p+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	kids := make([]int32, np)
	fill := slices.Clone(start[:np+1])
	for i := np - 1; i >= 0; i-- {
		p := tr.pieces[i].parent
		if p < 0 {
			p = int32(np)
		}
		kids[fill[p]] = int32(i)
		fill[p]++
	}
	for p := 0; p < np; p++ {
		seg := kids[start[p]:start[p+1]]
		if len(seg) > 1 && !slices.IsSortedFunc(seg, tr.byParentK) {
			slices.SortStableFunc(seg, tr.byParentK)
		}
	}

	f := seq.NewFast()
	var waiting []int32 // pieces whose right origin must be the next character
	check := func(a int32, ctr uint64) bool {
		for _, w := range waiting {
			if p := &tr.pieces[w]; p.rctr != ctr || (ctr != 0 && p.ractor != a) {
				return false
			}
		}
		waiting = waiting[:0]
		return true
	}
	id := func(a int32, ctr uint64) causal.OpID {
		if ctr == 0 {
			return causal.OpID{}
		}
		return causal.OpID{Counter: ctr, Actor: actors[a]}
	}
	// emit appends characters [fr.k, to) of fr's piece.
	emit := func(fr *walkFrame, to uint32) bool {
		p := &tr.pieces[fr.p]
		if fr.k >= to {
			return true
		}
		if !check(p.actor, p.ctr+uint64(fr.k)) {
			return false
		}
		right := id(p.ractor, p.rctr)
		for fr.k < to {
			c := p.charStart + uint64(fr.k)
			del := tr.isDeleted(c)
			e := fr.k + 1
			for e < to && tr.isDeleted(p.charStart+uint64(e)) == del {
				e++
			}
			nb := uint64(e - fr.k)
			if !p.ascii {
				nb = 0
				s := tr.text[p.textStart+fr.b : p.textStart+p.nBytes]
				for range e - fr.k {
					_, w := utf8.DecodeRune(s[nb:])
					nb += uint64(w)
				}
			}
			var left causal.OpID
			switch {
			case fr.k > 0:
				left = id(p.actor, p.ctr+uint64(fr.k)-1)
			case p.parent >= 0:
				q := &tr.pieces[p.parent]
				left = id(q.actor, q.ctr+uint64(p.parentK))
			}
			text := string(tr.text[p.textStart+fr.b : p.textStart+fr.b+nb])
			if err := f.Append(id(p.actor, p.ctr+uint64(fr.k)), int(e-fr.k), left, right, text, !del); err != nil {
				return false
			}
			fr.k, fr.b = e, fr.b+nb
		}
		return true
	}
	stack := []walkFrame{{p: int32(np), kids: start[np]}}
	for len(stack) > 0 {
		fr := &stack[len(stack)-1]
		end := start[fr.p+1]
		if fr.p == int32(np) {
			if fr.kids < end {
				kid := kids[fr.kids]
				fr.kids++
				stack = append(stack, walkFrame{p: kid, kids: start[kid]})
				continue
			}
			stack = stack[:len(stack)-1]
			continue
		}
		if fr.kids < end {
			kid := kids[fr.kids]
			at := tr.pieces[kid].parentK
			if !emit(fr, at+1) {
				return nil, false
			}
			fr.kids++
			stack = append(stack, walkFrame{p: kid, kids: start[kid]})
			continue
		}
		if !emit(fr, tr.pieces[fr.p].n) {
			return nil, false
		}
		waiting = append(waiting, fr.p)
		stack = stack[:len(stack)-1]
	}
	if !check(-1, 0) {
		return nil, false
	}
	return f, true
}

func (tr *textTree) byParentK(a, b int32) int {
	ka, kb := tr.pieces[a].parentK, tr.pieces[b].parentK
	switch {
	case ka < kb:
		return -1
	case ka > kb:
		return 1
	}
	return 0
}
