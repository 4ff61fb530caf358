package seq

import (
	"testing"

	"pgregory.net/rapid"
)

// rebuild replaces r's Fast by one built with Append from the final order
// of r's Simple (element by element, or in runs of consecutive IDs that
// Insert would have made), as a loader builds a sequence it knows the
// order of. The replicas then go on editing and merging: the rebuilt
// engine must keep agreeing with Simple on every query and on where later
// inserts integrate, which rests on the origins it was given.
func (w *diffWorld) rebuild(t *rapid.T) {
	r := w.rep(t)
	caps := rapid.SampledFrom([][2]int{{4, 3}, {5, 4}, {leafCap, innerCap}}).Draw(t, "rebuildCaps")
	whole := rapid.Bool().Draw(t, "wholeRuns")
	f := newFast(caps[0], caps[1])
	es := r.s.elems
	for i := 0; i < len(es); {
		j := i + 1
		for whole && j < len(es) && es[j].id == es[j-1].id.Add(1) && es[j].left == es[j-1].id &&
			es[j].right == es[i].right && es[j].visible == es[i].visible && (es[j].char == 0) == (es[i].char == 0) {
			j++
		}
		var text []rune
		for k := i; k < j; k++ {
			if es[k].char != 0 {
				text = append(text, es[k].char)
			}
		}
		if err := f.Append(es[i].id, j-i, es[i].left, es[i].right, string(text), es[i].visible); err != nil {
			t.Fatalf("Append(%v, %d): %v", es[i].id, j-i, err)
		}
		i = j
	}
	if len(es) > 0 {
		// What is present cannot be appended again.
		e := es[rapid.IntRange(0, len(es)-1).Draw(t, "dup")]
		if err := f.Append(e.id, 1, ID{}, ID{}, "", true); err == nil {
			t.Fatalf("Append of present %v succeeded", e.id)
		}
		if f.Len() != r.s.Len() {
			t.Fatalf("a refused Append changed the length")
		}
	}
	r.f = f
	w.check(r)
}

func TestAppendBuildsWhatInsertBuilds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := &diffWorld{t: t}
		for k := range rapid.IntRange(1, 3).Draw(t, "replicas") {
			a := ID{}.Actor
			a[0], a[1] = byte(rapid.IntRange(1, 3).Draw(t, "actor")), byte(k)
			w.reps = append(w.reps, &diffReplica{actor: a, s: NewSimple(), f: newFast(4, 3), applied: map[int]bool{}})
		}
		t.Repeat(map[string]func(*rapid.T){
			"type":    w.typeLocal,
			"delete":  w.deleteLocal,
			"deliver": w.deliver,
			"rebuild": w.rebuild,
			"": func(t *rapid.T) {
				for _, r := range w.reps {
					w.check(r)
				}
			},
		})
	})
}

func TestAppendRefuses(t *testing.T) {
	f := NewFast()
	a := ID{Counter: 1}
	a.Actor[0] = 1
	for _, c := range []struct {
		n    int
		text string
	}{{0, ""}, {2, "a"}, {1, "ab"}, {-1, ""}} {
		if err := f.Append(a, c.n, ID{}, ID{}, c.text, true); err == nil {
			t.Errorf("Append(n=%d, %q) succeeded", c.n, c.text)
		}
	}
	if err := f.Append(ID{Actor: a.Actor}, 1, ID{}, ID{}, "a", true); err == nil {
		t.Errorf("Append of counter 0 succeeded")
	}
	if f.Len() != 0 || f.Text() != "" {
		t.Errorf("refused appends left %q", f.Text())
	}
}
