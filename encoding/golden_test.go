package encoding

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// Golden files pin every released format version: testdata/golden/v<N>/
// holds encoded objects (*.bin) and their expected decoded form (*.json).
// Files of a released version are never regenerated; a new version gets a
// new directory and this test keeps reading the old ones.
//
//	go test ./encoding -run Golden -update
//
// writes the current version's files (and the fuzz seed corpus in
// testdata/fuzz) from the fixed inputs below.
var update = flag.Bool("update", false, "rewrite the current version's golden files and fuzz seeds")

func goldenInputs(t *testing.T) map[string][]byte {
	a, _ := twoReplicas(t)
	doc, err := SaveDoc(a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	docZ, _ := SaveDoc(a, Options{Compress: true})
	appended, _ := AppendChanges(bytes.Clone(doc), keystrokes(3)...)
	w := NewChangeWriter()
	var stream []byte
	for _, c := range keystrokes(3) {
		fr := w.Encode(c)
		stream = append(stream, byte(len(fr)))
		stream = append(stream, fr...)
	}
	typing, err := SaveDoc(typingDoc(t), Options{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"document-typing.bin":   typing,
		"change.bin":            EncodeChange(a.Changes()[0]),
		"change-keystroke.bin":  EncodeChange(keystrokes(1)[1]),
		"document.bin":          doc,
		"document-deflate.bin":  docZ,
		"document-appended.bin": appended,
		"stream.bin":            stream,
	}
}

// describe is the decoded form a golden file must keep decoding to.
func describe(t *testing.T, name string, b []byte) string {
	var v any
	switch {
	case bytes.HasPrefix([]byte(name), []byte("change")):
		c, err := DecodeChange(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v = changeJSON(c)
	case bytes.HasPrefix([]byte(name), []byte("stream")):
		r := NewChangeReader()
		var cs []any
		for len(b) > 0 {
			n := int(b[0])
			c, err := r.Decode(b[1 : 1+n])
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			cs = append(cs, changeJSON(c))
			b = b[1+n:]
		}
		v = cs
	default:
		d, err := DecodeDocument(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cs, err := d.Changes()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var hist []any
		for _, c := range cs {
			hist = append(hist, changeJSON(c))
		}
		v = map[string]any{"state": nodeJSON(d.State().Root), "stateIsCurrent": d.StateIsCurrent(), "chunks": d.Chunks(), "changes": hist}
	}
	out, _ := json.MarshalIndent(v, "", " ")
	return string(out) + "\n"
}

func changeJSON(c *crdt.Change) any {
	var ops []string
	for _, op := range c.Ops {
		ops = append(ops, fmt.Sprintf("%v obj=%v key=%q elem=%v left=%v right=%v value=%#v text=%q len=%d pred=%v",
			op.Action, op.Obj, op.Key, op.Elem, op.Left, op.Right, op.Value, op.Text, op.Len, op.Pred))
	}
	return map[string]any{"id": c.ID().String(), "actor": c.Actor.String(), "startOp": c.StartOp, "deps": fmt.Sprint(c.Deps), "time": c.Time, "message": c.Message, "ops": ops}
}

func nodeJSON(n *Node) any {
	switch n.Kind {
	case crdt.KindMap:
		m := map[string]any{"@obj": n.Obj.String()}
		for i, k := range n.Keys {
			m[k] = nodeJSON(n.Items[i])
		}
		return m
	case crdt.KindList:
		var l []any
		for _, it := range n.Items {
			l = append(l, nodeJSON(it))
		}
		return map[string]any{"@obj": n.Obj.String(), "items": l}
	case crdt.KindText:
		return map[string]any{"@obj": n.Obj.String(), "text": n.Text}
	}
	return n.Value.GoString()
}

func TestGolden(t *testing.T) {
	cur := filepath.Join("testdata", "golden", "v"+strconv.Itoa(Version))
	if *update {
		os.MkdirAll(cur, 0o755)
		for name, b := range goldenInputs(t) {
			must(t, os.WriteFile(filepath.Join(cur, name), b, 0o644))
			want := describe(t, name, b)
			must(t, os.WriteFile(filepath.Join(cur, name[:len(name)-4]+".json"), []byte(want), 0o644))
		}
		writeFuzzSeeds(t)
	}
	bins, _ := filepath.Glob(filepath.Join("testdata", "golden", "v*", "*.bin"))
	if len(bins) == 0 {
		t.Fatal("no golden files; run with -update")
	}
	for _, path := range bins {
		b, err := os.ReadFile(path)
		must(t, err)
		want, err := os.ReadFile(path[:len(path)-4] + ".json")
		must(t, err)
		if got := describe(t, filepath.Base(path), b); got != string(want) {
			t.Errorf("%s decodes differently from its .json", path)
		}
	}
}

// writeFuzzSeeds writes the golden objects as fuzz seeds, in the file
// format of `go test -fuzz`.
func writeFuzzSeeds(t *testing.T) {
	in := goldenInputs(t)
	seeds := map[string][]string{
		"FuzzDecodeChange":   {"change.bin", "change-keystroke.bin"},
		"FuzzDecodeDocument": {"document.bin", "document-deflate.bin", "document-appended.bin", "document-typing.bin"},
		"FuzzChangeReader":   {"stream.bin"},
	}
	for target, names := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		must(t, os.MkdirAll(dir, 0o755))
		for _, name := range names {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(in[name])) + ")\n"
			must(t, os.WriteFile(filepath.Join(dir, "golden-"+name[:len(name)-4]), []byte(body), 0o644))
		}
	}
}

// typingDoc is two people typing, backspacing, moving the cursor and
// typing non-ASCII text into one text: what version 2's derived text and
// right-origin predictions are for.
func typingDoc(t *testing.T) *crdt.Doc {
	a := crdt.NewDoc(causal.ActorID{0xa}, crdt.WithHistory(NewHistory()))
	var text crdt.ObjID
	change := func(d *crdt.Doc, f func(tx *crdt.Txn) error) {
		t.Helper()
		if _, _, err := d.Change(crdt.ChangeOptions{Time: 1000}, f); err != nil {
			t.Fatal(err)
		}
	}
	change(a, func(tx *crdt.Txn) (err error) {
		text, err = tx.Put(crdt.Root, "text", crdt.NewText())
		return err
	})
	typeAt := func(d *crdt.Doc, at int, s string) {
		for i, r := range []rune(s) {
			change(d, func(tx *crdt.Txn) error { return tx.Splice(text, at+i, 0, string(r)) })
		}
	}
	backspace := func(d *crdt.Doc, at, n int) {
		for i := 0; i < n; i++ {
			change(d, func(tx *crdt.Txn) error { return tx.Splice(text, at-i-1, 1, "") })
		}
	}
	typeAt(a, 0, "The quick brwn")
	backspace(a, 14, 3)
	typeAt(a, 11, "rown fox")
	typeAt(a, 4, "very ")
	typeAt(a, 24, " jumps – über")
	b := a.Fork(causal.ActorID{0xb})
	typeAt(b, 0, "¡")
	typeAt(a, 9, ", ")
	backspace(a, 30, 2)
	if _, err := a.Apply(b.ChangesSince(a.Version())...); err != nil {
		t.Fatal(err)
	}
	change(a, func(tx *crdt.Txn) error { return tx.Splice(text, 2, 3, "e") })
	return a
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
