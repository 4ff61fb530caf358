package server

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/auth"
	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
	"github.com/converge-sync/converge/internal/prototest"
	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/pipe"
)

// fuzzClaims is what the fuzzing peer may do: write its own documents,
// read the seeded ones.
var fuzzClaims = &auth.Claims{Subject: "fuzzer", Expires: time.Now().Add(100 * 365 * 24 * time.Hour),
	Grants: []auth.Grant{{Pattern: "fuzz/**", Perm: auth.ReadWrite}, {Pattern: "seed/**", Perm: auth.Read}}}

// packFrames joins frames as (uvarint length, bytes)…, the fuzz input's
// form; unpackFrames splits it back, leniently (a length past the end
// takes the rest).
func packFrames(frames ...[]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func unpackFrames(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 && len(out) < 64 {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return append(out, b)
		}
		b = b[k:]
		if n > uint64(len(b)) {
			n = uint64(len(b))
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// fuzzSeeds are sessions a peer could send, valid or nearly so, for the
// fuzzer to start from.
func fuzzSeeds(t testing.TB) [][]byte {
	hello := syncproto.Encode(&syncproto.Hello{Version: syncproto.Version, Peer: causal.ActorID{9}, Role: syncproto.RoleReplica, Name: "fuzz"})
	enc := func(doc string, cs []*crdt.Change) []byte {
		w := encoding.NewChangeWriter()
		m := &syncproto.Changes{Doc: doc}
		for _, c := range cs {
			m.Changes = append(m.Changes, w.Encode(c))
		}
		return syncproto.Encode(m)
	}
	sub := func(doc string) []byte { return syncproto.Encode(&syncproto.Subscribe{Doc: doc}) }
	cs := prototest.Chain(t, 4)
	return [][]byte{
		packFrames(hello, sub("fuzz/a"), enc("fuzz/a", cs)),
		packFrames(hello, sub("fuzz/b"), enc("fuzz/b", cs[2:]), enc("fuzz/b", cs[:1])), // out of order
		packFrames(hello, sub("seed/a"), enc("seed/a", cs)),                            // read-only
		packFrames(hello, sub("other"), enc("other", cs)),                              // forbidden
		packFrames(hello, sub("fuzz/c"), syncproto.Encode(&syncproto.Presence{Doc: "fuzz/c", Peer: causal.ActorID{9}, TTLMs: 1000, State: []byte(`{"x":1}`)}),
			syncproto.Encode(&syncproto.Leave{Doc: "fuzz/c", Peer: causal.ActorID{9}}), syncproto.Encode(&syncproto.Unsubscribe{Doc: "fuzz/c"})),
		packFrames(hello, syncproto.Encode(&syncproto.Ack{Doc: "fuzz/a", Durable: causal.VersionVector{causal.ActorID{1}: 3}}),
			syncproto.Encode(&syncproto.Ping{Nonce: 1}), syncproto.Encode(&syncproto.Error{Code: syncproto.CodeInternal, Doc: "fuzz/a", Message: "x"})),
		packFrames(hello, hello),
		packFrames(hello, sub("fuzz/a"), []byte{0x13, 6, 'f', 'u', 'z', 'z', '/', 'a', 1, 3, 1, 2, 3}), // truncated change
		packFrames([]byte("GET / HTTP/1.1\r\n\r\n")),
	}
}

// fuzzFixture is one server for every input of a fuzz run, with documents
// the fuzzing peer may read but not write.
type fuzzFixture struct {
	srv   *Server
	st    *memory.Store
	seed  string // seed/a's JSON
	count atomic.Int64
}

func newFuzzFixture(t testing.TB, dir string) *fuzzFixture {
	st := memory.New()
	srv, err := New(Config{DataDir: dir, Logger: quiet, ReplicaOptions: []converge.Option{converge.WithStore(st)}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fuzzFixture{srv: srv, st: st}
	d, err := srv.Replica().Doc(context.Background(), "seed/a")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Change(context.Background(), func(tx *converge.Txn) error { return tx.Set("/v", "the seed") }); err != nil {
		t.Fatal(err)
	}
	f.seed = jsonOfDoc(t, srv.Replica(), "seed/a")
	return f
}

func jsonOfDoc(t testing.TB, r *converge.Replica, id string) string {
	d, err := r.Doc(context.Background(), id)
	if err != nil {
		t.Fatalf("loading %q: %v", id, err)
	}
	b, err := d.JSON("")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// session runs one server session fed frames, reading (and checking)
// everything the server answers, and returns once the session is over.
func (f *fuzzFixture) session(t testing.TB, frames [][]byte) {
	a, b := pipe.New(pipe.WithBuffer(len(frames) + 1))
	served := make(chan struct{})
	go func() {
		defer close(served)
		f.srv.serveConn(b, fuzzClaims, "fuzz")
	}()
	// The server answers a Ping after acting on every frame before it, so
	// its Pong (or the end of the session) says it is done.
	const last = 1<<62 + 12345
	read := make(chan struct{})
	go func() {
		defer close(read)
		for {
			out, err := a.Read(context.Background())
			if err != nil {
				return
			}
			m, err := syncproto.Decode(out, syncproto.DefaultLimits)
			if err != nil {
				t.Errorf("the server sent a frame that does not decode: %v", err)
				return
			}
			msgs := []syncproto.Message{m}
			if b, ok := m.(*syncproto.Batch); ok { // a batch's frames, each as if it came alone
				msgs = msgs[:0]
				for _, inner := range b.Frames {
					im, err := syncproto.Decode(inner, syncproto.DefaultLimits)
					if err != nil {
						t.Errorf("the server sent a batch holding a frame that does not decode: %v", err)
						return
					}
					msgs = append(msgs, im)
				}
			}
			for _, m := range msgs {
				if p, ok := m.(*syncproto.Pong); ok && p.Nonce == last {
					return
				}
			}
		}
	}()
	for _, fr := range frames {
		if a.Write(context.Background(), fr) != nil {
			break // the server has ended the session
		}
	}
	a.Write(context.Background(), syncproto.Encode(&syncproto.Ping{Nonce: last}))
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the server neither answered nor ended the session")
	}
	a.Close(transport.CloseNormal, "")
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("the server session did not end after its peer left")
	}
}

// check asserts that the server still serves an honest peer, and that
// what it stores is intact: the read-only seed unchanged, and (every
// few inputs) every stored document loading from the store as the
// server holds it.
func (f *fuzzFixture) check(t testing.TB) {
	if got := jsonOfDoc(t, f.srv.Replica(), "seed/a"); got != f.seed {
		t.Fatalf("the read-only document changed: %s", got)
	}
	a, b := pipe.New()
	go f.srv.serveConn(b, fuzzClaims, "honest")
	honest := syncproto.NewSession(syncproto.Config{Actor: causal.ActorID{7}, Role: syncproto.RoleReplica, Dial: true}, time.Now())
	honest.Subscribe("seed/a", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer a.Close(transport.CloseNormal, "")
	var got []*crdt.Change
	for {
		frames, events := honest.Ready()
		for _, fr := range frames {
			if err := a.Write(ctx, fr); err != nil {
				t.Fatalf("honest peer: %v", err)
			}
		}
		for _, ev := range events {
			switch ev := ev.(type) {
			case syncproto.ChangesReceived:
				got = append(got, ev.Changes...)
			case syncproto.HaveReceived:
				r, _ := converge.Open(context.Background(), "", converge.WithStore(memory.New()))
				d, _ := r.Doc(context.Background(), "seed/a")
				if err := d.Merge(context.Background(), got...); err != nil {
					t.Fatal(err)
				}
				if j := jsonOfDoc(t, r, "seed/a"); j != f.seed {
					t.Fatalf("an honest peer synced %s, want %s", j, f.seed)
				}
				r.Close()
				if f.count.Add(1)%256 == 0 {
					f.checkStore(t)
				}
				return
			case syncproto.Closed:
				t.Fatalf("the server ended an honest session: %v", ev.Err)
			}
		}
		fr, err := a.Read(ctx)
		if err != nil {
			t.Fatalf("honest peer: %v", err)
		}
		honest.Receive(fr, time.Now())
	}
}

// checkStore loads every stored document afresh from the store and
// compares it with the server's.
func (f *fuzzFixture) checkStore(t testing.TB) {
	ctx := context.Background()
	infos, err := f.st.Docs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	view, err := converge.Open(ctx, "", converge.WithStore(f.st))
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	for _, info := range infos {
		if got, want := jsonOfDoc(t, view, info.ID), jsonOfDoc(t, f.srv.Replica(), info.ID); got != want {
			t.Fatalf("%q: the store holds %s, the server %s", info.ID, got, want)
		}
	}
}

// FuzzServeSession feeds arbitrary frames to a live server session, as
// one connection's peer: whatever arrives, the server must not panic or
// hang, must answer only with frames that decode, must keep serving an
// honest peer, and must keep what it stores intact.
func FuzzServeSession(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	fx := newFuzzFixture(f, f.TempDir())
	f.Cleanup(func() { fx.srv.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		fx.session(t, unpackFrames(data))
		fx.check(t)
	})
}
