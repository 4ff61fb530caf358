package encoding

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// The fuzz targets check that no input makes a decoder panic, hang or
// return an untyped error, and that whatever decodes re-encodes to
// something that decodes to the same thing. Seeds come from
// testdata/fuzz/<Target>/ and from the encoders below.

func checkTyped(t *testing.T, err error) {
	t.Helper()
	if err != nil && !isSentinel(err) {
		t.Fatalf("untyped error: %v", err)
	}
	var fe *FormatError
	if err != nil && !errors.As(err, &fe) {
		t.Fatalf("error is not a *FormatError: %v", err)
	}
}

func FuzzDecodeChange(f *testing.F) {
	for seed := uint64(0); seed < 8; seed++ {
		f.Add(EncodeChange(newGen(seed).change()))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeChange(b)
		checkTyped(t, err)
		if err != nil {
			return
		}
		again, err := DecodeChange(EncodeChange(c))
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("decoded change does not round-trip: %v", err)
		}
	})
}

func FuzzDecodeDocument(f *testing.F) {
	for seed := uint64(0); seed < 6; seed++ {
		g := newGen(seed)
		b, _ := EncodeDocument(g.state(2), g.history(6), Options{Compress: seed%2 == 0})
		f.Add(b)
		if seed == 1 {
			b, _ = AppendChanges(b, newGen(99).change())
			f.Add(b)
		}
	}
	// Documents that load: typing with deletes, by one writer and by two
	// who merged.
	for writers := 1; writers <= 2; writers++ {
		docs := []*crdt.Doc{crdt.NewDoc(causal.ActorID{1}, crdt.WithHistory(NewHistory())), crdt.NewDoc(causal.ActorID{2}, crdt.WithHistory(NewHistory()))}
		var text crdt.ObjID
		docs[0].Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
			text, _ = tx.Put(crdt.Root, "text", crdt.NewText())
			return nil
		})
		docs[1].Apply(docs[0].Changes()...)
		for i := range 12 {
			d := docs[i%writers]
			d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
				if i%4 == 3 {
					return tx.Splice(text, d.Len(text)/2, 1, "")
				}
				return tx.Splice(text, (i*7)%(d.Len(text)+1), 0, "ab€")
			})
		}
		docs[0].Apply(docs[1].Changes()...)
		b, _ := SaveDoc(docs[0], Options{Compress: writers == 2})
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDocument(b)
		checkTyped(t, err)
		if err != nil {
			return
		}
		cs, err := d.Changes()
		checkTyped(t, err)
		if err != nil {
			return
		}
		// LoadDoc, whether it builds the texts from their final order or
		// replays, gives what the replay gives, or its error.
		fast, _, errFast := loadDoc(b, causal.ActorID{7})
		replay, errReplay := loadReplay(d, causal.ActorID{7})
		switch {
		case (errFast == nil) != (errReplay == nil) || errFast != nil && errFast.Error() != errReplay.Error():
			t.Fatalf("LoadDoc: %v, replay: %v", errFast, errReplay)
		case errFast == nil:
			sf, ef := SaveDoc(fast, Options{})
			sr, er := SaveDoc(replay, Options{})
			if !reflect.DeepEqual(StateOf(fast), StateOf(replay)) || !bytes.Equal(sf, sr) || (ef == nil) != (er == nil) {
				t.Fatalf("LoadDoc and replay differ")
			}
		}
		// Whatever decoded must survive a save and load as one chunk.
		saved := appendChunk(nil, d.State(), cs, Options{Compress: true}, nil)
		d2, err := DecodeDocument(saved)
		if err != nil {
			t.Fatalf("re-encoded document does not decode: %v", err)
		}
		cs2, err := d2.Changes()
		if err != nil || !reflect.DeepEqual(d2.State(), d.State()) || len(cs2) != len(cs) || (len(cs) > 0 && !reflect.DeepEqual(cs2, cs)) {
			t.Fatalf("re-encoded document differs: %v", err)
		}
	})
}

// FuzzChangeReader feeds a stream reader a sequence of frames, each a
// length byte and that many bytes, so the fuzzer can build multi-frame
// streams.
func FuzzChangeReader(f *testing.F) {
	for seed := uint64(0); seed < 4; seed++ {
		g := newGen(seed)
		w := NewChangeWriter()
		var in []byte
		for i := 0; i < 3; i++ {
			fr := w.Encode(g.change())
			in = append(in, byte(len(fr)))
			in = append(in, fr...)
		}
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewChangeReader()
		for len(b) > 0 {
			n := min(int(b[0]), len(b)-1)
			frame := b[1 : 1+n]
			b = b[1+n:]
			_, err := r.Decode(frame)
			if err != nil {
				if !errors.Is(err, ErrStreamBroken) {
					checkTyped(t, err)
				}
				if _, again := r.Decode(frame); !errors.Is(again, ErrStreamBroken) {
					t.Fatalf("reader not broken after %v", err)
				}
				return
			}
		}
	})
}
