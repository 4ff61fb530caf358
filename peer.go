package converge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
)

// peerConfig is what differs between a connection a replica dialled and
// one it accepted (as a server, or as a replica serving another directly).
type peerConfig struct {
	dial      bool
	role      syncproto.Role
	name      string
	limits    syncproto.Limits
	heartbeat time.Duration
	maxDocs   int
	version   uint64        // the newest protocol version to speak (0: this build's newest)
	maxQueue  int           // changes waiting for a slow peer before it is dropped
	writeWait time.Duration // the longest one frame may take to write
	access    Access
	metrics   Metrics
	log       *slog.Logger
	subject   string // who the peer is, recorded with the changes it sends (audit)
	guard     *guard // limits on what the peer sends (nil on a dialling replica)

	// Hooks for a dialling replica (nil on a server).
	onEvent func(p *peer, ev syncproto.Event)
	// onMergeFailed hears of changes the peer sent that this side could
	// not merge (it refuses the document to the peer).
	onMergeFailed func(doc string, err error)
}

// Access decides what the peer of one connection may do. A server sets it
// from the connection's token; nil allows everything.
type Access interface {
	// CanRead reports whether the peer may subscribe to doc.
	CanRead(doc string) bool
	// CanWrite reports whether the peer may send changes to doc.
	CanWrite(doc string) bool
	// Expired reports whether the peer's grant has run out (the session
	// then ends with token_expired).
	Expired(now time.Time) bool
}

// Metrics receives what a sync connection does, for monitoring. All
// methods must be safe for concurrent use and fast.
type Metrics interface {
	ChangesIn(n int)             // changes received and applied
	ChangesOut(n int)            // changes sent
	FanOut(d time.Duration)      // from a change being durable to its frame being written to a peer
	StoreWrite(d time.Duration)  // one durable write of received changes
	Refused(code syncproto.Code) // something refused, by code
}

// peer runs one sync session over one connection for a replica.
type peer struct {
	r    *Replica
	cfg  peerConfig
	conn transport.Conn
	s    *syncproto.Session // touched only with smu held
	ctx  context.Context

	// smu serialises the session's steps: reading a frame, draining the
	// queue, the heartbeat (see run). The fields below it are its.
	smu         sync.Mutex
	outer       context.Context // run's context: the session ending with it is no error
	over        bool            // the session has ended
	endErr      error           // why
	every       time.Duration   // heartbeat step period
	ticker      *time.Timer
	putOff      atomic.Int32 // heartbeat steps put off in a row (see onTick)
	fanout      []time.Time
	spare       []outgoing // the queue drained last, emptied, for enqueue to fill next
	stopReading context.CancelFunc

	mu        sync.Mutex
	queue     []outgoing    // filled by document feeds and presence, drained by service
	queued    int           // changes in queue
	frame     []byte        // a frame read, waiting for service to take it
	taken     chan struct{} // service took the frame: the reader may read the next
	ended     chan struct{} // closed by finish
	overflow  bool
	running   bool            // run has started the session: enqueue may start service
	scheduled bool            // a service goroutine is draining or about to
	wctx      context.Context // bounds writes; abort ends it, and a write it cuts short drops the connection
	abort     context.CancelFunc

	docs    map[string]*Doc   // documents this connection streams (with smu held)
	follows map[string]func() // their feeds, to stop

	dctx    context.Context // wctx with a deadline: see writeCtx (with smu held)
	dcancel context.CancelFunc
}

// outgoing is something another goroutine wants sent to the peer.
type outgoing struct {
	fed      *fed // durable changes of a followed document
	presence *syncproto.Presence
	leave    *syncproto.Leave
	fn       func() // run by service, with smu held
}

func newPeer(r *Replica, conn transport.Conn, cfg peerConfig) *peer {
	if cfg.maxQueue <= 0 {
		cfg.maxQueue = 100_000
	}
	if cfg.writeWait <= 0 {
		cfg.writeWait = 30 * time.Second
	}
	if cfg.log == nil {
		cfg.log = r.log
	}
	return &peer{r: r, cfg: cfg, conn: conn, taken: make(chan struct{}, 1), ended: make(chan struct{}),
		docs: map[string]*Doc{}, follows: map[string]func(){}}
}

// enqueue hands o to the session goroutine without blocking.
func (p *peer) enqueue(o outgoing) {
	p.mu.Lock()
	if p.overflow {
		// The peer is being dropped for not keeping up: holding more for
		// it would let a client that never reads grow the server's memory.
		p.mu.Unlock()
		return
	}
	p.queue = append(p.queue, o)
	n := 1
	if o.fed != nil {
		n = len(o.fed.changes)
	}
	p.queued += n // presence counts too: a relay must not pile it up for a peer that does not read
	if p.queued > p.cfg.maxQueue {
		p.overflow = true
		// A write may be stuck on a peer that does not read; dropping the
		// connection ends it now rather than after the write timeout.
		if p.abort != nil {
			p.abort()
		}
	}
	start := p.running && !p.scheduled
	p.scheduled = p.scheduled || start
	p.mu.Unlock()
	if start {
		go p.service()
	}
}

// do runs fn on the session goroutine.
func (p *peer) do(fn func()) { p.enqueue(outgoing{fn: fn}) }

// run drives the session until the connection ends or ctx is done. It
// returns why the session ended (nil when ctx ended it).
//
// The calling goroutine only reads the connection. Each frame read, and
// what other goroutines queue (document feeds, presence, calls from a
// Syncer), is handled by a goroutine started when there is something to
// handle (service), which ends when there is nothing more; the heartbeat
// runs on a timer. Each takes smu, so the session sees one step at a time.
// An idle connection then costs one goroutine with a shallow stack: a
// server holds thousands of connections idle most of the time, and
// handling a frame (merging, encoding) needs a deep stack, which a
// goroutine keeps once grown.
func (p *peer) run(ctx context.Context) error {
	rctx, stopReading := context.WithCancel(context.WithoutCancel(ctx))
	p.start(rctx)
	defer p.abort() // ends wctx and the write contexts made from it
	defer stopReading()
	p.smu.Lock()
	p.outer, p.stopReading = ctx, stopReading
	if done, err := p.flush(); done { // a dialling session's Hello
		p.finish(err)
		p.smu.Unlock()
		return err
	}
	p.every = min(p.s.Heartbeat()/3, time.Second)
	// Armed only once p.ticker is set: a tick that finds the session busy
	// resets the timer without the lock.
	p.ticker = time.AfterFunc(time.Hour, p.onTick)
	p.ticker.Reset(p.every)
	stopWatch := context.AfterFunc(ctx, func() {
		p.smu.Lock()
		defer p.smu.Unlock()
		if p.over {
			return
		}
		if p.cfg.dial {
			p.s.Close(0, "") // a client leaving: a normal close
		} else {
			p.s.Close(syncproto.CodeGoingAway, "shutting down")
		}
		p.stepped(nil)
	})
	defer stopWatch()
	p.mu.Lock()
	p.running = true
	pending := (len(p.queue) > 0 || p.overflow) && !p.scheduled
	p.scheduled = p.scheduled || pending
	p.mu.Unlock()
	if pending { // queued before the session started (a Syncer's subscriptions)
		go p.service()
	}
	p.smu.Unlock()

	for {
		f, err := p.conn.Read(rctx)
		if err != nil {
			p.smu.Lock()
			defer p.smu.Unlock()
			if p.over {
				return p.endErr
			}
			p.conn.Close(transport.CloseNormal, "")
			if errors.Is(err, transport.ErrTooBig) && p.cfg.metrics != nil {
				// Refused by the socket's read limit before the session saw
				// it: counted as the session counts a frame too large.
				p.cfg.metrics.Refused(syncproto.CodeFrameTooLarge)
			}
			var ce *transport.CloseError
			if !errors.As(err, &ce) || ce.Code != transport.CloseNormal {
				err = fmt.Errorf("converge: sync connection to %s: %w", p.conn.RemoteAddr(), err)
			} else {
				err = nil // the peer left cleanly
			}
			if ctx.Err() != nil {
				err = nil
			}
			p.finish(err)
			return err
		}
		// Hand the frame over, and read the next only once it is taken,
		// so that a peer sending faster than its frames are handled waits
		// on TCP rather than filling the server's memory.
		p.mu.Lock()
		p.frame = f
		start := p.running && !p.scheduled
		p.scheduled = p.scheduled || start
		p.mu.Unlock()
		if start {
			go p.service()
		}
		select {
		case <-p.taken:
		case <-p.ended:
			p.smu.Lock()
			defer p.smu.Unlock()
			return p.endErr
		}
	}
}

// stepped flushes what the last step made the session say, records the
// fan-out delays of the changes it sent, and ends the peer if the session
// is over. Called with smu held.
func (p *peer) stepped(fanout []time.Time) {
	done, err := p.flush()
	if p.cfg.metrics != nil && len(fanout) > 0 {
		at := time.Now()
		for _, t := range fanout {
			p.cfg.metrics.FanOut(at.Sub(t))
		}
	}
	if done {
		if p.outer.Err() != nil {
			err = nil
		}
		p.finish(err)
	}
}

// finish ends the peer once: its feeds stop, nothing more is queued for
// it, and the reading goroutine is let go. Called with smu held.
func (p *peer) finish(err error) {
	if p.over {
		return
	}
	p.over, p.endErr = true, err
	close(p.ended)
	if p.ticker != nil {
		p.ticker.Stop()
	}
	p.mu.Lock()
	p.queue, p.queued, p.running, p.frame = nil, 0, false, nil
	p.mu.Unlock()
	p.cleanup()
	if p.stopReading != nil {
		// The connection is closed already (flush closes it when the
		// session ends); this ends a Read still waiting on it.
		p.stopReading()
	}
}

// service hands the session the frame read and drains the queue, on its
// own goroutine (started by the reader or enqueue), until there is
// nothing more.
func (p *peer) service() {
	p.smu.Lock()
	defer p.smu.Unlock()
	for {
		p.mu.Lock()
		// After an overflow, drain has ended the session and enqueue adds
		// nothing more: one drain is the last.
		if p.over || len(p.queue) == 0 && !p.overflow && p.frame == nil {
			p.scheduled = false
			p.mu.Unlock()
			return
		}
		f := p.frame
		p.frame = nil
		overflow := p.overflow
		p.mu.Unlock()
		if f != nil {
			p.taken <- struct{}{} // never blocks: one frame at a time
			p.receive(f)
			p.stepped(nil)
			// A peer sending frames without pause always has the next one
			// waiting: what is queued for it goes out in the same pass, or
			// it would never go.
			p.mu.Lock()
			waiting := len(p.queue) > 0 || p.overflow
			overflow = p.overflow
			p.mu.Unlock()
			if !waiting || p.over {
				continue
			}
		}
		p.fanout = p.drain(p.fanout[:0])
		p.stepped(p.fanout)
		if overflow && !p.over {
			p.finish(fmt.Errorf("converge: sync connection to %s: dropped for not keeping up", p.conn.RemoteAddr()))
		}
	}
}

// onTick runs the heartbeat step on the timer's goroutine. When a step is
// under way the session is busy, not silent: the tick is put off to the
// next period rather than queued behind it (a server under load would
// otherwise hold a goroutine per connection waiting for its turn). But
// only maxPutOff times in a row: the step also ends a session whose token
// has expired and forgets stale presence, which a connection busy all the
// time must not escape; the next tick waits for its turn.
func (p *peer) onTick() {
	if !p.smu.TryLock() {
		if p.putOff.Add(1) <= maxPutOff {
			p.ticker.Reset(p.every)
			return
		}
		p.smu.Lock()
	}
	p.putOff.Store(0)
	defer p.smu.Unlock()
	if p.over {
		return
	}
	p.tick()
	p.stepped(nil)
	if !p.over {
		p.ticker.Reset(p.every)
	}
}

// maxPutOff is how many heartbeat steps in a row a busy session may put
// off: with steps a second apart, an expired token ends the session within
// about four seconds however busy it is.
const maxPutOff = 3

// The loop of run is made of the steps below (start, receive, tick, drain,
// flush), so that a deterministic simulation can drive the same code one
// step at a time in an order it chooses, with no goroutine of its own.

// start makes the session; ctx bounds the peer's store calls.
func (p *peer) start(ctx context.Context) {
	p.ctx = ctx
	// Writes get their own context, so that dropping a slow peer can cut a
	// stuck write at once rather than wait out writeWait.
	wctx, abort := context.WithCancel(ctx)
	p.mu.Lock()
	p.wctx, p.abort = wctx, abort
	p.mu.Unlock()
	p.s = syncproto.NewSession(syncproto.Config{Actor: p.r.actor, Role: p.cfg.role, Name: p.cfg.name,
		Dial: p.cfg.dial, Limits: p.cfg.limits, Heartbeat: p.cfg.heartbeat, MaxDocs: p.cfg.maxDocs,
		Version: p.cfg.version}, p.r.now())
}

// receive hands the session one frame from the peer.
func (p *peer) receive(f []byte) { p.s.Receive(f, p.r.now()) }

// tick tells the session the time: heartbeats, an expired grant, presence.
func (p *peer) tick() {
	now := p.r.now()
	p.s.Tick(now)
	if p.cfg.access != nil && p.cfg.access.Expired(now) {
		p.s.Close(syncproto.CodeTokenExpired, "the token expired; connect again with a new one")
	}
	p.r.presence.tick(now)
}

// drain moves what other goroutines queued into the session.
func (p *peer) drain(fanout []time.Time) []time.Time {
	p.mu.Lock()
	q, overflow := p.queue, p.overflow
	p.queue, p.queued = p.spare, 0
	p.spare = nil
	p.mu.Unlock()
	defer func() {
		// The drained queue is the next one's space: a server queues for
		// every subscriber at every change.
		if cap(q) <= 1024 {
			clear(q)
			p.spare = q[:0]
		}
	}()
	if overflow {
		p.s.Close(syncproto.CodeUnavailable, fmt.Sprintf("the connection is too slow: over %d changes waiting to be sent", p.cfg.maxQueue))
		return fanout
	}
	for _, o := range q {
		switch {
		case o.fn != nil:
			o.fn()
		case o.presence != nil:
			p.s.SendPresence(*o.presence)
		case o.leave != nil:
			p.s.SendLeave(o.leave.Doc, o.leave.Peer)
		case o.fed != nil:
			var sent int
			if o.fed.shared && p.s.CanRelay() {
				// The frame every subscriber gets, encoded once.
				sent = p.s.Relay(o.fed.Relay(), o.fed.changes)
			} else {
				sent = p.s.Push(o.fed.doc, o.fed.changes)
			}
			if sent > 0 {
				fanout = append(fanout, o.fed.durable)
				p.countOut(sent)
			}
		}
	}
	return fanout
}

func (p *peer) countOut(n int) {
	if p.cfg.metrics != nil && n > 0 {
		p.cfg.metrics.ChangesOut(n)
	}
}

// flush handles the session's events and writes its frames until it has
// nothing more to say. done is true when the session is over.
func (p *peer) flush() (done bool, err error) {
	for {
		frames, events := p.s.Ready()
		if len(frames) == 0 && len(events) == 0 {
			return false, nil
		}
		var closed *syncproto.Closed
		for _, ev := range events {
			if c, ok := ev.(syncproto.Closed); ok {
				closed = &c
				continue
			}
			p.handle(ev)
			if p.cfg.onEvent != nil {
				p.cfg.onEvent(p, ev)
			}
		}
		for _, f := range frames {
			if werr := p.conn.Write(p.writeCtx(), f); werr != nil {
				p.conn.Close(transport.CloseInternal, "write failed")
				return true, fmt.Errorf("converge: sync connection to %s: %w", p.conn.RemoteAddr(), werr)
			}
		}
		if len(frames) > 0 {
			p.s.Sent(p.r.now())
		}
		if closed != nil {
			var le *syncproto.LocalError
			if p.cfg.metrics != nil && errors.As(closed.Err, &le) {
				p.cfg.metrics.Refused(le.Code)
			}
			if p.cfg.onEvent != nil {
				p.cfg.onEvent(p, *closed)
			}
			p.conn.Close(closeCode(closed.Err), closeReason(closed.Err))
			return true, closed.Err
		}
	}
}

// writeCtx returns the context for a write: wctx (which abort ends) with
// a deadline between half of writeWait and writeWait away. One context
// serves many writes, as a context with a deadline costs a timer and
// several allocations, and a server writes a frame per subscriber per
// change.
func (p *peer) writeCtx() context.Context {
	if p.dctx != nil {
		if deadline, _ := p.dctx.Deadline(); time.Until(deadline) >= p.cfg.writeWait/2 {
			return p.dctx
		}
		p.dcancel()
	}
	p.dctx, p.dcancel = context.WithTimeout(p.wctx, p.cfg.writeWait)
	return p.dctx
}

func closeCode(err error) transport.CloseCode {
	var le *syncproto.LocalError
	if errors.As(err, &le) {
		switch le.Code {
		case syncproto.CodeGoingAway:
			return transport.CloseGoingAway
		case syncproto.CodeMalformed, syncproto.CodeProtocol, syncproto.CodeProtocolVersion, syncproto.CodeNotSubscribed:
			return transport.CloseProtocolError
		case syncproto.CodeFrameTooLarge:
			return transport.CloseTooBig
		case syncproto.CodeInternal:
			return transport.CloseInternal
		default:
			return transport.ClosePolicyViolation
		}
	}
	return transport.CloseNormal
}

func closeReason(err error) string {
	var le *syncproto.LocalError
	if errors.As(err, &le) {
		return le.Code.String()
	}
	return ""
}

// handle acts on one session event.
func (p *peer) handle(ev syncproto.Event) {
	switch ev := ev.(type) {
	case syncproto.SubscribeRequest:
		p.answer(ev)
	case syncproto.HaveReceived:
		if d := p.docs[ev.Doc]; d != nil {
			var changes []*crdt.Change
			if err := d.durable(p.ctx, func(doc *crdt.Doc) { changes = doc.ChangesSince(ev.Have) }); err != nil {
				p.refuse(ev.Doc, syncproto.CodeUnavailable, err.Error())
				return
			}
			p.countOut(p.s.Push(ev.Doc, changes))
		}
	case syncproto.ChangesReceived:
		p.merge(ev)
	case syncproto.Unsubscribed:
		p.unfollow(ev.Doc)
	case syncproto.ChangeTooLarge:
		p.unfollow(ev.Doc)
		p.cfg.log.Warn("sync: a change is too large to send: the document stops syncing on this connection",
			"peer", p.conn.RemoteAddr(), "doc", ev.Doc, "change", ev.Change.String(), "bytes", ev.Size, "limit", ev.Limit)
		if p.cfg.metrics != nil {
			p.cfg.metrics.Refused(syncproto.CodeFrameTooLarge)
		}
	case syncproto.ErrorReceived:
		if ev.Doc != "" {
			p.unfollow(ev.Doc)
		}
		p.cfg.log.Warn("sync: peer refused", "peer", p.conn.RemoteAddr(), "doc", ev.Doc, "code", ev.Code.String(), "reason", ev.Message)
	case syncproto.PresenceReceived:
		if p.cfg.guard != nil { // relayed to every subscriber: it costs like a change
			if code, msg := p.cfg.guard.admit(p.r.now(), 1); code != 0 {
				p.s.Close(code, msg)
				return
			}
		}
		p.r.presence.received(p, ev.Presence)
	case syncproto.LeaveReceived:
		p.r.presence.left(p, ev.Doc, ev.Peer)
	}
}

func (p *peer) refuse(doc string, code syncproto.Code, msg string) {
	if code == syncproto.CodeUnavailable {
		// This side's fault (its store failed to load or write the
		// document), not the peer's: the peer only sees the refusal, so
		// the operator must see it here.
		p.cfg.log.Error("sync: document refused to the peer: the store failed", "peer", p.conn.RemoteAddr(), "doc", doc, "err", msg)
	}
	p.unfollow(doc)
	p.s.Refuse(doc, code, msg)
	if p.cfg.metrics != nil {
		p.cfg.metrics.Refused(code)
	}
}

// answer serves a peer's Subscribe: what it lacks, then this side's version.
func (p *peer) answer(ev syncproto.SubscribeRequest) {
	if p.cfg.access != nil && !p.cfg.access.CanRead(ev.Doc) {
		p.refuse(ev.Doc, syncproto.CodeForbidden, "this token does not allow reading "+ev.Doc)
		return
	}
	d, err := p.follow(ev.Doc)
	if err != nil {
		p.refuse(ev.Doc, codeOf(err), err.Error())
		return
	}
	var changes []*crdt.Change
	var version causal.VersionVector
	if err := d.durable(p.ctx, func(doc *crdt.Doc) { changes, version = doc.ChangesSince(ev.Have), doc.Version() }); err != nil {
		p.refuse(ev.Doc, syncproto.CodeUnavailable, err.Error())
		return
	}
	p.countOut(p.s.Answer(ev.Doc, changes, version))
	p.r.presence.joined(p, ev.Doc)
}

// follow opens doc and starts feeding its new durable changes to the
// session. Following before reading what to send means no change can fall
// between the two; the session drops what the peer already has.
func (p *peer) follow(id string) (*Doc, error) {
	if d := p.docs[id]; d != nil {
		return d, nil
	}
	for {
		d, err := p.r.Doc(p.ctx, id)
		if err != nil {
			return nil, err
		}
		// A server may evict the document between opening and following
		// it; then the handle is stale and the document is opened again.
		stop, ok := d.follow(func(b *fed) { p.enqueue(outgoing{fed: b}) })
		if ok {
			p.docs[id], p.follows[id] = d, stop
			return d, nil
		}
	}
}

func (p *peer) unfollow(id string) {
	if stop := p.follows[id]; stop != nil {
		stop()
		delete(p.follows, id)
		delete(p.docs, id)
	}
	p.r.presence.parted(p, id)
}

// merge applies changes the peer sent, makes them durable and acknowledges.
func (p *peer) merge(ev syncproto.ChangesReceived) {
	if p.cfg.access != nil && !p.cfg.access.CanWrite(ev.Doc) {
		if !p.cfg.access.CanRead(ev.Doc) {
			p.refuse(ev.Doc, syncproto.CodeForbidden, "this token does not allow "+ev.Doc+"; nothing was stored")
			return
		}
		p.refuse(ev.Doc, syncproto.CodeReadOnly, "this token allows reading "+ev.Doc+", not writing; nothing was stored")
		return
	}
	if p.cfg.guard != nil {
		if code, msg := p.cfg.guard.admit(p.r.now(), len(ev.Changes)); code != 0 {
			p.s.Close(code, msg)
			return
		}
	}
	d, err := p.follow(ev.Doc)
	if err != nil {
		p.refuse(ev.Doc, codeOf(err), err.Error())
		return
	}
	start := time.Now()
	res, err := d.mergeFrom(p.ctx, p.cfg.subject, ev.Changes)
	if p.cfg.guard != nil {
		if code, msg := p.cfg.guard.track(ev.Doc, d, ev.Changes, res.held); code != 0 {
			p.s.Close(code, msg)
			return
		}
	}
	// Durable: the merge stored it before unlocking the document. It is the
	// batch's, shared and never changed: the session may keep it.
	version := res.version
	if err == nil && version == nil {
		err = d.durable(p.ctx, func(doc *crdt.Doc) { version = doc.Version() })
	}
	if p.cfg.metrics != nil && err == nil && res.fresh > 0 {
		p.cfg.metrics.StoreWrite(time.Since(start))
		p.cfg.metrics.ChangesIn(res.fresh)
	}
	if err != nil {
		if p.cfg.onMergeFailed != nil {
			p.cfg.onMergeFailed(ev.Doc, err)
		}
		p.refuse(ev.Doc, codeOf(err), err.Error())
		return
	}
	p.s.Ack(ev.Doc, version)
}

// codeOf is the protocol code for an error from the replica.
func codeOf(err error) syncproto.Code {
	switch {
	case errors.Is(err, crdt.ErrInvalidChange), errors.Is(err, ErrRolledBack):
		return syncproto.CodeInvalidChange
	case errors.Is(err, ErrBadDocID):
		return syncproto.CodeMalformed
	case errors.Is(err, ErrClosed):
		return syncproto.CodeGoingAway
	default:
		return syncproto.CodeUnavailable
	}
}

// cleanup stops every feed and forgets the peer's presence.
func (p *peer) cleanup() {
	if p.cfg.guard != nil {
		p.cfg.guard.release()
	}
	for id := range p.follows {
		p.unfollow(id)
	}
	p.r.presence.gone(p)
}
