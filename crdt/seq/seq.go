package seq

import (
	"errors"

	"github.com/converge-sync/converge/causal"
)

// ID names one element: the OpID of its insert. The zero ID stands for the
// start (as a left origin) or the end (as a right origin) of the sequence.
type ID = causal.OpID

// Errors returned for operations that name elements the sequence lacks or
// break its rules. The document model validates remote changes with them.
var (
	ErrUnknownElement = errors.New("seq: unknown element")
	ErrDuplicate      = errors.New("seq: element already present")
	ErrOutOfRange     = errors.New("seq: index out of range")
)

// Run is a stretch of elements with consecutive IDs (Start, Start+1, …,
// Start+Len-1) that are also adjacent in the sequence, at visible index
// Index. Operations that change visibility report what they changed as runs,
// in the order in which applying them one after another (each index read
// against the state left by the runs before it) reproduces the change.
type Run struct {
	Index int
	Start ID
	Len   int
}

// Sequence is an ordered sequence of elements with FugueMax merge semantics.
// Implementations must give identical results for identical calls: the
// document model's determinism rests on it.
type Sequence interface {
	// Len is the number of visible elements.
	Len() int

	// Origins returns the origins for a local insert at visible index i
	// (0 ≤ i ≤ Len()): the element is placed after any tombstones that follow
	// visible element i-1, directly before visible element i. left is the
	// element just before that point (visible or not; zero at the start) and
	// right the one just after it (zero at the end).
	Origins(i int) (left, right ID, err error)

	// Insert integrates n elements with IDs id, id+1, …, id+n-1 by the
	// FugueMax rule: the first between left and right, each next one directly
	// after the one before (its left origin) with the same right origin. text
	// holds the elements' characters (n runes) for a text, or is empty for a
	// list. It returns the visible index of the first element. left and right
	// must be present (or zero); the IDs must be new.
	Insert(id ID, n int, left, right ID, text string) (int, error)

	// InsertAt is a local insert at visible index i: Origins(i), then
	// Insert(id, n, left, right, text) with those origins, in one step and
	// with the same results and errors. It writes the origins, which the
	// op records, to *left and *right (only if it succeeds): straight
	// into the op, since an ID holds a 16-byte array, which Go passes in
	// memory, and copying two across the call showed. The elements' index
	// is i.
	InsertAt(i int, id ID, n int, text string, left, right *ID) error

	// HideAt is a local delete of the n visible elements from index i:
	// Spans(i, n), then SetVisible(run.Start, run.Len, false) for each run,
	// in one step and with the same errors. It returns Spans' runs, each
	// with the Index it has when the runs before it are hidden (i: they
	// follow one another), so that removing them one after another
	// reproduces the change. The slice is valid until the next call.
	HideAt(i, n int) ([]Run, error)

	// Remove takes out the n elements id…id+n-1 entirely, as if never
	// inserted. It exists to roll back a transaction and is only valid for
	// elements that no present element names as an origin.
	Remove(id ID, n int) error

	// SetVisible makes the elements id…id+n-1 visible or invisible, and
	// returns the runs whose visibility changed (elements already in the
	// wanted state are skipped). Every ID must be present.
	SetVisible(id ID, n int, visible bool) ([]Run, error)

	// IDAt returns the ID of the visible element at index i.
	IDAt(i int) (ID, error)

	// Spans returns the IDs of the n visible elements from index i, as runs
	// of consecutive IDs, in order. Run.Index is the index of each run's first
	// element.
	Spans(i, n int) ([]Run, error)

	// Runs calls fn for every visible element, in order, in runs of
	// consecutive IDs: first is the ID of a run's first element and n their
	// number. Where runs are cut is the engine's own choice (two engines may
	// cut the same elements differently); walking them all costs one step
	// per run, not per element.
	Runs(fn func(first ID, n int))

	// Index returns the number of visible elements before id, and whether id
	// itself is visible. ok is false if id is not present.
	Index(id ID) (index int, visible bool, ok bool)

	// Has reports whether every element id…id+n-1 is present.
	Has(id ID, n int) bool

	// Text returns the visible characters (text sequences only).
	Text() string

	// Slice returns n visible characters from index i (text sequences only).
	Slice(i, n int) (string, error)
}
