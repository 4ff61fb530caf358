package converge

import (
	"time"

	"github.com/converge-sync/converge/crdt"
)

// A feed follows a document's changes once they are durable: how sync
// connections learn what to send. Only durable changes are fed, so that no
// peer ever holds a change this device could lose (a lost change's sequence
// number would be reused for a different change).
type feed struct {
	// fn is called with the document locked, in the order the changes were
	// applied, so it must not block or call back into the document.
	fn func(cs []*crdt.Change, durable time.Time)
}

// follow adds fn to the document's feeds and returns what removes it; ok
// is false if the document was evicted meanwhile (open it again).
func (d *Doc) follow(fn func(cs []*crdt.Change, durable time.Time)) (stop func(), ok bool) {
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

// feed hands durable changes to the feeds. Called with d.mu held.
func (d *Doc) feed(cs []*crdt.Change) {
	if len(cs) == 0 || len(d.feeds) == 0 {
		return
	}
	now := time.Now()
	for _, f := range d.feeds {
		f.fn(cs, now)
	}
}
