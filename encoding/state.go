package encoding

import (
	"sort"

	"github.com/converge-sync/converge/crdt"
)

// State is a document's current state: what a reader sees, without the
// history that produced it. A document stores it so that an app can show
// the text and the values right after load, before (or without) decoding
// the history.
type State struct {
	Root *Node // always a map
}

// Node is one visible value.
type Node struct {
	Kind  crdt.Kind
	Obj   crdt.ObjID // map, list, text: the container's ID (zero for the root)
	Value crdt.Value // scalars and counters
	Keys  []string   // map: the visible keys, sorted by their bytes
	Items []*Node    // map: the value at Keys[i]; list: the elements in order
	Text  string     // text: the visible characters
}

// Get returns the value at key of a map node.
func (n *Node) Get(key string) (*Node, bool) {
	i := sort.SearchStrings(n.Keys, key)
	if i < len(n.Keys) && n.Keys[i] == key {
		return n.Items[i], true
	}
	return nil, false
}

// NewState returns a state whose root is an empty map.
func NewState() *State { return &State{Root: &Node{Kind: crdt.KindMap}} }

// Decoder limit: containers nested deeper than this are refused, so that a
// hostile input cannot exhaust the stack.
const maxDepth = 1000

// The state section is the tree written depth first. Each node is its kind
// byte and then: for a map, the container's ObjID, the entry count and each
// entry as key and node, keys strictly ascending; for a list, the ObjID, the
// count and the nodes; for a text, the ObjID and the text as a string; for a
// scalar or counter, the payload as in the row form of values. An ObjID is
// 0 for the zero ID, else actor index + 1 and the counter.

func (s *actorSet) addNode(n *Node) {
	if n == nil {
		return
	}
	s.addID(n.Obj)
	for _, it := range n.Items {
		s.addNode(it)
	}
}

func appendState(b []byte, t *actorTable, st *State) []byte {
	return appendNode(b, t, st.Root)
}

func appendObj(b []byte, t *actorTable, n *Node) []byte {
	b = appendUvarint(b, t.ref(n.Obj))
	if !n.Obj.IsZero() {
		b = appendUvarint(b, n.Obj.Counter)
	}
	return b
}

func appendNode(b []byte, t *actorTable, n *Node) []byte {
	switch n.Kind {
	case crdt.KindMap:
		b = appendObj(append(b, byte(n.Kind)), t, n)
		b = appendUvarint(b, uint64(len(n.Keys)))
		for i, k := range n.Keys {
			b = appendString(b, k)
			b = appendNode(b, t, n.Items[i])
		}
	case crdt.KindList:
		b = appendObj(append(b, byte(n.Kind)), t, n)
		b = appendUvarint(b, uint64(len(n.Items)))
		for _, it := range n.Items {
			b = appendNode(b, t, it)
		}
	case crdt.KindText:
		b = appendObj(append(b, byte(n.Kind)), t, n)
		b = appendString(b, n.Text)
	default:
		b = appendValue(b, n.Value)
	}
	return b
}

// decodeState reads a state section. In version 2 the bytes after the root
// are the deleted characters of the chunk's history (text mode 1), returned
// as tail; version 1 has nothing after the root.
func decodeState(body []byte, actors *actorTable, v byte) (st *State, tail []byte, err error) {
	r := newReader(body, "state")
	root, err := readNode(r, actors, 0)
	if err != nil {
		return nil, nil, err
	}
	if root.Kind != crdt.KindMap {
		return nil, nil, formatErr(ErrMalformed, "state", "", 0, "root is a %v, not a map", root.Kind)
	}
	if v < 2 && !r.done() {
		return nil, nil, r.fail(ErrMalformed, "%d bytes after the root", r.rest())
	}
	return &State{Root: root}, body[r.off:], nil
}

func readNode(r *reader, t *actorTable, depth int) (*Node, error) {
	if depth > maxDepth {
		return nil, r.fail(ErrMalformed, "nesting deeper than %d", maxDepth)
	}
	k, err := r.byte()
	if err != nil {
		return nil, err
	}
	n := &Node{Kind: crdt.Kind(k)}
	if !n.Kind.IsContainer() {
		if n.Value, err = readValuePayload(r, n.Kind); err != nil {
			return nil, err
		}
		return n, nil
	}
	ref, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	if ref > 0 {
		if ref > uint64(len(t.ids)) {
			return nil, r.fail(ErrMalformed, "actor index %d beyond table of %d", ref-1, len(t.ids))
		}
		n.Obj.Actor = t.ids[ref-1]
		if n.Obj.Counter, err = r.uvarint(); err != nil {
			return nil, err
		}
	}
	switch n.Kind {
	case crdt.KindText:
		n.Text, err = r.string()
		return n, err
	case crdt.KindList:
		cnt, err := r.count(1)
		if err != nil {
			return nil, err
		}
		if cnt > 0 {
			n.Items = make([]*Node, cnt)
		}
		for i := range n.Items {
			if n.Items[i], err = readNode(r, t, depth+1); err != nil {
				return nil, err
			}
		}
		return n, nil
	}
	cnt, err := r.count(2)
	if err != nil {
		return nil, err
	}
	if cnt > 0 {
		n.Keys, n.Items = make([]string, cnt), make([]*Node, cnt)
	}
	for i := range n.Keys {
		if n.Keys[i], err = r.string(); err != nil {
			return nil, err
		}
		if i > 0 && n.Keys[i] <= n.Keys[i-1] {
			return nil, r.fail(ErrMalformed, "map keys out of order: %q after %q", n.Keys[i], n.Keys[i-1])
		}
		if n.Items[i], err = readNode(r, t, depth+1); err != nil {
			return nil, err
		}
	}
	return n, nil
}
