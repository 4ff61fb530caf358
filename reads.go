package converge

import "github.com/converge-sync/converge/crdt"

// The reads a Doc and a Snapshot share: each takes the document model,
// which the caller has locked.

func getValue(doc *crdt.Doc, pointer string) (any, error) {
	val, err := doc.Lookup(pointer)
	if err != nil {
		return nil, err
	}
	return doc.ToGo(val), nil
}

func valueJSON(doc *crdt.Doc, pointer string) ([]byte, error) {
	val, err := doc.Lookup(pointer)
	if err != nil {
		return nil, err
	}
	return doc.ValueJSON(val), nil
}

func conflictsOf(doc *crdt.Doc) (out []Conflict) {
	for _, c := range doc.Conflicts() {
		out = append(out, Conflict{Path: c.Path.String(), Candidates: candidatesOf(doc, c.Candidates)})
	}
	return out
}

func candidatesAt(doc *crdt.Doc, pointer string) ([]Candidate, error) {
	p, err := locate(doc, pointer)
	if err != nil {
		return nil, err
	}
	var out []Candidate
	switch p.kind {
	case crdt.KindMap:
		out = candidatesOf(doc, doc.Values(p.obj, p.key))
	case crdt.KindList:
		out = candidatesOf(doc, doc.ValuesAt(p.obj, p.index))
	}
	if len(out) == 0 {
		return nil, &crdt.PathError{Pointer: pointer, Reason: "no value", Err: ErrNotFound}
	}
	return out, nil
}

func changeInfo(c *crdt.Change) ChangeInfo {
	return ChangeInfo{ID: c.ID(), Actor: c.Actor.String(), Seq: c.Seq, Time: c.Time,
		Message: c.Message, Ops: len(c.Ops), Deps: len(c.AllDeps())}
}
