package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/converge-sync/converge"
)

// cli runs converge in-process and returns stdout, stderr and the exit code.
func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := cli(t, args...)
	if code != 0 {
		t.Fatalf("converge %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func TestDocCommands(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, "doc", "set", "--replica", dir, "n", "/title", `"Groceries"`)
	mustCLI(t, "doc", "set", "--replica", dir, "n", "/items", `["milk",{"n":2}]`)
	mustCLI(t, "doc", "text", "n", "/body", "buy food", "--replica", dir)
	mustCLI(t, "doc", "splice", "--replica", dir, "n", "/body", "4", "0", "good ")
	mustCLI(t, "doc", "incr", "--replica", dir, "n", "/visits", "-3")
	mustCLI(t, "doc", "incr", "--replica", dir, "n", "/visits", "5")
	mustCLI(t, "doc", "del", "--replica", dir, "n", "/items/0")
	got := mustCLI(t, "doc", "get", "--replica", dir, "n")
	if want := `{"body":"buy good food","items":[{"n":2}],"title":"Groceries","visits":2}` + "\n"; got != want {
		t.Fatalf("get: %s want %s", got, want)
	}
	if got := mustCLI(t, "doc", "get", "--replica", dir, "n", "/body"); got != `"buy good food"`+"\n" {
		t.Fatalf("get /body: %q", got)
	}
	if got := mustCLI(t, "doc", "ls", "--replica", dir); got != "n\n" {
		t.Fatalf("ls: %q", got)
	}
	var hist []map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, "doc", "history", "--json", "--replica", dir, "n")), &hist); err != nil || len(hist) < 5 {
		t.Fatalf("history: %v %v", hist, err)
	}
}

func TestDocCommandErrors(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, "doc", "set", "--replica", dir, "n", "/x", `1`)
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"doc", "get", "n"}, 2, "--replica DIR is required"},
		{[]string{"doc", "set", "--replica", dir, "n", "/x", "hello"}, 2, "not a JSON value"},
		{[]string{"doc", "get", "--replica", dir, "n", "/missing"}, 1, "no such key"},
		{[]string{"doc", "incr", "--replica", dir, "n", "/x", "1"}, 1, "not a counter"},
		{[]string{"doc", "splice", "--replica", dir, "n", "/x", "0", "0", "a"}, 1, "not a text"},
		{[]string{"doc", "splice", "--replica", dir, "n", "/x", "zero", "0", "a"}, 2, "POS must be a whole number"},
		{[]string{"doc", "nope"}, 2, "unknown doc command"},
		{[]string{"export", "--replica", dir, "missing", filepath.Join(dir, "f")}, 1, `no document "missing"`},
	}
	for _, c := range cases {
		_, errs, code := cli(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) || strings.Count(strings.TrimSpace(errs), "\n") > 0 && c.code == 1 {
			t.Errorf("converge %s: exit %d, stderr %q; want exit %d with %q", strings.Join(c.args, " "), code, errs, c.code, c.msg)
		}
	}
	if got := mustCLI(t, "doc", "get", "--replica", dir, "n"); got != `{"x":1}`+"\n" {
		t.Fatalf("failed commands changed the document: %s", got)
	}
}

// Two replicas edit apart, exchange files, see the conflict, resolve it.
func TestConflictThroughExportImport(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	file := filepath.Join(t.TempDir(), "trip.converge")
	mustCLI(t, "doc", "set", "--replica", a, "trip", "/dest", `"Porto"`)
	mustCLI(t, "doc", "set", "--replica", b, "trip", "/dest", `"Lisbon"`)
	mustCLI(t, "export", "--replica", a, "trip", file)
	// - is standard output: the same bytes.
	if saved, err := os.ReadFile(file); err != nil || mustCLI(t, "export", "--replica", a, "trip", "-") != string(saved) {
		t.Fatalf("export to - differs from export to a file (%v)", err)
	}
	mustCLI(t, "import", "--replica", b, file)
	var conflicts []struct {
		Path       string
		Candidates []struct {
			Value any
			Op    string
		}
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "doc", "conflicts", "--replica", b, "trip")), &conflicts); err != nil {
		t.Fatal(err)
	}
	if len(conflicts) != 1 || conflicts[0].Path != "/dest" || len(conflicts[0].Candidates) != 2 {
		t.Fatalf("conflicts %+v", conflicts)
	}
	var porto string
	for _, c := range conflicts[0].Candidates {
		if c.Value == "Porto" {
			porto = c.Op
		}
	}
	mustCLI(t, "doc", "resolve", "--replica", b, "trip", "/dest", porto)
	if got := mustCLI(t, "doc", "conflicts", "--replica", b, "trip"); got != "[]\n" {
		t.Fatalf("after resolve: %s", got)
	}
	if got := mustCLI(t, "doc", "get", "--replica", b, "trip", "/dest"); got != `"Porto"`+"\n" {
		t.Fatalf("dest %s", got)
	}
}

func TestCompactKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 5; i++ {
		mustCLI(t, "doc", "incr", "--replica", dir, "a", "/n", "1")
		mustCLI(t, "doc", "incr", "--replica", dir, "b", "/n", "2")
	}
	if ls := mustCLI(t, "doc", "ls", "--json", "--replica", dir); !strings.Contains(ls, `"logChanges":5`) {
		t.Fatalf("before compaction: %s", ls)
	}
	mustCLI(t, "compact", "--replica", dir)
	if ls := mustCLI(t, "doc", "ls", "--json", "--replica", dir); strings.Count(ls, `"logChanges":0`) != 2 {
		t.Fatalf("after compaction: %s", ls)
	}
	if got := mustCLI(t, "doc", "get", "--replica", dir, "b", "/n"); got != "10\n" {
		t.Fatalf("after compaction /n = %q", got)
	}
	var hist []any
	if err := json.Unmarshal([]byte(mustCLI(t, "doc", "history", "--json", "--replica", dir, "a")), &hist); err != nil || len(hist) != 5 {
		t.Fatalf("history after compaction: %d %v", len(hist), err)
	}
}

// Export to a place it cannot write fails naming that place and leaves no
// temporary file; damaged export files are refused one line each, and the
// replica they were imported into is unchanged.
func TestExportImportBadFiles(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	mustCLI(t, "doc", "set", "--replica", dir, "d", "/x", `1`)
	for _, dst := range []string{out, filepath.Join(out, "no", "such", "folder", "d.converge")} {
		_, errs, code := cli(t, "export", "--replica", dir, "d", dst)
		if code != 1 || !strings.Contains(errs, dst) || strings.Contains(errs, ".tmp") || strings.Count(errs, "\n") != 1 {
			t.Errorf("export to %s: exit %d, stderr %q", dst, code, errs)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("failed exports left %v behind", ents)
	}
	if _, err := os.Stat(out + ".tmp"); err == nil {
		t.Fatalf("the export to a folder left %s.tmp behind", out)
	}

	good := filepath.Join(out, "d.converge")
	mustCLI(t, "export", "--replica", dir, "d", good)
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), b...)
	flipped[len(flipped)/2] ^= 0xff
	bad := map[string][]byte{"truncated": b[:len(b)/2], "flipped": flipped, "empty": nil, "text": []byte("hello\n")}
	other := t.TempDir()
	mustCLI(t, "doc", "set", "--replica", other, "d", "/y", `2`)
	for name, content := range bad {
		f := filepath.Join(out, name+".converge")
		if err := os.WriteFile(f, content, 0o644); err != nil {
			t.Fatal(err)
		}
		_, errs, code := cli(t, "import", "--replica", other, "--doc", "d", f)
		if code != 1 || !strings.Contains(errs, f) || strings.Count(errs, "\n") != 1 {
			t.Errorf("import %s: exit %d, stderr %q", name, code, errs)
		}
	}
	if got := mustCLI(t, "doc", "get", "--replica", other, "d"); got != `{"y":2}`+"\n" {
		t.Fatalf("failed imports changed the document: %s", got)
	}
}

// The commands that only read a replica refuse a folder that holds none,
// instead of making an empty replica there and printing nothing.
func TestReadCommandsNeedAReplica(t *testing.T) {
	base := t.TempDir()
	typo := filepath.Join(base, "typo")
	empty := t.TempDir()
	file := filepath.Join(base, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, dir := range []string{typo, empty, file} {
		for _, args := range [][]string{
			{"doc", "get", "--replica", dir, "d"},
			{"doc", "ls", "--replica", dir},
			{"doc", "history", "--replica", dir, "d"},
			{"doc", "conflicts", "--replica", dir, "d"},
			{"export", "--replica", dir, "d", filepath.Join(base, "d.converge")},
			{"compact", "--replica", dir},
		} {
			_, errs, code := cli(t, args...)
			if code != 1 || !strings.Contains(errs, "no replica at "+dir) || strings.Count(errs, "\n") != 1 {
				t.Errorf("converge %s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
			}
		}
	}
	if _, err := os.Stat(typo); err == nil {
		t.Error("a read command made the replica folder")
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("a read command wrote %v into an empty folder", ents)
	}
	// A write makes the replica; then the reads work.
	mustCLI(t, "doc", "set", "--replica", typo, "d", "/x", "1")
	if got := mustCLI(t, "doc", "ls", "--replica", typo); got != "d\n" {
		t.Fatalf("ls: %q", got)
	}
}

// A folder another process has open is answered with what to do.
func TestLockedReplicaSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	r, err := converge.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, args := range [][]string{
		{"doc", "ls", "--replica", dir},
		{"doc", "set", "--replica", dir, "d", "/x", "1"},
		{"sync", "--replica", dir, "--server", "http://127.0.0.1:1", "--once"},
	} {
		_, errs, code := cli(t, args...)
		if code != 1 || !strings.Contains(errs, "locked by another process") || !strings.Contains(errs, "stop the converge sync, presence or serve") || strings.Count(errs, "\n") != 1 {
			t.Errorf("converge %s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
		}
	}
}

// doc get --at reads the document as it was after each change that
// doc history lists; conflicts and history take --at too.
func TestDocGetAt(t *testing.T) {
	dir := t.TempDir()
	var shown []string // the document after each change
	for _, args := range [][]string{
		{"set", "n", "/title", `"Groceries"`},
		{"text", "n", "/body", "buy food"},
		{"splice", "n", "/body", "4", "0", "good "},
		{"set", "n", "/items", `["milk"]`},
		{"del", "n", "/title"},
	} {
		mustCLI(t, append([]string{"doc", args[0], "--replica", dir}, args[1:]...)...)
		shown = append(shown, mustCLI(t, "doc", "get", "--replica", dir, "n"))
	}
	var hist []struct {
		Actor string
		Seq   uint64
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "doc", "history", "--json", "--replica", dir, "n")), &hist); err != nil || len(hist) != len(shown) {
		t.Fatalf("history: %v %v", hist, err)
	}
	table := strings.Split(strings.TrimSpace(mustCLI(t, "doc", "history", "--replica", dir, "n")), "\n")
	for i, h := range hist {
		short := fmt.Sprintf("%s/%d", h.Actor[:8], h.Seq) // as the table prints it
		if !strings.Contains(table[i+1], short) {
			t.Fatalf("history row %d %q does not name change %s", i, table[i+1], short)
		}
		for _, at := range []string{short, fmt.Sprintf("%s/%d", h.Actor, h.Seq), fmt.Sprintf("%s/%d", strings.ToUpper(h.Actor[:3]), h.Seq)} {
			if got := mustCLI(t, "doc", "get", "--replica", dir, "n", "--at", at); got != shown[i] {
				t.Errorf("get --at %s: %s; the document showed %s", at, got, shown[i])
			}
		}
		var past []any
		if err := json.Unmarshal([]byte(mustCLI(t, "doc", "history", "--json", "--at", short, "--replica", dir, "n")), &past); err != nil || len(past) != i+1 {
			t.Errorf("history --at %s: %d changes (%v), want %d", short, len(past), err, i+1)
		}
	}
	if got := mustCLI(t, "doc", "get", "--replica", dir, "n", "/body", "--at", fmt.Sprintf("%s/2", hist[0].Actor[:8])); got != `"buy food"`+"\n" {
		t.Errorf("get /body at the text's creation: %s", got)
	}
	if got := mustCLI(t, "doc", "conflicts", "--replica", dir, "n", "--at", fmt.Sprintf("%s/1", hist[0].Actor[:8])); got != "[]\n" {
		t.Errorf("conflicts --at: %s", got)
	}
	actor := hist[0].Actor[:8]
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"doc", "get", "--replica", dir, "n", "--at", "4"}, 2, "want a change as ACTOR/SEQ"},
		{[]string{"doc", "get", "--replica", dir, "n", "--at", actor + "/0"}, 2, "want a change as ACTOR/SEQ"},
		{[]string{"doc", "get", "--replica", dir, "n", "--at", actor + "/x"}, 2, "want a change as ACTOR/SEQ"},
		{[]string{"doc", "get", "--replica", dir, "n", "--at", "zz/1"}, 1, "no change of document"},
		{[]string{"doc", "get", "--replica", dir, "n", "--at", actor + "/9"}, 1, "is not held by this replica"},
		{[]string{"doc", "set", "--replica", dir, "n", "/x", "1", "--at", actor + "/1"}, 2, "flag provided but not defined: -at"},
	} {
		_, errs, code := cli(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("converge %s: exit %d, stderr %q; want exit %d with %q in one line", strings.Join(c.args, " "), code, errs, c.code, c.msg)
		}
	}
}

// The read-only doc commands say a document is not there rather than
// show it empty; an empty document that is there reads as {}.
func TestReadingAMissingDoc(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, "doc", "set", "--replica", dir, "n", "/x", "1")
	mustCLI(t, "doc", "del", "--replica", dir, "n", "/x")
	if got := mustCLI(t, "doc", "get", "--replica", dir, "n"); got != "{}\n" {
		t.Fatalf("an emptied document: %q", got)
	}
	for _, cmd := range []string{"get", "conflicts", "history", "origins"} {
		out, errs, code := cli(t, "doc", cmd, "--replica", dir, "nope")
		want := fmt.Sprintf(`converge doc %s: no document "nope" in %s`, cmd, dir)
		if code != 1 || out != "" || !strings.HasPrefix(errs, want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("doc %s of a missing document: exit %d, stdout %q, stderr %q; want exit 1 and %q", cmd, code, out, errs, want)
		}
	}
	if got := mustCLI(t, "doc", "ls", "--replica", dir); got != "n\n" {
		t.Fatalf("reading a missing document made one: ls says %q", got)
	}
}
