package converge

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
)

// The deterministic simulation: several client replicas and a server
// replica in one goroutine, over the simulated network of simnet_test.go,
// on memory stores, driven by one seeded random source. It runs the real
// code end to end — Doc.Change, Replica, Syncer (attach, event, status),
// the connection driver (peer: start, receive, tick, drain, flush), the
// syncproto.Session, crdt, encoding and store/memory — and replaces only
// the goroutines, clocks and sockets around them, so a seed replays
// exactly. See docs/testing.md.

var (
	simSeeds = flag.Int("sim.seeds", 0, "how many seeds the simulation runs (default 3000, 300 with -short; or $CONVERGE_SIM_SEEDS)")
	simSeed  = flag.Uint64("sim.seed", 0, "run only this seed of the simulation, printing its trace with -v")
	simFirst = flag.Uint64("sim.first", 1, "the first seed the simulation runs")
)

// simConfig is one seed's world, drawn from the seed.
type simConfig struct {
	clients  int
	docs     int
	steps    int
	batched  []bool           // per client: WithBatchedWrites
	actRate  float64          // chance per step of an edit or a fault
	faultPct float64          // share of actions that are faults
	skew     []time.Duration  // per client clock skew
	limits   syncproto.Limits // what the server accepts (zero: the defaults)
	srvBatch bool             // the server batches its writes (durable before each Ack all the same)
}

type simStats struct {
	seeds, steps   int
	faults         map[string]int
	changes        int            // local changes made
	discarded      int            // unflushed changes a crash lost (never sent, never acknowledged)
	ackLost        int            // acknowledged changes missing from the server: must be 0
	frames         int            // frames delivered
	dupChanges     int            // changes the server received that it held already
	refused        map[string]int // sessions ended by a side, by code
	converge       []time.Duration
	conflictsAtEnd int
}

func newSimStats() *simStats {
	return &simStats{faults: map[string]int{}, refused: map[string]int{}}
}

func (s *simStats) add(o *simStats) {
	s.seeds += o.seeds
	s.steps += o.steps
	for k, v := range o.faults {
		s.faults[k] += v
	}
	for k, v := range o.refused {
		s.refused[k] += v
	}
	s.changes += o.changes
	s.discarded += o.discarded
	s.ackLost += o.ackLost
	s.frames += o.frames
	s.dupChanges += o.dupChanges
	s.converge = append(s.converge, o.converge...)
	s.conflictsAtEnd += o.conflictsAtEnd
}

// simFailure is what a broken invariant panics with; run recovers it.
type simFailure struct{ msg string }

// simWorld is one seed's simulation.
type simWorld struct {
	seed   uint64
	cfg    simConfig
	rng    *rand.Rand
	now    time.Time
	ctx    context.Context
	log    *slog.Logger
	docIDs []string

	server  *simServer
	clients []*simClient
	links   []*simLink
	nextID  int

	hash  hash.Hash64
	trace []string // the last events, for a failure report (all of them with keep)
	keep  bool
	stats *simStats
}

// simServer is the server: a replica serving clients with RoleServer, as
// the server package does.
type simServer struct {
	store  *memory.Store
	r      *Replica // nil while down
	epoch  int      // bumped when its store is wiped
	upAt   time.Time
	actor  causal.ActorID
	metric *simMetrics
}

// simClient is one application's replica and its Syncer.
type simClient struct {
	w       *simWorld
	i       int
	actor   causal.ActorID
	batched bool
	skew    time.Duration
	store   *memory.Store
	r       *Replica // nil while crashed
	s       *Syncer
	docs    []*Doc
	link    *simLink // the current connection, if any
	attempt int
	dialAt  time.Time
	upAt    time.Time
	cutOff  time.Time // partitioned from the server until then
	next    int       // numbers unique keys

	// acked is every change the server acknowledged to this client since
	// the server's store was last wiped, per document.
	acked map[string]causal.VersionVector
	// made is the oracle: what each of this client's changes did.
	made map[string]map[uint64]simEdit
}

// simEdit is what a change did, for the oracle.
type simEdit struct {
	inc    int64  // added to the counter /n
	unique string // a key set once, never touched again
}

// simHeartbeat is the heartbeat of every session: a silent peer is given
// up after three (real deployments default to 15 s: 45 s).
const simHeartbeat = 2 * time.Second

var simEpoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func newSimWorld(seed uint64, keep bool) *simWorld {
	w := &simWorld{seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), now: simEpoch,
		ctx: context.Background(), log: slog.New(slog.DiscardHandler), hash: fnv.New64a(),
		keep: keep, stats: newSimStats()}
	w.stats.seeds = 1
	c := simConfig{clients: 2 + w.rng.IntN(3), docs: 1 + w.rng.IntN(3), steps: 150 + w.rng.IntN(350),
		actRate: 0.2 + 0.6*w.rng.Float64(), faultPct: 0.05 + 0.25*w.rng.Float64()}
	for range c.clients {
		c.batched = append(c.batched, w.rng.IntN(2) == 0)
		c.skew = append(c.skew, time.Duration(w.rng.IntN(2000)-1000)*time.Millisecond)
	}
	if w.rng.IntN(3) == 0 { // small frames: catch-up split across many
		c.limits = syncproto.DefaultLimits
		c.limits.MaxFrame = 300 + w.rng.IntN(4000)
		if w.rng.IntN(2) == 0 { // and few changes per message
			c.limits.MaxChanges = 1 + w.rng.IntN(20)
		}
	}
	c.srvBatch = w.rng.IntN(4) == 0
	w.cfg = c
	for i := range c.docs {
		w.docIDs = append(w.docIDs, "doc/"+strconv.Itoa(i))
	}
	w.server = &simServer{store: memory.New(), actor: w.actorID(100), metric: &simMetrics{w: w}}
	w.startServer()
	for i := range c.clients {
		cl := &simClient{w: w, i: i, actor: w.actorID(i), batched: c.batched[i], skew: c.skew[i],
			store: memory.New(), acked: map[string]causal.VersionVector{}, made: map[string]map[uint64]simEdit{}}
		w.clients = append(w.clients, cl)
		cl.start()
	}
	return w
}

// actorID is a fixed actor per seed and node, so that conflicts resolve the
// same way on every replay.
func (w *simWorld) actorID(n int) causal.ActorID {
	var a causal.ActorID
	binary.BigEndian.PutUint64(a[:8], w.seed)
	binary.BigEndian.PutUint64(a[8:], uint64(n)+1)
	a[0] ^= byte(n) * 37 // actors of one seed differ in their first bytes too (Short)
	return a
}

func (w *simWorld) fail(format string, args ...any) {
	panic(simFailure{fmt.Sprintf("t=%v: ", w.now.Sub(simEpoch)) + fmt.Sprintf(format, args...)})
}

func (w *simWorld) must(err error, what string) {
	if err != nil {
		w.fail("%s: %v", what, err)
	}
}

// note records an event in the trace: its hash proves a replay exact.
func (w *simWorld) note(kind string, a, b, n int, data []byte) {
	var buf [40]byte
	binary.BigEndian.PutUint64(buf[0:], uint64(w.now.UnixNano()))
	binary.BigEndian.PutUint64(buf[8:], uint64(a))
	binary.BigEndian.PutUint64(buf[16:], uint64(b))
	binary.BigEndian.PutUint64(buf[24:], uint64(n))
	w.hash.Write([]byte(kind))
	w.hash.Write(buf[:32])
	w.hash.Write(data)
	line := fmt.Sprintf("%9.3fs %-10s %d %d %d", w.now.Sub(simEpoch).Seconds(), kind, a, b, n)
	if w.keep {
		w.trace = append(w.trace, line)
	} else {
		if len(w.trace) >= 400 {
			w.trace = w.trace[200:]
		}
		w.trace = append(w.trace, line)
	}
}

func (w *simWorld) notef(kind string, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.note(kind, 0, 0, 0, []byte(msg))
	w.trace[len(w.trace)-1] += " " + msg
}

// latency is one frame's time on the wire: mostly short, sometimes long.
func (w *simWorld) latency() time.Duration {
	if w.rng.IntN(50) == 0 {
		return time.Duration(200+w.rng.IntN(1500)) * time.Millisecond
	}
	return time.Duration(500+w.rng.IntN(40_000)) * time.Microsecond
}

// ---- nodes ----

func (w *simWorld) startServer() {
	s := w.server
	opts := []Option{WithStore(s.store), WithClock(func() time.Time { return w.now }),
		WithLogger(w.log), WithCompactAfter(0)}
	if w.cfg.srvBatch {
		opts = append(opts, WithBatchedWrites())
	}
	r, err := Open(w.ctx, "", opts...)
	w.must(err, "opening the server")
	r.actor = s.actor
	s.r = r
	w.notef("up", "server epoch %d", s.epoch)
}

func (c *simClient) start() {
	w := c.w
	opts := []Option{WithStore(c.store), WithClock(func() time.Time { return w.now.Add(c.skew) }),
		WithLogger(w.log), WithCompactAfter(0)}
	if c.batched {
		opts = append(opts, WithBatchedWrites())
	}
	r, err := Open(w.ctx, "", opts...)
	w.must(err, "opening a client")
	r.actor = c.actor
	c.r = r
	// The same heartbeat as the server's: before the server's Welcome
	// arrives, a session times out on its own.
	c.s = r.newSyncer("sim", syncConfig{name: "client" + strconv.Itoa(c.i), heartbeat: simHeartbeat}, func() {})
	// An application opens documents as it needs them; the Syncer syncs
	// those stored and those opened later.
	c.docs = make([]*Doc, len(w.docIDs))
	for k := range w.docIDs {
		if w.rng.IntN(3) > 0 {
			c.open(k)
		}
	}
	c.link, c.attempt, c.dialAt = nil, 0, w.now.Add(time.Duration(w.rng.IntN(100))*time.Millisecond)
	w.notef("up", "client %d", c.i)
}

// dial connects the client to the server, or fails as a dial does.
func (c *simClient) dial() {
	w := c.w
	if w.server.r == nil || c.cutOff.After(w.now) {
		c.attempt++
		c.dialAt = w.now.Add(simBackoff(w.rng, c.attempt))
		w.notef("dialfail", "client %d attempt %d", c.i, c.attempt)
		return
	}
	w.nextID++
	l := &simLink{id: w.nextID, client: c, epoch: w.server.epoch}
	for side := range l.ends {
		l.ends[side] = &simEnd{w: w, link: l, side: side}
	}
	ce, se := l.ends[clientSide], l.ends[serverSide]
	ce.p = c.s.attach(ce)
	ce.p.start(w.ctx)
	se.p = w.server.r.servePeer(se, ServeConfig{Role: syncproto.RoleServer, Heartbeat: simHeartbeat,
		Limits: w.cfg.limits, Metrics: w.server.metric})
	se.p.start(w.ctx)
	se.p.cfg.onEvent = func(_ *peer, ev syncproto.Event) {
		if cr, ok := ev.(syncproto.ChangesReceived); ok {
			w.server.metric.received += len(cr.Changes)
		}
	}
	for _, e := range l.ends {
		e.every = min(e.p.s.Heartbeat()/3, time.Second)
		e.tickAt = w.now.Add(e.every)
	}
	c.link = l
	w.links = append(w.links, l)
	w.notef("dial", "client %d link %d", c.i, l.id)
	w.flush(ce)
}

// simBackoff is the Syncer's backoff drawn from the simulation's source.
func simBackoff(rng *rand.Rand, n int) time.Duration {
	lo, hi := 50*time.Millisecond, 5*time.Second
	bound := lo
	for i := 1; i < n && bound < hi; i++ {
		bound *= 2
	}
	bound = min(bound, hi)
	return lo/2 + time.Duration(rng.Int64N(int64(bound-lo/2+1)))
}

// ended is the Syncer's loop after a connection ends.
func (c *simClient) ended(err error) {
	w := c.w
	if errors.Is(refusal(err), ErrSyncRefused) {
		w.fail("client %d: sync refused: %v", c.i, err)
	}
	s := c.s
	s.mu.Lock()
	was := s.status.Connected
	s.status.Connected, s.status.LastErr = false, err
	s.conn = nil
	s.notify()
	s.mu.Unlock()
	if was {
		c.attempt = 1
	} else {
		c.attempt++
	}
	c.link = nil
	c.dialAt = w.now.Add(simBackoff(w.rng, c.attempt))
}

// flush writes what the end's peer has to say, and ends it if its session
// is over.
func (w *simWorld) flush(e *simEnd) {
	if e.done {
		return
	}
	if done, err := e.p.flush(); done {
		w.end(e, err)
	}
}

// end ends one end's peer as run does when its session or connection ends.
func (w *simWorld) end(e *simEnd, err error) {
	if e.done {
		return
	}
	e.done = true
	e.Close(transport.CloseNormal, "")
	e.p.cleanup()
	var le *syncproto.LocalError
	if errors.As(err, &le) {
		w.stats.refused[le.Code.String()]++
	}
	w.notef("end", "link %d side %d: %v", e.link.id, e.side, err)
	if e.side == clientSide && e.link.client.link == e.link {
		e.link.client.ended(err)
	}
}

// deliver hands the next frame from e to the other end.
func (w *simWorld) deliver(e *simEnd) {
	f := e.out[0]
	e.out = e.out[1:]
	to := e.other()
	if to.done {
		return
	}
	w.stats.frames++
	if f.close != nil {
		w.note("recvclose", e.link.id, to.side, int(f.close.Code), nil)
		var err error
		if f.close.Code != transport.CloseNormal {
			err = f.close
		}
		w.end(to, err)
		return
	}
	w.note("recv", e.link.id, to.side, len(f.data), nil)
	to.p.receive(f.data)
	w.flush(to)
}

// live lists the ends whose peer still runs, in a fixed order.
func (w *simWorld) live() []*simEnd {
	var out []*simEnd
	for _, l := range w.links {
		for _, e := range l.ends {
			if !e.done {
				out = append(out, e)
			}
		}
	}
	return out
}

// settle lets every peer take in what document feeds queued for it (a
// change made durable elsewhere: fan-out), until none has more.
func (w *simWorld) settle() {
	for progress := true; progress; {
		progress = false
		for _, e := range w.live() {
			e.p.mu.Lock()
			pending := len(e.p.queue) > 0 || e.p.overflow
			e.p.mu.Unlock()
			if pending {
				e.p.drain(nil)
				progress = true
			}
			w.flush(e)
		}
	}
	// Forget connections with nothing left to do.
	w.links = slices.DeleteFunc(w.links, func(l *simLink) bool {
		return l.ends[0].done && l.ends[1].done && len(l.ends[0].out) == 0 && len(l.ends[1].out) == 0
	})
}

// ---- time ----

// advance moves time on and does whatever falls due, in a random order.
func (w *simWorld) advance(d time.Duration) {
	w.now = w.now.Add(d)
	type item struct {
		kind int
		e    *simEnd
		c    *simClient
	}
	for {
		var items []item
		for _, l := range w.links {
			for _, e := range l.ends {
				if e.due(w.now) {
					items = append(items, item{kind: 0, e: e})
				}
				if !e.done && !e.notice.IsZero() && !e.notice.After(w.now) {
					items = append(items, item{kind: 1, e: e})
				}
				if !e.done && !e.tickAt.After(w.now) {
					items = append(items, item{kind: 2, e: e})
				}
			}
		}
		s := w.server
		if s.r == nil && !s.upAt.After(w.now) {
			w.startServer()
			continue
		}
		for _, c := range w.clients {
			if c.r == nil && !c.upAt.After(w.now) {
				items = append(items, item{kind: 3, c: c})
			} else if c.r != nil && c.link == nil && !c.dialAt.After(w.now) {
				items = append(items, item{kind: 4, c: c})
			}
		}
		if len(items) == 0 {
			return
		}
		it := items[w.rng.IntN(len(items))]
		switch it.kind {
		case 0:
			w.deliver(it.e)
		case 1:
			w.notef("noticed", "link %d side %d", it.e.link.id, it.e.side)
			w.end(it.e, errors.New("connection reset"))
		case 2:
			it.e.tickAt = it.e.tickAt.Add(it.e.every)
			if it.e.tickAt.Before(w.now) {
				it.e.tickAt = w.now.Add(it.e.every)
			}
			it.e.p.tick()
			w.flush(it.e)
		case 3:
			it.c.start()
		case 4:
			it.c.dial()
		}
		w.settle()
		w.check()
	}
}

// ---- actions ----

// act does one random thing: mostly an edit, sometimes a fault.
func (w *simWorld) act() {
	if w.rng.Float64() >= w.cfg.faultPct {
		c := w.clients[w.rng.IntN(len(w.clients))]
		if c.r == nil {
			return
		}
		if c.batched && w.rng.IntN(6) == 0 {
			c.flush()
			return
		}
		c.edit()
		return
	}
	switch k := w.rng.IntN(100); {
	case k < 25:
		w.breakLink()
	case k < 40:
		w.stallLink()
	case k < 52:
		w.partition()
	case k < 64:
		w.crashClient()
	case k < 70:
		w.quitClient()
	case k < 78:
		w.crashServer(false)
	case k < 80:
		w.crashServer(true)
	case k < 90:
		w.evict()
	default:
		w.compact()
	}
}

func (w *simWorld) fault(kind string) {
	w.stats.faults[kind]++
	w.notef("fault", "%s", kind)
}

// pickLink is a random connection whose network part still works.
func (w *simWorld) pickLink() *simLink {
	var ls []*simLink
	for _, l := range w.links {
		if !l.broken && !(l.ends[0].done && l.ends[1].done) {
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		return nil
	}
	return ls[w.rng.IntN(len(ls))]
}

// breakLink loses a connection: what was in flight after a random point is
// gone, and each side notices after its own delay, or only by heartbeat.
func (w *simWorld) breakLink() {
	l := w.pickLink()
	if l == nil {
		return
	}
	w.fault("conn_drop")
	w.brk(l)
}

func (w *simWorld) brk(l *simLink) {
	l.broken = true
	for _, e := range l.ends {
		e.cut()
		if w.rng.IntN(3) > 0 {
			e.notice = w.now.Add(time.Duration(w.rng.IntN(3000)) * time.Millisecond)
		}
	}
}

func (w *simWorld) stallLink() {
	l := w.pickLink()
	if l == nil {
		return
	}
	w.fault("stall")
	l.stall = w.now.Add(time.Duration(200+w.rng.IntN(9000)) * time.Millisecond)
}

// partition cuts a client off the server for a while: its connection
// breaks and dials fail until it heals.
func (w *simWorld) partition() {
	c := w.clients[w.rng.IntN(len(w.clients))]
	w.fault("partition")
	c.cutOff = w.now.Add(time.Duration(500+w.rng.IntN(20_000)) * time.Millisecond)
	if c.link != nil && !c.link.broken {
		w.brk(c.link)
	}
}

// crashClient kills a client's process: what it had not flushed is lost;
// its kernel closes its connection, or (power lost) nothing does.
func (w *simWorld) crashClient() {
	c := w.clients[w.rng.IntN(len(w.clients))]
	if c.r == nil {
		return
	}
	w.fault("client_crash")
	for _, id := range w.docIDs {
		v, _ := c.store.Version(w.ctx, id)
		for seq := range c.made[id] {
			if seq > v.Get(c.actor) {
				delete(c.made[id], seq)
				w.stats.discarded++
			}
		}
	}
	if c.link != nil {
		w.crashEnd(c.link.ends[clientSide])
	}
	c.r, c.s, c.docs, c.link = nil, nil, nil, nil
	c.upAt = w.now.Add(time.Duration(w.rng.IntN(8000)) * time.Millisecond)
}

// crashEnd is the death of the process at one end of a connection.
func (w *simWorld) crashEnd(e *simEnd) {
	if e.done {
		return
	}
	e.done, e.closed = true, true
	if e.link.broken {
		return
	}
	if w.rng.IntN(4) > 0 { // the kernel closes the socket after what was sent
		e.enqueue(simFrame{close: &transport.CloseError{Code: 1006, Reason: "connection reset"}})
	} else { // the machine is gone: silence
		e.link.broken = true
	}
}

// quitClient closes a client cleanly: the session ends normally, the
// replica flushes and closes; it comes back later.
func (w *simWorld) quitClient() {
	c := w.clients[w.rng.IntN(len(w.clients))]
	if c.r == nil {
		return
	}
	w.fault("client_quit")
	if c.link != nil {
		e := c.link.ends[clientSide]
		if !e.done {
			e.p.s.Close(0, "")
			w.flush(e)
		}
	}
	c.flush()
	w.must(c.r.Close(), "closing a client")
	c.r, c.s, c.docs, c.link = nil, nil, nil, nil
	c.upAt = w.now.Add(time.Duration(w.rng.IntN(5000)) * time.Millisecond)
}

// crashServer kills the server's process (and with wipe, its disk).
func (w *simWorld) crashServer(wipe bool) {
	s := w.server
	if s.r == nil {
		return
	}
	if wipe {
		w.fault("server_wipe")
	} else {
		w.fault("server_crash")
	}
	for _, l := range w.links {
		w.crashEnd(l.ends[serverSide])
	}
	s.r = nil
	if wipe {
		s.store = memory.New()
		s.epoch++
		for _, c := range w.clients {
			c.acked = map[string]causal.VersionVector{} // must be uploaded again
		}
	}
	s.upAt = w.now.Add(time.Duration(w.rng.IntN(6000)) * time.Millisecond)
}

func (w *simWorld) evict() {
	if w.server.r == nil {
		return
	}
	id := w.docIDs[w.rng.IntN(len(w.docIDs))]
	if w.server.r.Evict(id) {
		w.fault("evict")
	}
}

// compact folds a replica's logs into saved copies, as the background
// compaction does (disabled here: it runs on a goroutine).
func (w *simWorld) compact() {
	if w.rng.IntN(2) == 0 && w.server.r != nil {
		w.fault("compact_server")
		w.must(w.server.r.Compact(w.ctx, nil), "compacting the server")
		return
	}
	c := w.clients[w.rng.IntN(len(w.clients))]
	if c.r == nil {
		return
	}
	w.fault("compact_client")
	c.flush() // in a fixed order: Replica.Flush walks a map
	w.must(c.r.Compact(w.ctx, nil), "compacting a client")
}

// flush makes a batched client's changes durable, document by document
// in a fixed order (Replica.Flush walks a map).
func (c *simClient) flush() {
	for _, id := range c.w.docIDs {
		c.r.mu.Lock()
		d := c.r.docs[id]
		c.r.mu.Unlock()
		if d != nil {
			c.w.must(d.Flush(c.w.ctx), "flushing")
		}
	}
	c.w.notef("flush", "client %d", c.i)
}

// open opens document k (the Syncer learns of it: Syncer.opened).
func (c *simClient) open(k int) *Doc {
	if c.docs[k] == nil {
		d, err := c.r.Doc(c.w.ctx, c.w.docIDs[k])
		c.w.must(err, "opening a document")
		c.docs[k] = d
		c.w.note("open", c.i, k, 0, nil)
	}
	return c.docs[k]
}

// edit makes one random local change.
func (c *simClient) edit() {
	w := c.w
	k := w.rng.IntN(len(c.docs))
	d := c.open(k)
	var ed simEdit
	kind := w.rng.IntN(100)
	err := d.Change(w.ctx, func(tx *Txn) error {
		switch {
		case kind < 25: // a shared key: concurrent sets conflict
			return tx.Set("/s"+strconv.Itoa(w.rng.IntN(3)), w.rng.IntN(1000))
		case kind < 30:
			if _, err := tx.Get("/s0"); err == nil {
				return tx.Delete("/s0")
			}
			return tx.Set("/s0", "back")
		case kind < 45:
			c.next++
			ed.unique = fmt.Sprintf("u%d_%d", c.i, c.next)
			return tx.Set("/"+ed.unique, c.next)
		case kind < 65: // only client 0 creates the counter, so that it is one
			if _, err := tx.Get("/n"); err != nil {
				if c.i != 0 {
					return tx.Set("/s1", "no counter yet")
				}
				return tx.Set("/n", Counter(0))
			}
			ed.inc = int64(w.rng.IntN(21) - 10)
			return tx.Increment("/n", ed.inc)
		case kind < 88:
			v, err := tx.Get("/t")
			if err != nil {
				if err := tx.Set("/t", Text("")); err != nil {
					return err
				}
				v = ""
			}
			s, _ := v.(string)
			n := utf8.RuneCountInString(s)
			pos := w.rng.IntN(n + 1)
			del := min(w.rng.IntN(3), n-pos)
			return tx.Splice("/t", pos, del, string(rune('a'+w.rng.IntN(26)))+strconv.Itoa(w.rng.IntN(100)))
		default:
			v, err := tx.Get("/l")
			if err != nil {
				return tx.Set("/l", []any{c.i})
			}
			l, _ := v.([]any)
			return tx.Insert("/l/"+strconv.Itoa(w.rng.IntN(len(l)+1)), c.i*1000+w.rng.IntN(1000))
		}
	})
	w.must(err, "editing")
	seq := d.Version().Get(c.actor)
	if c.made[d.ID()] == nil {
		c.made[d.ID()] = map[uint64]simEdit{}
	}
	c.made[d.ID()][seq] = ed
	w.stats.changes++
	w.note("edit", c.i, k, int(seq), nil)
}

// ---- invariants ----

func (w *simWorld) storeVersion(st store.Store, id string) causal.VersionVector {
	v, err := st.Version(w.ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return causal.VersionVector{}
	}
	w.must(err, "reading a store's version")
	return v
}

// check verifies what must hold after every step:
//   - what the server acknowledged to a client (its Syncer's word: a Have
//     or Ack from a RoleServer peer, or changes it sent) is in the
//     server's store, unless the store was wiped since;
//   - no replica holds a change of a client that the client could lose:
//     changes leave a device only once durable there.
func (w *simWorld) check() {
	srv := map[string]causal.VersionVector{}
	for _, id := range w.docIDs {
		srv[id] = w.storeVersion(w.server.store, id)
	}
	for _, c := range w.clients {
		if c.s != nil && c.link != nil && c.link.epoch == w.server.epoch {
			c.s.mu.Lock()
			for id, sd := range c.s.docs {
				if c.acked[id] == nil {
					c.acked[id] = causal.VersionVector{}
				}
				c.acked[id].Merge(sd.acked)
			}
			c.s.mu.Unlock()
		}
		for id, v := range c.acked {
			if !srv[id].Contains(v) {
				w.stats.ackLost++
				w.fail("client %d: the server acknowledged %v of %s but holds %v", c.i, v, id, srv[id])
			}
		}
	}
	for _, x := range w.clients {
		for _, id := range w.docIDs {
			own := w.storeVersion(x.store, id).Get(x.actor)
			holds := func(who string, v causal.VersionVector) {
				if v.Get(x.actor) > own {
					w.fail("%s holds change %d of client %d's %s, which has only %d durably: a change left a device before it was durable",
						who, v.Get(x.actor), x.i, id, own)
				}
			}
			holds("the server's store", srv[id])
			for _, c := range w.clients {
				if c == x {
					continue
				}
				holds(fmt.Sprintf("client %d's store", c.i), w.storeVersion(c.store, id))
				if c.r != nil {
					c.r.mu.Lock()
					d := c.r.docs[id]
					c.r.mu.Unlock()
					if d != nil {
						holds(fmt.Sprintf("client %d's memory", c.i), d.Version())
					}
				}
			}
		}
	}
}

// quiet reports whether the world has converged: every client up,
// connected and synced, nothing in flight or queued.
func (w *simWorld) quiet() bool {
	if w.server.r == nil {
		return false
	}
	for _, c := range w.clients {
		// A half-open connection (the server's end gone unnoticed) looks
		// synced to the client until its heartbeat gives up.
		if c.r == nil || c.link == nil || c.link.broken || c.link.ends[serverSide].done || !c.s.Status().Synced {
			return false
		}
	}
	for _, l := range w.links {
		for _, e := range l.ends {
			if len(e.out) > 0 && !e.other().done {
				return false
			}
		}
	}
	return true
}

// heal ends every fault: partitions, stalls, downtime; batched clients
// flush (an application flushes or closes eventually).
func (w *simWorld) heal() {
	for _, l := range w.links {
		l.stall = time.Time{}
	}
	if w.server.r == nil {
		w.server.upAt = w.now
	}
	for _, c := range w.clients {
		c.cutOff = time.Time{}
		if c.r == nil {
			c.upAt = w.now
		}
	}
	w.advance(0)
	for _, c := range w.clients {
		for k := range w.docIDs {
			c.open(k)
		}
		c.flush()
	}
	w.settle()
	w.notef("heal", "")
}

type simDocState struct {
	Version   string
	JSON      string
	Conflicts []Conflict
}

func docState(d *Doc) simDocState {
	b, err := d.JSON("")
	if err != nil {
		panic(err)
	}
	return simDocState{Version: d.Version().String(), JSON: string(b), Conflicts: d.Conflicts()}
}

// final verifies the converged world: every replica and the server hold
// the same documents (versions, values, conflicts), everything ever
// acknowledged is there, and the oracle's counter and keys agree.
func (w *simWorld) final() {
	for _, id := range w.docIDs {
		sd, err := w.server.r.Doc(w.ctx, id)
		w.must(err, "opening the server's document")
		want := docState(sd)
		if sv := w.storeVersion(w.server.store, id); sv.String() != want.Version {
			w.fail("the server's %s holds %s in memory but %v in its store", id, want.Version, sv)
		}
		for _, c := range w.clients {
			got := docState(c.docs[slices.Index(w.docIDs, id)])
			if !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				x, _ := json.Marshal(want)
				w.fail("client %d's %s differs from the server's:\n client %s\n server %s", c.i, id, g, x)
			}
			if !w.storeVersion(c.store, id).Contains(sd.Version()) {
				w.fail("client %d's store lacks changes of %s it holds in memory", c.i, id)
			}
		}
		w.stats.conflictsAtEnd += len(want.Conflicts)
		final := sd.Version()
		var sum int64
		var keys []string
		for _, c := range w.clients {
			if !final.Contains(c.acked[id]) {
				w.fail("client %d: acknowledged changes of %s are missing at the end", c.i, id)
			}
			for seq, ed := range c.made[id] {
				if seq > final.Get(c.actor) {
					w.fail("client %d's change %d of %s never reached the server", c.i, seq, id)
				}
				sum += ed.inc
				if ed.unique != "" {
					keys = append(keys, ed.unique)
				}
			}
			if n := final.Get(c.actor); n != uint64(len(c.made[id])) {
				w.fail("client %d made %d changes to %s that survived, the server holds %d", c.i, len(c.made[id]), id, n)
			}
		}
		v, _ := sd.Get("")
		m, _ := v.(map[string]any)
		if n, ok := m["n"]; ok || sum != 0 {
			if n != sum {
				w.fail("%s: counter %v, but the surviving increments add up to %d", id, n, sum)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				w.fail("%s lacks key %s set by a surviving change", id, k)
			}
		}
	}
}

// run plays the seed: chaos, then healing until convergence. It returns
// the trace's hash, or a failure.
func (w *simWorld) run() (sum uint64, fail *simFailure) {
	defer func() {
		if x := recover(); x != nil {
			if f, ok := x.(simFailure); ok {
				fail = &f
				return
			}
			fail = &simFailure{fmt.Sprintf("panic: %v\n%s", x, stack())}
		}
	}()
	w.notef("config", "%+v", w.cfg)
	for range w.cfg.steps {
		w.stats.steps++
		w.advance(time.Duration(w.rng.ExpFloat64() * float64(30*time.Millisecond)))
		if w.rng.Float64() < w.cfg.actRate {
			w.act()
			w.settle()
			w.check()
		}
	}
	w.heal()
	start := w.now
	for !w.quiet() {
		if w.now.Sub(start) > 10*time.Minute {
			w.fail("not converged 10 minutes (simulated) after healing")
		}
		w.advance(time.Duration(w.rng.ExpFloat64() * float64(30*time.Millisecond)))
	}
	w.stats.converge = append(w.stats.converge, w.now.Sub(start))
	w.final()
	w.notef("done", "converged in %v", w.now.Sub(start))
	return w.hash.Sum64(), nil
}

func stack() string {
	b := make([]byte, 16<<10)
	return string(b[:runtime.Stack(b, false)])
}

// simMetrics counts what the server's connections report.
type simMetrics struct {
	w        *simWorld
	received int
	fresh    int
}

func (m *simMetrics) ChangesIn(n int)             { m.fresh += n }
func (m *simMetrics) ChangesOut(n int)            {}
func (m *simMetrics) FanOut(time.Duration)        {}
func (m *simMetrics) StoreWrite(time.Duration)    {}
func (m *simMetrics) Refused(code syncproto.Code) {}

// ---- the tests ----

func simSeedCount() int {
	if *simSeeds > 0 {
		return *simSeeds
	}
	if s := os.Getenv("CONVERGE_SIM_SEEDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	if testing.Short() {
		return 300
	}
	return 3000
}

func simReplay(seed uint64) string {
	return fmt.Sprintf("go test -run 'TestSimulation$' -sim.seed %d -v .", seed)
}

// TestSimulation runs many seeds of the simulation; a failure prints its
// seed, the end of its trace and the command that replays it.
func TestSimulation(t *testing.T) {
	if *simSeed != 0 {
		w := newSimWorld(*simSeed, true)
		sum, fail := w.run()
		for _, line := range w.trace {
			t.Log(line)
		}
		if fail != nil {
			t.Fatalf("seed %d: %s", *simSeed, fail.msg)
		}
		t.Logf("seed %d: converged; trace hash %016x", *simSeed, sum)
		return
	}
	n := simSeedCount()
	total := newSimStats()
	var mu sync.Mutex
	var failed []uint64
	seeds := make(chan uint64)
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range seeds {
				w := newSimWorld(seed, false)
				_, fail := w.run()
				w.stats.dupChanges = w.server.metric.received - w.server.metric.fresh
				mu.Lock()
				total.add(w.stats)
				if fail != nil {
					failed = append(failed, seed)
					if len(failed) <= 3 {
						t.Errorf("seed %d failed: %s\nlast events:\n%s\nreplay: %s", seed, fail.msg,
							strings.Join(w.trace[max(0, len(w.trace)-40):], "\n"), simReplay(seed))
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		seeds <- *simFirst + uint64(i)
	}
	close(seeds)
	wg.Wait()
	if len(failed) > 0 {
		slices.Sort(failed)
		t.Errorf("%d of %d seeds failed: %v", len(failed), n, failed[:min(len(failed), 20)])
	}
	simReport(t, total, time.Since(start))
}

func simReport(t *testing.T, s *simStats, took time.Duration) {
	var faults []string
	nf := 0
	for k, v := range s.faults {
		faults = append(faults, fmt.Sprintf("%s %d", k, v))
		nf += v
	}
	sort.Strings(faults)
	var refused []string
	for k, v := range s.refused {
		refused = append(refused, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(refused)
	slices.Sort(s.converge)
	q := func(p float64) time.Duration {
		if len(s.converge) == 0 {
			return 0
		}
		return s.converge[min(len(s.converge)-1, int(p*float64(len(s.converge))))]
	}
	t.Logf("simulation: %d seeds, %d steps in %v (wall)", s.seeds, s.steps, took.Round(time.Millisecond))
	t.Logf("faults injected: %d (%s)", nf, strings.Join(faults, ", "))
	t.Logf("sessions ended by a side, by code: %s", strings.Join(refused, ", "))
	t.Logf("changes made: %d; lost after acknowledgement: %d; unflushed changes a crash discarded (never sent, never acknowledged): %d",
		s.changes, s.ackLost, s.discarded)
	t.Logf("frames delivered: %d; changes the server received again (duplicates absorbed): %d; conflicts at the end: %d",
		s.frames, s.dupChanges, s.conflictsAtEnd)
	t.Logf("simulated time to converge after the last fault: median %v, p99 %v, max %v",
		q(0.5).Round(time.Millisecond), q(0.99).Round(time.Millisecond), q(1).Round(time.Millisecond))
}

// A seed replays exactly: the same events, in the same order, with the
// same frames.
func TestSimulationReplaysExactly(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42, 1000} {
		a, fa := newSimWorld(seed, false).run()
		b, fb := newSimWorld(seed, false).run()
		if fa != nil || fb != nil {
			t.Fatalf("seed %d failed: %v %v", seed, fa, fb)
		}
		if a != b {
			t.Fatalf("seed %d: trace hashes %016x and %016x differ", seed, a, b)
		}
	}
	a, _ := newSimWorld(7, false).run()
	b, _ := newSimWorld(8, false).run()
	if a == b {
		t.Fatal("two seeds gave the same trace")
	}
}
