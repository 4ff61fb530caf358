package encoding

import (
	"errors"
	"fmt"
	"slices"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/crdt/seq"
)

// StateOf walks a document's visible values into a State: the only place
// where this package reads a crdt.Doc.
func StateOf(d *crdt.Doc) *State {
	return &State{Root: nodeOf(d, crdt.NewMap(), crdt.Root)}
}

func nodeOf(d *crdt.Doc, v crdt.Value, obj crdt.ObjID) *Node {
	n := &Node{Kind: v.Kind()}
	switch v.Kind() {
	case crdt.KindMap:
		n.Obj = obj
		n.Keys = d.Keys(obj)
		for _, k := range n.Keys {
			c, _ := d.Get(obj, k)
			n.Items = append(n.Items, nodeOf(d, c, c.Obj()))
		}
	case crdt.KindList:
		n.Obj = obj
		for i := 0; i < d.Len(obj); i++ {
			c, _ := d.GetIndex(obj, i)
			n.Items = append(n.Items, nodeOf(d, c, c.Obj()))
		}
	case crdt.KindText:
		n.Obj, n.Text = obj, d.Text(obj)
	default:
		n.Value = v
	}
	return n
}

// SaveDoc encodes a document with its state and full history. A document
// kept with a History (see NewHistory) whose changes arrived in canonical
// order is saved without decoding its history (see History.save). The
// document tells where each character of its history is in its text, so
// the history's text is placed without searching (see textPlaces): the
// same document always saves to the same bytes, though not always to
// EncodeDocument's.
func SaveDoc(d *crdt.Doc, opt Options) ([]byte, error) {
	h, _ := d.History().(*History)
	if h == nil {
		return encodeDocument(StateOf(d), d.Changes(), opt, d)
	}
	st, b, ok, err := h.saveWith(d, opt)
	if ok {
		return b, err
	}
	return encodeDocument(st, d.Changes(), opt, d)
}

// saveWith is SaveDoc of d, whose history h is, with every change h was
// given written. ok is false if h is not the canonical history section;
// st is then d's state, for the usual way.
func (h *History) saveWith(d *crdt.Doc, opt Options) (st *State, b []byte, ok bool, err error) {
	h.settle()
	defer h.mu.Unlock()
	sv := h.startSave(opt)
	st = StateOf(d)
	b, ok, err = h.save(st, placesOf(d, st, h.actors), sv, opt)
	return st, b, ok, err
}

// canonical reports whether h is still the canonical history section
// (see History).
func (h *History) canonical() bool {
	h.settle()
	defer h.mu.Unlock()
	return h.whole != nil
}

// SaveDocLater reads from d what saving it needs and returns the rest of
// the save, which reads nothing of d and may run while d changes: a caller
// that holds a lock while it reads d can release it before calling save.
// A document whose history SaveDoc writes without decoding it is saved at
// once (it takes a millisecond or two per hundred thousand keystrokes).
// Otherwise (a history that arrived out of canonical order, as a server's
// do) the state and the changes are read now, and save encodes them as
// EncodeDocument does: reading is about a third of the work, and the bytes
// are EncodeDocument's, not SaveDoc's (see SaveDoc).
func SaveDocLater(d *crdt.Doc, opt Options) (save func() ([]byte, error)) {
	if h, _ := d.History().(*History); h != nil && h.canonical() {
		b, err := SaveDoc(d, opt)
		return func() ([]byte, error) { return b, err }
	}
	st, cs := StateOf(d), d.Changes()
	return func() ([]byte, error) { return encodeDocument(st, cs, opt, nil) }
}

// LoadDoc decodes a saved document and loads its history into a
// crdt.Doc whose local changes will be made by actor. The document keeps
// its history in a compact History.
//
// The history is decoded and applied loadBatch changes at a time, so that
// a long one (tens of millions of keystrokes) never stands in memory as
// Change structs all at once. A section in text mode 1 is read twice: its
// texts are rebuilt from which characters are deleted, which only the
// whole section tells, so a first pass learns that and the second places
// each op's text as it reads it.
//
// A document saved as one chunk whose history has no concurrency (each
// change depends on the one before it), the usual document of one writer
// or of writers taking turns, is not replayed op by op: its texts are
// built from their final order, worked out from the whole history
// (textorder.go), and only the rest of each change goes through
// crdt.Doc.Apply. Anything the texts' order cannot be worked out for is
// replayed, and gives the same document either way (the tests compare
// both ways on the editing traces and random histories).
func LoadDoc(b []byte, actor causal.ActorID) (*crdt.Doc, error) {
	d, _, err := loadDoc(b, actor)
	return d, err
}

// loadDoc is LoadDoc, reporting whether the texts were built from their
// final order.
func loadDoc(b []byte, actor causal.ActorID) (*crdt.Doc, bool, error) {
	saved, err := DecodeDocument(b)
	if err != nil {
		return nil, false, err
	}
	if len(saved.chunks) == 1 {
		// One chunk: its texts are built from their final order, if the
		// history allows (textorder.go), else replayed.
		d := newLoadedDoc(actor)
		t := newTextOrder()
		err := loadChunk(d, saved.chunks[0], t)
		if err != errNotPlaced {
			d, err = finishLoad(d, err)
			return d, t.placed, err
		}
	}
	d, err := loadReplay(saved, actor)
	return d, false, err
}

// errNotPlaced: the history's texts cannot be built from their final
// order (textorder.go); LoadDoc replays it instead.
var errNotPlaced = errors.New("encoding: texts not placed")

func newLoadedDoc(actor causal.ActorID) *crdt.Doc {
	d := crdt.NewDoc(actor, crdt.WithHistory(NewHistory()))
	// The replay's patches would be thrown away: not making them halves
	// the time a big document takes to load. Later changes make patches.
	d.SetPatches(false)
	return d
}

func finishLoad(d *crdt.Doc, err error) (*crdt.Doc, error) {
	if err != nil {
		return nil, err
	}
	d.SetPatches(true)
	return d, nil
}

// loadReplay is LoadDoc applying every op of the history, text ops
// included, through crdt.Doc.Apply.
func loadReplay(saved *Document, actor causal.ActorID) (*crdt.Doc, error) {
	d := newLoadedDoc(actor)
	for i, ch := range saved.chunks {
		// A change saved in two chunks is applied once: Apply ignores
		// what the document has.
		if err := loadChunk(d, ch, nil); err != nil {
			if fe, ok := err.(*FormatError); ok && len(saved.chunks) > 1 {
				fe.Section = fmt.Sprintf("chunk %d %s", i, fe.Section)
			}
			return nil, err
		}
	}
	return finishLoad(d, nil)
}

// loadBatch is how many changes LoadDoc decodes and applies at a time.
const loadBatch = 4096

// onePassChanges is the longest text mode 1 history LoadDoc replays in
// one pass, holding all its changes (some 90 MB of them at most), when it
// does not build the texts from their final order (which reads in two
// passes: the batches' memory, recycled, costs less than holding every
// change: 140 against 165 ms of CPU for automerge-paper when this was
// measured). A variable for the tests.
var onePassChanges = 1 << 18

func loadChunk(d *crdt.Doc, ch chunk, t *textOrder) error {
	body, err := ch.history.open()
	if err != nil {
		return err
	}
	return loadHistory(d, body, ch.actors, stateDict(ch.state), ch.tail, ch.version, t)
}

// loadHistory applies the changes of a history section to d, in batches.
// With t, the texts are built by t from their final order and the
// changes applied without their text ops, if the history has no
// concurrency; otherwise (t is then left unused) every op is applied. If
// t finds it cannot build a text after all, a history read at once is
// applied whole instead, and one read in batches fails with errNotPlaced
// (d is then half loaded, to be dropped).
func loadHistory(d *crdt.Doc, body []byte, actors []causal.ActorID, dict, tail []byte, version byte, t *textOrder) error {
	open := func() (*historyStream, error) {
		return openHistory(body, actors, dict, tail, version, false) // saved by this program
	}
	s, err := open()
	if err != nil {
		return err
	}
	// A history short enough to hold at once is read in one pass and held:
	// in text mode 1 when replaying (texts rebuilt at the end; building
	// texts reads it in two passes, see onePassChanges), in text mode 0
	// when building texts (they are built once every change is read; the
	// replay applies text mode 0 batch after batch).
	if s.changesLeft <= onePassChanges && s.h.derived == (t == nil) {
		s.h.arena = &arena{}
		if s.h.derived {
			s.h.dr.waiting = make([]waitingOp, 0, s.opsLeft)
		}
		cs, err := s.next(nil, s.changesLeft)
		if err != nil {
			return err
		}
		if err := s.finish(); err != nil {
			return err
		}
		if t != nil {
			for _, c := range cs {
				t.change(c)
			}
			if texts, ok := t.build(); ok {
				if applyPlaced(d, cs, texts) == nil {
					t.placed = true
					return nil
				}
				return errNotPlaced // d has changes applied: start again
			}
		}
		_, err = d.Apply(cs...)
		return err
	}
	// The document keeps nothing of the changes it applies (its History
	// copies them) but those it holds for missing dependencies: the
	// batches of both passes share their memory until one is held.
	recycle := &recycled{}
	if s.h.derived {
		s.h.skim, s.h.dr.noKids = true, true
		s.recycle = recycle // the skimmed changes are dropped
		var prevID causal.ChangeID
		for s.changesLeft > 0 {
			s.h.arena = &arena{}
			cs, err := s.next(nil, loadBatch)
			if err != nil {
				return err
			}
			for _, c := range cs {
				// Texts are built from their final order only for a
				// history with no concurrency (see below).
				if t != nil && prevID.Seq != 0 && !follows(c, prevID) {
					t = nil
				}
				prevID = c.ID()
			}
		}
		if err := s.finish(); err != nil {
			return err
		}
		deleted := s.h.dr.markAll()
		if s, err = open(); err != nil {
			return err
		}
		s.h.dr.startPlacing(deleted, dict, tail)
		s.h.dr.deltas = s.h.u[colTextSeg]
	}
	s.recycle = recycle
	d.LeaveOutTextOps(t != nil)
	defer d.LeaveOutTextOps(false)
	var prev *crdt.Change
	var prevID causal.ChangeID
	for s.changesLeft > 0 {
		s.h.arena = &arena{}
		cs, err := s.next(nil, loadBatch)
		if err != nil {
			return err
		}
		if t != nil {
			for _, c := range cs {
				// Only a history with no concurrency is tried: in
				// another, some insert is likely to fail the check at
				// the end, and the whole load to be done again.
				if prev != nil && !follows(c, prevID) {
					return errNotPlaced
				}
				prev, prevID = c, c.ID()
				t.change(c)
			}
			if t.failed {
				return errNotPlaced
			}
		}
		if _, err := d.Apply(cs...); err != nil {
			if t != nil {
				return errNotPlaced // the replay says why
			}
			return err
		}
		if len(d.Pending()) > 0 {
			if t != nil {
				return errNotPlaced
			}
			s.recycle = nil
		}
	}
	if err := s.finish(); err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	d.LeaveOutTextOps(false)
	texts, ok := t.build()
	if !ok || installTexts(d, texts) != nil {
		return errNotPlaced
	}
	t.placed = true
	return nil
}

// follows reports whether c depends on the change prev directly.
func follows(c *crdt.Change, prev causal.ChangeID) bool {
	return c.Actor == prev.Actor && c.Seq == prev.Seq+1 || slices.Contains(c.Deps, prev)
}

// applyPlaced applies cs to d leaving their text ops out, and installs
// the texts built from them. Any error means the fast way went wrong
// somewhere (the replay will tell where): d is to be dropped.
func applyPlaced(d *crdt.Doc, cs []*crdt.Change, texts map[crdt.ObjID]*seq.Fast) error {
	d.LeaveOutTextOps(true)
	_, err := d.Apply(cs...)
	d.LeaveOutTextOps(false)
	if err != nil {
		return err
	}
	if len(d.Pending()) > 0 {
		return errNotPlaced
	}
	return installTexts(d, texts)
}

func installTexts(d *crdt.Doc, texts map[crdt.ObjID]*seq.Fast) error {
	for obj, f := range texts {
		if err := d.SetTextSequence(obj, f); err != nil {
			return err
		}
	}
	return nil
}

// replayState computes the state of a history by applying it to a
// read-only document (the zero actor makes no changes).
func replayState(cs []*crdt.Change) (*State, error) {
	d := crdt.NewDoc(causal.ActorID{})
	d.SetPatches(false) // only the state is wanted
	if _, err := d.Apply(cs...); err != nil {
		return nil, err
	}
	return StateOf(d), nil
}
