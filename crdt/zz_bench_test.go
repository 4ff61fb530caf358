package crdt_test

import (
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

type nopHistory struct{ crdt.SliceHistory }

func (nopHistory) Append(*crdt.Change)  {}
func (nopHistory) CopiesChanges() bool { return true }

func BenchmarkZZTypeEndNoHistory(b *testing.B) {
	d := crdt.NewDoc(causal.ActorID{1}, crdt.WithHistory(&nopHistory{}))
	d.SetPatches(false)
	var text crdt.ObjID
	d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
		var err error
		text, err = tx.Put(crdt.Root, "t", crdt.NewText())
		return err
	})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Edit(crdt.ChangeOptions{Time: int64(i)}, func(tx *crdt.Txn) error { return tx.Splice(text, i, 0, "a") })
	}
}
