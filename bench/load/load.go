package load

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/internal/cputime"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/ws"
)

// Config is one load run.
type Config struct {
	URL      string        // the server's sync endpoint (ws://host:port/v1/sync)
	Clients  int           // WebSocket clients, each on its own connection
	Docs     int           // documents; client i edits document i mod Docs
	Rate     float64       // edits per second made by each client
	Duration time.Duration // how long the clients edit
	// Drain bounds the wait, after the clients stop editing, for the last
	// edits to reach everyone (default 10s). What has not arrived by then
	// counts as lost.
	Drain time.Duration
	// DocPrefix starts every document ID (default "load-" and a random run
	// ID, so that runs against one server do not share documents).
	DocPrefix string
	// Dialers is how many connections are opened at once (default 64).
	Dialers int
	// ConnectTimeout bounds connecting every client (default 60s).
	ConnectTimeout time.Duration
	// Progress, if set, is called about once a second while the clients
	// edit, and once more when they stop.
	Progress func(Progress)
}

// Progress is a snapshot of a run under way.
type Progress struct {
	Elapsed    time.Duration // since the clients started editing
	Edits      uint64        // edits made so far
	Deliveries uint64        // (edit, receiving client) pairs so far
	P99        time.Duration // fan-out latency over the last interval
	Errors     uint64
}

// Result is what a run measured. Latencies are over every (edit, receiving
// client) pair: from the edit being made to its arrival at that client.
type Result struct {
	Clients   int     `json:"clients"`
	Docs      int     `json:"docs"`
	Rate      float64 `json:"rate"`      // edits per second per client, as asked
	DurationS float64 `json:"duration"`  // seconds of editing
	P50Ms     float64 `json:"p50Ms"`     // fan-out latency, median
	P90Ms     float64 `json:"p90Ms"`     //
	P99Ms     float64 `json:"p99Ms"`     //
	MaxMs     float64 `json:"maxMs"`     //
	MeanMs    float64 `json:"meanMs"`    //
	Edits     uint64  `json:"edits"`     // edits made
	EditsPerS float64 `json:"editsPerS"` // edits made per second, all clients
	// DeliveredPerS is edits delivered per second: the deliveries divided
	// by the number of other clients of the document, per second of editing.
	// It equals EditsPerS when every edit reached every other client.
	DeliveredPerS    float64 `json:"deliveredPerS"`
	Deliveries       uint64  `json:"deliveries"`     // (edit, receiver) pairs that arrived
	DeliveriesPerS   float64 `json:"deliveriesPerS"` //
	Expected         uint64  `json:"expected"`       // (edit, receiver) pairs that should have
	Lost             uint64  `json:"lost"`           // expected but not arrived after the drain
	Errors           uint64  `json:"errors"`         // failed dials, dropped connections, refusals
	FirstError       string  `json:"firstError,omitempty"`
	ConnectS         float64 `json:"connectS"`         // time to connect and subscribe every client
	SendLagP99Ms     float64 `json:"sendLagP99Ms"`     // how late edits were made against their schedule: a large value means the generator could not keep up
	ClientCPUS       float64 `json:"clientCpuS"`       // CPU seconds this process spent, for the whole run
	ClientGoroutines int     `json:"clientGoroutines"` // while editing

	docPrefix string
}

// Run runs the load described by cfg and returns what it measured. It
// fails only if the run could not start (bad configuration, no client
// connected); errors during the run are counted in the result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Clients < 1 || cfg.Docs < 1 || cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("load: clients, docs, rate and duration must be positive")
	}
	if cfg.Docs > cfg.Clients {
		return nil, fmt.Errorf("load: %d documents for %d clients: some would have no client", cfg.Docs, cfg.Clients)
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 10 * time.Second
	}
	if cfg.DocPrefix == "" {
		var b [4]byte
		rand.Read(b[:])
		cfg.DocPrefix = "load-" + hex.EncodeToString(b[:]) + "-"
	}
	if cfg.Dialers <= 0 {
		cfg.Dialers = 64
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 60 * time.Second
	}
	g := newGenerator(cfg)
	defer g.close()
	cpu0 := cputime.Used().Seconds()
	connectStart := time.Now()
	if err := g.connect(ctx); err != nil {
		return nil, err
	}
	connectS := time.Since(connectStart).Seconds()

	editing := g.edit(ctx)
	drained := g.drain(ctx)
	goroutines := runtime.NumGoroutine()
	_ = drained // what did not arrive is counted as lost

	res := &Result{
		Clients: cfg.Clients, Docs: cfg.Docs, Rate: cfg.Rate, DurationS: editing.Seconds(),
		P50Ms: ms(g.lat.quantile(0.50)), P90Ms: ms(g.lat.quantile(0.90)), P99Ms: ms(g.lat.quantile(0.99)),
		MaxMs: ms(g.lat.maxDuration()), MeanMs: ms(g.lat.mean()),
		Edits: g.edits.Load(), Deliveries: g.lat.count(), Expected: g.expected(),
		Errors: g.errs.Load(), FirstError: g.firstError(), ConnectS: connectS,
		SendLagP99Ms: ms(g.lag.quantile(0.99)), ClientGoroutines: goroutines, docPrefix: cfg.DocPrefix,
	}
	secs := editing.Seconds()
	res.EditsPerS = float64(res.Edits) / secs
	res.DeliveriesPerS = float64(res.Deliveries) / secs
	res.DeliveredPerS = g.deliveredEdits() / secs
	if res.Expected > res.Deliveries {
		res.Lost = res.Expected - res.Deliveries
	}
	res.ClientCPUS = cputime.Used().Seconds() - cpu0
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// generator holds the clients of one run and what they measured.
type generator struct {
	cfg     Config
	base    time.Time // the monotonic origin of the times put in edits
	clients []*client
	docs    []*docLoad

	measuring atomic.Bool // edits are being made: record what arrives
	lat       histogram   // fan-out latency
	window    atomic.Pointer[histogram]
	lag       histogram // edits made late against their schedule
	edits     atomic.Uint64
	errs      atomic.Uint64
	errMu     sync.Mutex
	firstErr  string
	stopping  atomic.Bool // the run is over: connection ends are not errors
	http      *http.Client
}

// docLoad is one document's share of the load.
type docLoad struct {
	id       string
	seed     *crdt.Change // creates the text and the map every client edits
	text, m  crdt.ObjID
	clients  int
	live     atomic.Int64  // clients that connected and subscribed
	sent     atomic.Uint64 // edits made to it while measuring
	received atomic.Uint64 // their arrivals at other clients
}

func newGenerator(cfg Config) *generator {
	g := &generator{cfg: cfg, base: time.Now()}
	g.window.Store(new(histogram))
	// Connections are hijacked from the HTTP client for WebSocket; its
	// transport only makes the handshakes, many at a time.
	g.http = &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxConnsPerHost:     0,
		MaxIdleConnsPerHost: -1,
	}}
	seedActor := causal.NewActorID()
	for i := range cfg.Docs {
		d := &docLoad{id: fmt.Sprintf("%s%d", cfg.DocPrefix, i)}
		doc := crdt.NewDoc(seedActor)
		c, _, err := doc.Change(crdt.ChangeOptions{Time: time.Now().UnixMilli()}, func(tx *crdt.Txn) error {
			var err error
			if d.text, err = tx.Put(crdt.Root, "text", crdt.NewText()); err != nil {
				return err
			}
			d.m, err = tx.Put(crdt.Root, "map", crdt.NewMap())
			return err
		})
		if err != nil {
			panic("load: making a seed change: " + err.Error()) // a bug: the calls above cannot fail on an empty document
		}
		d.seed = c
		g.docs = append(g.docs, d)
	}
	for i := range cfg.Clients {
		d := g.docs[i%cfg.Docs]
		d.clients++
		g.clients = append(g.clients, newClient(g, i, d))
	}
	return g
}

func (g *generator) fail(err error) {
	if g.stopping.Load() {
		return
	}
	g.errs.Add(1)
	g.errMu.Lock()
	if g.firstErr == "" {
		g.firstErr = err.Error()
	}
	g.errMu.Unlock()
}

func (g *generator) firstError() string {
	g.errMu.Lock()
	defer g.errMu.Unlock()
	return g.firstErr
}

// now is the time on the generator's monotonic clock, as put in edits.
func (g *generator) now() int64 { return int64(time.Since(g.base)) }

// connect opens every client's connection and waits until each has
// subscribed to its document and pushed the document's seed.
func (g *generator) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.ConnectTimeout)
	defer cancel()
	work := make(chan *client)
	var wg sync.WaitGroup
	var connected atomic.Int64
	for range g.cfg.Dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if err := c.connect(ctx); err != nil {
					g.fail(err)
					continue
				}
				connected.Add(1)
			}
		}()
	}
	for _, c := range g.clients {
		work <- c
	}
	close(work)
	wg.Wait()
	if connected.Load() == 0 {
		return fmt.Errorf("load: no client could connect to %s: %s", g.cfg.URL, g.firstError())
	}
	// Wait for every connected client's document to be live: the server
	// answered its Subscribe, and the client pushed what the server lacked.
	for _, c := range g.clients {
		if c.conn == nil {
			continue
		}
		select {
		case <-c.live:
			c.doc.live.Add(1)
		case <-c.done:
		case <-ctx.Done():
			return fmt.Errorf("load: clients did not finish subscribing within %v", g.cfg.ConnectTimeout)
		}
	}
	return nil
}

// edit makes every client edit at its rate for the configured duration and
// returns how long the editing lasted.
func (g *generator) edit(ctx context.Context) time.Duration {
	interval := time.Duration(float64(time.Second) / g.cfg.Rate)
	start := time.Now()
	end := start.Add(g.cfg.Duration)
	g.measuring.Store(true)

	// A few workers, each owning a fixed set of clients, make the edits on
	// schedule: client i edits at start + (i/C + k) intervals, so the
	// edits of all clients are spread evenly over each interval.
	workers := min(len(g.clients), 4*runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*client
			for i := w; i < len(g.clients); i += workers {
				mine = append(mine, g.clients[i])
			}
			for k := 0; ; k++ {
				for _, c := range mine {
					at := start.Add(time.Duration(k)*interval + time.Duration(c.i)*interval/time.Duration(len(g.clients)))
					if !at.Before(end) {
						return
					}
					if d := time.Until(at); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					} else {
						g.lag.record(-d)
					}
					c.edit()
				}
			}
		}()
	}
	stopProgress := g.progress(start)
	wg.Wait()
	elapsed := min(time.Since(start), g.cfg.Duration)
	g.measuring.Store(false)
	stopProgress()
	return elapsed
}

// progress reports once a second until the returned function is called.
func (g *generator) progress(start time.Time) (stop func()) {
	if g.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-done:
				return
			}
			w := g.window.Swap(new(histogram))
			g.cfg.Progress(Progress{Elapsed: time.Since(start), Edits: g.edits.Load(),
				Deliveries: g.lat.count(), P99: w.quantile(0.99), Errors: g.errs.Load()})
		}
	}()
	return func() { close(done); <-finished }
}

// drain waits for the edits in flight to arrive, cfg.Drain at most, and
// reports whether all did.
func (g *generator) drain(ctx context.Context) bool {
	deadline := time.Now().Add(g.cfg.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if g.lat.count() >= g.expected() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// expected is how many (edit, receiver) pairs should arrive.
func (g *generator) expected() uint64 {
	var n uint64
	for _, d := range g.docs {
		n += d.sent.Load() * uint64(d.liveClients()-1)
	}
	return n
}

// deliveredEdits is the deliveries of each document divided by its
// number of receivers.
func (g *generator) deliveredEdits() float64 {
	var n float64
	for _, d := range g.docs {
		if r := d.liveClients() - 1; r > 0 {
			n += float64(d.received.Load()) / float64(r)
		}
	}
	return n
}

// liveClients counts the document's clients that connected.
func (d *docLoad) liveClients() int { return int(d.live.Load()) }

func (g *generator) close() {
	g.stopping.Store(true)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, c := range g.clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.close()
		}()
	}
	wg.Wait()
	g.http.CloseIdleConnections()
}

// client is one simulated replica on its own connection.
type client struct {
	g   *generator
	i   int
	doc *docLoad
	key string // its key in the document's map

	mu    sync.Mutex // guards s, d and out
	s     *syncproto.Session
	d     *crdt.Doc
	out   [][]byte      // frames for the writer
	typed int           // characters in the client's text (its own: it applies no one else's)
	wake  chan struct{} // tells the writer there are frames

	conn   transport.Conn
	live   chan struct{} // closed when the document is live
	isLive bool
	done   chan struct{} // closed when the connection has ended
	ended  atomic.Bool
	cancel context.CancelFunc
}

func newClient(g *generator, i int, d *docLoad) *client {
	return &client{g: g, i: i, doc: d, key: fmt.Sprintf("c%d", i),
		wake: make(chan struct{}, 1), live: make(chan struct{}), done: make(chan struct{})}
}

func (c *client) connect(ctx context.Context) error {
	conn, err := ws.Dial(ctx, c.g.cfg.URL, ws.DialOptions{HTTPClient: c.g.http})
	if err != nil {
		close(c.done)
		return fmt.Errorf("load: client %d: %w", c.i, err)
	}
	actor := causal.NewActorID()
	c.d = crdt.NewDoc(actor, crdt.WithHistory(crdt.NewSliceHistory()))
	c.d.SetPatches(false)
	if _, err := c.d.Apply(c.doc.seed); err != nil {
		conn.Close(transport.CloseInternal, "")
		close(c.done)
		return fmt.Errorf("load: client %d: applying the seed: %w", c.i, err)
	}
	c.s = syncproto.NewSession(syncproto.Config{Actor: actor, Role: syncproto.RoleReplica, Dial: true, Name: c.key}, time.Now())
	c.conn = conn
	rctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.write(rctx)
	go c.read(rctx)
	c.mu.Lock()
	c.flushLocked()
	c.mu.Unlock()
	return nil
}

// read receives frames until the connection ends.
func (c *client) read(ctx context.Context) {
	defer close(c.done)
	for {
		f, err := c.conn.Read(ctx)
		if err != nil {
			if c.ended.CompareAndSwap(false, true) {
				c.g.fail(fmt.Errorf("load: client %d: connection ended: %w", c.i, err))
			}
			return
		}
		c.mu.Lock()
		c.s.Receive(f, time.Now())
		c.flushLocked()
		c.mu.Unlock()
	}
}

// write sends the frames the session produced, in order, so that neither
// the reader nor the editing workers ever wait on the network.
func (c *client) write(ctx context.Context) {
	var frames [][]byte
	for {
		select {
		case <-c.wake:
		case <-ctx.Done():
			return
		}
		c.mu.Lock()
		frames, c.out = c.out, frames[:0]
		c.mu.Unlock()
		for _, f := range frames {
			if err := c.conn.Write(ctx, f); err != nil {
				if c.ended.CompareAndSwap(false, true) {
					c.g.fail(fmt.Errorf("load: client %d: write: %w", c.i, err))
				}
				return
			}
		}
		clear(frames)
	}
}

// flushLocked acts on the session's events and hands its frames to the
// writer. Called with c.mu held.
func (c *client) flushLocked() {
	for {
		frames, events := c.s.Ready()
		for _, ev := range events {
			c.handle(ev)
		}
		if len(frames) > 0 {
			c.out = append(c.out, frames...)
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
		if len(events) == 0 {
			return
		}
	}
}

func (c *client) handle(ev syncproto.Event) {
	switch ev := ev.(type) {
	case syncproto.Connected:
		if err := c.s.Subscribe(c.doc.id, c.d.Version()); err != nil {
			c.g.fail(fmt.Errorf("load: client %d: subscribe: %w", c.i, err))
		}
	case syncproto.HaveReceived:
		// Push what the server lacks (the seed, for the first client of a
		// document): the document is then live both ways.
		c.s.Push(ev.Doc, c.d.ChangesSince(ev.Have))
		if !c.isLive {
			c.isLive = true
			close(c.live)
		}
	case syncproto.ChangesReceived:
		now := c.g.now()
		w := c.g.window.Load()
		for _, ch := range ev.Changes {
			if t, ok := madeAt(ch); ok {
				d := time.Duration(now - t)
				c.g.lat.record(d)
				w.record(d)
				c.doc.received.Add(1)
			}
		}
	case syncproto.ErrorReceived:
		c.g.fail(fmt.Errorf("load: client %d: server refused: %s: %s", c.i, ev.Code, ev.Message))
	case syncproto.Closed:
		if ev.Err != nil && c.ended.CompareAndSwap(false, true) {
			c.g.fail(fmt.Errorf("load: client %d: session ended: %w", c.i, ev.Err))
		}
	}
}

// madeAt finds the time an edit of the load was made: the int it put in
// the map.
func madeAt(ch *crdt.Change) (int64, bool) {
	for i := range ch.Ops {
		op := &ch.Ops[i]
		if op.Action == crdt.ActPut && op.Value.Kind() == crdt.KindInt {
			return op.Value.Int(), true
		}
	}
	return 0, false
}

// edit makes one edit: a character typed at the end of the client's text,
// and the time in the client's key of the map.
func (c *client) edit() {
	if c.s == nil || c.ended.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.isLive {
		return
	}
	t := c.g.now()
	ch, _, err := c.d.Change(crdt.ChangeOptions{Time: time.Now().UnixMilli()}, func(tx *crdt.Txn) error {
		if err := tx.Splice(c.doc.text, c.typed, 0, "x"); err != nil {
			return err
		}
		_, err := tx.Put(c.doc.m, c.key, crdt.Int(t))
		return err
	})
	if err != nil {
		c.g.fail(fmt.Errorf("load: client %d: edit: %w", c.i, err))
		return
	}
	if c.s.Push(c.doc.id, []*crdt.Change{ch}) == 0 {
		return
	}
	c.typed++
	c.doc.sent.Add(1)
	c.g.edits.Add(1)
	c.flushLocked()
}

func (c *client) close() {
	if c.conn == nil {
		return
	}
	c.ended.Store(true)
	c.conn.Close(transport.CloseNormal, "")
	c.cancel()
	<-c.done
}
