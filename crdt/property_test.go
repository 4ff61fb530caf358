package crdt

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt/seq"
	"pgregory.net/rapid"
)

// TestMain raises rapid's default number of cases: convergence is the
// property everything rests on, so CI runs at least 10,000 random histories.
// -rapid.checks on the command line still wins.
// checksGiven is whether -rapid.checks was on the command line.
var checksGiven bool

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	checksGiven = set
	if !set && !testing.Short() {
		_ = flag.Set("rapid.checks", "10000")
	}
	os.Exit(m.Run())
}

// containers lists the shown containers of d with their kinds, in a
// deterministic order.
func containers(d *Doc) []Value {
	var out []Value
	var walk func(v Value)
	walk = func(v Value) {
		out = append(out, v)
		switch v.kind {
		case KindMap:
			for _, k := range d.Keys(v.obj) {
				for _, c := range d.Values(v.obj, k) {
					if c.Value.kind.IsContainer() {
						walk(c.Value)
					}
				}
			}
		case KindList:
			for i := 0; i < d.Len(v.obj); i++ {
				for _, c := range d.ValuesAt(v.obj, i) {
					if c.Value.kind.IsContainer() {
						walk(c.Value)
					}
				}
			}
		}
	}
	walk(Value{kind: KindMap, obj: Root})
	return out
}

var keys = []string{"a", "b", "c"}

func genValue(t *rapid.T, label string) Value {
	switch rapid.IntRange(0, 9).Draw(t, label+"kind") {
	case 0:
		return Null()
	case 1:
		return Bool(rapid.Bool().Draw(t, label+"bool"))
	case 2:
		return Int(rapid.Int64Range(-3, 3).Draw(t, label+"int"))
	case 3:
		return Float(rapid.Float64Range(-1, 1).Draw(t, label+"float"))
	case 4:
		return String(rapid.SampledFrom([]string{"x", "y", "ü"}).Draw(t, label+"str"))
	case 5:
		return Counter(rapid.Int64Range(0, 5).Draw(t, label+"ctr"))
	case 6:
		return NewMap()
	case 7:
		return NewList()
	case 8:
		return NewText()
	}
	return Bytes([]byte{byte(rapid.IntRange(0, 3).Draw(t, label+"bytes"))})
}

// randomEdit makes one random local edit on d (or none, if the drawn edit
// does not fit the document).
func randomEdit(t *rapid.T, d *Doc, time int64) {
	_, _, err := d.Change(ChangeOptions{Time: time}, func(tx *Txn) error { return randomOp(t, d, tx) })
	if err != nil {
		t.Fatalf("local edit failed: %v", err)
	}
}

// randomOp makes one random edit on d in tx (or none, if the drawn edit
// does not fit the document).
func randomOp(t *rapid.T, d *Doc, tx *Txn) error {
	conts := containers(d)
	target := conts[rapid.IntRange(0, len(conts)-1).Draw(t, "target")]
	obj := target.obj
	switch target.kind {
	case KindMap:
		key := rapid.SampledFrom(keys).Draw(t, "key")
		switch rapid.IntRange(0, 3).Draw(t, "mapop") {
		case 0, 1:
			_, err := tx.Put(obj, key, genValue(t, "v"))
			return err
		case 2:
			if _, ok := d.Get(obj, key); ok {
				return tx.Delete(obj, key)
			}
		case 3:
			if v, ok := d.Get(obj, key); ok && v.kind == KindCounter {
				return tx.Increment(obj, key, rapid.Int64Range(-2, 2).Draw(t, "delta"))
			}
		}
	case KindList:
		n := d.Len(obj)
		switch rapid.IntRange(0, 3).Draw(t, "listop") {
		case 0, 1:
			_, err := tx.Insert(obj, rapid.IntRange(0, n).Draw(t, "idx"), genValue(t, "v"))
			return err
		case 2:
			if n > 0 {
				i := rapid.IntRange(0, n-1).Draw(t, "idx")
				return tx.Remove(obj, i, rapid.IntRange(1, n-i).Draw(t, "n"))
			}
		case 3:
			if n > 0 {
				_, err := tx.Set(obj, rapid.IntRange(0, n-1).Draw(t, "idx"), genValue(t, "v"))
				return err
			}
		}
	case KindText:
		n := d.Len(obj)
		pos := rapid.IntRange(0, n).Draw(t, "pos")
		del := rapid.IntRange(0, min(n-pos, 3)).Draw(t, "del")
		ins := rapid.StringOfN(rapid.RuneFrom([]rune("abcé")), 0, 4, -1).Draw(t, "ins")
		return tx.Splice(obj, pos, del, ins)
	}
	return nil
}

// A transaction whose function fails leaves no trace: after any number of
// random edits inside it, the document is as it was (content, version,
// heads, counters, history), and the changes it goes on to make merge into
// a replica that never saw the failed ones.
func TestPropertyFailedChangeLeavesNoTrace(t *testing.T) {
	LimitChecks(t, 1000)
	boom := errors.New("boom")
	rapid.Check(t, func(t *rapid.T) {
		d := NewDoc(actorN(1))
		steps := rapid.IntRange(1, 30).Draw(t, "steps")
		for s := 0; s < steps; s++ {
			if !rapid.Bool().Draw(t, "fail") {
				randomEdit(t, d, int64(s))
				continue
			}
			before, heads, maxOp, n := fingerprint(d), d.Heads(), d.MaxOp(), len(d.Changes())
			version := d.Version()
			k := rapid.IntRange(1, 6).Draw(t, "edits")
			_, _, err := d.Change(ChangeOptions{Time: int64(s)}, func(tx *Txn) error {
				for i := 0; i < k; i++ {
					if err := randomOp(t, d, tx); err != nil {
						return err
					}
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("failed change: %v", err)
			}
			if fingerprint(d) != before || !slices.Equal(d.Heads(), heads) || d.MaxOp() != maxOp ||
				len(d.Changes()) != n || d.Version().Compare(version) != causal.Equal {
				t.Fatalf("a failed change left a trace:\n%s\n%s", fingerprint(d), before)
			}
		}
		other := NewDoc(actorN(2))
		if _, err := other.Apply(d.Changes()...); err != nil {
			t.Fatal(err)
		}
		if fingerprint(d) != fingerprint(other) {
			t.Fatalf("replica that never saw the failed changes differs:\n%s\n%s", fingerprint(d), fingerprint(other))
		}
	})
}

// deliver sends dst a random selection of src's changes that dst lacks, in
// a random order, some twice, in random groupings.
func deliver(t *rapid.T, dst, src *Doc) {
	missing := src.ChangesSince(dst.Version())
	if len(missing) == 0 {
		return
	}
	picked := rapid.SliceOfNDistinct(rapid.IntRange(0, len(missing)-1), 0, len(missing), rapid.ID[int]).Draw(t, "picked")
	var batch []*Change
	for _, i := range picked {
		batch = append(batch, missing[i])
		if rapid.IntRange(0, 4).Draw(t, "dup") == 0 {
			batch = append(batch, missing[i])
		}
	}
	for len(batch) > 0 {
		k := rapid.IntRange(1, len(batch)).Draw(t, "group")
		if _, err := dst.Apply(batch[:k]...); err != nil {
			t.Fatalf("apply: %v", err)
		}
		batch = batch[k:]
	}
}

// The same histories on both sequence engines: the fast one and the
// reference it is checked against.
func TestPropertyReplicasConverge(t *testing.T) {
	t.Run("fast", testReplicasConverge)
	t.Run("simple", func(t *testing.T) {
		defer func(f func() seq.Sequence) { newSequence = f }(newSequence)
		newSequence = func() seq.Sequence { return seq.NewSimple() }
		testReplicasConverge(t)
	})
}

func testReplicasConverge(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 5).Draw(t, "replicas")
		docs := make([]*Doc, n)
		for i := range docs {
			docs[i] = NewDoc(actorN(byte(i + 1)))
		}
		steps := rapid.IntRange(1, 30).Draw(t, "steps")
		for s := 0; s < steps; s++ {
			i := rapid.IntRange(0, n-1).Draw(t, "replica")
			if rapid.IntRange(0, 2).Draw(t, "action") < 2 {
				randomEdit(t, docs[i], int64(s))
			} else {
				j := rapid.IntRange(0, n-1).Draw(t, "from")
				if i != j {
					deliver(t, docs[i], docs[j])
				}
			}
		}
		// Heal: everyone gets everything, through a random relay order.
		for round := 0; round < 2; round++ {
			for _, i := range rapid.Permutation(seqInts(n)).Draw(t, "order") {
				for j := range docs {
					if i != j {
						if _, err := docs[i].Apply(docs[j].ChangesSince(docs[i].Version())...); err != nil {
							t.Fatalf("heal: %v", err)
						}
					}
				}
			}
		}
		want := fingerprint(docs[0])
		for i, d := range docs {
			if len(d.Pending()) != 0 {
				t.Fatalf("replica %d still holds %v", i, d.Pending())
			}
			if got := fingerprint(d); got != want {
				t.Fatalf("replica %d diverged:\n%s\nvs replica 0:\n%s", i, got, want)
			}
		}
		// A fresh replica given every change at once, in reverse, agrees too.
		all := docs[0].Changes()
		rev := make([]*Change, len(all))
		for i, c := range all {
			rev[len(all)-1-i] = c
		}
		fresh, err := Load(actorN(99), rev)
		if err != nil {
			t.Fatal(err)
		}
		if got := fingerprint(fresh); got != want {
			t.Fatalf("fresh replica diverged:\n%s\nvs\n%s", got, want)
		}
	})
}

func seqInts(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// Patches applied to a plain Go value reproduce the shown document after
// every local and remote change: what a UI holding the previous state does.
func TestPropertyPatchesReproduceTheDocument(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := NewDoc(actorN(1)), NewDoc(actorN(2))
		var mirror any = map[string]any{}
		steps := rapid.IntRange(1, 25).Draw(t, "steps")
		for s := 0; s < steps; s++ {
			var patches []Patch
			switch rapid.IntRange(0, 2).Draw(t, "what") {
			case 0:
				randomEdit(t, b, int64(s))
				continue
			case 1:
				before := len(a.Changes())
				randomEdit(t, a, int64(s))
				if len(a.Changes()) == before {
					continue
				}
				// Replaying a's new change on a fork gives the local patches'
				// twin; the local ones are checked by comparing the mirror.
				c := a.Changes()[len(a.Changes())-1]
				patches = localPatches(t, a, c)
			case 2:
				p, err := a.Apply(b.ChangesSince(a.Version())...)
				if err != nil {
					t.Fatal(err)
				}
				patches = p
			}
			for _, p := range patches {
				mirror = applyPatch(t, a, mirror, p.Path, p)
			}
			want := a.ToGo(Value{kind: KindMap, obj: Root})
			if fmt.Sprint(mirror) != fmt.Sprint(want) {
				t.Fatalf("patched mirror %v\ndocument       %v\npatches %+v", mirror, want, patches)
			}
		}
	})
}

// localPatches re-runs the effect of a's last local change to get the
// patches Change returned: it undoes nothing, it asks a fork that lacks the
// change to apply it.
func localPatches(t *rapid.T, a *Doc, c *Change) []Patch {
	prev := a.Version()
	prev[c.Actor] = c.Seq - 1
	f, err := a.At(prev)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.Apply(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// applyPatch applies p to the plain value v, following path from v.
func applyPatch(t *rapid.T, d *Doc, v any, path Path, p Patch) any {
	if len(path) > 0 && (len(path) > 1 || p.Action == PatchInsert || p.Action == PatchRemove || p.Action == PatchSplice) {
		step := path[0]
		switch c := v.(type) {
		case map[string]any:
			c[step.Key] = applyPatch(t, d, c[step.Key], path[1:], p)
		case []any:
			c[step.Index] = applyPatch(t, d, c[step.Index], path[1:], p)
		default:
			t.Fatalf("patch %v steps into %T", p.Path, v)
		}
		return v
	}
	plain := func(x Value) any {
		switch x.kind {
		case KindMap:
			return map[string]any{}
		case KindList:
			return []any{}
		case KindText:
			return ""
		}
		return d.ToGo(x)
	}
	switch p.Action {
	case PatchPut, PatchDelete, PatchIncrement, PatchConflict:
		step := path[0]
		switch c := v.(type) {
		case map[string]any:
			switch p.Action {
			case PatchPut:
				c[step.Key] = plain(p.Value)
			case PatchDelete:
				delete(c, step.Key)
			case PatchIncrement:
				c[step.Key] = c[step.Key].(int64) + p.Delta
			}
		case []any:
			switch p.Action {
			case PatchPut:
				c[step.Index] = plain(p.Value)
			case PatchIncrement:
				c[step.Index] = c[step.Index].(int64) + p.Delta
			}
		}
		return v
	case PatchInsert:
		l := v.([]any)
		for k, x := range p.Values {
			l = slicesInsert(l, p.Index+k, plain(x))
		}
		return l
	case PatchRemove:
		switch c := v.(type) {
		case []any:
			return append(c[:p.Index:p.Index], c[p.Index+p.Count:]...)
		case string:
			r := []rune(c)
			return string(append(r[:p.Index:p.Index], r[p.Index+p.Count:]...))
		}
	case PatchSplice:
		r := []rune(v.(string))
		return string(r[:p.Index]) + p.Text + string(r[p.Index:])
	}
	t.Fatalf("cannot apply %v to %T", p.Action, v)
	return nil
}

func slicesInsert(l []any, i int, x any) []any {
	l = append(l, nil)
	copy(l[i+1:], l[i:])
	l[i] = x
	return l
}
