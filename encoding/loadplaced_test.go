package encoding

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"pgregory.net/rapid"
)

// The differential test of LoadDoc's two ways: a document whose texts are
// built from their final order (textorder.go) must behave in every
// observable way as one loaded by replaying every change (loadReplay):
// the same state, saved bytes, changes, versions and heads, the same
// changes made by further local edits (whose origins come from the
// texts' sequences), and the same result of merging concurrent edits made
// by another replica.

// tester is what the helpers need of *testing.T and *rapid.T.
type tester interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

var (
	loadActor  = causal.ActorID{0xa1, 15: 1}
	otherActor = causal.ActorID{0xb2, 15: 2}
)

// loadBoth loads saved both ways and reports whether LoadDoc built the
// texts from their final order.
func loadBoth(tb tester, saved []byte, actor causal.ActorID) (fast, replay *crdt.Doc, placed bool) {
	tb.Helper()
	fast, placed, err := loadDoc(saved, actor)
	if err != nil {
		tb.Fatalf("LoadDoc: %v", err)
	}
	dec, err := DecodeDocument(saved)
	if err != nil {
		tb.Fatal(err)
	}
	if replay, err = loadReplay(dec, actor); err != nil {
		tb.Fatalf("replay: %v", err)
	}
	return fast, replay, placed
}

// sameDoc fails unless a and b agree on everything a caller can see.
func sameDoc(tb tester, what string, a, b *crdt.Doc) {
	tb.Helper()
	if sa, sb := StateOf(a), StateOf(b); !reflect.DeepEqual(sa, sb) {
		tb.Fatalf("%s: states differ: %s", what, firstDiff(dumpState(sa), dumpState(sb)))
	}
	if !reflect.DeepEqual(a.Version(), b.Version()) || !slices.Equal(a.Heads(), b.Heads()) || a.MaxOp() != b.MaxOp() {
		tb.Fatalf("%s: versions %v / %v, heads %v / %v, max ops %d / %d", what, a.Version(), b.Version(), a.Heads(), b.Heads(), a.MaxOp(), b.MaxOp())
	}
	if !slices.Equal(a.Pending(), b.Pending()) {
		tb.Fatalf("%s: pending %v / %v", what, a.Pending(), b.Pending())
	}
	for _, opt := range []Options{{}, {Compress: true}} {
		ba, ea := SaveDoc(a, opt)
		bb, eb := SaveDoc(b, opt)
		if ea != nil || eb != nil || !bytes.Equal(ba, bb) {
			tb.Fatalf("%s: saves differ (%d and %d bytes, errors %v, %v)", what, len(ba), len(bb), ea, eb)
		}
	}
	ca, cb := a.Changes(), b.Changes()
	if len(ca) != len(cb) {
		tb.Fatalf("%s: %d and %d changes", what, len(ca), len(cb))
	}
	for i := range ca {
		if !sameChange(ca[i], cb[i]) {
			tb.Fatalf("%s: change %d differs:\n%+v\n%+v", what, i, ca[i], cb[i])
		}
	}
	// Since a few versions of the history's prefixes (and none).
	for _, k := range []int{0, len(ca) / 3, len(ca) - 1, len(ca)} {
		if k < 0 {
			continue
		}
		v := causal.VersionVector{}
		for _, c := range ca[:k] {
			v[c.Actor] = max(v[c.Actor], c.Seq)
		}
		if sa, sb := a.ChangesSince(v), b.ChangesSince(v); !slices.EqualFunc(sa, sb, sameChange) {
			tb.Fatalf("%s: ChangesSince(%v): %d and %d changes, or different", what, v, len(sa), len(sb))
		}
	}
}

// sameChange is reflect.DeepEqual for changes, field by field: a tenth
// of the time on a long history.
func sameChange(a, b *crdt.Change) bool {
	if a.Actor != b.Actor || a.Seq != b.Seq || a.StartOp != b.StartOp || a.Time != b.Time ||
		a.Message != b.Message || !slices.Equal(a.Deps, b.Deps) || len(a.Ops) != len(b.Ops) {
		return false
	}
	for i := range a.Ops {
		x, y := &a.Ops[i], &b.Ops[i]
		if x.Action != y.Action || x.Obj != y.Obj || x.Key != y.Key || x.Elem != y.Elem || x.Left != y.Left ||
			x.Right != y.Right || x.Value != y.Value || x.Text != y.Text || x.Len != y.Len || !slices.Equal(x.Pred, y.Pred) {
			return false
		}
	}
	return true
}

func dumpState(st *State) string {
	var b bytes.Buffer
	var walk func(n *Node, depth int)
	walk = func(n *Node, depth int) {
		fmt.Fprintf(&b, "%*s%v %v %q %v\n", 2*depth, "", n.Kind, n.Obj, n.Text, n.Value)
		for i, it := range n.Items {
			if i < len(n.Keys) {
				fmt.Fprintf(&b, "%*s%s:\n", 2*depth+1, "", n.Keys[i])
			}
			walk(it, depth+1)
		}
	}
	walk(st.Root, 0)
	return b.String()
}

// firstDiff shows where a and b first differ, with some context.
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-40)
	return fmt.Sprintf("at byte %d:\n%q\n%q", i, a[from:min(len(a), i+40)], b[from:min(len(b), i+40)])
}

// editsOf lists the texts and lists of d that edits may touch.
func editsOf(d *crdt.Doc) (texts, lists []crdt.ObjID) {
	var walk func(n *Node)
	walk = func(n *Node) {
		switch n.Kind {
		case crdt.KindText:
			texts = append(texts, n.Obj)
		case crdt.KindList:
			lists = append(lists, n.Obj)
		}
		for _, it := range n.Items {
			walk(it)
		}
	}
	walk(StateOf(d).Root)
	return texts, lists
}

var editTexts = []string{"a", "b", "xyz", "é", "€€", "hello ", "\n", "ab€d"}

// edit makes n random local changes to d, the same ones for the same
// seed on documents that agree.
func edit(tb tester, d *crdt.Doc, seed uint64, n int) []*crdt.Change {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	var out []*crdt.Change
	texts, lists := editsOf(d) // edits make no containers
	for range n {
		c, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
			switch k := r.IntN(10); {
			case k < 7 && len(texts) > 0:
				obj := texts[r.IntN(len(texts))]
				l := d.Len(obj)
				pos := r.IntN(l + 1)
				del := 0
				if pos < l && r.IntN(3) == 0 {
					del = 1 + r.IntN(min(4, l-pos))
				}
				ins := ""
				if del == 0 || r.IntN(2) == 0 {
					ins = editTexts[r.IntN(len(editTexts))]
				}
				return tx.Splice(obj, pos, del, ins)
			case k < 9 && len(lists) > 0:
				obj := lists[r.IntN(len(lists))]
				l := d.Len(obj)
				if l > 0 && r.IntN(3) == 0 {
					return tx.Remove(obj, r.IntN(l), 1)
				}
				_, err := tx.Insert(obj, r.IntN(l+1), crdt.Int(int64(r.IntN(100))))
				return err
			default:
				_, err := tx.Put(crdt.Root, fmt.Sprintf("k%d", r.IntN(3)), crdt.Int(int64(r.IntN(100))))
				return err
			}
		})
		if err != nil {
			tb.Fatalf("edit: %v", err)
		}
		out = append(out, c)
	}
	return out
}

// checkLoads loads saved both ways and compares the two documents, then
// edits both the same way, merges into both what other replicas edited
// meanwhile, and compares again. The other replicas hold the same
// history, or only the first half or nine tenths of it: their edits are
// concurrent with the rest, so merging them integrates inserts by the
// origins of the loaded characters (a wrong one shows there).
func checkLoads(tb tester, saved []byte, seed uint64, nEdits int) (placed bool) {
	tb.Helper()
	fast, replay, placed := loadBoth(tb, saved, loadActor)
	sameDoc(tb, "loaded", fast, replay)
	cs := replay.Changes()
	var others []*crdt.Doc
	cuts := []int{len(cs), len(cs) / 2, len(cs) * 9 / 10}
	if o, err := LoadDoc(saved, otherActor); err != nil {
		tb.Fatal(err)
	} else {
		others = append(others, o)
	}
	for i, k := range cuts[1:] {
		// The saved order is causal: a prefix is a version.
		o := crdt.NewDoc(causal.ActorID{0xc0, 15: byte(i)})
		o.SetPatches(false)
		if _, err := o.Apply(cs[:k]...); err != nil {
			tb.Fatal(err)
		}
		others = append(others, o)
	}
	var remote []*crdt.Change
	for i, o := range others {
		remote = append(remote, edit(tb, o, seed^uint64(0x5eed+i), nEdits)...)
		remote = append(remote, collide(tb, o, cs[cuts[i]:], seed+uint64(i), nEdits)...)
	}
	cf := edit(tb, fast, seed, nEdits)
	cr := edit(tb, replay, seed, nEdits)
	if !slices.EqualFunc(cf, cr, sameChange) {
		for i := range cf {
			if !sameChange(cf[i], cr[i]) {
				tb.Fatalf("local edit %d differs:\n%+v\n%+v", i, cf[i], cr[i])
			}
		}
	}
	sameDoc(tb, "after local edits", fast, replay)
	for _, d := range []*crdt.Doc{fast, replay} {
		if _, err := d.Apply(remote...); err != nil {
			tb.Fatalf("merging: %v", err)
		}
	}
	sameDoc(tb, "after merging", fast, replay)
	// And the other way: a remote replica takes the local edits.
	if _, err := others[0].Apply(cf...); err != nil {
		tb.Fatal(err)
	}
	if _, err := others[0].Apply(remote...); err != nil {
		tb.Fatal(err)
	}
	if a, b := StateOf(others[0]), StateOf(fast); !reflect.DeepEqual(a, b) {
		tb.Fatalf("replicas did not converge: %s", firstDiff(dumpState(a), dumpState(b)))
	}
	return placed
}

// collide makes o, a replica of a prefix of a history, insert concurrently
// with inserts of later (the rest of the history) exactly where they
// went, between the same origins: merging these integrates them against
// the history's own characters, comparing their origins.
func collide(tb tester, o *crdt.Doc, later []*crdt.Change, seed uint64, n int) []*crdt.Change {
	tb.Helper()
	var ins []*crdt.Op
	for _, c := range later {
		for i := range c.Ops {
			if c.Ops[i].Action == crdt.ActInsertText {
				ins = append(ins, &c.Ops[i])
			}
		}
	}
	if len(ins) == 0 {
		return nil
	}
	r := rand.New(rand.NewPCG(seed, 11))
	// Below every other actor of the tests and above: where two inserts
	// share both origins, the actor decides, and a wrong right origin of
	// the history's shows on one side.
	actor := causal.ActorID{[]byte{0x01, 0xfe}[seed%2], 15: byte(seed)}
	var out []*crdt.Change
	for range n {
		y := ins[r.IntN(len(ins))]
		c := &crdt.Change{Actor: actor, Seq: uint64(len(out) + 1), StartOp: o.MaxOp() + 1, Deps: o.Heads(),
			Ops: []crdt.Op{{Action: crdt.ActInsertText, Obj: y.Obj, Left: y.Left, Right: y.Right, Text: editTexts[r.IntN(len(editTexts))]}}}
		c.Deps = slices.DeleteFunc(c.Deps, func(id causal.ChangeID) bool { return id.Actor == actor })
		if _, err := o.Apply(c); err != nil {
			continue // an origin o does not have yet
		}
		out = append(out, c)
	}
	return out
}

// TestLoadPlacedTraces checks the editing traces (sequential: their
// texts must be built from their final order).
func TestLoadPlacedTraces(t *testing.T) {
	for _, name := range []string{"automerge-paper.json.gz", "seph-blog1.json.gz", "friendsforever_flat.json.gz"} {
		t.Run(name, func(t *testing.T) {
			if testing.Short() && name != "friendsforever_flat.json.gz" {
				t.Skip("a long trace: the short tests (under the race detector) check the short one")
			}
			var cs []*crdt.Change
			var st *State
			if name == "automerge-paper.json.gz" {
				cs, st = paperHistory(t)
			} else {
				cs, st, _, _ = traceHistory(loadTrace(t, name))
			}
			saved, err := EncodeDocument(st, cs, Options{Compress: true})
			if err != nil {
				t.Fatal(err)
			}
			if !checkLoads(t, saved, uint64(len(cs)), 200) {
				t.Fatal("the texts were not built from their final order")
			}
		})
	}
}

// TestLoadPlacedBatches checks the fast way on histories read in batches
// (longer than onePassChanges), in text mode 1 and in text mode 0.
func TestLoadPlacedBatches(t *testing.T) {
	defer func(n int) { onePassChanges = n }(onePassChanges)
	onePassChanges = 0
	single := crdt.NewDoc(causal.ActorID{1}, crdt.WithHistory(NewHistory()))
	if _, _, err := single.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
		if _, err := tx.Put(crdt.Root, "text", crdt.NewText()); err != nil {
			return err
		}
		_, err := tx.Put(crdt.Root, "list", crdt.NewList())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	edit(t, single, 1, loadBatch+500)
	for _, c := range []struct {
		d      *crdt.Doc
		placed bool
	}{{single, true}, {editedText(t, loadBatch+500, 3), false}} {
		for _, opt := range []Options{{}, {Compress: true}} {
			saved, err := SaveDoc(c.d, opt)
			if err != nil {
				t.Fatal(err)
			}
			// Two writers' concurrent edits are replayed: LoadDoc tries
			// the fast way in batches only on a history without
			// concurrency.
			if placed := checkLoads(t, saved, 3, 100); placed != c.placed {
				t.Fatalf("texts built from their final order: %v, want %v", placed, c.placed)
			}
		}
	}
}

// TestLoadPlacedRandom checks random histories: several replicas edit
// texts (some made concurrently under one key), lists and maps, and merge
// in random orders; a replica's document is saved and loaded both ways.
// One replica alone edits half of the time: its histories have no
// concurrency, and the fast way must be taken for them.
func TestLoadPlacedRandom(t *testing.T) {
	defer func(n int) { onePassChanges = n }(onePassChanges)
	placedRuns := 0
	rapid.Check(t, func(t *rapid.T) {
		onePassChanges = rapid.SampledFrom([]int{1 << 18, 0, 5}).Draw(t, "onePass")
		n := rapid.IntRange(1, 4).Draw(t, "replicas")
		reps := make([]*crdt.Doc, n)
		for i := range reps {
			reps[i] = crdt.NewDoc(causal.ActorID{byte(0x10 * (i + 1)), 15: byte(i)}, crdt.WithHistory(NewHistory()))
		}
		var list crdt.ObjID
		_, _, err := reps[0].Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
			if _, err := tx.Put(crdt.Root, "text", crdt.NewText()); err != nil {
				return err
			}
			var err error
			list, err = tx.Put(crdt.Root, "list", crdt.NewList())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		sync := func(from, to *crdt.Doc) {
			if _, err := to.Apply(from.ChangesSince(to.Version())...); err != nil {
				t.Fatal(err)
			}
		}
		for i := 1; i < n; i++ {
			sync(reps[0], reps[i])
		}
		steps := rapid.IntRange(0, 40).Draw(t, "steps")
		for s := range steps {
			i := rapid.IntRange(0, n-1).Draw(t, "replica")
			switch rapid.IntRange(0, 9).Draw(t, "action") {
			case 0:
				j := rapid.IntRange(0, n-1).Draw(t, "to")
				sync(reps[i], reps[j])
			case 2:
				// A text as a list element.
				l := reps[i].Len(list)
				_, _, err := reps[i].Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
					_, err := tx.Insert(list, rapid.IntRange(0, l).Draw(t, "at"), crdt.NewText())
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			case 1:
				// A new text under a key others may write too.
				key := rapid.SampledFrom([]string{"text", "t2"}).Draw(t, "key")
				_, _, err := reps[i].Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
					_, err := tx.Put(crdt.Root, key, crdt.NewText())
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			default:
				edit(t, reps[i], uint64(s)<<8|uint64(i), rapid.IntRange(1, 6).Draw(t, "edits"))
			}
		}
		// Every replica's document, saved with its state (text mode 1,
		// read in two passes) and without (text mode 0: one pass, or
		// batches past onePassChanges).
		compress := rapid.Bool().Draw(t, "compress")
		for k, d := range reps {
			for _, st := range []*State{StateOf(d), nil} {
				saved, err := EncodeDocument(st, d.Changes(), Options{Compress: compress})
				if err != nil {
					t.Fatal(err)
				}
				placed := checkLoads(t, saved, uint64(steps*8+k), 8)
				if n == 1 && !placed {
					t.Fatal("a single writer's history was not built from its final order")
				}
				if placed {
					placedRuns++
				}
			}
			saved, err := SaveDoc(d, Options{Compress: compress})
			if err != nil {
				t.Fatal(err)
			}
			checkLoads(t, saved, uint64(steps*8+k), 8)
		}
	})
	t.Logf("%d histories loaded the fast way", placedRuns)
}
