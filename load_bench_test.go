package converge_test

import (
	"context"
	"testing"

	"github.com/converge-sync/converge"
)

// BenchmarkReplicaDocLoad: loading a small document that is not in memory
// (as a server does on a cache miss), evicted again after each load: the
// store's reads of one document, its tombstone (store.Store.Deletions)
// among them, and the decoding.
func BenchmarkReplicaDocLoad(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	r := benchOpen(b, dir)
	d := benchDoc(b, r, "notes/a")
	for i := range 5 {
		if err := d.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/n", i) }); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Close(); err != nil { // folds the log into a snapshot
		b.Fatal(err)
	}
	r = benchOpen(b, dir)
	defer r.Close()
	b.ResetTimer()
	for range b.N {
		if v, err := benchDoc(b, r, "notes/a").Get("/n"); err != nil || v != int64(4) {
			b.Fatalf("/n = %v, %v", v, err)
		}
		if !r.Evict("notes/a") {
			b.Fatal("not evicted")
		}
	}
}
