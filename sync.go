package converge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/ws"
)

// SyncOption configures Replica.Sync.
type SyncOption func(*syncConfig)

type syncConfig struct {
	docs       []string // nil: every document, including ones opened later
	token      string
	name       string
	minBackoff time.Duration
	maxBackoff time.Duration
	heartbeat  time.Duration
	dial       func(ctx context.Context) (transport.Conn, error)
}

// SyncDocs limits sync to the named documents (by default every document
// of the replica is synced, including ones opened later).
func SyncDocs(ids ...string) SyncOption {
	return func(c *syncConfig) { c.docs = slices.Clone(ids) }
}

// SyncToken sends token to the server (as "Authorization: Bearer token").
func SyncToken(token string) SyncOption { return func(c *syncConfig) { c.token = token } }

// SyncName is the name this replica gives the server, for its logs.
func SyncName(name string) SyncOption { return func(c *syncConfig) { c.name = name } }

// SyncBackoff sets the wait before reconnecting: it starts at min, doubles
// after each failed attempt up to max, and each wait is drawn at random
// below its bound (jitter), so that clients of a restarted server do not
// all return at once. Defaults: 250ms and 30s.
func SyncBackoff(min, max time.Duration) SyncOption {
	return func(c *syncConfig) { c.minBackoff, c.maxBackoff = min, max }
}

// SyncHeartbeat sets how often an idle connection is checked (default
// syncproto.DefaultHeartbeat; a server may ask for another).
func SyncHeartbeat(d time.Duration) SyncOption { return func(c *syncConfig) { c.heartbeat = d } }

// SyncDialer makes connections with dial instead of dialling a WebSocket
// URL: for other transports, and tests (transport/pipe). dial is called
// for every connection, reconnections included, so it must return a new
// connection each time; the url given to Sync is then only a name for
// logs and SyncStatus.
func SyncDialer(dial func(ctx context.Context) (transport.Conn, error)) SyncOption {
	return func(c *syncConfig) { c.dial = dial }
}

// SyncStatus is where a Syncer stands.
type SyncStatus struct {
	URL       string // the sync endpoint, as SyncURL made it (or the name given with SyncDialer)
	Connected bool
	// Unacknowledged counts the changes this replica holds that the peer
	// has not acknowledged as durable (over the synced documents that have
	// been exchanged on a connection).
	Unacknowledged int
	LastAck        time.Time // when the peer last acknowledged changes
	Synced         bool      // every synced document is current both ways
	LastErr        error     // why the last connection or attempt failed
	Retries        int       // failed attempts since the last connection
}

// ErrSyncRefused wraps an error that reconnecting would not cure: a token
// refused or expired, a protocol version the server does not speak. The
// Syncer stops, and Err returns it. (A refusal of one document does not
// stop the Syncer: see DocRefusedError.)
var ErrSyncRefused = errors.New("converge: sync refused")

// ErrSyncStopped is what WaitSynced returns when the Syncer was stopped
// (Stop, its context, or Replica.Close) before everything was exchanged.
var ErrSyncStopped = errors.New("converge: sync stopped")

// DocRefusedError is a peer's refusal of one document (forbidden,
// read_only, invalid_change, unavailable, …): Syncer.WaitSynced returns
// it, for errors.As. The Syncer goes on syncing the other documents; an
// unavailable document is asked for again after a backoff.
type DocRefusedError struct {
	Doc     string
	Code    syncproto.Code
	Message string // the peer's words, for people
}

func (e *DocRefusedError) Error() string {
	return fmt.Sprintf("converge: sync of %q refused: %s: %s", e.Doc, e.Code, e.Message)
}

// ChangeTooLargeError says that a change of Doc cannot be sent to the
// peer: its encoding alone (Size bytes) is over the largest frame the peer
// accepts (Limit; a server's --max-frame). The document stops syncing on
// that connection, both ways, until the next; the change stays on this
// replica, and the other documents go on. Syncer.WaitSynced returns it,
// for errors.As.
type ChangeTooLargeError struct {
	Doc    string
	Change causal.ChangeID
	Size   int
	Limit  int
}

func (e *ChangeTooLargeError) Error() string {
	return fmt.Sprintf("converge: sync of %q stopped: change %v is %d bytes, over the %d bytes a frame to the peer may hold", e.Doc, e.Change, e.Size, e.Limit)
}

// Syncer keeps a replica's documents in sync with one peer, in the
// background, reconnecting after failures. Local edits never wait for it.
type Syncer struct {
	r      *Replica
	url    string
	cfg    syncConfig
	cancel context.CancelFunc
	done   chan struct{}
	// looping: a goroutine runs loop, which closes done when it ends (not
	// so for a Syncer whose connections a test drives itself).
	looping bool
	// version is the protocol version to offer (0: this build's newest),
	// lowered for a server that refused it, at steppedDown (see connect).
	// Only connect, on the loop's goroutine, uses them.
	version     uint64
	steppedDown time.Time

	mu      sync.Mutex
	conn    *peer
	status  SyncStatus
	docs    map[string]*syncDoc // per synced document, what the peer said
	changed chan struct{}       // closed and replaced at every status change
	stopErr error               // a refusal that ended the Syncer
}

type syncDoc struct {
	exchanged bool // the peer's Have arrived on the current connection
	peerHave  causal.VersionVector
	acked     causal.VersionVector
	err       error // the peer refused the document
	retries   int   // unavailable refusals since the document was last exchanged
}

// Sync starts keeping the replica's documents in sync with the peer at url
// (a converge server: http://, https://, ws:// or wss://, made a sync
// endpoint by SyncURL; an invalid url is an error now, not a retry), in the
// background, until ctx ends, Stop is called or the replica is closed. It returns at once; the
// Syncer reports its status and can wait until everything is exchanged.
func (r *Replica) Sync(ctx context.Context, url string, opts ...SyncOption) (*Syncer, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	cfg := syncConfig{minBackoff: 250 * time.Millisecond, maxBackoff: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	for _, id := range cfg.docs {
		if err := checkDocID(id); err != nil {
			return nil, err
		}
	}
	if max := syncproto.DefaultLimits.MaxString; len(cfg.name) > max {
		// The peer would end every session at the Hello, for ever.
		return nil, fmt.Errorf("converge: sync name of %d bytes is over the %d a peer accepts: %w", len(cfg.name), max, ErrBadValue)
	}
	if cfg.dial == nil {
		u, err := SyncURL(url)
		if err != nil {
			return nil, err
		}
		url = u
		header := http.Header{}
		if cfg.token != "" {
			header.Set("Authorization", "Bearer "+cfg.token)
		}
		cfg.dial = func(ctx context.Context) (transport.Conn, error) {
			return ws.Dial(ctx, url, ws.DialOptions{Header: header})
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	s := r.newSyncer(url, cfg, cancel)
	s.looping = true
	go s.loop(ctx)
	return s, nil
}

// newSyncer makes a Syncer that learns of documents the replica opens.
func (r *Replica) newSyncer(url string, cfg syncConfig, cancel context.CancelFunc) *Syncer {
	s := &Syncer{r: r, url: url, cfg: cfg, cancel: cancel, done: make(chan struct{}),
		docs: map[string]*syncDoc{}, changed: make(chan struct{})}
	s.status.URL = url
	r.mu.Lock()
	r.syncers = append(r.syncers, s)
	r.mu.Unlock()
	return s
}

// SyncPath is the path of a converge server's sync endpoint.
const SyncPath = "/v1/sync"

// SyncURL turns what a person gives as a server address into the URL of
// its sync endpoint: http becomes ws and https wss, and an address with no
// path gets SyncPath ("http://127.0.0.1:7878" → "ws://127.0.0.1:7878/v1/sync").
func SyncURL(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		// "127.0.0.1:7878" would fail to parse with a message about path
		// segments, and "localhost:7878" parse with the scheme "localhost".
		return "", fmt.Errorf("converge: server URL %q has no scheme: want http://, https://, ws:// or wss://, as in http://%s", raw, raw)
	}
	u, err := neturl.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("converge: server URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("converge: server URL %q: want http://, https://, ws:// or wss://", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("converge: server URL %q has no host", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = SyncPath
	}
	return u.String(), nil
}

// Stop ends the sync and waits for its connection to close.
func (s *Syncer) Stop() {
	s.cancel()
	<-s.done
}

// Done is closed when the Syncer has stopped (Stop, its context, or a
// refusal: see Err).
func (s *Syncer) Done() <-chan struct{} { return s.done }

// Err returns the refusal that stopped the Syncer, if one did.
func (s *Syncer) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopErr
}

// Status returns where the Syncer stands. It loads no document: for one
// not in memory, it asks the store for its version.
func (s *Syncer) Status() SyncStatus {
	s.mu.Lock()
	st := s.status
	docs := make(map[string]*syncDoc, len(s.docs))
	for id, d := range s.docs {
		docs[id] = &syncDoc{exchanged: d.exchanged, peerHave: d.peerHave.Clone(), acked: d.acked.Clone(), err: d.err}
	}
	s.mu.Unlock()
	st.Synced = st.Connected && len(docs) > 0
	for id, sd := range docs {
		local := s.localVersion(id)
		for a, seq := range local {
			if seq > sd.acked[a] {
				st.Unacknowledged += int(seq - sd.acked[a])
			}
		}
		if !sd.exchanged || sd.err != nil || !local.Contains(sd.peerHave) || !sd.acked.Contains(local) {
			st.Synced = false
		}
	}
	if st.Connected && len(docs) == 0 && len(s.cfg.docs) == 0 {
		st.Synced = true // nothing to sync
	}
	return st
}

// localVersion is what this replica holds of document id: a loaded
// document's version (unflushed changes included), or else the store's,
// which holds all of a document that is not loaded (eviction waits for
// its changes to be durable). Status must not load documents to answer: a
// replica that syncs thousands would load them all, and keep them.
func (s *Syncer) localVersion(id string) causal.VersionVector {
	s.r.mu.Lock()
	d := s.r.docs[id]
	s.r.mu.Unlock()
	if d != nil {
		return d.Version()
	}
	v, err := s.r.st.Version(context.Background(), id)
	if err != nil {
		return causal.VersionVector{} // none stored (or the replica is closed)
	}
	return v
}

// WaitSynced waits until every synced document is current on both sides:
// this replica holds everything the peer had when they exchanged, and the
// peer has acknowledged everything this replica holds. It returns a
// document's refusal (*DocRefusedError; not for unavailable, which the
// Syncer asks again after a backoff, and WaitSynced waits through), a
// change too large to send (*ChangeTooLargeError), a rolled-back folder
// (an error wrapping ErrRolledBack), the refusal that
// stopped the Syncer (wrapping ErrSyncRefused),
// ErrSyncStopped if it was stopped otherwise, or ctx's error (with the last
// connection error, if any).
func (s *Syncer) WaitSynced(ctx context.Context) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if s.Status().Synced {
			return nil
		}
		if err := s.docErr(); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-s.done:
			if err := s.Err(); err != nil {
				return err
			}
			return ErrSyncStopped
		case <-ctx.Done():
			st := s.Status()
			if st.LastErr != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), st.LastErr)
			}
			return ctx.Err()
		}
	}
}

// docErr returns a document's refusal, if any but unavailable (a store
// failing on the peer's side: the document is asked for again).
func (s *Syncer) docErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.docs {
		var re *DocRefusedError
		if d.err != nil && !(errors.As(d.err, &re) && re.Code == syncproto.CodeUnavailable) {
			return d.err
		}
	}
	return nil
}

// notify marks a status change. Called with s.mu held.
func (s *Syncer) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// opened is called by the replica when the application opens a document.
func (s *Syncer) opened(id string) {
	if s.cfg.docs != nil {
		return
	}
	s.mu.Lock()
	p := s.conn
	s.mu.Unlock()
	if p != nil {
		p.do(func() { s.subscribe(p, id) })
	}
}

func (s *Syncer) loop(ctx context.Context) {
	defer close(s.done)
	defer func() {
		s.r.mu.Lock()
		s.r.syncers = slices.DeleteFunc(s.r.syncers, func(x *Syncer) bool { return x == s })
		s.r.mu.Unlock()
	}()
	defer func() {
		// Stopped: no longer connected, whichever way it ended.
		s.mu.Lock()
		s.status.Connected, s.conn = false, nil
		s.notify()
		s.mu.Unlock()
	}()
	attempt := 0
	for ctx.Err() == nil {
		err := s.connect(ctx)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		wasConnected := s.status.Connected // the handshake succeeded this time
		s.status.Connected, s.status.LastErr = false, err
		if errors.Is(err, ErrSyncRefused) {
			s.stopErr = err
			s.notify()
			s.mu.Unlock()
			s.r.log.Error("sync refused; not retrying", "url", s.url, "err", err)
			return
		}
		if wasConnected {
			attempt = 1
		} else {
			attempt++
		}
		s.conn = nil
		s.status.Retries = attempt
		s.notify()
		s.mu.Unlock()
		wait := backoff(s.cfg.minBackoff, s.cfg.maxBackoff, attempt)
		s.r.log.Info("sync disconnected; retrying", "url", s.url, "in", wait.Round(time.Millisecond).String(), "err", err) // a string: JSON logs print a Duration in nanoseconds
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// backoff is the wait before attempt n (n ≥ 1): full jitter below an
// exponentially growing bound.
func backoff(lo, hi time.Duration, n int) time.Duration {
	bound := lo
	for i := 1; i < n && bound < hi; i++ {
		bound *= 2
	}
	bound = min(bound, hi)
	return lo/2 + rand.N(bound-lo/2+1)
}

// connect runs one connection until it ends.
func (s *Syncer) connect(ctx context.Context) error {
	conn, err := s.cfg.dial(ctx)
	if err != nil {
		var he *ws.HandshakeError
		if errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden) {
			return fmt.Errorf("%w: %w", ErrSyncRefused, err) // the HandshakeError stays reachable (errors.As)
		}
		return err
	}
	if s.version != 0 && s.r.now().Sub(s.steppedDown) > retryNewestAfter {
		s.version = 0 // the server may have been upgraded since
	}
	err = s.attach(conn).run(ctx)
	if v := s.offering(); v > syncproto.MinVersion && olderServer(err) {
		// A server older than this build refuses the Hello of a version it
		// does not speak, without saying which it does: offer the one
		// before, at once, until one is accepted (the server is upgraded
		// last) or none is left (then the refusal stands). The version
		// accepted is kept for this Syncer's later connections, for
		// retryNewestAfter.
		s.version, s.steppedDown = v-1, s.r.now()
		s.r.log.Info("sync server speaks an older protocol; offering an older version", "url", s.url, "version", s.version)
		return s.connect(ctx)
	}
	return refusal(err)
}

// retryNewestAfter is how long a Syncer keeps offering the older protocol
// version a server accepted before it offers the newest again, at the
// cost of one refused connection if the server is still the older one.
const retryNewestAfter = time.Hour

// offering is the protocol version this Syncer offers in its Hello.
func (s *Syncer) offering() uint64 {
	if s.version == 0 {
		return syncproto.Version
	}
	return s.version
}

// olderServer reports whether a session ended because the peer refused
// the protocol version offered.
func olderServer(err error) bool {
	var pe *syncproto.PeerError
	return errors.As(err, &pe) && pe.Code == syncproto.CodeProtocolVersion
}

// attach makes the peer of a new connection.
func (s *Syncer) attach(conn transport.Conn) *peer {
	p := newPeer(s.r, conn, peerConfig{dial: true, role: syncproto.RoleReplica, name: s.cfg.name,
		heartbeat: s.cfg.heartbeat, version: s.version, onEvent: s.event, onMergeFailed: s.mergeFailed})
	s.mu.Lock()
	s.conn = p
	for _, d := range s.docs {
		// What the peer acknowledged before may be gone (a server that lost
		// its disk): only this connection's word counts.
		d.exchanged, d.peerHave, d.acked = false, nil, causal.VersionVector{}
	}
	s.mu.Unlock()
	return p
}

// refusal wraps in ErrSyncRefused why a session ended, if reconnecting
// would not cure it.
func refusal(err error) error {
	var pe *syncproto.PeerError
	if errors.As(err, &pe) {
		switch pe.Code {
		case syncproto.CodeUnauthorized, syncproto.CodeForbidden, syncproto.CodeProtocolVersion, syncproto.CodeTokenExpired:
			return fmt.Errorf("%w: %w", ErrSyncRefused, err) // the PeerError stays reachable (errors.As)
		}
	}
	return err
}

// event tracks the session for status, and subscribes on connecting. It
// runs on the connection's goroutine.
func (s *Syncer) event(p *peer, ev syncproto.Event) {
	switch ev := ev.(type) {
	case syncproto.Connected:
		ids := s.cfg.docs
		if ids == nil {
			ids = s.r.openIDs(p.ctx)
		}
		for _, id := range ids {
			s.subscribe(p, id)
		}
		// Connected only now, so that a waiter sees the subscriptions.
		s.mu.Lock()
		s.status.Connected, s.status.LastErr, s.status.Retries = true, nil, 0
		s.notify()
		s.mu.Unlock()
		s.r.log.Info("sync connected", "url", s.url, "peer", ev.Peer.Short())
	case syncproto.HaveReceived:
		s.mu.Lock()
		d := s.doc(ev.Doc)
		d.exchanged, d.peerHave, d.retries = true, ev.Have.Clone(), 0
		if ev.Role == syncproto.RoleServer {
			d.acked.Merge(ev.Have) // a server holds only what is durable
		}
		s.notify()
		s.mu.Unlock()
	case syncproto.AckReceived:
		s.mu.Lock()
		s.doc(ev.Doc).acked.Merge(ev.Durable)
		s.status.LastAck = s.r.now()
		s.notify()
		s.mu.Unlock()
	case syncproto.ChangesReceived:
		s.mu.Lock()
		// Any peer sends only what it holds durably (a replica's feeds
		// and catch-up read its durable changes), so what it sent needs
		// no acknowledgement; without this, a replica synced with
		// another replica (not a server) never became Synced after
		// receiving changes it had nothing to answer with.
		d := s.doc(ev.Doc)
		for _, c := range ev.Changes {
			d.acked.Observe(c.ID())
		}
		s.notify()
		s.mu.Unlock()
	case syncproto.ChangeTooLarge:
		s.mu.Lock()
		err := &ChangeTooLargeError{Doc: ev.Doc, Change: ev.Change, Size: ev.Size, Limit: ev.Limit}
		s.doc(ev.Doc).err = err
		s.status.LastErr = err
		s.notify()
		s.mu.Unlock()
	case syncproto.ErrorReceived:
		s.mu.Lock()
		if ev.Doc != "" {
			d := s.doc(ev.Doc)
			d.err = &DocRefusedError{Doc: ev.Doc, Code: ev.Code, Message: ev.Message}
			if ev.Code == syncproto.CodeUnavailable {
				// The peer's store failed (a full disk, an I/O error): not
				// the document's fault, and it may pass. The document is
				// asked for again on this connection, after a backoff,
				// rather than left out until the next connection.
				d.retries++
				doc, wait := ev.Doc, backoff(s.cfg.minBackoff, s.cfg.maxBackoff, d.retries)
				time.AfterFunc(wait, func() { p.do(func() { s.subscribe(p, doc) }) })
			}
		}
		s.status.LastErr = fmt.Errorf("peer refused: %s: %s", ev.Code, ev.Message)
		s.notify()
		s.mu.Unlock()
	}
}

// mergeFailed hears of changes the peer sent that the replica could not
// merge. A rolled-back folder (ErrRolledBack) is the document's error until
// the Syncer stops: retrying cannot cure it, and the person running the app
// must hear of it. (A store failing is retried with the next connection.)
func (s *Syncer) mergeFailed(doc string, err error) {
	if !errors.Is(err, ErrRolledBack) {
		return
	}
	s.r.log.Error("sync: this replica's folder was rolled back or copied; the document stops syncing", "url", s.url, "doc", doc, "err", err)
	s.mu.Lock()
	s.doc(doc).err = err
	s.status.LastErr = err
	s.notify()
	s.mu.Unlock()
}

func (s *Syncer) doc(id string) *syncDoc {
	d := s.docs[id]
	if d == nil {
		d = &syncDoc{acked: causal.VersionVector{}}
		s.docs[id] = d
	}
	return d
}

// subscribe starts syncing document id on connection p.
func (s *Syncer) subscribe(p *peer, id string) {
	if _, ok := p.docs[id]; ok {
		return
	}
	d, err := p.follow(id)
	if err != nil {
		s.mu.Lock()
		s.doc(id).err = err
		s.notify()
		s.mu.Unlock()
		return
	}
	var have causal.VersionVector
	if err := d.durable(p.ctx, func(doc *crdt.Doc) { have = doc.Version() }); err != nil {
		s.mu.Lock()
		s.doc(id).err = err
		s.notify()
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	sd := s.doc(id)
	sd.exchanged, sd.err = false, nil
	s.mu.Unlock()
	if err := p.s.Subscribe(id, have); err == nil {
		p.r.presence.joined(p, id)
	}
}

// openIDs lists every document of the replica: stored, or open in memory.
func (r *Replica) openIDs(ctx context.Context) []string {
	infos, err := r.st.Docs(ctx)
	if err != nil {
		r.log.Warn("sync: listing documents", "err", err)
	}
	seen := map[string]bool{}
	var ids []string
	for _, info := range infos {
		seen[info.ID] = true
		ids = append(ids, info.ID)
	}
	r.mu.Lock()
	for id := range r.docs {
		if !seen[id] {
			ids = append(ids, id)
		}
	}
	r.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// ServeConfig configures Replica.Serve.
type ServeConfig struct {
	// Role announced to the peer: syncproto.RoleServer for a server (its
	// Have then counts as an acknowledgement), RoleReplica (the default)
	// for a replica serving another directly.
	Role syncproto.Role
	// Name is this side's name, given to the peer for its logs.
	Name      string
	Limits    syncproto.Limits // what the connection accepts (DefaultLimits)
	Heartbeat time.Duration    // syncproto.DefaultHeartbeat if zero
	MaxDocs   int              // documents per connection (10,000)
	MaxQueue  int              // changes waiting for a slow peer before it is dropped (100,000)
	Access    Access           // what the peer may do (nil: anything)
	Metrics   Metrics          // nil: none

	// Subject names the peer (a token's subject): the store records it with
	// every change the peer sends (store.Change.Origin), for audit.
	Subject string
	// ChangesPerSecond limits the changes the peer may send, sustained,
	// with bursts of ChangeBurst (DefaultChangeBurst if 0); past it the
	// session ends with rate_limited and nothing of the message is stored.
	// 0: no limit.
	ChangesPerSecond float64
	ChangeBurst      int
	// MaxHeld bounds the changes the peer may send ahead of the changes
	// they depend on, which wait in memory (DefaultMaxHeld if 0); past it
	// the session ends with too_many_pending. They are dropped when the
	// connection ends.
	MaxHeld int
}

// Serve runs the answering side of a sync session on an accepted
// connection, until it ends or ctx is done (then the peer is told the
// server is going away), and closes conn. Any replica can serve: this is
// both how the server works and how two replicas sync directly.
//
// It returns nil when the session ended cleanly (the peer left, or ctx
// ended it), ErrClosed if the replica is closed, or why the session
// failed: a *syncproto.PeerError when the peer ended it with an error, a
// *syncproto.LocalError when this side did (a limit, an invalid message),
// or the connection's error.
func (r *Replica) Serve(ctx context.Context, conn transport.Conn, cfg ServeConfig) error {
	if conn == nil {
		return errors.New("converge: Serve needs a connection (conn is nil)")
	}
	if err := r.checkOpen(); err != nil {
		conn.Close(transport.CloseGoingAway, "replica closed")
		return err
	}
	return r.servePeer(conn, cfg).run(ctx)
}

// servePeer makes the answering peer of an accepted connection.
func (r *Replica) servePeer(conn transport.Conn, cfg ServeConfig) *peer {
	if cfg.Role == 0 {
		cfg.Role = syncproto.RoleReplica
	}
	return newPeer(r, conn, peerConfig{role: cfg.Role, name: cfg.Name, limits: cfg.Limits, heartbeat: cfg.Heartbeat,
		maxDocs: cfg.MaxDocs, maxQueue: cfg.MaxQueue, access: cfg.Access, metrics: cfg.Metrics,
		subject: cfg.Subject, guard: newGuard(cfg.ChangesPerSecond, cfg.ChangeBurst, cfg.MaxHeld)})
}
