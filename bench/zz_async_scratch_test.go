package bench

import (
	"slices"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
)

type block struct {
	cs  []crdt.Change
	ops []crdt.Op
}

type asyncHist struct {
	inner *encoding.History
	cur   *block
	ch    chan *block
	free  chan *block
	done  chan struct{}
}

const blk = 256

func newAsync() *asyncHist {
	a := &asyncHist{inner: encoding.NewHistory(), ch: make(chan *block, 64), free: make(chan *block, 66), done: make(chan struct{})}
	go func() {
		for b := range a.ch {
			for i := range b.cs {
				a.inner.Append(&b.cs[i])
			}
			b.cs, b.ops = b.cs[:0], b.ops[:0]
			select {
			case a.free <- b:
			default:
			}
		}
		close(a.done)
	}()
	return a
}

func (a *asyncHist) Append(c *crdt.Change) {
	if a.cur == nil {
		select {
		case a.cur = <-a.free:
		default:
			a.cur = &block{cs: make([]crdt.Change, 0, blk), ops: make([]crdt.Op, 0, 2*blk)}
		}
	}
	cc := *c
	if len(a.cur.ops)+len(c.Ops) <= cap(a.cur.ops) {
		n := len(a.cur.ops)
		a.cur.ops = append(a.cur.ops, c.Ops...)
		cc.Ops = a.cur.ops[n:len(a.cur.ops):len(a.cur.ops)]
	} else {
		cc.Ops = slices.Clone(c.Ops)
	}
	if len(c.Deps) > 0 {
		cc.Deps = slices.Clone(c.Deps)
	}
	a.cur.cs = append(a.cur.cs, cc)
	if len(a.cur.cs) == blk || len(a.cur.ops) == cap(a.cur.ops) {
		a.ch <- a.cur
		a.cur = nil
	}
}
func (a *asyncHist) finish() {
	if a.cur != nil && len(a.cur.cs) > 0 {
		a.ch <- a.cur
	}
	close(a.ch)
	<-a.done
}
func (a *asyncHist) Len() int                                  { panic("x") }
func (a *asyncHist) All() []*crdt.Change                       { panic("x") }
func (a *asyncHist) Since(causal.VersionVector) []*crdt.Change { panic("x") }
func (a *asyncHist) Get(causal.ChangeID) (*crdt.Change, bool)  { return nil, false }
func (a *asyncHist) MaxOp(causal.ChangeID) (uint64, bool)      { return 0, false }
func (a *asyncHist) CopiesChanges() bool                       { return true }

func BenchmarkZZAsync(b *testing.B) {
	for _, tr := range loadTraces(b) {
		if tr.Name != "automerge-paper" {
			continue
		}
		old := NewHistory
		defer func() { NewHistory = old }()
		var hs []*asyncHist
		NewHistory = func() crdt.History { h := newAsync(); hs = append(hs, h); return h }
		b.Run(tr.Name, func(b *testing.B) {
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				hs = hs[:0]
				if _, _, _, err := Replay(tr, 1); err != nil {
					b.Fatal(err)
				}
				for _, h := range hs {
					h.finish()
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/1e6/float64(b.N), "cpu-ms/op")
		})
	}
}
