package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The chaos test: the converge binary as server and as three syncing
// clients, a TCP proxy between them that adds latency, drops connections
// and stalls them, the server killed with SIGKILL at random moments and
// restarted, its data folder wiped once. At the end every replica and the
// server must hold the same document, every edit a client made must be in
// it, and nothing the server acknowledged may have gone missing from its
// disk at any kill (before the wipe).
//
// A replica folder is open in one process at a time (its store is locked),
// so each client alternates, as a laptop's application does: a running
// `converge sync` (stopped with SIGTERM, or killed with SIGKILL), then
// edits with `converge doc` while offline, and now and then a
// `converge sync --once`, whose success means the server acknowledged
// everything the folder held: that is what the test counts as
// acknowledged.
//
// CONVERGE_CHAOS=10m runs it for ten minutes instead of the short default.

const chaosDoc = "chaos"

// chaosDuration is how long faults are injected.
func chaosDuration(t *testing.T) time.Duration {
	if s := os.Getenv("CONVERGE_CHAOS"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("CONVERGE_CHAOS=%q: %v", s, err)
		}
		return d
	}
	if testing.Short() {
		return 10 * time.Second
	}
	return 25 * time.Second
}

// chaosProxy forwards TCP connections to the server through a hostile
// network: every chunk is delayed (in order), connections are cut, and
// stalled for seconds.
type chaosProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	rng   *rand.Rand
	conns map[*proxyConn]bool

	accepted, drops, stalls atomic.Int64
}

type proxyConn struct {
	client, server net.Conn
	stallUntil     atomic.Int64 // unix nanos
}

func (c *proxyConn) close() {
	c.client.Close()
	c.server.Close()
}

func newChaosProxy(t *testing.T, target string, seed uint64) *chaosProxy {
	p := &chaosProxy{target: target, rng: rand.New(rand.NewPCG(seed, 1)), conns: map[*proxyConn]bool{}}
	p.ln = proxyTCP(t, target, func(c, s net.Conn) {
		pc := &proxyConn{client: c, server: s}
		p.accepted.Add(1)
		p.mu.Lock()
		p.conns[pc] = true
		p.mu.Unlock()
		var once sync.Once
		done := func() {
			once.Do(func() {
				pc.close()
				p.mu.Lock()
				delete(p.conns, pc)
				p.mu.Unlock()
			})
		}
		go p.pump(pc, s, c, done)
		go p.pump(pc, c, s, done)
	})
	t.Cleanup(func() {
		p.ln.Close() // before the connections, so that no new one slips in
		p.mu.Lock()
		for pc := range p.conns {
			pc.close()
		}
		p.mu.Unlock()
	})
	return p
}

// pump copies src to dst a chunk at a time, each chunk after a delay; one
// goroutine per direction keeps the stream in order.
func (p *chaosProxy) pump(pc *proxyConn, dst, src net.Conn, done func()) {
	defer done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			time.Sleep(p.latency())
			for time.Now().UnixNano() < pc.stallUntil.Load() {
				time.Sleep(20 * time.Millisecond)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *chaosProxy) latency() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rng.IntN(40) == 0 {
		return time.Duration(100+p.rng.IntN(400)) * time.Millisecond
	}
	return time.Duration(p.rng.IntN(15)) * time.Millisecond
}

// disrupt cuts or stalls one random connection.
func (p *chaosProxy) disrupt() {
	p.mu.Lock()
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	if len(conns) == 0 {
		p.mu.Unlock()
		return
	}
	c := conns[p.rng.IntN(len(conns))]
	cut := p.rng.IntN(2) == 0
	stall := time.Duration(500+p.rng.IntN(4000)) * time.Millisecond
	p.mu.Unlock()
	if cut {
		p.drops.Add(1)
		c.close()
	} else {
		p.stalls.Add(1)
		c.stallUntil.Store(time.Now().Add(stall).UnixNano())
	}
}

// chaosLedger is what the test knows: what each client made (every edit
// command that succeeded is durable on its device) and what the server
// acknowledged since its disk was last wiped.
type chaosLedger struct {
	mu    sync.Mutex
	epoch int            // bumped when the server's disk is wiped
	acked map[string]int // actor -> highest sequence number acknowledged
	keys  []string       // unique keys set by successful edits
	sum   int64          // what successful increments added to /n
	edits int
	syncs map[string]int // sync processes by how they ended
}

// history is a replica folder's version of the chaos document: actor ->
// highest sequence number held (sequence numbers of an actor are 1..n).
func history(dir string) (map[string]int, error) {
	out, errs, err := convergeErr("doc", "history", "--replica", dir, "--json", chaosDoc)
	if err != nil {
		return nil, fmt.Errorf("doc history: %v: %s", err, errs)
	}
	var hs []struct {
		Actor string `json:"actor"`
		Seq   int    `json:"seq"`
	}
	if err := json.Unmarshal([]byte(out), &hs); err != nil {
		return nil, fmt.Errorf("doc history: %v: %s", err, out)
	}
	v := map[string]int{}
	for _, h := range hs {
		v[h.Actor] = max(v[h.Actor], h.Seq)
	}
	return v, nil
}

func missing(held, want map[string]int) []string {
	var out []string
	for a, n := range want {
		if held[a] < n {
			out = append(out, fmt.Sprintf("%s… %d of %d", a[:8], held[a], n))
		}
	}
	sort.Strings(out)
	return out
}

// chaosClient is one replica folder and its life: sync for a while, stop
// or be killed, edit offline, sometimes sync once and record the ack.
func chaosClient(t *testing.T, i int, dir, url string, until time.Time, l *chaosLedger, rng *rand.Rand) {
	next := 0
	edit := func() {
		var args []string
		var key string
		var inc int64
		switch k := rng.IntN(10); {
		case k < 3:
			next++
			key = fmt.Sprintf("c%d_%d", i, next)
			args = []string{"set", key, strconv.Itoa(next)}
		case k < 5:
			inc = int64(rng.IntN(9) + 1)
			args = []string{"incr", "n", strconv.FormatInt(inc, 10)}
		case k < 8:
			args = []string{"splice", "t", "0", "0", fmt.Sprintf("%c", 'a'+i)}
		default:
			args = []string{"set", "shared", strconv.Itoa(rng.IntN(100))}
		}
		full := append([]string{"doc", args[0], "--replica", dir, chaosDoc, "/" + args[1]}, args[2:]...)
		if _, errs, err := convergeErr(full...); err != nil {
			t.Errorf("client %d: converge %s: %v\n%s", i, strings.Join(full, " "), err, errs)
			return
		}
		l.mu.Lock()
		l.edits++
		l.sum += inc
		if key != "" {
			l.keys = append(l.keys, key)
		}
		l.mu.Unlock()
	}
	for time.Now().Before(until) && !t.Failed() {
		// Sync in the background for a while, then stop or die.
		cmd := exec.Command(bin, "sync", "--replica", dir, "--server", url)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Errorf("client %d: %v", i, err)
			return
		}
		time.Sleep(time.Duration(300+rng.IntN(2500)) * time.Millisecond)
		how := "sigterm"
		if rng.IntN(3) == 0 {
			how = "sigkill"
			cmd.Process.Kill()
		} else {
			cmd.Process.Signal(syscall.SIGTERM)
		}
		err := cmd.Wait()
		if how == "sigterm" && err != nil {
			// Only the server refusing for good makes sync exit non-zero.
			t.Errorf("client %d: converge sync exited with %v after SIGTERM", i, err)
		}
		l.mu.Lock()
		l.syncs[how]++
		l.mu.Unlock()

		// Offline edits.
		for range 1 + rng.IntN(4) {
			edit()
		}

		// Sometimes: sync until everything is acknowledged.
		if rng.IntN(3) == 0 {
			l.mu.Lock()
			epoch := l.epoch
			l.mu.Unlock()
			_, _, err := convergeErr("sync", "--replica", dir, "--server", url, "--once", "--timeout", "4s")
			if err != nil {
				l.mu.Lock()
				l.syncs["once_timeout"]++
				l.mu.Unlock()
				continue
			}
			v, err := history(dir)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			l.mu.Lock()
			l.syncs["once_acked"]++
			if l.epoch == epoch { // no wipe meanwhile: the ack still holds
				for a, n := range v {
					l.acked[a] = max(l.acked[a], n)
				}
			}
			l.mu.Unlock()
		}
	}
}

func TestChaos(t *testing.T) {
	chaos := chaosDuration(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("chaos seed %d (the processes' timing is not reproducible; the seed only fixes the test's choices)", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	data := filepath.Join(t.TempDir(), "server")
	srv := startServer(t, data, "")
	addr := srv.addr
	proxy := newChaosProxy(t, addr, seed)
	url := "http://" + proxy.ln.Addr().String()

	// The document starts with its text and counter, known everywhere, so
	// that no two clients create them concurrently (a conflict would hide
	// one side's splices and increments from the oracle).
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	run(t, "doc", "text", "--replica", dirs[0], chaosDoc, "/t", "")
	run(t, "doc", "incr", "--replica", dirs[0], chaosDoc, "/n", "0")
	for _, d := range append(dirs, dirs[0]) {
		run(t, "sync", "--replica", d, "--server", srv.url(), "--once", chaosDoc)
	}

	l := &chaosLedger{acked: map[string]int{}, syncs: map[string]int{}}
	until := time.Now().Add(chaos)
	var wg sync.WaitGroup
	for i, d := range dirs {
		wg.Add(1)
		crng := rand.New(rand.NewPCG(seed, uint64(10+i)))
		go func() {
			defer wg.Done()
			chaosClient(t, i, d, url, until, l, crng)
		}()
	}

	// The network misbehaves all along (its own generator: this goroutine
	// and the test's share none).
	stopNet := make(chan struct{})
	netDone := make(chan struct{})
	nrng := rand.New(rand.NewPCG(seed, 3))
	go func() {
		defer close(netDone)
		for {
			select {
			case <-stopNet:
				return
			case <-time.After(time.Duration(100+nrng.IntN(600)) * time.Millisecond):
				proxy.disrupt()
			}
		}
	}()

	// The server dies with SIGKILL at random moments; at each death its
	// disk must hold everything it acknowledged. Once, midway, its data
	// folder is wiped before it restarts.
	kills, wiped := 0, false
	for time.Now().Before(until) && !t.Failed() {
		time.Sleep(time.Duration(1500+rng.IntN(4000)) * time.Millisecond)
		srv.cmd.Process.Kill()
		<-srv.done
		kills++
		l.mu.Lock() // no ack is recorded while the disk is checked
		held, err := history(data)
		if err != nil {
			l.mu.Unlock()
			t.Fatal(err)
		}
		if m := missing(held, l.acked); len(m) > 0 {
			l.mu.Unlock()
			t.Fatalf("after SIGKILL the server's disk lacks acknowledged changes: %v", m)
		}
		wipe := !wiped && time.Until(until) < chaos/2
		if wipe {
			if err := os.RemoveAll(data); err != nil {
				l.mu.Unlock()
				t.Fatal(err)
			}
			wiped = true
			l.epoch++
			l.acked = map[string]int{} // the clients must upload it again
		}
		l.mu.Unlock()
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		srv = startServer(t, data, addr)
	}
	wg.Wait()
	close(stopNet)
	<-netDone
	if t.Failed() {
		return
	}
	lastFault := time.Now() // the last fault is over: the network is whole again

	// Healing: no more faults. Each client syncs until the server has
	// acknowledged everything, twice round (the later rounds fetch what
	// the others uploaded after them).
	for round := 0; round < 2; round++ {
		for i, d := range dirs {
			if _, errs, err := convergeErr("sync", "--replica", d, "--server", url, "--once", "--timeout", "60s"); err != nil {
				t.Fatalf("client %d did not sync after the faults: %v\n%s", i, err, errs)
			}
		}
	}
	converged := time.Since(lastFault)

	_, want := srv.getDoc(chaosDoc)
	for i, d := range dirs {
		if got := get(t, d, chaosDoc); got != want {
			t.Fatalf("client %d differs from the server:\n%s\n%s", i, got, want)
		}
	}
	conflicts := run(t, "doc", "conflicts", "--replica", dirs[0], chaosDoc)
	for i, d := range dirs[1:] {
		if got := run(t, "doc", "conflicts", "--replica", d, chaosDoc); got != conflicts {
			t.Fatalf("client %d's conflicts differ:\n%s\n%s", i+1, got, conflicts)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(want), &doc); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, k := range l.keys {
		if _, ok := doc[k]; !ok {
			lost++
			t.Errorf("key %s, set by an edit that succeeded, is missing", k)
		}
	}
	if n, _ := doc["n"].(float64); int64(n) != l.sum {
		t.Errorf("counter /n is %v; the increments made add up to %d", doc["n"], l.sum)
	}
	srv.stop()
	final, err := history(data)
	if err != nil {
		t.Fatal(err)
	}
	if m := missing(final, l.acked); len(m) > 0 {
		t.Fatalf("acknowledged changes missing at the end: %v", m)
	}
	for _, d := range dirs {
		v, err := history(d)
		if err != nil {
			t.Fatal(err)
		}
		if m := missing(final, v); len(m) > 0 {
			t.Fatalf("the server lacks changes a client holds: %v", m)
		}
	}
	changes := 0
	for _, n := range final {
		changes += n
	}
	t.Logf("chaos: %v of faults, 3 clients, %d successful edit commands (%d changes held at the end, setup included)", chaos, l.edits, changes)
	t.Logf("faults: server SIGKILL %d (one with its data folder wiped: %v), connections cut %d, stalled %d, through %d proxied connections; client sync processes: %v",
		kills, wiped, proxy.drops.Load(), proxy.stalls.Load(), proxy.accepted.Load(), l.syncs)
	t.Logf("changes lost: %d; acknowledged changes missing at any kill or at the end: 0; time to converge after the last fault (wall, 3 clients × 2 rounds of sync --once): %v",
		lost, converged.Round(time.Millisecond))
}
