package encoding

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/internal/cputime"
)

// Benchmarks on the automerge-paper trace (259,778 single-author changes).
//
//	go test -run '^$' -bench Paper -benchmem ./encoding
func BenchmarkPaperEncode(b *testing.B) {
	cs, st := paperHistory(b)
	for _, bc := range []struct {
		name string
		opt  Options
	}{{"raw", Options{}}, {"deflate", Options{Compress: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				out, err := EncodeDocument(st, cs, bc.opt)
				if err != nil {
					b.Fatal(err)
				}
				n = len(out)
			}
			b.ReportMetric(float64(n), "bytes")
		})
	}
}

func paperSaved(b *testing.B, opt Options) []byte {
	cs, st := paperHistory(b)
	out, err := EncodeDocument(st, cs, opt)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkPaperLoadText measures load until the text is readable.
func BenchmarkPaperLoadText(b *testing.B) {
	for _, bc := range []struct {
		name string
		opt  Options
	}{{"raw", Options{}}, {"deflate", Options{Compress: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			saved := paperSaved(b, bc.opt)
			for b.Loop() {
				d, err := DecodeDocument(saved)
				if err != nil {
					b.Fatal(err)
				}
				if n, ok := d.State().Root.Get("text"); !ok || len(n.Text) == 0 {
					b.Fatal("no text")
				}
			}
		})
	}
}

// BenchmarkPaperDecodeHistory measures load plus decoding every change.
func BenchmarkPaperDecodeHistory(b *testing.B) {
	saved := paperSaved(b, Options{Compress: true})
	for b.Loop() {
		d, err := DecodeDocument(saved)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Changes(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeystroke(b *testing.B) {
	cs := keystrokes(1000)
	b.Run("stream", func(b *testing.B) {
		w := NewChangeWriter()
		i := 0
		for b.Loop() {
			w.Encode(cs[i%len(cs)])
			i++
		}
	})
	b.Run("standalone", func(b *testing.B) {
		for b.Loop() {
			DecodeChange(EncodeChange(cs[len(cs)-1]))
		}
	})
}

// BenchmarkPaperSave measures saving a document kept with a History, as an
// app does (SaveDoc reuses the history the document keeps encoded), again
// and again. Cold: after two garbage collections each (not timed), as a
// document saved now and then is, which is what converge bench trace times.
func BenchmarkPaperSave(b *testing.B) {
	d, _ := paperDoc(b)
	for _, cold := range []bool{false, true} {
		name := "warm"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			var n int
			for b.Loop() {
				if cold {
					b.StopTimer()
					runtime.GC()
					runtime.GC()
					b.StartTimer()
				}
				out, err := SaveDoc(d, Options{Compress: true})
				if err != nil {
					b.Fatal(err)
				}
				n = len(out)
			}
			b.ReportMetric(float64(n), "bytes")
		})
	}
}

// BenchmarkPaperOpen measures loading a saved document into an editable
// crdt.Doc with its full history (LoadDoc), as opening it for editing does.
// It reports the CPU time per open too (cpu-ns/op, all threads: the
// collector's included), steadier than wall time on a shared machine.
func BenchmarkPaperOpen(b *testing.B) {
	saved := paperSaved(b, Options{Compress: true})
	cpu := cputime.Used()
	for b.Loop() {
		if _, err := LoadDoc(saved, causal.ActorID{2}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cputime.Used()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkPaperOpenReplay is BenchmarkPaperOpen the way LoadDoc falls
// back to: every change applied through crdt.Doc.Apply, texts included.
// The two side by side measure what building the text from its final
// order saves.
func BenchmarkPaperOpenReplay(b *testing.B) {
	saved := paperSaved(b, Options{Compress: true})
	cpu := cputime.Used()
	for b.Loop() {
		dec, err := DecodeDocument(saved)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := loadReplay(dec, causal.ActorID{2}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cputime.Used()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkPaperHistoryAll measures reading every change back from a live
// document's History (Doc.Changes): what a save of a history out of
// canonical order, an export or a catch-up from nothing starts with.
func BenchmarkPaperHistoryAll(b *testing.B) {
	d, n := paperDoc(b)
	b.ReportAllocs()
	for b.Loop() {
		if len(d.Changes()) != n {
			b.Fatal("changes lost")
		}
	}
}

// paperDoc is automerge-paper's history applied to a document with a
// History, and its number of changes.
func paperDoc(b *testing.B) (*crdt.Doc, int) {
	cs, _ := paperHistory(b)
	d := crdt.NewDoc(causal.ActorID{1}, crdt.WithHistory(NewHistory()))
	d.SetPatches(false)
	if _, err := d.Apply(cs...); err != nil {
		b.Fatal(err)
	}
	return d, len(cs)
}

// BenchmarkPaperEditAfterOpen measures keystrokes at random places on
// automerge-paper just opened, its text built from its final order or
// replayed: the first edits into a built sequence must not pay for its
// shape (run with -benchtime 1000x for the first thousand, as converge
// bench trace's editUs).
func BenchmarkPaperEditAfterOpen(b *testing.B) {
	saved := paperSaved(b, Options{Compress: true})
	for _, way := range []string{"placed", "replay"} {
		b.Run(way, func(b *testing.B) {
			var d *crdt.Doc
			if way == "placed" {
				d, _ = LoadDoc(saved, causal.ActorID{2})
			} else {
				dec, _ := DecodeDocument(saved)
				d, _ = loadReplay(dec, causal.ActorID{2})
			}
			runtime.GC()
			v, _ := d.Get(crdt.Root, "text")
			text := v.Obj()
			rng := rand.New(rand.NewPCG(1, 1))
			cpu := cputime.Used()
			for b.Loop() {
				n := d.Len(text)
				d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error { return tx.Splice(text, rng.IntN(n+1), 0, "x") })
			}
			b.ReportMetric(float64(cputime.Used()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkPaperHistoryAppend measures a History taking every change of
// automerge-paper and writing them all: the whole of its work, intake and
// writer, without the document's. With -cpu 1 the writing is inline (as
// on one processor), so the time is its total CPU; with -cpu 2 the writer
// runs beside the appends, and cpu-ns/op is both goroutines' CPU.
func BenchmarkPaperHistoryAppend(b *testing.B) {
	cs, _ := paperHistory(b)
	var cpu time.Duration
	for b.Loop() {
		// The trace's changes are some 90 MB of pointers: a collection
		// while timing would mostly mark them.
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
		c0 := cputime.Used()
		h := NewHistory()
		for _, c := range cs {
			h.Append(c)
		}
		h.Flush()
		cpu += cputime.Used() - c0
		if h.Len() != len(cs) {
			b.Fatal("changes lost")
		}
	}
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}
