package trace

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"
)

// The traces live beside the repository, not in it.
const tracesDir = "../../../shared/traces"

func tracePath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(tracesDir, name+".json.gz")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("trace %s not available (%v); see the traces README for where to get them", name, err)
	}
	return p
}

// Edits and final chars are the figures of the traces' README table; txns
// were counted from the files.
var realTraces = []struct {
	name       string
	txns       int
	edits      int
	finalChars int
	concurrent bool
	agents     int
}{
	{"automerge-paper", 259778, 259778, 104852, false, 1},
	{"seph-blog1", 137154, 137993, 56769, false, 1},
	{"friendsforever_flat", 26078, 26078, 21362, false, 1},
	{"concurrent-friendsforever", 26078, 26078, 21362, true, 2},
}

func TestLoadRealTraces(t *testing.T) {
	for _, want := range realTraces {
		t.Run(want.name, func(t *testing.T) {
			path := tracePath(t, want.name)
			start := time.Now()
			tr, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			// Reported, not asserted: timings depend on the machine.
			t.Logf("loaded %s in %v", want.name, time.Since(start))
			if tr.Name != want.name {
				t.Errorf("Name = %q, want %q", tr.Name, want.name)
			}
			if len(tr.Txns) != want.txns {
				t.Errorf("%d txns, want %d", len(tr.Txns), want.txns)
			}
			if n := tr.NumPatches(); n != want.edits {
				t.Errorf("%d patches, README says %d edits", n, want.edits)
			}
			if n := utf8.RuneCountInString(tr.EndContent); n != want.finalChars {
				t.Errorf("endContent has %d chars, README says %d", n, want.finalChars)
			}
			if tr.Concurrent() != want.concurrent || tr.NumAgents != want.agents {
				t.Errorf("Concurrent() = %v with %d agents, want %v with %d", tr.Concurrent(), tr.NumAgents, want.concurrent, want.agents)
			}
			if !want.concurrent {
				got, err := tr.ApplySequential()
				if err != nil {
					t.Fatal(err)
				}
				if got != tr.EndContent {
					t.Errorf("ApplySequential differs from endContent at rune %d", firstDiff([]rune(got), []rune(tr.EndContent)))
				}
				return
			}
			if _, err := tr.ApplySequential(); !errors.Is(err, ErrConcurrent) {
				t.Errorf("ApplySequential on a concurrent trace: %v, want ErrConcurrent", err)
			}
			if p := tr.Txns[0].Parents; p == nil || len(p) != 0 {
				t.Errorf("first txn parents = %#v, want empty and non-nil", p)
			}
			merges := 0
			for _, txn := range tr.Txns {
				if len(txn.Parents) >= 2 {
					merges++
				}
			}
			if merges == 0 {
				t.Error("no txn with two parents: the concurrent trace lost its merges")
			}
		})
	}
}

func firstDiff(a, b []rune) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func BenchmarkLoad(b *testing.B) {
	path := tracePath(b, "automerge-paper")
	for b.Loop() {
		if _, err := Load(path); err != nil {
			b.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLoadSmallFiles(t *testing.T) {
	const seq = `{"startContent":"","endContent":"hello","txns":[
		{"time":"x","patches":[[0,0,"héllo"]]},
		{"patches":[ [ 1 , 1 , "e" ] ]},
		{"patches":[]}]}`
	for _, c := range []struct{ file, data string }{
		{"small.json", seq},
		{"small.json.gz", string(gz(t, []byte(seq)))},
	} {
		tr, err := Load(writeFile(t, c.file, []byte(c.data)))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if tr.Name != "small" || tr.Concurrent() || tr.NumAgents != 1 || len(tr.Txns) != 3 || tr.NumPatches() != 2 {
			t.Errorf("%s: got %+v", c.file, tr)
		}
		if got, want := tr.Txns[1].Patches[0], (Patch{Pos: 1, Del: 1, Ins: "e"}); got != want {
			t.Errorf("%s: patch = %+v, want %+v", c.file, got, want)
		}
		if tr.Txns[0].Parents != nil {
			t.Errorf("%s: sequential txn has parents %v", c.file, tr.Txns[0].Parents)
		}
		got, err := tr.ApplySequential()
		if err != nil || got != "hello" {
			t.Errorf("%s: ApplySequential = %q, %v", c.file, got, err)
		}
	}
}

// Positions count code points: "é" and "😀" are one position each, though
// two and four bytes (and "😀" two UTF-16 units).
func TestApplySequentialCountsCodePoints(t *testing.T) {
	tr := &Trace{Txns: []Txn{
		{Patches: []Patch{{0, 0, "a😀é"}}},
		{Patches: []Patch{{2, 1, "e"}, {1, 0, "<"}, {3, 0, ">"}}},
	}}
	got, err := tr.ApplySequential()
	if err != nil || got != "a<😀>e" {
		t.Errorf("ApplySequential = %q, %v; want %q", got, err, "a<😀>e")
	}
}

func TestApplySequentialOutOfRange(t *testing.T) {
	for _, c := range []struct {
		name    string
		patches []Patch
		patch   int
	}{
		{"insert past end", []Patch{{0, 0, "ab"}, {3, 0, "x"}}, 1},
		{"delete past end", []Patch{{0, 0, "ab"}, {1, 2, ""}}, 1},
		{"delete from empty", []Patch{{0, 1, ""}}, 0},
	} {
		tr := &Trace{Name: "t", Txns: []Txn{{}, {Patches: c.patches}}}
		_, err := tr.ApplySequential()
		var ie *InvalidError
		if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want *InvalidError", c.name, err)
			continue
		}
		if ie.Txn != 1 || ie.Patch != c.patch {
			t.Errorf("%s: error at txn %d patch %d, want txn 1 patch %d (%v)", c.name, ie.Txn, ie.Patch, c.patch, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	valid := gz(t, []byte(`{"endContent":"","txns":[]}`))
	for _, c := range []struct {
		name, file string
		data       []byte
		want       error
	}{
		{"not gzip", "a.json.gz", []byte(`{"endContent":"","txns":[]}`), ErrGzip},
		{"truncated gzip", "a.json.gz", valid[:len(valid)-6], ErrGzip},
		{"corrupt gzip body", "a.json.gz", append(append([]byte{}, valid[:12]...), bytes.Repeat([]byte{0xff}, 20)...), ErrGzip},
		{"bad JSON", "a.json", []byte(`{"endContent":"",`), ErrJSON},
		{"bad JSON in gzip", "a.json.gz", gz(t, []byte(`{"txns":[}`)), ErrJSON},
		{"wrong JSON type", "a.json", []byte(`{"endContent":"","txns":5}`), ErrJSON},
		{"not an object", "a.json", []byte(`[1,2]`), ErrJSON},
	} {
		_, err := Load(writeFile(t, c.file, c.data))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
		if errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v also claims to be ErrInvalid", c.name, err)
		}
	}

	_, err := Load(filepath.Join(t.TempDir(), "missing.json.gz"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadInvalid(t *testing.T) {
	const ok = `"endContent":"ab"`
	for _, c := range []struct {
		name, json string
		txn, patch int
	}{
		{"no endContent", `{"txns":[]}`, -1, -1},
		{"no txns", `{"endContent":""}`, -1, -1},
		{"startContent", `{"startContent":"x",` + ok + `,"txns":[]}`, -1, -1},
		{"parents without numAgents", `{` + ok + `,"txns":[{"agent":0,"parents":[],"patches":[]}]}`, -1, -1},
		{"zero agents", `{` + ok + `,"numAgents":0,"txns":[]}`, -1, -1},
		{"agent out of range", `{` + ok + `,"numAgents":2,"txns":[{"agent":0,"parents":[],"patches":[]},{"agent":2,"parents":[0],"patches":[]}]}`, 1, -1},
		{"negative agent", `{` + ok + `,"numAgents":2,"txns":[{"agent":-1,"parents":[],"patches":[]}]}`, 0, -1},
		{"no parents list", `{` + ok + `,"numAgents":1,"txns":[{"agent":0,"parents":[],"patches":[]},{"agent":0,"patches":[]}]}`, 1, -1},
		{"no agent", `{` + ok + `,"numAgents":2,"txns":[{"parents":[],"patches":[]}]}`, 0, -1},
		{"parent points forward", `{` + ok + `,"numAgents":1,"txns":[{"agent":0,"parents":[],"patches":[]},{"agent":0,"parents":[2],"patches":[]},{"agent":0,"parents":[1],"patches":[]}]}`, 1, -1},
		{"parent is itself", `{` + ok + `,"numAgents":1,"txns":[{"agent":0,"parents":[0],"patches":[]}]}`, 0, -1},
		{"negative parent", `{` + ok + `,"numAgents":1,"txns":[{"agent":0,"parents":[],"patches":[]},{"agent":0,"parents":[-1],"patches":[]}]}`, 1, -1},
		{"patch too short", `{` + ok + `,"txns":[{"patches":[[0,0,"a"],[1,"b"]]}]}`, 0, 1},
		{"patch too long", `{` + ok + `,"txns":[{"patches":[[0,0,"a",1]]}]}`, 0, 0},
		{"insert not a string", `{` + ok + `,"txns":[{"patches":[[0,0,5]]}]}`, 0, 0},
		{"fractional position", `{` + ok + `,"txns":[{"patches":[[1.5,0,"a"]]}]}`, 0, 0},
		{"negative delete", `{` + ok + `,"txns":[{"patches":[[0,-1,"a"]]}]}`, 0, 0},
		{"patch not an array", `{` + ok + `,"txns":[{"patches":[{"pos":0}]}]}`, 0, 0},
	} {
		_, err := Load(writeFile(t, "bad.json", []byte(c.json)))
		var ie *InvalidError
		if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want *InvalidError", c.name, err)
			continue
		}
		if ie.Name != "bad" || ie.Txn != c.txn || ie.Patch != c.patch {
			t.Errorf("%s: error names %q txn %d patch %d, want \"bad\" txn %d patch %d (%v)", c.name, ie.Name, ie.Txn, ie.Patch, c.txn, c.patch, err)
		}
	}
}

// parsePatch is a hand-written fast path; encoding/json is the reference it
// must agree with on every valid JSON value.
func FuzzParsePatch(f *testing.F) {
	for _, s := range []string{
		`[0,0,"a"]`, ` [ 12 , 3 , "" ] `, `[1,2,"a\"b\\c\u00e9\n"]`, `[1,2,"é😀"]`, `[-0,0,"x"]`,
		`[1e2,0,"x"]`, `[1.0,0,"x"]`, `[1,-2,"x"]`, `[1,2]`, `[1,2,"x",4]`, `[1,2,3]`, `{}`, `"x"`,
		`[99999999999999999999,0,"x"]`, "[1,2,\"\xff\"]", `[1,2,"a]"]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return // parsePatch only ever sees what the decoder accepted
		}
		got, gotErr := parsePatch(b)
		want, wantErr := referencePatch(b)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("%q: parsePatch err %v, reference err %v", b, gotErr, wantErr)
		}
		if gotErr == nil && got != want {
			t.Fatalf("%q: parsePatch %+v, reference %+v", b, got, want)
		}
	})
}

func referencePatch(b []byte) (Patch, error) {
	var p Patch
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v []any
	if err := d.Decode(&v); err != nil {
		return p, err
	}
	if len(v) != 3 {
		return p, errors.New("length")
	}
	for k, dst := range []*int{&p.Pos, &p.Del} {
		n, ok := v[k].(json.Number)
		if !ok {
			return p, errors.New("not a number")
		}
		i, err := strconv.Atoi(string(n))
		if err != nil || i < 0 {
			return p, errors.New("not a non-negative integer")
		}
		*dst = i
	}
	s, ok := v[2].(string)
	if !ok {
		return p, errors.New("not a string")
	}
	p.Ins = s
	return p, nil
}
