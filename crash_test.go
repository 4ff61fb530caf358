//go:build unix

package converge_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/converge-sync/converge"
	_ "modernc.org/sqlite" // the integrity check reads the replica's database directly
)

// The crash test runs the test binary again as a child process that edits
// a replica folder and reports, one line at a time, what Change (or Flush)
// has made durable. The parent kills it with SIGKILL at a random moment,
// opens the folder itself and checks that every reported change is there,
// exactly as the workload says it must be, and that nothing is damaged.
// Each round's child continues the same actor's history in the same folder.

const (
	crashDirEnv     = "CONVERGE_CRASH_CHILD"   // the replica folder; set only in the child
	crashModeEnv    = "CONVERGE_CRASH_MODE"    // "single" or "batched"
	crashSeedEnv    = "CONVERGE_CRASH_SEED"    // child's random seed, or the parent's when set by hand
	crashCompactEnv = "CONVERGE_CRASH_COMPACT" // WithCompactAfter for the child
	crashRoundsEnv  = "CONVERGE_CRASH_ROUNDS"  // overrides the number of rounds
)

// crashDocs are the documents of the workload; each has its own kind of
// edits (see crashPlan).
var crashDocs = []string{"crash/counter", "crash/text", "crash/map"}

// crashOp is one edit, applied either to a real document (through a Txn) or
// to the parent's plain-Go model of what the document must hold.
type crashOp struct {
	kind     byte // 's' set, 'i' increment, 'd' delete, 'a' list insert, 'p' text splice
	key      string
	index    int // list index for 'a' and 'd' on "list"; splice position for 'p'
	del      int // characters deleted by 'p'
	value    any
	delta    int64
	text     string
	isList   bool // 'a'/'d' address an element of /list
	makeText bool // 's' creates a text holding text
}

func (o crashOp) pointer() string {
	if o.isList {
		return "/list/" + strconv.Itoa(o.index)
	}
	return "/" + o.key
}

func (o crashOp) apply(tx *converge.Txn) error {
	switch o.kind {
	case 's':
		if o.makeText {
			return tx.Set(o.pointer(), converge.Text(o.text))
		}
		return tx.Set(o.pointer(), o.value)
	case 'i':
		return tx.Increment(o.pointer(), o.delta)
	case 'd':
		return tx.Delete(o.pointer())
	case 'a':
		return tx.Insert(o.pointer(), o.value)
	case 'p':
		return tx.Splice(o.pointer(), o.index, o.del, o.text)
	}
	return fmt.Errorf("unknown op %q", o.kind)
}

// crashState is what a plan may read before choosing its edits: the same
// questions are answered by the real document (child) and by the model
// (parent), so both derive the same edits from the same state.
type crashState interface {
	textLen(key string) int // in code points
	listLen(key string) int
	has(key string) bool
}

// crashPlan returns the edits of change number seq of doc. Every change has
// at least one edit, so every Change makes a change and takes a sequence
// number. The edits depend on seq and on the state, so that the document
// after seq changes is one exact value the parent can compute.
func crashPlan(doc string, seq uint64, st crashState) []crashOp {
	s := int64(seq)
	switch doc {
	case "crash/counter":
		delta := s%7 - 2
		if delta == 0 {
			delta = 5
		}
		return []crashOp{{kind: 'i', key: "n", delta: delta}, {kind: 's', key: "last", value: s}}
	case "crash/text":
		if seq == 1 {
			return []crashOp{{kind: 's', key: "body", makeText: true, text: "start|"}}
		}
		n := st.textLen("body")
		end := crashOp{kind: 'p', key: "body", index: n, text: strconv.FormatInt(s, 10) + ";"}
		switch s % 5 {
		case 2:
			return []crashOp{{kind: 'p', key: "body", index: int(s*7919) % (n + 1), text: "<" + strconv.FormatInt(s, 10) + ">"}}
		case 3:
			if n > 4 {
				return []crashOp{{kind: 'p', key: "body", index: int(s*31) % (n - 3), del: 3, text: "é"}}
			}
		case 4:
			// Two splices in one change: the second sees the first.
			return []crashOp{end, {kind: 'p', key: "body", index: n + utf8.RuneCountInString(end.text), text: "ü\n"}}
		}
		return []crashOp{end}
	case "crash/map":
		if seq == 1 {
			return []crashOp{{kind: 's', key: "list", value: []any{}}, {kind: 's', key: "k1", value: s}}
		}
		ops := []crashOp{{kind: 's', key: "k" + strconv.FormatInt(s%11, 10), value: s}}
		if dk := "k" + strconv.FormatInt((s+5)%11, 10); s%3 == 0 && st.has(dk) {
			ops = append(ops, crashOp{kind: 'd', key: dk})
		}
		n := st.listLen("list")
		if s%5 == 0 {
			ops = append(ops, crashOp{kind: 'a', isList: true, index: 0, value: s})
			n++
		}
		if s%10 == 0 && n > 3 {
			ops = append(ops, crashOp{kind: 'd', isList: true, index: n - 1})
		}
		if s%13 == 0 {
			ops = append(ops, crashOp{kind: 's', key: "nested", value: map[string]any{"s": s, "tags": []any{"a", s%2 == 0}}})
		}
		return ops
	}
	panic("unknown crash document " + doc)
}

// txnState answers a plan's questions from the document being changed.
type txnState struct{ tx *converge.Txn }

func (t txnState) textLen(key string) int {
	v, _ := t.tx.Get("/" + key)
	s, _ := v.(string)
	return utf8.RuneCountInString(s)
}

func (t txnState) listLen(key string) int {
	v, _ := t.tx.Get("/" + key)
	l, _ := v.([]any)
	return len(l)
}

func (t txnState) has(key string) bool {
	_, err := t.tx.Get("/" + key)
	return err == nil
}

// crashModel is the parent's plain-Go copy of one document: a map whose
// values are int64, string, []rune (a text), []any and map[string]any.
type crashModel struct {
	doc  string
	seq  uint64
	root map[string]any
}

func newCrashModel(doc string) *crashModel {
	return &crashModel{doc: doc, root: map[string]any{}}
}

func (m *crashModel) textLen(key string) int { r, _ := m.root[key].([]rune); return len(r) }
func (m *crashModel) listLen(key string) int { l, _ := m.root[key].([]any); return len(l) }
func (m *crashModel) has(key string) bool    { _, ok := m.root[key]; return ok }

// step applies the next change of the workload to the model.
func (m *crashModel) step() {
	m.seq++
	for _, o := range crashPlan(m.doc, m.seq, m) {
		switch {
		case o.kind == 's' && o.makeText:
			m.root[o.key] = []rune(o.text)
		case o.kind == 's':
			m.root[o.key] = o.value
		case o.kind == 'i':
			n, _ := m.root[o.key].(int64)
			m.root[o.key] = n + o.delta
		case o.kind == 'd' && o.isList:
			l := m.root["list"].([]any)
			m.root["list"] = slices.Delete(slices.Clone(l), o.index, o.index+1)
		case o.kind == 'd':
			delete(m.root, o.key)
		case o.kind == 'a':
			l := m.root["list"].([]any)
			m.root["list"] = slices.Insert(slices.Clone(l), o.index, o.value)
		case o.kind == 'p':
			r := m.root[o.key].([]rune)
			r = slices.Delete(r, o.index, o.index+o.del)
			m.root[o.key] = slices.Insert(r, o.index, []rune(o.text)...)
		}
	}
}

// json returns the model as the document's JSON must read, normalised.
func (m *crashModel) json() string {
	out := make(map[string]any, len(m.root))
	for k, v := range m.root {
		if r, ok := v.([]rune); ok {
			v = string(r)
		}
		out[k] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic(err)
	}
	return crashNormalJSON(b)
}

// crashNormalJSON re-encodes JSON so that two encoders' output compares
// equal (key order, number spelling).
func crashNormalJSON(b []byte) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "invalid JSON: " + err.Error()
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func crashHash(normalJSON string) string {
	h := fnv.New64a()
	io.WriteString(h, normalJSON)
	return strconv.FormatUint(h.Sum64(), 16)
}

// TestCrashChild is the child process of TestCrashKill9; run directly it
// does nothing.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrashKill9")
	}
	if err := crashChild(dir); err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	os.Exit(3) // crashChild only returns with an error; it is killed otherwise
}

// crashChild edits the replica until it is killed, printing
// "actor <id>" once open and "durable <doc> <seq> <hash>" each time the
// doc's changes up to seq are durable (hash: of the doc's JSON then).
func crashChild(dir string) error {
	ctx := context.Background()
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	compact, _ := strconv.Atoi(os.Getenv(crashCompactEnv))
	batched := os.Getenv(crashModeEnv) == "batched"
	opts := []converge.Option{converge.WithCompactAfter(compact)}
	if batched {
		opts = append(opts, converge.WithBatchedWrites())
	}
	r, err := converge.Open(ctx, dir, opts...)
	if err != nil {
		return err
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		// One write per line: a kill cuts the stream between lines, or
		// leaves a last line without its newline, which the parent drops.
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	say("actor %s", r.Actor())
	docs := make([]*converge.Doc, len(crashDocs))
	for i, id := range crashDocs {
		if docs[i], err = r.Doc(ctx, id); err != nil {
			return err
		}
	}
	// change makes the doc's next change and returns its sequence number.
	change := func(d *converge.Doc) (uint64, error) {
		seq := d.Version().Get(r.Actor()) + 1
		err := d.Change(ctx, func(tx *converge.Txn) error {
			for _, o := range crashPlan(d.ID(), seq, txnState{tx}) {
				if err := o.apply(tx); err != nil {
					return fmt.Errorf("%s change %d: %c %s: %w", d.ID(), seq, o.kind, o.pointer(), err)
				}
			}
			return nil
		})
		if err == nil && d.Version().Get(r.Actor()) != seq {
			err = fmt.Errorf("%s: change %d took sequence number %d", d.ID(), seq, d.Version().Get(r.Actor()))
		}
		return seq, err
	}
	report := func(d *converge.Doc, seq uint64) error {
		b, err := d.JSON("")
		if err != nil {
			return err
		}
		say("durable %s %d %s", d.ID(), seq, crashHash(crashNormalJSON(b)))
		return nil
	}

	if !batched {
		// One writer per document, all at once: commits of different
		// documents interleave in the store as they would in an app.
		errs := make(chan error, len(docs))
		for _, d := range docs {
			go func() {
				for {
					seq, err := change(d)
					if err == nil {
						err = report(d, seq)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		return <-errs
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for {
		touched := map[*converge.Doc]uint64{}
		for range 1 + rng.IntN(20) {
			d := docs[rng.IntN(len(docs))]
			seq, err := change(d)
			if err != nil {
				return err
			}
			touched[d] = seq
		}
		if err := r.Flush(ctx); err != nil {
			return err
		}
		for _, d := range docs {
			if seq, ok := touched[d]; ok {
				if err := report(d, seq); err != nil {
					return err
				}
			}
		}
	}
}

// crashReport is one "durable" line of a child.
type crashReport struct {
	doc  string
	seq  uint64
	hash string
}

// crashRound is what the parent saw of one child.
type crashRound struct {
	actor   string
	reports []crashReport
	stderr  string
}

// runCrashChild starts a child on dir, kills it when kill says, and returns
// what it reported. kill gets a channel closed at the child's first durable
// line.
func runCrashChild(t *testing.T, dir, mode string, seed uint64, compact int, kill func(firstDurable <-chan struct{}, exited <-chan struct{})) crashRound {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		crashDirEnv+"="+dir,
		crashModeEnv+"="+mode,
		crashSeedEnv+"="+strconv.FormatUint(seed, 10),
		crashCompactEnv+"="+strconv.Itoa(compact))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	var round crashRound
	var parseErr error
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		br := bufio.NewReader(stdout)
		gotFirst := false
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return // a last line without its newline was cut by the kill
			}
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "actor":
				round.actor = f[1]
			case len(f) == 4 && f[0] == "durable":
				seq, err := strconv.ParseUint(f[2], 10, 64)
				if err != nil && parseErr == nil {
					parseErr = fmt.Errorf("bad line %q", line)
				}
				round.reports = append(round.reports, crashReport{doc: f[1], seq: seq, hash: f[3]})
				if !gotFirst {
					gotFirst = true
					close(first)
				}
			case len(f) > 0 && (f[0] == "durable" || f[0] == "actor"):
				if parseErr == nil {
					parseErr = fmt.Errorf("bad line %q", line)
				}
			}
		}
	}()
	exited := make(chan struct{})
	var waitErr error
	go func() {
		<-readDone // Wait closes the pipe: read everything first
		waitErr = cmd.Wait()
		close(exited)
	}()
	kill(first, exited)
	_ = cmd.Process.Signal(syscall.SIGKILL) // fails only if it already exited
	<-exited
	round.stderr = stderr.String()
	if parseErr != nil {
		t.Fatalf("child output: %v", parseErr)
	}
	var ee *exec.ExitError
	if !errors.As(waitErr, &ee) {
		t.Fatalf("child: %v (stderr: %s)", waitErr, round.stderr)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended by itself (%v) before it was killed; stderr:\n%s", waitErr, round.stderr)
	}
	return round
}

// crashTally counts what the crash test checked.
type crashTally struct {
	rounds, batchedRounds, earlyKills int
	reported, verified, losses        int
	maxSeq                            map[string]uint64
}

// TestCrashKill9 kills a child editing a replica 50 times, at random
// moments, and checks after each kill that the folder opens, that every
// change reported durable is there, and that the documents hold exactly
// what their history says.
func TestCrashKill9(t *testing.T) {
	rounds := 50
	if n, err := strconv.Atoi(os.Getenv(crashRoundsEnv)); err == nil && n > 0 {
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64); err == nil {
		seed = s
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce the kill schedule with %s=%d", crashSeedEnv, seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	ctx := context.Background()
	models := map[string]*crashModel{}
	for _, id := range crashDocs {
		models[id] = newCrashModel(id)
	}
	tally := crashTally{maxSeq: map[string]uint64{}}
	var actor string
	for round := range rounds {
		mode := "single"
		if round%4 == 3 {
			mode = "batched"
			tally.batchedRounds++
		}
		// 0 leaves compaction to Close (the log grows over the round);
		// small values fold the log in the background, often enough to be
		// killed in the middle of it.
		compact := []int{0, 3, 17, 1000}[rng.IntN(4)]
		var kill func(first, exited <-chan struct{})
		switch k := rng.IntN(4); k {
		case 0:
			// Early: during start-up, Open or the first commits.
			d := time.Duration(rng.Int64N(int64(40 * time.Millisecond)))
			kill = func(_, exited <-chan struct{}) { crashSleep(d, exited) }
		case 1:
			// Just after the first commit, inside the following ones.
			d := time.Duration(rng.Int64N(int64(3 * time.Millisecond)))
			kill = func(first, exited <-chan struct{}) {
				select {
				case <-first:
				case <-exited:
				}
				crashSleep(d, exited)
			}
		default:
			d := 20*time.Millisecond + time.Duration(rng.Int64N(int64(200*time.Millisecond)))
			kill = func(_, exited <-chan struct{}) { crashSleep(d, exited) }
		}
		res := runCrashChild(t, dir, mode, rng.Uint64(), compact, kill)
		tally.rounds++
		if len(res.reports) == 0 {
			tally.earlyKills++
		}
		if actor == "" {
			actor = res.actor
		} else if res.actor != "" && res.actor != actor {
			t.Fatalf("round %d: the child's actor is %s, earlier %s: the folder's actor ID was not kept", round, res.actor, actor)
		}
		checkCrashFolder(t, ctx, dir, round, res, models, &tally)
		if t.Failed() {
			return
		}
	}
	t.Logf("crash test: %d rounds (%d batched, %d killed before any report), %d changes reported durable, %d verified, %d lost; documents reached %v",
		tally.rounds, tally.batchedRounds, tally.earlyKills, tally.reported, tally.verified, tally.losses, tally.maxSeq)
	if tally.reported == 0 {
		t.Fatal("no child ever reported a durable change: the test checked nothing")
	}
}

// crashSleep waits d, or less if the child exits.
func crashSleep(d time.Duration, exited <-chan struct{}) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-exited:
	}
}

// checkCrashFolder opens the folder a killed child left and checks it
// against the child's reports and the models, which it moves forward to
// what the folder holds.
func checkCrashFolder(t *testing.T, ctx context.Context, dir string, round int, res crashRound, models map[string]*crashModel, tally *crashTally) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Errorf("round %d: %s", round, fmt.Sprintf(format, args...))
	}
	r, err := converge.Open(ctx, dir)
	if err != nil {
		t.Fatalf("round %d: opening the folder after the kill: %v", round, err)
	}
	actor := r.Actor()
	if res.actor != "" && res.actor != actor.String() {
		fail("the folder's actor is %s, the child's was %s", actor, res.actor)
	}
	byDoc := map[string][]crashReport{}
	for _, rep := range res.reports {
		byDoc[rep.doc] = append(byDoc[rep.doc], rep)
		tally.reported++
	}
	infos, err := r.Docs(ctx)
	if err != nil {
		fail("listing documents: %v", err)
	}
	listed := map[string]converge.DocInfo{}
	for _, in := range infos {
		if !slices.Contains(crashDocs, in.ID) {
			fail("unexpected document %q listed", in.ID)
		}
		listed[in.ID] = in
	}
	for _, id := range crashDocs {
		m := models[id]
		reps := byDoc[id]
		d, err := r.Doc(ctx, id)
		if err != nil {
			fail("opening %s: %v", id, err)
			continue
		}
		v := d.Version()
		held := v.Get(actor)
		if len(v.Actors()) > 1 || (len(v.Actors()) == 1 && held == 0) {
			fail("%s holds changes of other actors: %v", id, v)
		}
		if in, ok := listed[id]; held > 0 && (!ok || in.Version.Get(actor) != held) {
			fail("%s holds %d changes but the listing says %+v", id, held, in)
		}
		for _, rep := range reps {
			if rep.seq > held {
				tally.losses++
				fail("%s: change %d was reported durable, the folder holds only up to %d", id, rep.seq, held)
			}
		}
		if held < m.seq {
			tally.losses++
			fail("%s went back from %d changes (verified last round) to %d", id, m.seq, held)
			continue
		}
		// Walk the model forward to what is held, checking each reported
		// state on the way.
		i := 0
		for m.seq < held {
			m.step()
			for i < len(reps) && reps[i].seq == m.seq {
				if h := crashHash(m.json()); h != reps[i].hash {
					fail("%s after change %d: the child saw a document hashing to %s, the workload gives %s (%s)", id, m.seq, reps[i].hash, h, m.json())
				} else {
					tally.verified++
				}
				i++
			}
		}
		b, err := d.JSON("")
		if err != nil {
			fail("%s: %v", id, err)
			continue
		}
		got := crashNormalJSON(b)
		if got != m.json() {
			fail("%s after %d changes holds\n%s\nthe workload gives\n%s", id, held, got, m.json())
		}
		h := d.History()
		if uint64(len(h)) != held {
			fail("%s: history has %d changes, version says %d", id, len(h), held)
		}
		for j, c := range h {
			if c.Seq != uint64(j+1) || c.Actor != actor.String() {
				fail("%s: history entry %d is %s/%d", id, j, c.Actor, c.Seq)
				break
			}
		}
		tally.maxSeq[id] = held
	}
	// Close folds every log into a snapshot: a write that fails if the
	// store were left read-only or damaged.
	if err := r.Close(); err != nil {
		fail("closing: %v", err)
	}
	crashIntegrity(t, round, filepath.Join(dir, "replica.db"))
}

// crashIntegrity runs SQLite's own check of every page and index of the
// database the replica closed.
func crashIntegrity(t *testing.T, round int, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("round %d: %v", round, err)
		return
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Errorf("round %d: integrity check: %q %v", round, res, err)
	}
}
