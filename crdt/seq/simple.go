package seq

import (
	"fmt"
	"strings"
)

// Simple is the reference Sequence: a slice of elements in document order,
// every lookup a linear scan. It is slow (O(n) per operation) and kept for
// its obvious correctness: faster engines are tested against it.
type Simple struct {
	elems   []element
	visible int
}

type element struct {
	id          ID
	left, right ID
	char        rune
	visible     bool
}

var _ Sequence = (*Simple)(nil)

// NewSimple returns an empty reference sequence.
func NewSimple() *Simple { return &Simple{} }

func (s *Simple) Len() int { return s.visible }

// find returns the slice index of id, or -1.
func (s *Simple) find(id ID) int {
	for i := range s.elems {
		if s.elems[i].id == id {
			return i
		}
	}
	return -1
}

// pos returns the slice position of visible index i: the first element after
// visible element i-1 and its tombstones.
func (s *Simple) pos(i int) (int, error) {
	if i < 0 || i > s.visible {
		return 0, fmt.Errorf("%w: index %d, length %d", ErrOutOfRange, i, s.visible)
	}
	p := 0
	for ; p < len(s.elems); p++ {
		if s.elems[p].visible {
			if i == 0 {
				break
			}
			i--
		}
	}
	return p, nil
}

func (s *Simple) Origins(i int) (left, right ID, err error) {
	p, err := s.pos(i)
	if err != nil {
		return ID{}, ID{}, err
	}
	if p > 0 {
		left = s.elems[p-1].id
	}
	if p < len(s.elems) {
		right = s.elems[p].id
	}
	return left, right, nil
}

func (s *Simple) InsertAt(i int, id ID, n int, text string, left, right *ID) error {
	l, r, err := s.Origins(i)
	if err != nil {
		return err
	}
	if _, err := s.Insert(id, n, l, r, text); err != nil {
		return err
	}
	*left, *right = l, r
	return nil
}

func (s *Simple) HideAt(i, n int) ([]Run, error) {
	runs, err := s.Spans(i, n)
	if err != nil {
		return nil, err
	}
	for k := range runs {
		if _, err := s.SetVisible(runs[k].Start, runs[k].Len, false); err != nil {
			return nil, err
		}
		runs[k].Index = i
	}
	return runs, nil
}

func (s *Simple) Has(id ID, n int) bool {
	for k := 0; k < n; k++ {
		if s.find(id.Add(uint64(k))) < 0 {
			return false
		}
	}
	return true
}

func (s *Simple) Insert(id ID, n int, left, right ID, text string) (int, error) {
	runes := []rune(text)
	if n <= 0 || (len(runes) != 0 && len(runes) != n) {
		return 0, fmt.Errorf("seq: insert of %d elements with %d characters", n, len(runes))
	}
	if !ownRange(id, n) {
		// Counter 0 is the zero ID's (start or end), and a range that wraps
		// around would name it too.
		return 0, fmt.Errorf("%w: insert of %d elements from %v", ErrOutOfRange, n, id)
	}
	for k := 0; k < n; k++ {
		if s.find(id.Add(uint64(k))) >= 0 {
			return 0, fmt.Errorf("%w: %v", ErrDuplicate, id.Add(uint64(k)))
		}
	}
	// originIndex maps an origin to its slice index: -1 for the start,
	// len(elems) for the end.
	originIndex := func(o ID, end int) (int, bool) {
		if o.IsZero() {
			return end, true
		}
		p := s.find(o)
		return p, p >= 0
	}
	l, ok := originIndex(left, -1)
	if !ok {
		return 0, fmt.Errorf("%w: left origin %v", ErrUnknownElement, left)
	}
	r, ok := originIndex(right, len(s.elems))
	if !ok {
		return 0, fmt.Errorf("%w: right origin %v", ErrUnknownElement, right)
	}
	if r <= l {
		return 0, fmt.Errorf("seq: right origin %v is not after left origin %v", right, left)
	}
	first := s.integrate(id, l, r)
	s.place(first, element{id: id, left: left, right: right, visible: true, char: at(runes, 0)})
	for k := 1; k < n; k++ {
		// Each further element goes directly after the previous one: with the
		// previous element as its left origin nothing can sit between them
		// yet, so the scan would stop at once.
		s.place(first+k, element{id: id.Add(uint64(k)), left: id.Add(uint64(k - 1)), right: right, visible: true, char: at(runes, k)})
	}
	return s.visibleBefore(first), nil
}

func at(r []rune, k int) rune {
	if len(r) == 0 {
		return 0
	}
	return r[k]
}

// integrate finds the slice position for a new element whose origins sit at
// slice positions l and r, by the FugueMax (YjsMod) rule.
func (s *Simple) integrate(id ID, l, r int) int {
	dest := l + 1
	scanning := false
	for i := l + 1; ; i++ {
		if !scanning {
			dest = i
		}
		if i == len(s.elems) || i == r {
			break
		}
		other := &s.elems[i]
		ol, _ := originIndexOf(s, other.left, -1)
		or, _ := originIndexOf(s, other.right, len(s.elems))
		if ol < l || (ol == l && or == r && id.Actor.Compare(other.id.Actor) < 0) {
			break
		}
		if ol == l {
			scanning = or < r
		}
	}
	return dest
}

func originIndexOf(s *Simple, o ID, none int) (int, bool) {
	if o.IsZero() {
		return none, true
	}
	p := s.find(o)
	return p, p >= 0
}

func (s *Simple) place(p int, e element) {
	s.elems = append(s.elems, element{})
	copy(s.elems[p+1:], s.elems[p:])
	s.elems[p] = e
	s.visible++
}

func (s *Simple) visibleBefore(p int) int {
	n := 0
	for i := 0; i < p; i++ {
		if s.elems[i].visible {
			n++
		}
	}
	return n
}

func (s *Simple) Remove(id ID, n int) error {
	if n < 0 {
		return fmt.Errorf("%w: count %d", ErrOutOfRange, n)
	}
	// Check first, so that a failed call changes nothing.
	if !s.Has(id, n) {
		return fmt.Errorf("%w: %v (+%d)", ErrUnknownElement, id, n)
	}
	for k := n - 1; k >= 0; k-- {
		p := s.find(id.Add(uint64(k)))
		if s.elems[p].visible {
			s.visible--
		}
		s.elems = append(s.elems[:p], s.elems[p+1:]...)
	}
	return nil
}

func (s *Simple) SetVisible(id ID, n int, visible bool) ([]Run, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: count %d", ErrOutOfRange, n)
	}
	if !s.Has(id, n) {
		return nil, fmt.Errorf("%w: %v (+%d)", ErrUnknownElement, id, n)
	}
	var runs []Run
	vis := 0 // visible elements before position p, in the state as updated so far
	for p := range s.elems {
		e := &s.elems[p]
		in := e.id.Actor == id.Actor && e.id.Counter >= id.Counter && e.id.Counter < id.Counter+uint64(n)
		if in && e.visible != visible {
			e.visible = visible
			if visible {
				s.visible++
			} else {
				s.visible--
			}
			if last := len(runs) - 1; last >= 0 && p > 0 && s.elems[p-1].id.Add(1) == e.id &&
				runs[last].Start.Add(uint64(runs[last].Len)) == e.id {
				runs[last].Len++
			} else {
				runs = append(runs, Run{Index: vis, Start: e.id, Len: 1})
			}
		}
		if e.visible {
			vis++
		}
	}
	return runs, nil
}

func (s *Simple) IDAt(i int) (ID, error) {
	if i < 0 || i >= s.visible {
		return ID{}, fmt.Errorf("%w: index %d, length %d", ErrOutOfRange, i, s.visible)
	}
	p, _ := s.pos(i)
	return s.elems[p].id, nil
}

func (s *Simple) Spans(i, n int) ([]Run, error) {
	if i < 0 || n < 0 || i > s.visible || n > s.visible-i {
		return nil, fmt.Errorf("%w: %d+%d, length %d", ErrOutOfRange, i, n, s.visible)
	}
	var runs []Run
	p, _ := s.pos(i)
	prev := -1
	for idx := i; n > 0; p++ {
		e := s.elems[p]
		if !e.visible {
			continue
		}
		if last := len(runs) - 1; last >= 0 && prev == p-1 && runs[last].Start.Add(uint64(runs[last].Len)) == e.id {
			runs[last].Len++
		} else {
			runs = append(runs, Run{Index: idx, Start: e.id, Len: 1})
		}
		prev = p
		idx++
		n--
	}
	return runs, nil
}

func (s *Simple) Runs(fn func(first ID, n int)) {
	runs, _ := s.Spans(0, s.Len()) // cannot fail: the whole sequence
	for _, r := range runs {
		fn(r.Start, r.Len)
	}
}

func (s *Simple) Index(id ID) (int, bool, bool) {
	p := s.find(id)
	if p < 0 {
		return 0, false, false
	}
	return s.visibleBefore(p), s.elems[p].visible, true
}

func (s *Simple) Text() string {
	var b strings.Builder
	for _, e := range s.elems {
		if e.visible {
			b.WriteRune(e.char)
		}
	}
	return b.String()
}

func (s *Simple) Slice(i, n int) (string, error) {
	if i < 0 || n < 0 || i > s.visible || n > s.visible-i {
		return "", fmt.Errorf("%w: %d+%d, length %d", ErrOutOfRange, i, n, s.visible)
	}
	var b strings.Builder
	p, _ := s.pos(i)
	for ; n > 0; p++ {
		if s.elems[p].visible {
			b.WriteRune(s.elems[p].char)
			n--
		}
	}
	return b.String(), nil
}
