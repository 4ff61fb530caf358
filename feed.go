package converge

import (
	"sync"
	"time"

	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/syncproto"
)

// A feed follows a document's changes once they are durable: how sync
// connections learn what to send. Only durable changes are fed, so that no
// peer ever holds a change this device could lose (a lost change's sequence
// number would be reused for a different change).
type feed struct {
	// fn is called with the document locked, in the order the changes were
	// applied, so it must not block or call back into the document.
	fn func(b *fed)
}

// fed is one batch of durable changes, handed to every feed of the
// document: what a server forwards to each subscriber.
type fed struct {
	doc     string
	changes []*crdt.Change
	durable time.Time
	stored  []store.Change // the changes as stored (standalone encodings), in the same order
	// shared: more than one connection follows the document. A Relay
	// pays only then: encoded once for many, at about twice the bytes of
	// a connection's stream form (what a client sends its one server).
	shared bool

	once  sync.Once
	relay *syncproto.Relay
}

// Relay returns the batch as one Relay message, made by the first
// connection that needs it and shared by the others: a change is encoded
// once, not once per subscriber.
func (b *fed) Relay() *syncproto.Relay {
	b.once.Do(func() {
		enc := make([][]byte, len(b.stored))
		for i, c := range b.stored {
			enc[i] = c.Bytes
		}
		b.relay = syncproto.NewRelay(b.doc, enc)
	})
	return b.relay
}

// follow adds fn to the document's feeds and returns what removes it; ok
// is false if the document was evicted meanwhile (open it again).
func (d *Doc) follow(fn func(b *fed)) (stop func(), ok bool) {
	f := &feed{fn: fn}
	d.mu.Lock()
	if d.evicted {
		d.mu.Unlock()
		return nil, false
	}
	d.feeds = append(d.feeds, f)
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for i, x := range d.feeds {
			if x == f {
				d.feeds = append(d.feeds[:i:i], d.feeds[i+1:]...)
				return
			}
		}
	}, true
}

// feed hands durable changes to the feeds; stored holds them as written
// to the store, in the same order. Called with d.mu held.
func (d *Doc) feed(cs []*crdt.Change, stored []store.Change) {
	if len(cs) == 0 || len(d.feeds) == 0 {
		return
	}
	b := &fed{doc: d.id, changes: cs, durable: time.Now(), stored: stored, shared: len(d.feeds) > 1}
	for _, f := range d.feeds {
		f.fn(b)
	}
}
