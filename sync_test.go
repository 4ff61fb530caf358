package converge

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/pipe"
)

// hub is a replica serving others over in-memory pipes: a server in one
// process.
type hub struct {
	t      *testing.T
	r      *Replica
	cfg    ServeConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	down   bool
	mu     sync.Mutex
}

func newHub(t *testing.T, cfg ServeConfig) *hub {
	h := &hub{t: t, cfg: cfg}
	h.start(openT(t, "", WithStore(memory.New())))
	t.Cleanup(h.stop)
	return h
}

func (h *hub) start(r *Replica) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.r, h.down = r, false
	h.ctx, h.cancel = context.WithCancel(context.Background())
}

func (h *hub) stop() {
	h.mu.Lock()
	h.down = true
	h.cancel()
	h.mu.Unlock()
	h.wg.Wait()
}

// dial is a SyncDialer: each call opens a pipe that the hub serves.
func (h *hub) dial(ctx context.Context) (transport.Conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return nil, errors.New("hub is down")
	}
	a, b := pipe.New()
	h.wg.Add(1)
	go func(r *Replica, ctx context.Context) {
		defer h.wg.Done()
		r.Serve(ctx, b, h.cfg)
	}(h.r, h.ctx)
	return a, nil
}

func syncT(t *testing.T, r *Replica, h *hub, opts ...SyncOption) *Syncer {
	t.Helper()
	opts = append([]SyncOption{SyncDialer(h.dial), SyncBackoff(5*time.Millisecond, 50*time.Millisecond)}, opts...)
	s, err := r.Sync(context.Background(), "pipe", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func waitSynced(t *testing.T, ss ...*Syncer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range ss {
		if err := s.WaitSynced(ctx); err != nil {
			t.Fatalf("not synced: %v (status %+v)", err, s.Status())
		}
	}
}

func setT(t *testing.T, d *Doc, pointer string, v any) {
	t.Helper()
	if err := d.Change(ctx, func(tx *Txn) error { return tx.Set(pointer, v) }); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestSyncThreeReplicasOfflineThenConverge(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	var rs []*Replica
	for range 3 {
		rs = append(rs, openT(t, "", WithStore(memory.New())))
	}
	// Offline: each edits the same document.
	for i, r := range rs {
		d := docT(t, r, "notes")
		setT(t, d, "/title", []string{"a", "b", "c"}[i])
		setT(t, d, "/by"+string(rune('0'+i)), i)
		if err := d.Change(ctx, func(tx *Txn) error { return tx.Increment("/count", 1) }); err == nil {
			continue
		}
		setT(t, d, "/count", Counter(1))
	}
	var ss []*Syncer
	for _, r := range rs {
		ss = append(ss, syncT(t, r, h))
	}
	waitSynced(t, ss...)
	// Everyone received everyone's changes by now: wait for the last
	// pushes to land, then compare.
	want := jsonT(t, docT(t, h.r, "notes"))
	for i, r := range rs {
		eventually(t, "replica converges", func() bool {
			got := jsonT(t, docT(t, r, "notes"))
			if got != want {
				t.Logf("replica %d: %s\nserver: %s", i, got, want)
			}
			return got == want
		})
		if c := docT(t, r, "notes").Conflicts(); len(c) == 0 {
			t.Fatalf("concurrent sets of /title must show as a conflict on every replica; %s", want)
		}
	}
	if n := len(docT(t, h.r, "notes").History()); n < 6 {
		t.Fatalf("server holds %d changes", n)
	}

	// Live: an edit on one replica reaches the others without reconnecting.
	got := make(chan Event, 16)
	cancel := docT(t, rs[2], "notes").Subscribe(func(ev Event) { got <- ev })
	defer cancel()
	setT(t, docT(t, rs[0], "notes"), "/live", true)
	select {
	case ev := <-got:
		if ev.Local || len(ev.Patches) == 0 {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("live change never arrived")
	}
	if v, _ := docT(t, rs[2], "notes").Get("/live"); v != true {
		t.Fatalf("/live = %v", v)
	}
	waitSynced(t, ss[0])
	if st := ss[0].Status(); !st.Connected || st.Unacknowledged != 0 || st.LastAck.IsZero() {
		t.Fatalf("status %+v", st)
	}
}

func TestSyncServerRebuiltFromClients(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	a := openT(t, "", WithStore(memory.New()))
	b := openT(t, "", WithStore(memory.New()))
	setT(t, docT(t, a, "d1"), "/x", 1)
	setT(t, docT(t, b, "d2"), "/y", 2)
	sa, sb := syncT(t, a, h), syncT(t, b, h)
	waitSynced(t, sa, sb)

	// The server loses everything and comes back empty.
	h.stop()
	h.start(openT(t, "", WithStore(memory.New())))
	for id, want := range map[string]string{"d1": `{"x":1}`, "d2": `{"y":2}`} {
		eventually(t, "the rebuilt server holds "+id, func() bool { return jsonT(t, docT(t, h.r, id)) == want })
	}
	waitSynced(t, sa, sb)
	if st := sa.Status(); st.Unacknowledged != 0 {
		t.Fatalf("a's changes unacknowledged by the new server: %+v", st)
	}
	// And each client has the other's document (d2 reached a through the
	// first server; it is in a's store).
	eventually(t, "a has d2", func() bool { return jsonT(t, docT(t, a, "d2")) == `{"y":2}` })
}

func TestSyncTwoReplicasDirectly(t *testing.T) {
	// No server: b serves a replica's way (RoleReplica).
	h := newHub(t, ServeConfig{})
	b := h.r
	a := openT(t, "", WithStore(memory.New()))
	setT(t, docT(t, a, "d"), "/from", "a")
	setT(t, docT(t, b, "d"), "/from", "b")
	s := syncT(t, a, h, SyncDocs("d"))
	waitSynced(t, s)
	eventually(t, "b converges", func() bool { return jsonT(t, docT(t, b, "d")) == jsonT(t, docT(t, a, "d")) })
	if len(docT(t, a, "d").Conflicts()) != 1 {
		t.Fatalf("conflict expected: %s", jsonT(t, docT(t, a, "d")))
	}
}

func TestSyncPresence(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	a := openT(t, "", WithStore(memory.New()))
	b := openT(t, "", WithStore(memory.New()))
	sa := syncT(t, a, h, SyncDocs("d"))
	sb := syncT(t, b, h, SyncDocs("d"))
	waitSynced(t, sa, sb)
	if err := docT(t, a, "d").SetPresence(map[string]any{"name": "ada", "cursor": 4}); err != nil {
		t.Fatal(err)
	}
	db := docT(t, b, "d")
	eventually(t, "b sees a", func() bool {
		ps := db.Presence()
		return len(ps) == 1 && ps[0].Peer == a.Actor() && string(ps[0].State) == `{"cursor":4,"name":"ada"}` && !ps[0].Self
	})
	// a's connection ends: its presence goes with it.
	sa.Stop()
	eventually(t, "a's presence gone", func() bool { return len(db.Presence()) == 0 })
	if err := docT(t, b, "d").SetPresence(make(chan int)); err == nil {
		t.Fatal("presence that is not JSON accepted")
	}
}

type readOnly struct{}

func (readOnly) CanRead(doc string) bool    { return doc != "secret" }
func (readOnly) CanWrite(string) bool       { return false }
func (readOnly) Expired(now time.Time) bool { return false }

func TestSyncAccessRefusals(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer, Access: readOnly{}})
	setT(t, docT(t, h.r, "public"), "/x", 1)
	a := openT(t, "", WithStore(memory.New()))
	s := syncT(t, a, h, SyncDocs("public"))
	waitSynced(t, s) // reading is allowed
	if got := jsonT(t, docT(t, a, "public")); got != `{"x":1}` {
		t.Fatalf("a got %s", got)
	}
	setT(t, docT(t, a, "public"), "/x", 2) // writing is not
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.WaitSynced(ctx)
	if err == nil || !errorsContains(err, "read_only") {
		t.Fatalf("WaitSynced = %v, want a read_only refusal", err)
	}
	var de *DocRefusedError
	if !errors.As(err, &de) || de.Doc != "public" || de.Code != syncproto.CodeReadOnly {
		t.Fatalf("WaitSynced = %v (%T), want a *DocRefusedError for public, read_only", err, err)
	}
	if got := jsonT(t, docT(t, h.r, "public")); got != `{"x":1}` {
		t.Fatalf("the server stored a refused change: %s", got)
	}

	b := openT(t, "", WithStore(memory.New()))
	sb := syncT(t, b, h, SyncDocs("secret"))
	if err := sb.WaitSynced(ctx); err == nil || !errorsContains(err, "forbidden") {
		t.Fatalf("WaitSynced = %v, want forbidden", err)
	}
}

func errorsContains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

func TestSyncURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:7878":     "ws://127.0.0.1:7878/v1/sync",
		"https://sync.example.com/": "wss://sync.example.com/v1/sync",
		"ws://h:1/custom/path":      "ws://h:1/custom/path",
		"wss://h/v1/sync?tenant=a":  "wss://h/v1/sync?tenant=a",
	} {
		if got, err := SyncURL(in); err != nil || got != want {
			t.Errorf("SyncURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://h", "127.0.0.1:7878", "http://", "::"} {
		if _, err := SyncURL(bad); err == nil {
			t.Errorf("SyncURL(%q) accepted", bad)
		}
	}
	// An address without a scheme, the likeliest slip, is answered with the URL meant.
	for _, bare := range []string{"127.0.0.1:7878", "localhost:7878"} {
		if _, err := SyncURL(bare); err == nil || !strings.Contains(err.Error(), "no scheme") || !strings.Contains(err.Error(), "http://"+bare) {
			t.Errorf("SyncURL(%q): %v", bare, err)
		}
	}
}

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	for n := 1; n < 12; n++ {
		bound := min(hi, lo<<(n-1))
		seen := map[time.Duration]bool{}
		for range 200 {
			w := backoff(lo, hi, n)
			if w < lo/2 || w > bound {
				t.Fatalf("attempt %d: wait %v outside [%v, %v]", n, w, lo/2, bound)
			}
			seen[w] = true
		}
		if len(seen) < 50 {
			t.Fatalf("attempt %d: only %d distinct waits in 200: no jitter", n, len(seen))
		}
	}
}
