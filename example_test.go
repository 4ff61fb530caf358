package converge_test

import (
	"context"
	"fmt"
	"os"

	"github.com/converge-sync/converge"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "replica")
	defer os.RemoveAll(dir)

	r, err := converge.Open(ctx, dir)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	doc, _ := r.Doc(ctx, "lists/groceries")
	err = doc.Change(ctx, func(tx *converge.Txn) error {
		if err := tx.Set("/title", "Groceries"); err != nil {
			return err
		}
		return tx.Set("/items", []any{"milk", "eggs"})
	})
	if err != nil {
		panic(err)
	}
	b, _ := doc.JSON("")
	fmt.Println(string(b))
	// Output: {"items":["milk","eggs"],"title":"Groceries"}
}

func ExampleDoc_Subscribe() {
	ctx := context.Background()
	r, _ := converge.Open(ctx, mustTemp())
	defer r.Close()
	doc, _ := r.Doc(ctx, "note")
	cancel := doc.Subscribe(func(e converge.Event) {
		for _, p := range e.Patches {
			fmt.Printf("%s %s %q\n", p.Action, p.Path, p.Text)
		}
	})
	defer cancel()
	_ = doc.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/body", converge.Text("hi")) })
	_ = doc.Change(ctx, func(tx *converge.Txn) error { return tx.Splice("/body", 2, 0, " there") })
	// Output:
	// put /body ""
	// splice /body "hi"
	// splice /body " there"
}

// Two replicas edit apart and merge; the conflict is listed and resolved.
func ExampleDoc_Conflicts() {
	ctx := context.Background()
	ra, _ := converge.Open(ctx, mustTemp())
	rb, _ := converge.Open(ctx, mustTemp())
	defer ra.Close()
	defer rb.Close()
	a, _ := ra.Doc(ctx, "trip")
	b, _ := rb.Doc(ctx, "trip")
	_ = a.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/dest", "Porto") })
	_ = b.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/dest", "Lisbon") })
	_ = b.Merge(ctx, a.ChangesSince(b.Version())...)

	for _, c := range b.Conflicts() {
		fmt.Println("conflict at", c.Path, "with", len(c.Candidates), "values")
		keep := c.Candidates[0]
		for _, cand := range c.Candidates {
			if cand.Value == "Porto" {
				keep = cand
			}
		}
		_ = b.Change(ctx, func(tx *converge.Txn) error { return tx.Resolve(c.Path, keep.Op) })
	}
	v, _ := b.Get("/dest")
	fmt.Println(v, len(b.Conflicts()))
	// Output:
	// conflict at /dest with 2 values
	// Porto 0
}

func mustTemp() string {
	d, err := os.MkdirTemp("", "replica")
	if err != nil {
		panic(err)
	}
	return d
}
