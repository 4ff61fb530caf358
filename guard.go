package converge

import (
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/syncproto"
)

// Defaults of ServeConfig's limits on what a peer sends.
const (
	// DefaultChangeBurst is as many changes as one Changes message may
	// carry (syncproto.DefaultLimits.MaxChanges), so that a replica back
	// from a long time offline can send what it made in one go.
	DefaultChangeBurst = 100_000
	// DefaultMaxHeld bounds the changes a peer may send ahead of their
	// dependencies. A replica sends every change after those it depends
	// on, so an honest peer holds none; the bound is for the others.
	DefaultMaxHeld = 10_000
)

// guard enforces what one served connection's peer may make this side do
// beyond the protocol's own limits: changes per second (a token bucket),
// and changes held in documents waiting for dependencies that the peer
// has not sent. Held changes live in memory only (they are not durable
// until they apply), so a peer could otherwise park any number of them;
// the guard counts the peer's, ends the session past the bound, and drops
// them when the connection ends. Used by the session goroutine only.
type guard struct {
	limiter *rate.Limiter // nil: no rate limit
	burst   int
	maxHeld int
	held    map[string]*heldChanges
	nheld   int
}

type heldChanges struct {
	d   *Doc
	ids []causal.ChangeID
}

func newGuard(perSecond float64, burst, maxHeld int) *guard {
	g := &guard{maxHeld: maxHeld, held: map[string]*heldChanges{}}
	if g.maxHeld <= 0 {
		g.maxHeld = DefaultMaxHeld
	}
	if perSecond > 0 {
		g.burst = burst
		if g.burst <= 0 {
			g.burst = DefaultChangeBurst
		}
		g.limiter = rate.NewLimiter(rate.Limit(perSecond), g.burst)
	}
	return g
}

// admit takes n changes from the bucket at now, or reports the refusal to
// end the session with. A message of more changes than the bucket holds
// passes only when the bucket is full, and empties it: a peer's largest
// message must be able to pass some time.
func (g *guard) admit(now time.Time, n int) (code syncproto.Code, msg string) {
	if g.limiter == nil {
		return 0, ""
	}
	if n > g.burst {
		n = g.burst
	}
	if g.limiter.AllowN(now, n) {
		return 0, ""
	}
	return syncproto.CodeRateLimited, fmt.Sprintf("over %g changes and presence updates per second (bursts of %d); nothing of this message was stored; reconnect later",
		float64(g.limiter.Limit()), g.burst)
}

// track notes which changes the peer sent to d (this call's and earlier
// ones) d still holds, and reports the refusal to end the session with if
// the peer has more held than allowed.
//
// heldNow, how many of sent d holds now, as the merge found them, spares
// locking d again in the usual case: nothing was held before, nor is now.
func (g *guard) track(doc string, d *Doc, sent []*crdt.Change, heldNow int) (code syncproto.Code, msg string) {
	h := g.held[doc]
	if h == nil && heldNow == 0 {
		return 0, ""
	}
	if h == nil || h.d != d {
		if h != nil {
			h.d.forget(h.ids) // a stale handle: the document was reloaded
			g.nheld -= len(h.ids)
		}
		h = &heldChanges{d: d}
		g.held[doc] = h
	}
	ids := h.ids
	seen := make(map[causal.ChangeID]bool, len(ids)+len(sent))
	for _, id := range ids {
		seen[id] = true
	}
	for _, c := range sent {
		if id := c.ID(); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	still := d.held(ids)
	g.nheld += len(still) - len(h.ids)
	h.ids = still
	if len(still) == 0 {
		delete(g.held, doc)
	}
	if g.nheld > g.maxHeld {
		return syncproto.CodeTooManyPending, fmt.Sprintf("%d changes sent ahead of the changes they depend on (at most %d); send dependencies first",
			g.nheld, g.maxHeld)
	}
	return 0, ""
}

// release drops every change the peer sent that is still held.
func (g *guard) release() {
	for doc, h := range g.held {
		h.d.forget(h.ids)
		delete(g.held, doc)
	}
	g.nheld = 0
}
