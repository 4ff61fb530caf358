package converge_test

import (
	"context"
	"fmt"
	"time"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/pipe"
)

// A collaborative text is created with Text and edited with Splice, by
// position in Unicode code points.
func ExampleTxn_Splice() {
	ctx := context.Background()
	r, err := converge.Open(ctx, mustTemp())
	if err != nil {
		panic(err)
	}
	defer r.Close()
	doc, _ := r.Doc(ctx, "letter")
	err = doc.Change(ctx, func(tx *converge.Txn) error {
		if err := tx.Set("/body", converge.Text("Dear Bob,")); err != nil {
			return err
		}
		if err := tx.Splice("/body", 5, 3, "Zoë"); err != nil { // "Bob" becomes "Zoë"
			return err
		}
		return tx.Increment("/edits", 1) // a counter, created at its first increment
	}, converge.WithMessage("first draft"))
	if err != nil {
		panic(err)
	}
	b, _ := doc.JSON("")
	fmt.Println(string(b))
	for _, h := range doc.History() {
		fmt.Println(h.Seq, h.Message)
	}
	// Output:
	// {"body":"Dear Zoë,","edits":1}
	// 1 first draft
}

// Two replicas sync with no server: one answers with Replica.Serve on its
// end of a connection (here an in-memory pipe; in an application, a
// WebSocket accepted with transport/ws), the other dials it with Sync.
func ExampleReplica_Serve() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alice, _ := converge.Open(ctx, "", converge.WithStore(memory.New()))
	bob, _ := converge.Open(ctx, "", converge.WithStore(memory.New()))
	defer alice.Close()
	defer bob.Close()

	a, _ := alice.Doc(ctx, "trip")
	_ = a.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/dest", "Porto") })

	// The dialler is called for each connection, reconnections included.
	dial := func(context.Context) (transport.Conn, error) {
		mine, theirs := pipe.New()
		go alice.Serve(ctx, theirs, converge.ServeConfig{})
		return mine, nil
	}
	b, _ := bob.Doc(ctx, "trip") // opened before syncing: it is synced
	s, err := bob.Sync(ctx, "alice", converge.SyncDialer(dial))
	if err != nil {
		panic(err)
	}
	defer s.Stop()
	wait, done := context.WithTimeout(ctx, 10*time.Second)
	defer done()
	if err := s.WaitSynced(wait); err != nil {
		panic(err)
	}
	v, _ := b.Get("/dest")
	fmt.Println(v)
	// Output: Porto
}
