package converge

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/syncproto"
)

// Presence is one peer's ephemeral state in a document: who they are,
// where their cursor is, what they are editing. It is relayed to the
// document's other peers, never stored, and gone when the peer leaves, its
// connection ends, or it sends nothing for its TTL.
type Presence struct {
	Peer  causal.ActorID  // the peer's actor ID
	State json.RawMessage // what it set, as JSON
	Self  bool            // this replica's own presence
}

// PresenceTTL is how long a peer's presence lasts without an update. A
// replica refreshes its own at a third of this while connected.
const PresenceTTL = 30 * time.Second

// presenceHub keeps the presence of every peer in every document this
// replica shares, and relays it between the replica's connections.
type presenceHub struct {
	mu       sync.Mutex
	now      func() time.Time
	docs     map[string]map[causal.ActorID]*presenceEntry
	peers    map[string]map[*peer]bool // connections streaming each document
	watchers map[string][]*presenceWatcher
	lastTick time.Time // when tick last walked the entries
	walks    int       // how many times it has (for tests)
}

// presenceTickEvery is how often tick walks the entries at most. Every
// connection's heartbeat step calls tick, about once a second each: a
// server's thousands of connections walked every entry of every document
// thousands of times a second, under the hub's lock.
const presenceTickEvery = time.Second

type presenceEntry struct {
	state    []byte
	ttl      time.Duration
	expires  time.Time // zero for this replica's own entry
	from     *peer     // the connection it came by; nil for our own
	lastSent time.Time // own entries: when last sent, for refreshing
}

type presenceWatcher struct{ fn func([]Presence) }

func newPresenceHub(now func() time.Time) *presenceHub {
	return &presenceHub{now: now, docs: map[string]map[causal.ActorID]*presenceEntry{},
		peers: map[string]map[*peer]bool{}, watchers: map[string][]*presenceWatcher{}}
}

func presenceMessage(doc string, peer causal.ActorID, e *presenceEntry) *syncproto.Presence {
	return &syncproto.Presence{Doc: doc, Peer: peer, TTLMs: uint64(e.ttl / time.Millisecond), State: e.state}
}

// set records this replica's own presence in doc and sends it to every
// connection streaming doc.
func (h *presenceHub) set(doc string, self causal.ActorID, state []byte) {
	h.mu.Lock()
	e := &presenceEntry{state: state, ttl: PresenceTTL, lastSent: h.now()}
	h.entries(doc)[self] = e
	h.relay(doc, nil, outgoing{presence: presenceMessage(doc, self, e)})
	notify := h.changed(doc)
	h.mu.Unlock()
	notify()
}

// clear removes this replica's own presence in doc.
func (h *presenceHub) clear(doc string, self causal.ActorID) {
	h.mu.Lock()
	if _, ok := h.docs[doc][self]; !ok {
		h.mu.Unlock()
		return
	}
	delete(h.docs[doc], self)
	h.relay(doc, nil, outgoing{leave: &syncproto.Leave{Doc: doc, Peer: self}})
	notify := h.changed(doc)
	h.mu.Unlock()
	notify()
}

// received records a peer's presence that came by connection from, and
// relays it to the document's other connections.
func (h *presenceHub) received(from *peer, p syncproto.Presence) {
	ttl := time.Duration(p.TTLMs) * time.Millisecond
	if ttl <= 0 || ttl > 10*PresenceTTL {
		ttl = PresenceTTL
	}
	if !json.Valid(p.State) {
		return // opaque to the protocol, but the API promises JSON
	}
	h.mu.Lock()
	e := &presenceEntry{state: p.State, ttl: ttl, expires: h.now().Add(ttl), from: from}
	h.entries(p.Doc)[p.Peer] = e
	h.relay(p.Doc, from, outgoing{presence: presenceMessage(p.Doc, p.Peer, e)})
	notify := h.changed(p.Doc)
	h.mu.Unlock()
	notify()
}

// left forgets a peer's presence on its Leave.
func (h *presenceHub) left(from *peer, doc string, who causal.ActorID) {
	h.mu.Lock()
	notify := h.remove(doc, who, func(e *presenceEntry) bool { return e.from == from })
	h.mu.Unlock()
	notify()
}

// joined: connection p now streams doc. It is told everyone present.
func (h *presenceHub) joined(p *peer, doc string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.peers[doc] == nil {
		h.peers[doc] = map[*peer]bool{}
	}
	h.peers[doc][p] = true
	for who, e := range h.docs[doc] {
		if e.from != p {
			p.enqueue(outgoing{presence: presenceMessage(doc, who, e)})
		}
	}
}

// parted: connection p no longer streams doc; the presence it brought
// there is gone.
func (h *presenceHub) parted(p *peer, doc string) {
	h.mu.Lock()
	delete(h.peers[doc], p)
	if len(h.peers[doc]) == 0 {
		delete(h.peers, doc)
	}
	var notes []func()
	for who, e := range h.docs[doc] {
		if e.from == p {
			notes = append(notes, h.remove(doc, who, func(*presenceEntry) bool { return true }))
		}
	}
	h.mu.Unlock()
	for _, n := range notes {
		n()
	}
}

// gone: connection p ended.
func (h *presenceHub) gone(p *peer) {
	h.mu.Lock()
	var docs []string
	for doc, ps := range h.peers {
		if ps[p] {
			docs = append(docs, doc)
		}
	}
	h.mu.Unlock()
	for _, doc := range docs {
		h.parted(p, doc)
	}
}

// tick expires presence not refreshed within its TTL and refreshes this
// replica's own.
func (h *presenceHub) tick(now time.Time) {
	h.mu.Lock()
	if !h.lastTick.IsZero() && now.Sub(h.lastTick) < presenceTickEvery && !now.Before(h.lastTick) {
		h.mu.Unlock()
		return // another connection's step walked them this second
	}
	h.lastTick = now
	h.walks++
	var notes []func()
	for doc, entries := range h.docs {
		for who, e := range entries {
			switch {
			case e.from == nil && now.Sub(e.lastSent) >= e.ttl/3:
				e.lastSent = now
				h.relay(doc, nil, outgoing{presence: presenceMessage(doc, who, e)})
			case e.from != nil && now.After(e.expires):
				notes = append(notes, h.remove(doc, who, func(*presenceEntry) bool { return true }))
			}
		}
	}
	h.mu.Unlock()
	for _, n := range notes {
		n()
	}
}

// remove deletes who's entry in doc if keep says so, telling the other
// connections. Called with h.mu held; returns the watchers' notification.
func (h *presenceHub) remove(doc string, who causal.ActorID, ok func(*presenceEntry) bool) func() {
	e := h.docs[doc][who]
	if e == nil || !ok(e) {
		return func() {}
	}
	delete(h.docs[doc], who)
	if len(h.docs[doc]) == 0 {
		delete(h.docs, doc)
	}
	h.relay(doc, e.from, outgoing{leave: &syncproto.Leave{Doc: doc, Peer: who}})
	return h.changed(doc)
}

func (h *presenceHub) entries(doc string) map[causal.ActorID]*presenceEntry {
	if h.docs[doc] == nil {
		h.docs[doc] = map[causal.ActorID]*presenceEntry{}
	}
	return h.docs[doc]
}

// relay sends o to every connection streaming doc but except. Called with
// h.mu held; enqueue never blocks.
func (h *presenceHub) relay(doc string, except *peer, o outgoing) {
	for p := range h.peers[doc] {
		if p != except {
			p.enqueue(o)
		}
	}
}

// list returns the presence in doc, sorted by peer. Called with h.mu held.
func (h *presenceHub) list(doc string) []Presence {
	out := make([]Presence, 0, len(h.docs[doc]))
	for who, e := range h.docs[doc] {
		out = append(out, Presence{Peer: who, State: slices.Clone(e.state), Self: e.from == nil})
	}
	slices.SortFunc(out, func(a, b Presence) int { return a.Peer.Compare(b.Peer) })
	return out
}

// changed returns the call that tells doc's watchers (made after h.mu is
// released, so that they may read presence).
func (h *presenceHub) changed(doc string) func() {
	ws := slices.Clone(h.watchers[doc])
	if len(ws) == 0 {
		return func() {}
	}
	return func() {
		h.mu.Lock()
		list := h.list(doc)
		h.mu.Unlock()
		for _, w := range ws {
			w.fn(list)
		}
	}
}

// SetPresence sets this replica's presence in the document (any value that
// marshals to JSON: a name, a cursor, a selection) and sends it to every
// peer the document is synced with. It lasts while the replica is
// connected; ClearPresence removes it. A state that does not marshal to
// JSON, or marshals to more than syncproto.DefaultLimits.MaxPresence
// bytes, is refused with an error that wraps ErrBadValue.
func (d *Doc) SetPresence(state any) error {
	if err := d.r.checkOpen(); err != nil {
		return err
	}
	b, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("converge: presence must marshal to JSON: %w: %w", ErrBadValue, err)
	}
	if len(b) > syncproto.DefaultLimits.MaxPresence {
		return fmt.Errorf("converge: presence of %d bytes is over the %d-byte limit: %w", len(b), syncproto.DefaultLimits.MaxPresence, ErrBadValue)
	}
	d.r.presence.set(d.id, d.r.actor, b)
	return nil
}

// ClearPresence removes this replica's presence from the document.
func (d *Doc) ClearPresence() { d.r.presence.clear(d.id, d.r.actor) }

// Presence returns everyone present in the document, this replica
// included if it set its presence, sorted by peer.
func (d *Doc) Presence() []Presence {
	h := d.r.presence
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.list(d.id)
}

// WatchPresence calls fn with the document's presence each time it changes.
// The returned function stops watching. A nil fn watches nothing (it would
// otherwise fail later, on a connection's goroutine).
func (d *Doc) WatchPresence(fn func([]Presence)) (stop func()) {
	if fn == nil {
		return func() {}
	}
	h := d.r.presence
	w := &presenceWatcher{fn: fn}
	h.mu.Lock()
	h.watchers[d.id] = append(h.watchers[d.id], w)
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.watchers[d.id] = slices.DeleteFunc(h.watchers[d.id], func(x *presenceWatcher) bool { return x == w })
	}
}
