package encoding

// A large save runs on two goroutines. Placing the history's visible text
// in the state (derive) takes about as long as compressing the state and
// the history's other columns, and neither needs the other: the state's
// tail (the deleted text) is known from the delete bits alone. The second
// goroutine, the state worker, starts before the document's state is even
// read (SaveDoc), so that waking it and finding the tail overlap with
// StateOf, the one serial step.

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
type stateWorker struct {
	w     *historyWriter
	input chan stateInput
	cols  chan *columnSet // the columns but the text ones, after input
	text  chan *columnSet // the text columns, nil if not derived
	done  chan compressedState
	sent  bool // by the goroutine that started it
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

// startStateWorker starts the worker for a save of w's history. The
// caller then gives it the state (send) or abandons it.
func startStateWorker(w *historyWriter) *stateWorker {
	if w.text != nil {
		// Marks the deletes recorded ahead of their characters, before
		// either goroutine reads the delete bits.
		w.text.settle()
	}
	sw := &stateWorker{w: w, input: make(chan stateInput, 1), cols: make(chan *columnSet, 1),
		text: make(chan *columnSet, 1), done: make(chan compressedState, 1)}
	go sw.run()
	return sw
}

func (sw *stateWorker) run() {
	k := takeKit()
	defer k.release()
	var tail []byte
	if t := sw.w.text; t != nil && !t.bad {
		tail = t.deletedText(sw.w.raw[colText])
	}
	in, ok := <-sw.input
	if !ok {
		return // abandoned
	}
	var c compressedState
	if in.useTail {
		c.tail = tail
	}
	state := appendState(make([]byte, 0, in.dictLen+len(c.tail)+1024), in.tab, in.st)
	c.state = k.appendSection(nil, secState, append(state, c.tail...), in.codec)
	(<-sw.cols).run(k, taskZstd)
	if text := <-sw.text; text != nil {
		text.run(k, taskZstd)
	}
	sw.done <- c
}

func (sw *stateWorker) send(in stateInput) {
	sw.sent = true
	sw.input <- in
}

// abandon ends a worker that was not given a state. Safe on nil and after
// send.
func (sw *stateWorker) abandon() {
	if sw != nil && !sw.sent {
		sw.sent = true
		close(sw.input)
	}
}

// appendSectionsParallel writes a chunk's compressed state and history
// sections, the state on sw.
func appendSectionsParallel(tab *actorTable, st *State, dict []byte, w *historyWriter, renumber []uint64, places *textPlaces, codec int, sw *stateWorker) (stateSec, hist []byte) {
	k := takeKit()
	defer k.release()
	derivable := w.derivable(dict)
	sw.send(stateInput{tab: tab, st: st, dictLen: len(dict), codec: codec, useTail: derivable})
	cols := w.columns(renumber, true)
	sw.cols <- cols
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
	cols.run(k, taskHuffman)
	if text != nil {
		text.run(k, taskHuffman)
	}
	c := <-sw.done
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
