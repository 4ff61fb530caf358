package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// runDemo walks through the merge model with two in-memory replicas: what a
// newcomer should see converge do in a minute.
func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "demo\n\nTwo replicas, alice and bob, edit one document offline, merge,\nsee a conflict and resolve it. Everything runs in memory.", stderr)
	if _, err := parseCommand(fs, args, 0, 0); err != nil {
		return err
	}
	d := demo{w: stdout, now: time.Now()}
	return d.run()
}

type demo struct {
	w   io.Writer
	now time.Time
	err error
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.w, format+"\n", args...) }

func (d *demo) show(name string, doc *crdt.Doc) {
	d.say("  %-6s %s", name+":", doc.JSON())
}

// edit makes one local change, a few seconds after the previous one.
func (d *demo) edit(doc *crdt.Doc, msg string, fn func(tx *crdt.Txn) error) {
	if d.err != nil {
		return
	}
	d.now = d.now.Add(3 * time.Second)
	_, _, d.err = doc.Change(crdt.ChangeOptions{Time: d.now.UnixMilli(), Message: msg}, fn)
}

func (d *demo) merge(dst, src *crdt.Doc, dstName string) {
	if d.err != nil {
		return
	}
	changes := src.ChangesSince(dst.Version())
	patches, err := dst.Apply(changes...)
	if err != nil {
		d.err = err
		return
	}
	d.say("  %s receives %d change(s); the patches a UI would get:", dstName, len(changes))
	for _, p := range patches {
		d.say("    %-9s %-10s %s", p.Action, p.Path, describePatch(dst, p))
	}
}

func describePatch(doc *crdt.Doc, p crdt.Patch) string {
	switch p.Action {
	case crdt.PatchPut:
		s := string(doc.ValueJSON(p.Value))
		if p.Value.Kind().IsContainer() {
			s = "a new " + p.Value.Kind().String()
		}
		if p.Conflict {
			s += "  (in conflict)"
		}
		return s
	case crdt.PatchSplice:
		return fmt.Sprintf("at %d insert %q", p.Index, p.Text)
	case crdt.PatchRemove:
		return fmt.Sprintf("at %d remove %d", p.Index, p.Count)
	case crdt.PatchIncrement:
		return fmt.Sprintf("%+d", p.Delta)
	case crdt.PatchInsert:
		return fmt.Sprintf("at %d insert %d value(s)", p.Index, len(p.Values))
	case crdt.PatchConflict:
		if p.Conflict {
			return "a conflict appeared"
		}
		return "the conflict is resolved"
	}
	return ""
}

func (d *demo) run() error {
	alice, bob := causal.NewActorID(), causal.NewActorID()
	names := map[causal.ActorID]string{alice: "alice", bob: "bob"}
	a := crdt.NewDoc(alice)

	d.say("1. alice creates a trip plan and shares it with bob.")
	var notes crdt.ObjID
	d.edit(a, "create the plan", func(tx *crdt.Txn) error {
		if _, err := tx.Put(crdt.Root, "destination", crdt.String("Lisbon")); err != nil {
			return err
		}
		if _, err := tx.Put(crdt.Root, "votes", crdt.Counter(0)); err != nil {
			return err
		}
		var err error
		if notes, err = tx.Put(crdt.Root, "notes", crdt.NewText()); err != nil {
			return err
		}
		return tx.Splice(notes, 0, 0, "Pack light.")
	})
	if d.err != nil {
		return d.err
	}
	b := crdt.NewDoc(bob)
	d.merge(b, a, "bob")
	d.show("alice", a)
	d.show("bob", b)

	d.say("\n2. Both go offline and edit the same document.")
	d.edit(a, "alice prefers Porto", func(tx *crdt.Txn) error {
		if _, err := tx.Put(crdt.Root, "destination", crdt.String("Porto")); err != nil {
			return err
		}
		if err := tx.Increment(crdt.Root, "votes", 1); err != nil {
			return err
		}
		return tx.Splice(notes, 0, 0, "Bring sunscreen. ")
	})
	d.edit(b, "bob prefers Madeira", func(tx *crdt.Txn) error {
		if _, err := tx.Put(crdt.Root, "destination", crdt.String("Madeira")); err != nil {
			return err
		}
		if err := tx.Increment(crdt.Root, "votes", 1); err != nil {
			return err
		}
		return tx.Splice(notes, 11, 0, " Hiking boots!")
	})
	if d.err != nil {
		return d.err
	}
	d.show("alice", a)
	d.show("bob", b)

	d.say("\n3. They reconnect and exchange what the other lacks.")
	d.merge(a, b, "alice")
	d.merge(b, a, "bob")
	if d.err != nil {
		return d.err
	}
	d.show("alice", a)
	d.show("bob", b)
	if string(a.JSON()) == string(b.JSON()) {
		d.say("  Both replicas hold the same document: the texts merged, the votes added up.")
	}

	d.say("\n4. They disagreed on the destination. converge keeps both and says so:")
	conflicts := b.Conflicts()
	for _, c := range conflicts {
		d.say("  conflict at %s:", c.Path)
		for i, v := range c.Candidates {
			shown := ""
			if i == len(c.Candidates)-1 {
				shown = "  <- shown for now (highest op ID)"
			}
			d.say("    %-8s by %-5s at %s%s", b.ValueJSON(v.Value), names[v.Op.Actor],
				time.UnixMilli(v.Time).Format("15:04:05"), shown)
		}
	}

	d.say("\n5. bob talks to alice and they settle on Porto. bob resolves it:")
	var keep causal.OpID
	for _, v := range b.Values(crdt.Root, "destination") {
		if v.Value.Str() == "Porto" {
			keep = v.Op
		}
	}
	d.edit(b, "settled on Porto", func(tx *crdt.Txn) error { return tx.Resolve(crdt.Root, "destination", keep) })
	d.merge(a, b, "alice")
	if d.err != nil {
		return d.err
	}
	d.show("alice", a)
	d.show("bob", b)
	d.say("  conflicts left: alice %d, bob %d", len(a.Conflicts()), len(b.Conflicts()))

	d.say("\n6. History, as either replica sees it:")
	for _, c := range a.Changes() {
		d.say("  %s  %-5s  %-22s %d op(s)", time.UnixMilli(c.Time).Format("15:04:05"), names[c.Actor], c.Message, len(c.Ops))
	}
	if string(a.JSON()) != string(b.JSON()) || len(a.Conflicts()) != 0 {
		return fmt.Errorf("replicas did not converge:\n%s\n%s", a.JSON(), b.JSON())
	}
	d.say("\n%s", strings.TrimSpace("Done: two replicas edited apart, merged without losing anything, and a person settled the conflict."))
	return nil
}
