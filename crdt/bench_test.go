package crdt

import "testing"

// BenchmarkTypingChanges measures the document model's own cost per local
// change: one keystroke per change, typed at the end of a short text, as an
// editor commits them. (Replaying real traces is `converge bench trace`.)
func BenchmarkTypingChanges(b *testing.B) {
	b.ReportAllocs()
	d := NewDoc(actorN(1))
	var text ObjID
	change(b, d, func(tx *Txn) error { var err error; text, err = tx.Put(Root, "t", NewText()); return err })
	d.SetPatches(false)
	pos := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if pos == 200 { // keep the text short so the engine's cost stays small
			change(b, d, func(tx *Txn) error { return tx.Splice(text, 0, pos, "") })
			pos = 0
		}
		change(b, d, func(tx *Txn) error { return tx.Splice(text, pos, 0, "x") })
		pos++
	}
}
