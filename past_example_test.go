package converge_test

import (
	"context"
	"fmt"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/store/memory"
)

func ExampleDoc_AtChange() {
	ctx := context.Background()
	r, _ := converge.Open(ctx, "", converge.WithStore(memory.New()))
	defer r.Close()
	doc, _ := r.Doc(ctx, "note")
	_ = doc.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/body", converge.Text("draft")) }, converge.WithMessage("start"))
	_ = doc.Change(ctx, func(tx *converge.Txn) error { return tx.Splice("/body", 0, 5, "final") }, converge.WithMessage("rewrite"))

	for _, c := range doc.History() {
		then, err := doc.AtChange(c.ID)
		if err != nil {
			panic(err)
		}
		body, _ := then.Get("/body")
		fmt.Printf("after %q: %s\n", c.Message, body)
	}
	// Output:
	// after "start": draft
	// after "rewrite": final
}
