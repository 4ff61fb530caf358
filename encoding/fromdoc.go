package encoding

import (
	"fmt"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
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
	sv := h.startSave(opt)
	st := StateOf(d)
	if h != nil {
		if b, ok, err := h.save(st, placesOf(d, st, h.actors), sv, opt); ok {
			return b, err
		}
	}
	return encodeDocument(st, d.Changes(), opt, d)
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
	if h, _ := d.History().(*History); h != nil && h.whole != nil {
		b, err := SaveDoc(d, opt)
		return func() ([]byte, error) { return b, err }
	}
	st, cs := StateOf(d), d.Changes()
	return func() ([]byte, error) { return encodeDocument(st, cs, opt, nil) }
}

// LoadDoc decodes a saved document and replays its history into a
// crdt.Doc whose local changes will be made by actor. The document keeps
// its history in a compact History.
//
// The history is decoded and applied loadBatch changes at a time, so that
// a long one (tens of millions of keystrokes) never stands in memory as
// Change structs all at once. A section in text mode 1 is read twice: its
// texts are rebuilt from which characters are deleted, which only the
// whole section tells, so a first pass learns that and the second places
// each op's text as it reads it.
func LoadDoc(b []byte, actor causal.ActorID) (*crdt.Doc, error) {
	saved, err := DecodeDocument(b)
	if err != nil {
		return nil, err
	}
	d := crdt.NewDoc(actor, crdt.WithHistory(NewHistory()))
	// The replay's patches would be thrown away: not making them halves
	// the time a big document takes to load. Later changes make patches.
	d.SetPatches(false)
	for i, ch := range saved.chunks {
		// A change saved in two chunks is applied once: Apply ignores
		// what the document has.
		if err := loadChunk(d, ch); err != nil {
			if fe, ok := err.(*FormatError); ok && len(saved.chunks) > 1 {
				fe.Section = fmt.Sprintf("chunk %d %s", i, fe.Section)
			}
			return nil, err
		}
	}
	d.SetPatches(true)
	return d, nil
}

// loadBatch is how many changes LoadDoc decodes and applies at a time.
const loadBatch = 4096

// onePassChanges is the longest text mode 1 history LoadDoc decodes in one
// pass, holding all its changes (some 90 MB of them at most): reading it
// twice would cost more time than the memory is worth. A variable for the
// tests.
var onePassChanges = 1 << 18

func loadChunk(d *crdt.Doc, ch chunk) error {
	body, err := ch.history.open()
	if err != nil {
		return err
	}
	return loadHistory(d, body, ch.actors, stateDict(ch.state), ch.tail, ch.version)
}

// loadHistory applies the changes of a history section to d, in batches.
func loadHistory(d *crdt.Doc, body []byte, actors []causal.ActorID, dict, tail []byte, version byte) error {
	open := func() (*historyStream, error) {
		return openHistory(body, actors, dict, tail, version, false) // saved by this program
	}
	s, err := open()
	if err != nil {
		return err
	}
	if s.h.derived && s.changesLeft <= onePassChanges {
		// Short enough to hold at once: one pass, texts rebuilt at the end.
		s.h.arena = &arena{}
		s.h.dr.waiting = make([]waitingOp, 0, s.opsLeft)
		cs, err := s.next(nil, s.changesLeft)
		if err != nil {
			return err
		}
		if err := s.finish(); err != nil {
			return err
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
		for s.changesLeft > 0 {
			s.h.arena = &arena{}
			if _, err := s.next(nil, loadBatch); err != nil {
				return err
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
	for s.changesLeft > 0 {
		s.h.arena = &arena{}
		cs, err := s.next(nil, loadBatch)
		if err != nil {
			return err
		}
		if _, err := d.Apply(cs...); err != nil {
			return err
		}
		if len(d.Pending()) > 0 {
			s.recycle = nil
		}
	}
	return s.finish()
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
