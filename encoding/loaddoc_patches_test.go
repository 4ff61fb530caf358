package encoding

import (
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// LoadDoc replays the saved history without making patches (no one could
// see them); the document it returns must make patches again, or an app
// watching a loaded document would never hear of its changes.
func TestLoadDocMakesPatchesAfterLoading(t *testing.T) {
	a, b := twoReplicas(t)
	saved, err := SaveDoc(a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := LoadDoc(saved, causal.ActorID{0xc})
	if err != nil {
		t.Fatal(err)
	}
	if string(d.JSON()) != string(a.JSON()) {
		t.Fatalf("loaded %s, saved %s", d.JSON(), a.JSON())
	}
	_, patches, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
		_, err := tx.Put(crdt.Root, "local", crdt.Int(1))
		return err
	})
	if err != nil || len(patches) != 1 || patches[0].Path.String() != "/local" {
		t.Fatalf("local change after LoadDoc: patches %+v, err %v", patches, err)
	}
	if _, _, err := b.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
		_, err := tx.Put(crdt.Root, "remote", crdt.Int(2))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	patches, err = d.Apply(b.Changes()...)
	if err != nil || len(patches) == 0 {
		t.Fatalf("remote change after LoadDoc: patches %+v, err %v", patches, err)
	}
}
