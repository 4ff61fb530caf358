package converge

import (
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
)

// Every connection's heartbeat step calls the presence hub's tick; the
// hub walks its entries at most once a second however many connections
// call it, and what is due (an expired peer's presence) is still done at
// the next walk.
func TestPresenceTickWalksOncePerPeriod(t *testing.T) {
	h := newPresenceHub(time.Now)
	t0 := time.Now()
	who := causal.ActorID{7}
	h.docs["d"] = map[causal.ActorID]*presenceEntry{who: {from: &peer{}, ttl: time.Second, expires: t0.Add(1500 * time.Millisecond)}}
	for i := range 1000 { // a thousand connections' steps within half a second
		h.tick(t0.Add(time.Duration(i) * time.Millisecond / 2))
	}
	if h.walks != 1 {
		t.Fatalf("%d walks of the entries for 1,000 ticks within half a second", h.walks)
	}
	h.tick(t0.Add(time.Second))
	if h.walks != 2 || len(h.docs["d"]) != 1 {
		t.Fatalf("after a second: %d walks, %d entries (the entry expires at 1.5 s)", h.walks, len(h.docs["d"]))
	}
	h.tick(t0.Add(1600 * time.Millisecond)) // within the period: not walked
	if len(h.docs["d"]) != 1 {
		t.Fatal("walked again within the period")
	}
	h.tick(t0.Add(2 * time.Second))
	if h.walks != 3 || len(h.docs["d"]) != 0 {
		t.Fatalf("after two seconds: %d walks, %d entries: the expired presence is still there", h.walks, len(h.docs["d"]))
	}
}
