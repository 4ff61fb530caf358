package encoding

import (
	"runtime"
	"sync"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// Writing behind the document.
//
// Encoding a change into the log was about a third of what a keystroke
// cost a document, and nothing the document does next needs it: only
// reads of the history do (Get, Since, All, saving, and MaxOp of a change
// it cannot answer at once). So History.Append does on the caller's
// goroutine only what decides how a change is to be written, and leaves
// the writing to another goroutine:
//
//   - a keystroke (history_typing.go) either continues the waiting run of
//     keystrokes, which keeps only its time and character, or heads a new
//     one;
//   - any other change is copied, whole, into the pending batch, after the
//     waiting run, which is closed there as one job.
//
// A full batch (batchJobs jobs, or batchKeystrokes keystrokes) is queued,
// and a writer goroutine, started on demand and gone once the queue is
// empty, writes the queue in order, under h.mu. Every read first writes
// what is queued and what is pending itself, under the same lock (settle):
// it sees every change appended before it, as if each had been written as
// it came. MaxOp, which a document asks for every change it applies,
// answers from the waiting run and from each actor's latest change without
// writing anything, so applying changes and opening a document write behind
// too.
//
// On one processor (GOMAXPROCS 1, as in a browser) a second goroutine
// cannot run beside the document, so a full batch is written at once on
// the caller's goroutine, as a read would.
//
// The gain is the document's: on two cores a replay of automerge-paper
// takes about a tenth less time (seph-blog1 a quarter), and its CPU time
// grows by about a fifth (the copies, and the cores sharing their caches);
// bench/README.md has the figures.

// batchJobs is how many jobs a batch gathers before it is queued: enough
// that starting the writer is rare (some thirty times in a replay of
// automerge-paper), few enough that a read that finds a batch waiting
// writes it in a few hundred microseconds.
var batchJobs = 1024

// batchKeystrokes is how many keystrokes a batch's runs hold before it is
// queued.
var batchKeystrokes = 8192

// (batchJobs and batchKeystrokes are variables for tests, which make them
// small to have the writer goroutine write beside the appends.)

// maxQueued bounds the batches queued for the writer: past it the caller
// writes them itself, so that a writer that falls behind (the machine
// busy) holds up the document instead of letting the copies pile up.
const maxQueued = 8

// batch is a run of jobs for the writer: changes, copied, and runs of
// keystrokes typed on, in the order they were appended.
type batch struct {
	jobs    []int32 // ≥ 0: an index in changes; < 0: ^ an index in runs
	changes []crdt.Change
	runs    []runJob
	// What the copied changes point to, and the runs' keystrokes (see
	// packKey).
	ops   []crdt.Op
	deps  []causal.ChangeID
	preds []causal.OpID
	keys  []uint32
}

// A keystroke of a run crosses to the writer in four bytes: its time, as
// the difference from the keystroke before it, in the upper 24 bits
// (signed), and (typing) its character in the lower 8. A larger gap (over
// two hours, or a clock set back as far) starts a new run. One append per
// keystroke instead of two (a time and a character) took some five
// instructions off each and about 0.5 ms off a replay of automerge-paper;
// the writer unpacks them in one pass.
const maxKeyGap = 1<<23 - 1

func packKey(gap int64, ch byte) uint32 { return uint32(gap)<<8 | uint32(ch) }

func keyGap(k uint32) int64 { return int64(int32(k) >> 8) }

// runJob is a run of keystrokes typed on: what the writer needs of the
// last of them (their keystroke, history_typing.go), the first one's time,
// and where their times and (typing) characters are in the batch. The
// batch is the memory that crosses from the document's core to the
// writer's, so a run takes two cache lines and a keystroke four bytes.
type runJob struct {
	actor    causal.ActorID
	obj      causal.OpID
	at       causal.OpID // typing: the right origin; deleting: the last character deleted
	headLeft causal.OpID // if head, the first keystroke's left origin
	seq, own uint64      // of the last keystroke
	time0    int64       // of the first keystroke
	keys0    int32       // where the run's keystrokes are in the batch
	n        int32       // keystrokes
	kind     int8
	dir      int8
	first    bool // the first keystroke is to be written the usual way (see startsRun)
	head     bool // and the second too: the first continues nothing (typing, it follows headLeft)
}

// keystroke returns the last keystroke of r, its actor indices unset.
func (r *runJob) keystroke() keystroke {
	k := keystroke{kind: int(r.kind), cont: true, actor: r.actor, seq: r.seq, own: r.own, obj: r.obj, dir: int(r.dir)}
	if k.kind == keyType {
		k.right = r.at
	} else {
		k.elem = r.at
	}
	return k
}

func (b *batch) reset() {
	clear(b.changes) // drop the strings they point to
	clear(b.ops)
	b.jobs, b.changes, b.runs = b.jobs[:0], b.changes[:0], b.runs[:0]
	b.ops, b.deps, b.preds, b.keys = b.ops[:0], b.deps[:0], b.preds[:0], b.keys[:0]
}

// small reports whether b is worth keeping for another batch.
func (b *batch) small() bool {
	return cap(b.keys) <= 2*(batchKeystrokes+maxWaiting) && cap(b.ops) <= 4*batchJobs && cap(b.preds) <= 4*batchJobs
}

// full reports whether b is to be queued: batchJobs jobs, or runs of
// batchKeystrokes keystrokes.
func (b *batch) full() bool {
	return len(b.jobs) >= batchJobs || len(b.keys) >= batchKeystrokes
}

// copyChange appends a copy of c, and of everything it points to that its
// maker may reuse, as the next job.
func (b *batch) copyChange(c *crdt.Change) {
	b.jobs = append(b.jobs, int32(len(b.changes)))
	cc := *c
	if len(c.Deps) > 0 {
		i := len(b.deps)
		b.deps = append(b.deps, c.Deps...)
		cc.Deps = b.deps[i:len(b.deps):len(b.deps)]
	}
	i := len(b.ops)
	b.ops = append(b.ops, c.Ops...)
	cc.Ops = b.ops[i:len(b.ops):len(b.ops)]
	for k := range cc.Ops {
		if op := &cc.Ops[k]; len(op.Pred) > 0 {
			j := len(b.preds)
			b.preds = append(b.preds, op.Pred...)
			op.Pred = b.preds[j:len(b.preds):len(b.preds)]
		}
	}
	// (An earlier copy whose ops or preds were left behind by a growing
	// array still points to the old one, which stays valid.)
	b.changes = append(b.changes, cc)
}

// pending returns the batch the caller's goroutine fills.
func (h *History) pending() *batch {
	if h.in.batch == nil {
		h.in.batch = batches.Get().(*batch)
	}
	return h.in.batch
}

// endRun closes the waiting run, if any, as a job of the pending batch.
func (h *History) endRun() {
	if h.in.waiting == 0 {
		return
	}
	b := h.in.batch
	b.jobs = append(b.jobs, ^int32(len(b.runs)))
	k := &h.typing
	r := runJob{actor: k.actor, obj: k.obj, at: k.right, headLeft: h.in.headLeft, seq: k.seq, own: k.own,
		time0: h.in.time0, keys0: h.in.keys0, n: int32(h.in.waiting),
		kind: int8(k.kind), dir: int8(k.dir), first: h.in.first, head: h.in.head}
	if k.kind == keyDelete {
		r.at = k.elem
	}
	b.runs = append(b.runs, r)
	h.in.waiting = 0
	h.noteLatest(h.typing.actor, h.typing.seq, h.typing.own)
}

// handOver queues the pending batch for the writer goroutine, starting
// one unless one is running. It returns false if the caller should write
// the queue itself now (one processor, or the writer far behind).
func (h *History) handOver() bool {
	h.endRun()
	b := h.in.batch
	if b == nil || len(b.jobs) == 0 {
		return true
	}
	h.in.batch, h.in.handed = nil, true
	h.q.Lock()
	defer h.q.Unlock()
	h.q.queue = append(h.q.queue, b)
	if len(h.q.queue) > maxQueued || runtime.GOMAXPROCS(0) == 1 {
		return false
	}
	if !h.q.running {
		h.q.running = true
		go h.writeBehind()
	}
	return true
}

// writeBehind is the writer goroutine: it writes the queue until it is
// empty. A panic (a change appended out of its actor's order) is kept, to
// be raised again on the caller's goroutine at its next call.
func (h *History) writeBehind() {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			h.q.Lock()
			h.q.failed, h.q.queue, h.q.running = p, nil, false
			h.q.Unlock()
		}
	}()
	for {
		b := h.take(true)
		if b == nil {
			return
		}
		h.writeBatch(b)
		h.recycle(b)
	}
}

// take returns the first batch queued, or nil; the writer goroutine
// (writer true) marks itself stopped when the queue is empty.
func (h *History) take(writer bool) *batch {
	h.q.Lock()
	defer h.q.Unlock()
	if len(h.q.queue) == 0 {
		if writer {
			h.q.running = false
		}
		return nil
	}
	b := h.q.queue[0]
	h.q.queue[0] = nil
	h.q.queue = h.q.queue[1:]
	if len(h.q.queue) == 0 {
		h.q.queue = nil
	}
	return b
}

// recycle returns a written batch to the pool, unless a long run or a
// large change grew it.
func (h *History) recycle(b *batch) {
	if !b.small() {
		return
	}
	b.reset()
	batches.Put(b)
}

// batches holds written batches for any History to reuse: a batch grows
// to its size by append (its arrays reallocated as they fill) only the
// first few times, and a History keeps none while it is idle, since a
// server holds thousands of documents (the pool lets go of what stays
// unused across garbage collections).
var batches = sync.Pool{New: func() any { return new(batch) }}

// raise panics again with what the writer goroutine panicked with, now
// and at every call after.
func (h *History) raise() {
	if h.in.failed == nil {
		h.q.Lock()
		h.in.failed = h.q.failed
		h.q.Unlock()
	}
	if h.in.failed != nil {
		panic(h.in.failed)
	}
}

// settle writes every change appended so far, on the caller's goroutine
// (after the writer goroutine has finished what it took), and returns with
// h.mu held: the caller reads the log, then unlocks. A panic while
// writing, here or on the writer goroutine, is raised here, and at every
// call after.
func (h *History) settle() {
	if h.in.failed != nil {
		panic(h.in.failed)
	}
	h.endRun()
	handed := h.in.handed
	h.in.handed = false
	h.mu.Lock()
	defer func() {
		if p := recover(); p != nil {
			h.in.failed = p
			h.mu.Unlock()
			panic(p)
		}
	}()
	if handed {
		h.raise() // what the writer goroutine panicked with, if it did
		for b := h.take(false); b != nil; b = h.take(false) {
			h.writeBatch(b)
			h.recycle(b)
		}
	}
	// The pending batch is written here, not queued.
	if b := h.in.batch; b != nil {
		h.writeBatch(b)
		h.in.batch = nil
		h.recycle(b)
	}
}

// Flush writes every change appended so far. A History writes by itself
// before anything reads it; Flush has it done now: to time everything a
// document's changes cost, say. (With nothing appended since, the log may
// then be read without the lock.)
func (h *History) Flush() {
	h.settle()
	h.mu.Unlock()
}

// writeBatch writes b's jobs to the log, in order.
func (h *History) writeBatch(b *batch) {
	for _, j := range b.jobs {
		if j >= 0 {
			h.append(&b.changes[j])
			continue
		}
		r := &b.runs[^j]
		times, text, t := h.times[:0], h.chars[:0], r.time0
		typing := r.kind == keyType // a deleting run has no characters
		for _, k := range b.keys[r.keys0 : r.keys0+r.n] {
			t += keyGap(k)
			times = append(times, t)
			if typing {
				text = append(text, byte(k))
			}
		}
		h.times, h.chars = times, text
		h.writeRun(r, times, text)
	}
	if cap(h.times) > 4096 {
		h.times, h.chars = nil, nil // a long run's: not kept for the life of the document
	}
}

// writeRun writes run r of keystrokes typed on (their times, and typing,
// their characters), the last of which is r's keystroke, as the usual way
// would have written them one by one: a run at a time between checkpoints.
// Its first keystrokes are written one by one (appendKeystroke, each
// worked out from the last) while the open runs of the columns are not yet
// typing's: the first if it continues a keystroke that did not continue
// its own (r.first), the first two if the first continues nothing
// (r.head). All of them are if the quick way may not write them
// (canTypeOn).
func (h *History) writeRun(r *runJob, times []int64, text []byte) {
	k := r.keystroke()
	n := len(times)
	k.a = h.actors.of(k.actor)
	if k.kind == keyDelete {
		k.elemA = h.actors.of(k.elem.Actor)
	}
	// k describes the last keystroke; the first came n before it.
	seq, own, elem := k.seq-uint64(n)+1, k.own-uint64(n)+1, k.elem.Counter
	if k.kind == keyDelete {
		elem -= uint64((n - 1) * k.dir) // the first one's: the run moves by dir each keystroke
	}
	usual := n
	if quickRuns && h.log.canTypeOn(n) {
		switch {
		case r.head:
			usual = min(n, 2)
		case r.first:
			usual = 1
		default:
			usual = 0
		}
	}
	for i := range usual {
		var ch byte
		left := causal.OpID{Counter: own - 1, Actor: k.actor}
		if k.kind == keyType {
			ch = text[0]
			text = text[1:]
			if i == 0 && r.head {
				left = r.headLeft
			}
		}
		h.appendKeystroke(&k, seq, own, times[0], &left, ch, elem)
		seq, own, elem = seq+1, own+1, elem+uint64(k.dir)
		times = times[1:]
	}
	for len(times) > 0 {
		if h.n%chunkRows == 0 {
			h.marks.record(h.log)
		}
		m := min(len(times), chunkRows-h.n%chunkRows)
		run := typingRun{seq: seq, own: own, elem: elem, times: times[:m]}
		if k.kind == keyType {
			run.text, text = text[:m], text[m:]
		}
		h.log.typeOn(&k, run)
		h.logs[k.a].appendRun(seq, m, h.n/chunkRows, own)
		h.n += m
		h.nOps += m
		times = times[m:]
		seq, own = seq+uint64(m), own+uint64(m)
		elem += uint64(m * k.dir)
	}
	if h.whole != nil {
		h.lastKey.startOp, h.lastKey.seq = k.own, k.seq // the actor is the same
	}
}

// quickRuns is false only in tests, to write every keystroke of every
// run one by one and compare.
var quickRuns = true

// oneByte returns the string of one ASCII byte without allocating.
func oneByte(b byte) string { return asciiStrings[b&0x7f : b&0x7f+1] }

var asciiStrings = func() string {
	b := make([]byte, 128)
	for i := range b {
		b[i] = byte(i)
	}
	return string(b)
}()
