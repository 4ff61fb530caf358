package server

import (
	"container/list"
	"context"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/store"
)

// recency keeps the replica's documents in memory within a budget by
// evicting the least recently used ones that nothing follows.
//
// The root package does not list the documents it has loaded, so recency
// notes every ID that can load one: a GET, and a sync connection's
// Subscribe or Changes (seen through the Access hook, see connAccess). Every
// document the server loads comes through one of these.
type recency struct {
	r   *converge.Replica
	max int // negative: no budget
	// syncGrace keeps a document a sync connection touched that recently:
	// the connection is loading it and about to follow it, and an eviction
	// between the two would leave the connection with a stale handle.
	syncGrace time.Duration
	now       func() time.Time
	evicted   func() // counts an eviction (metrics)

	sweep sync.Mutex // one sweep at a time
	mu    sync.Mutex
	order *list.List // of *entry, most recent at the front
	byID  map[string]*list.Element
	kick  chan struct{}
}

type entry struct {
	id       string
	syncedAt time.Time // when a sync connection last touched it
}

func newRecency(r *converge.Replica, max int, evicted func()) *recency {
	return &recency{r: r, max: max, syncGrace: 5 * time.Second, now: time.Now, evicted: evicted,
		order: list.New(), byID: map[string]*list.Element{}, kick: make(chan struct{}, 1)}
}

// touch marks id as just used; bySync says a sync connection used it.
func (l *recency) touch(id string, bySync bool) {
	// Only IDs the replica can load: anything else would stay listed.
	if l.max < 0 || id == "" || len(id) > store.MaxDocIDLen || !utf8.ValidString(id) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.byID[id]
	if e == nil {
		e = l.order.PushFront(&entry{id: id})
		l.byID[id] = e
	} else {
		l.order.MoveToFront(e)
	}
	if bySync {
		e.Value.(*entry).syncedAt = l.now()
	}
}

// forget drops id from the list (its load failed: it is not in memory).
func (l *recency) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.byID[id]; e != nil {
		l.order.Remove(e)
		delete(l.byID, id)
	}
}

// signal asks the background loop for a sweep, without waiting.
func (l *recency) signal() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// enforce evicts documents, least recently used first, until the replica
// holds no more than the budget or nothing more can go (the rest are
// followed by a connection or a subscriber, have unflushed changes, or were
// touched by a sync connection within syncGrace). It returns how many it
// evicted.
func (l *recency) enforce() int {
	if l.max < 0 || l.r.Loaded() <= l.max {
		return 0
	}
	l.sweep.Lock()
	defer l.sweep.Unlock()
	// Holding mu for the whole walk keeps the list still; Evict is a map
	// lookup under two locks, so a walk over 10,000 documents is short.
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	n := 0
	for e := l.order.Back(); e != nil && l.r.Loaded() > l.max; {
		prev := e.Prev()
		ent := e.Value.(*entry)
		if now.Sub(ent.syncedAt) >= l.syncGrace && l.r.Evict(ent.id) {
			l.order.Remove(e)
			delete(l.byID, ent.id)
			n++
			if l.evicted != nil {
				l.evicted()
			}
		}
		e = prev
	}
	return n
}

// run sweeps when signalled and every interval, until ctx ends.
func (l *recency) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		case <-t.C:
		}
		l.enforce()
	}
}
