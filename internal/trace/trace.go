package trace

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Errors that Load and ApplySequential wrap, so callers can tell a file that
// is not there (fs.ErrNotExist, from the os error Load wraps) from one that
// is damaged from one that is well-formed but breaks the trace rules.
var (
	// ErrGzip: a .gz file that does not decompress.
	ErrGzip = errors.New("trace: bad gzip data")
	// ErrJSON: the (decompressed) bytes are not JSON of the trace's shape.
	ErrJSON = errors.New("trace: bad JSON")
	// ErrInvalid: well-formed JSON that breaks a rule of the trace format.
	// Errors wrapping it are *InvalidError and say where.
	ErrInvalid = errors.New("trace: invalid trace")
	// ErrConcurrent: ApplySequential was given a concurrent trace, which
	// only a CRDT can replay.
	ErrConcurrent = errors.New("trace: concurrent trace cannot be replayed sequentially")
)

// InvalidError says which rule of the trace format a file breaks, and where.
// It wraps ErrInvalid.
type InvalidError struct {
	Name   string // the trace's name
	Txn    int    // index of the transaction, or -1 if about the whole file
	Patch  int    // index of the patch in Txn, or -1
	Reason string
}

func (e *InvalidError) Error() string {
	switch {
	case e.Txn < 0:
		return fmt.Sprintf("trace %s: invalid: %s", e.Name, e.Reason)
	case e.Patch < 0:
		return fmt.Sprintf("trace %s: invalid: txn %d: %s", e.Name, e.Txn, e.Reason)
	default:
		return fmt.Sprintf("trace %s: invalid: txn %d, patch %d: %s", e.Name, e.Txn, e.Patch, e.Reason)
	}
}

func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Trace is one editing history.
type Trace struct {
	// Name is the file name without .json.gz (or .json).
	Name string
	// EndContent is the text every correct replay ends with.
	EndContent string
	// NumAgents is the number of replicas of a concurrent trace; 1 for a
	// sequential trace (one author).
	NumAgents int
	Txns      []Txn

	concurrent bool
}

// Txn is one transaction: patches applied together, in order.
type Txn struct {
	// Agent is the replica that made the transaction (0 in a sequential trace).
	Agent int
	// Parents are the indexes of the earlier transactions this one comes
	// causally after (nil in a sequential trace). Two or more: that agent
	// merged those versions first.
	Parents []int
	Patches []Patch
}

// Patch deletes Del code points at Pos, then inserts Ins at Pos.
type Patch struct {
	Pos, Del int
	Ins      string
}

// Concurrent reports whether the trace records agents and parents, so that
// replaying it needs one replica per agent and merges.
func (t *Trace) Concurrent() bool { return t.concurrent }

// NumPatches is the number of patches in all transactions: what the traces'
// README counts as edits, and what benchmarks report as ops.
func (t *Trace) NumPatches() int {
	n := 0
	for i := range t.Txns {
		n += len(t.Txns[i].Patches)
	}
	return n
}

// Name returns the trace name for a file path: its base name without
// .json.gz or .json.
func Name(path string) string {
	base := filepath.Base(path)
	for _, ext := range []string{".json.gz", ".json"} {
		if strings.HasSuffix(base, ext) {
			return strings.TrimSuffix(base, ext)
		}
	}
	return base
}

// Load reads a trace from a .json.gz or plain .json file and checks its
// structure: shapes of all values, agents in range, parents pointing to
// earlier transactions. Positions are checked by replaying (ApplySequential).
func Load(path string) (*Trace, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	name := Name(path)
	if strings.HasSuffix(path, ".gz") {
		raw, err = gunzip(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrGzip, path, err)
		}
	}
	return decode(name, raw)
}

// gunzip decompresses all of b at once. The gzip trailer holds the
// uncompressed size (mod 2^32); allocating that up front avoids growing and
// copying the output again and again, which is most of the cost of a naive
// io.ReadAll on the larger traces. The size is only a hint, capped so that a
// forged trailer cannot make us allocate without bound.
func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	var out bytes.Buffer
	if len(b) >= 4 {
		hint := int64(binary.LittleEndian.Uint32(b[len(b)-4:]))
		// Text rarely compresses beyond 1:100; the hint is only trusted that far.
		if limit := int64(len(b)) * 100; hint > limit {
			hint = limit
		}
		out.Grow(int(hint) + bytes.MinRead)
	}
	if _, err := io.Copy(&out, zr); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// The file's JSON shape. Pointers tell a missing key from a zero value.
// Patches stay raw so that a badly shaped one is reported with its location.
type fileJSON struct {
	StartContent *string   `json:"startContent"`
	EndContent   *string   `json:"endContent"`
	NumAgents    *int      `json:"numAgents"`
	Txns         []txnJSON `json:"txns"`
}

type txnJSON struct {
	Agent   *int              `json:"agent"`
	Parents []int             `json:"parents"`
	Patches []json.RawMessage `json:"patches"`
}

func decode(name string, raw []byte) (*Trace, error) {
	var f fileJSON
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrJSON, name, err)
	}
	invalid := func(txn, patch int, format string, args ...any) error {
		return &InvalidError{Name: name, Txn: txn, Patch: patch, Reason: fmt.Sprintf(format, args...)}
	}
	if f.EndContent == nil {
		return nil, invalid(-1, -1, "no endContent")
	}
	if f.Txns == nil {
		return nil, invalid(-1, -1, "no txns")
	}
	// Every known trace starts empty; a start text would need every consumer
	// to seed its document, so it is refused rather than ignored.
	if f.StartContent != nil && *f.StartContent != "" {
		return nil, invalid(-1, -1, "non-empty startContent is not supported")
	}
	t := &Trace{Name: name, EndContent: *f.EndContent, NumAgents: 1, Txns: make([]Txn, len(f.Txns))}
	t.concurrent = f.NumAgents != nil
	for i := range f.Txns {
		if f.Txns[i].Agent != nil || f.Txns[i].Parents != nil {
			t.concurrent = true
			break
		}
	}
	if t.concurrent {
		if f.NumAgents == nil || *f.NumAgents < 1 {
			return nil, invalid(-1, -1, "concurrent trace needs numAgents ≥ 1")
		}
		t.NumAgents = *f.NumAgents
	}
	for i := range f.Txns {
		ft := &f.Txns[i]
		txn := &t.Txns[i]
		if t.concurrent {
			if ft.Agent == nil {
				return nil, invalid(i, -1, "no agent")
			}
			if *ft.Agent < 0 || *ft.Agent >= t.NumAgents {
				return nil, invalid(i, -1, "agent %d out of range [0, %d)", *ft.Agent, t.NumAgents)
			}
			txn.Agent = *ft.Agent
			// An absent list would silently make the txn a root of the history.
			if ft.Parents == nil {
				return nil, invalid(i, -1, "no parents list")
			}
			for _, p := range ft.Parents {
				// Parents must come earlier: the file order is then a causal
				// order, which replays rely on.
				if p < 0 || p >= i {
					return nil, invalid(i, -1, "parent %d is not an earlier txn", p)
				}
			}
			// Never nil in a concurrent trace (checked above), so that "no
			// parents" (the first txn) is told apart from "sequential".
			txn.Parents = ft.Parents
		}
		txn.Patches = make([]Patch, len(ft.Patches))
		for j, rp := range ft.Patches {
			p, err := parsePatch(rp)
			if err != nil {
				return nil, invalid(i, j, "%v", err)
			}
			txn.Patches[j] = p
		}
	}
	return t, nil
}

// parsePatch reads [pos, numDeleted, "inserted"]. b is valid JSON (the
// decoder has checked it), so only the shape is in question. Doing this by
// hand rather than through encoding/json's interface{} path keeps the load
// of the largest trace several times faster.
func parsePatch(b []byte) (Patch, error) {
	var p Patch
	errShape := errPatchShape{b}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return p, errShape
	}
	var ok bool
	var err error
	for k, dst := range []*int{&p.Pos, &p.Del} {
		if i, ok = expectSep(b, i, k); !ok {
			return p, errShape
		}
		start := i
		for i < len(b) && (b[i] == '-' || b[i] >= '0' && b[i] <= '9' || b[i] == '.' || b[i] == 'e' || b[i] == 'E' || b[i] == '+') {
			i++
		}
		if *dst, err = strconv.Atoi(string(b[start:i])); err != nil {
			return p, fmt.Errorf("%s must be an integer, got %q", [...]string{"pos", "numDeleted"}[k], b[start:i])
		}
		if *dst < 0 {
			return p, fmt.Errorf("%s must not be negative, got %d", [...]string{"pos", "numDeleted"}[k], *dst)
		}
	}
	if i, ok = expectSep(b, i, 2); !ok || i >= len(b) || b[i] != '"' {
		return p, errShape
	}
	start := i
	escaped := false
	for i++; i < len(b) && b[i] != '"'; i++ {
		if b[i] == '\\' {
			escaped = true
			i++
		}
	}
	if i >= len(b) {
		return p, errShape
	}
	lit := b[start : i+1]
	if escaped || !utf8.Valid(lit) {
		// encoding/json does the unescaping, and replaces invalid UTF-8 the
		// same way it would for any other string of the file.
		if err := json.Unmarshal(lit, &p.Ins); err != nil {
			return p, errShape
		}
	} else {
		p.Ins = string(lit[1 : len(lit)-1])
	}
	if i = skipSpace(b, i+1); i >= len(b) || b[i] != ']' || skipSpace(b, i+1) != len(b) {
		return p, errShape
	}
	return p, nil
}

// errPatchShape is built only on failure: formatting a message for every
// patch up front would cost more than parsing them.
type errPatchShape struct{ b []byte }

func (e errPatchShape) Error() string {
	return fmt.Sprintf("patch must be [pos, numDeleted, \"inserted\"], got %.40s", e.b)
}

// expectSep moves past the separator before element k of the array ('['
// already seen for k = 0, which needs none) and any space around it.
func expectSep(b []byte, i, k int) (int, bool) {
	if k == 0 {
		return skipSpace(b, i+1), true
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ',' {
		return i, false
	}
	return skipSpace(b, i+1), true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// ApplySequential replays a sequential trace on a plain rune slice and
// returns the final text. It is deliberately the simplest correct replay:
// the oracle that engines are checked against. A patch reaching past the end
// of the text is reported as an *InvalidError.
func (t *Trace) ApplySequential() (string, error) {
	if t.concurrent {
		return "", fmt.Errorf("%w: %s", ErrConcurrent, t.Name)
	}
	var doc []rune
	for i, txn := range t.Txns {
		for j, p := range txn.Patches {
			if p.Pos > len(doc) || p.Del > len(doc)-p.Pos {
				return "", &InvalidError{Name: t.Name, Txn: i, Patch: j, Reason: fmt.Sprintf(
					"position %d, delete %d: past the end of the text (length %d)", p.Pos, p.Del, len(doc))}
			}
			doc = slices.Replace(doc, p.Pos, p.Pos+p.Del, []rune(p.Ins)...)
		}
	}
	return string(doc), nil
}
