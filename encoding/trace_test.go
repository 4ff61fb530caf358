package encoding

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// The editing traces live beside the project (see ../../shared/traces), or
// wherever CONVERGE_TRACES points.
func tracePath(name string) string {
	dir := os.Getenv("CONVERGE_TRACES")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "traces")
	}
	return filepath.Join(dir, name)
}

type seqTrace struct {
	EndContent string `json:"endContent"`
	Txns       []struct {
		Patches [][3]json.RawMessage `json:"patches"`
	} `json:"txns"`
}

func loadTrace(tb testing.TB, name string) *seqTrace {
	tb.Helper()
	f, err := os.Open(tracePath(name))
	if err != nil {
		tb.Skipf("trace %s not available (set CONVERGE_TRACES): %v", name, err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var t seqTrace
	if err := json.NewDecoder(z).Decode(&t); err != nil {
		tb.Fatalf("decoding %s: %v", name, err)
	}
	return &t
}

// elems is the text's element sequence, tombstones included, for one
// sequential author: enough to compute the origins and deleted IDs that
// crdt.Doc would put in the changes, at a fraction of the cost of a real
// sequence CRDT. Elements are kept in blocks so an edit touches one block.
type elems struct{ blocks []*block }

type block struct {
	ids  []uint64 // counters; the actor is the trace's only one
	vis  []bool
	chr  []rune
	nvis int
}

const blockMax = 512

// locate returns the block and offset of visible element i, or the end.
func (e *elems) locate(i int) (int, int) {
	for b, blk := range e.blocks {
		if i < blk.nvis {
			for k, v := range blk.vis {
				if v {
					if i == 0 {
						return b, k
					}
					i--
				}
			}
		}
		i -= blk.nvis
	}
	last := len(e.blocks) - 1
	if last < 0 {
		return 0, 0
	}
	return last, len(e.blocks[last].ids)
}

// before returns the element just before (b, k), or 0.
func (e *elems) before(b, k int) uint64 {
	for k == 0 {
		if b == 0 {
			return 0
		}
		b--
		k = len(e.blocks[b].ids)
	}
	return e.blocks[b].ids[k-1]
}

func (e *elems) at(b, k int) uint64 {
	for b < len(e.blocks) && k == len(e.blocks[b].ids) {
		b, k = b+1, 0
	}
	if b == len(e.blocks) {
		return 0
	}
	return e.blocks[b].ids[k]
}

func (e *elems) insert(b, k int, first uint64, text string) {
	if len(e.blocks) == 0 {
		e.blocks = append(e.blocks, &block{})
	}
	blk := e.blocks[b]
	chr := []rune(text)
	n := len(chr)
	ids := make([]uint64, n)
	vis := make([]bool, n)
	for j := range ids {
		ids[j], vis[j] = first+uint64(j), true
	}
	blk.ids = append(blk.ids[:k], append(ids, blk.ids[k:]...)...)
	blk.vis = append(blk.vis[:k], append(vis, blk.vis[k:]...)...)
	blk.chr = append(blk.chr[:k], append(chr, blk.chr[k:]...)...)
	blk.nvis += n
	if len(blk.ids) > blockMax {
		h := len(blk.ids) / 2
		nb := &block{ids: append([]uint64(nil), blk.ids[h:]...), vis: append([]bool(nil), blk.vis[h:]...), chr: append([]rune(nil), blk.chr[h:]...)}
		blk.ids, blk.vis, blk.chr = blk.ids[:h], blk.vis[:h], blk.chr[:h]
		for _, v := range nb.vis {
			if v {
				nb.nvis++
			}
		}
		blk.nvis -= nb.nvis
		e.blocks = append(e.blocks[:b+1], append([]*block{nb}, e.blocks[b+1:]...)...)
	}
}

// hide makes n visible elements from visible index i invisible and returns
// their counters in order.
func (e *elems) hide(i, n int) []uint64 {
	out := make([]uint64, 0, n)
	b, k := e.locate(i)
	for len(out) < n {
		blk := e.blocks[b]
		if k == len(blk.ids) {
			b, k = b+1, 0
			continue
		}
		if blk.vis[k] {
			blk.vis[k] = false
			blk.nvis--
			out = append(out, blk.ids[k])
		}
		k++
	}
	return out
}

var traceActor = causal.ActorID{0x70, 0x61, 0x70, 0x65, 0x72, 15: 1}

// traceHistory turns a sequential trace into changes, one per transaction,
// as a single author typing with crdt.Doc would make them, a second apart,
// after a first change that creates the text at root key "text".
// It also returns the text the changes produce, to check the helper.
func traceHistory(t *seqTrace) ([]*crdt.Change, *State, string, *elems) {
	const t0 = 1_700_000_000_000
	id := func(c uint64) causal.OpID {
		if c == 0 {
			return causal.OpID{}
		}
		return causal.OpID{Counter: c, Actor: traceActor}
	}
	text := id(1)
	cs := []*crdt.Change{{Actor: traceActor, Seq: 1, StartOp: 1, Time: t0,
		Ops: []crdt.Op{{Action: crdt.ActPut, Key: "text", Value: crdt.NewText()}}}}
	next := uint64(2)
	var e elems
	for _, tx := range t.Txns {
		c := &crdt.Change{Actor: traceActor, Seq: uint64(len(cs) + 1), StartOp: next, Time: t0 + int64(len(cs))*1000}
		for _, p := range tx.Patches {
			var pos, del int
			var ins string
			json.Unmarshal(p[0], &pos)
			json.Unmarshal(p[1], &del)
			json.Unmarshal(p[2], &ins)
			if del > 0 {
				gone := e.hide(pos, del)
				for s := 0; s < len(gone); {
					n := 1
					for s+n < len(gone) && gone[s+n] == gone[s]+uint64(n) {
						n++
					}
					c.Ops = append(c.Ops, crdt.Op{Action: crdt.ActDeleteText, Obj: text, Elem: id(gone[s]), Len: uint64(n)})
					next++
					s += n
				}
			}
			if ins != "" {
				b, k := e.locate(pos)
				op := crdt.Op{Action: crdt.ActInsertText, Obj: text, Left: id(e.before(b, k)), Right: id(e.at(b, k)), Text: ins}
				c.Ops = append(c.Ops, op)
				e.insert(b, k, next, ins)
				next += op.Width()
			}
		}
		cs = append(cs, c)
	}
	var final []rune
	for _, blk := range e.blocks {
		for k, v := range blk.vis {
			if v {
				final = append(final, blk.chr[k])
			}
		}
	}
	st := NewState()
	st.Root.Keys = []string{"text"}
	st.Root.Items = []*Node{{Kind: crdt.KindText, Obj: text, Text: t.EndContent}}
	return cs, st, string(final), &e
}

var paper struct {
	once    sync.Once
	changes []*crdt.Change
	state   *State
	text    string
	elems   *elems
}

func paperHistory(tb testing.TB) ([]*crdt.Change, *State) {
	t := loadTrace(tb, "automerge-paper.json.gz")
	paper.once.Do(func() {
		paper.changes, paper.state, paper.text, paper.elems = traceHistory(t)
	})
	return paper.changes, paper.state
}
