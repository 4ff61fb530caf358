package encoding

import (
	"runtime"
	"sync/atomic"
	"time"
)

// A large save runs on two goroutines. Placing the history's visible text
// in the state (derive) takes about as long as compressing the state and
// the history's other columns, and neither needs the other: the state's
// tail (the deleted text) is known from the delete bits alone. The second
// goroutine, the state worker, starts before the document's state is even
// read (SaveDoc), so that waking it and finding the tail overlap with
// StateOf, the one serial step; what time is left before the state is
// read, it spends on the Huffman tries of the history's columns, which
// are made while it wakes.

// parallelMin is how much inserted text a history must hold for its save
// to run on two goroutines: below it, starting one costs more than it
// saves.
const parallelMin = 64 << 10

// goesParallel reports whether saving w's history takes two goroutines.
func goesParallel(w *historyWriter, opt Options) bool {
	return opt.Compress && len(w.raw[colText]) >= parallelMin
}

// stateWorker writes and compresses a chunk's state section, then helps
// with the history's columns: first those the other goroutine does not
// need (see columnSet), then the text columns once it has derived them.
//
// The state is one job, taken once: by the worker when it starts, or, if
// it has not started by the time the text is placed, by the goroutine
// that placed the text, which then does not wait for it. A worker that
// starts late, or was abandoned before it started, touches nothing; one
// abandoned after it started is waited for until it no longer reads the
// writer, which the document's next change writes to.
type stateWorker struct {
	w     *historyWriter
	job   atomic.Bool     // the state's job is taken
	input chan stateInput // closed: abandoned
	cols  chan *columnSet // the columns but the text ones (give)
	set   *columnSet      // the same, for the goroutine that gave them
	text  chan *columnSet // the text columns, nil if not derived
	state chan compressedState
	quit  chan struct{} // closed by a worker that took the job and was abandoned
	sent  bool          // by the goroutine that started it
}

// stateInput is what the worker needs once the state has been read.
type stateInput struct {
	tab     *actorTable
	st      *State
	dictLen int
	codec   int
	useTail bool // text mode 1: the state carries the deleted text
}

type compressedState struct{ state, tail []byte }

// startStateWorker starts the worker for a save of w's history, its actor
// indices mapped through renumber unless it is nil. The caller then gives
// it the state (send) or abandons it.
func startStateWorker(w *historyWriter, renumber []uint64) *stateWorker {
	sw := newStateWorker(w)
	go sw.run()
	// While the worker wakes: the columns it compresses while it waits
	// for the state.
	sw.give(w.columns(renumber, true))
	return sw
}

func newStateWorker(w *historyWriter) *stateWorker {
	if w.text != nil {
		// Marks the deletes recorded ahead of their characters, before
		// either goroutine reads the delete bits.
		w.text.settle()
	}
	return &stateWorker{w: w, input: make(chan stateInput, 1), cols: make(chan *columnSet, 1),
		text: make(chan *columnSet, 1), state: make(chan compressedState, 1), quit: make(chan struct{})}
}

// give hands the worker the columns but the text ones.
func (sw *stateWorker) give(cols *columnSet) {
	sw.set = cols
	sw.cols <- cols
}

func (sw *stateWorker) run() {
	if !sw.job.CompareAndSwap(false, true) {
		return // the save did the state itself, or was abandoned
	}
	k := takeKit()
	defer k.release()
	tail := deletedTail(sw.w)
	cols := <-sw.cols
	in, ok := sw.awaitInput(k, cols)
	if !ok {
		close(sw.quit)
		return
	}
	sw.state <- in.compress(k, tail)
	cols.run(k, taskZstd)
	if text := <-sw.text; text != nil {
		text.run(k, taskZstd)
	}
}

// awaitInput returns the state's input once it is sent, ok false if the
// worker was abandoned. The other goroutine is then reading the state,
// which takes about as long as finding the tail. Meanwhile the worker
// compresses columns with Huffman codes, one at a time (each takes a few
// hundredths of a millisecond), then yields for a while before it blocks,
// because a goroutine blocked on a channel can take a tenth of a
// millisecond to wake on a virtual machine, a tenth of the save.
func (sw *stateWorker) awaitInput(k *kit, cols *columnSet) (stateInput, bool) {
	deadline := time.Now().Add(awaitSpin)
	for {
		select {
		case in, ok := <-sw.input:
			return in, ok
		default:
		}
		if cols.runOne(k, taskHuffman) {
			continue
		}
		if time.Now().After(deadline) {
			in, ok := <-sw.input
			return in, ok
		}
		runtime.Gosched()
	}
}

// awaitSpin is how long the worker yields before blocking.
const awaitSpin = 500 * time.Microsecond

// deletedTail is the deleted text the state carries in text mode 1, if
// w's text can be written in it.
func deletedTail(w *historyWriter) []byte {
	if t := w.text; t != nil && !t.bad {
		return t.deletedText(w.raw[colText])
	}
	return nil
}

// compress writes and compresses the state section.
func (in stateInput) compress(k *kit, tail []byte) compressedState {
	var c compressedState
	if in.useTail {
		c.tail = tail
	}
	state := appendState(make([]byte, 0, in.dictLen+len(c.tail)+1024), in.tab, in.st)
	c.state = k.appendSection(nil, secState, append(state, c.tail...), in.codec)
	return c
}

func (sw *stateWorker) send(in stateInput) {
	sw.sent = true
	sw.input <- in
}

// abandon ends a worker that was not given a state, once it no longer
// reads the writer. Safe on nil and after send.
func (sw *stateWorker) abandon() {
	if sw == nil || sw.sent {
		return
	}
	sw.sent = true
	if sw.job.CompareAndSwap(false, true) {
		return // it will not start
	}
	close(sw.input)
	<-sw.quit
}

// appendSectionsParallel writes a chunk's compressed state and history
// sections, the state on sw.
func appendSectionsParallel(tab *actorTable, st *State, dict []byte, w *historyWriter, renumber []uint64, places *textPlaces, codec int, sw *stateWorker) (stateSec, hist []byte) {
	k := takeKit()
	defer k.release()
	derivable := w.derivable(dict)
	in := stateInput{tab: tab, st: st, dictLen: len(dict), codec: codec, useTail: derivable}
	sw.send(in)
	cols := sw.set
	ok := derivable
	var text *columnSet
	if ok {
		var derived sectionText
		if derived, ok = w.derivedText(dict, places, k); ok {
			text = new(columnSet)
			text.addText(derived, true)
		}
	}
	sw.text <- text
	var c compressedState
	mine := sw.job.CompareAndSwap(false, true)
	if mine {
		// The worker has not started: the other core is busy.
		var tail []byte
		if in.useTail {
			tail = deletedTail(w)
		}
		c = in.compress(k, tail)
	}
	cols.run(k, taskHuffman)
	if text != nil {
		text.run(k, taskHuffman)
	}
	if !mine {
		c = <-sw.state
	}
	cols.wait()
	if text != nil {
		text.wait()
	}
	mode := textDerived
	if !ok || !w.derivedPays(dict, c.tail) {
		mode = textSegments
		text = new(columnSet)
		text.addText(w.segmentText(dict), true)
		text.run(k, taskHuffman)
		if len(c.tail) > 0 {
			// The state was compressed with a tail mode 0 does not use.
			c.state = k.appendSection(nil, secState, appendState(nil, tab, st), codec)
		}
	}
	var out [numCols][]byte
	cols.encode(&out)
	text.encode(&out)
	return c.state, w.appendSectionParts(nil, mode, &out)
}
