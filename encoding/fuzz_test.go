package encoding

import (
	"errors"
	"reflect"
	"testing"
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
