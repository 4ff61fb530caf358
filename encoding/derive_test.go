package encoding

import (
	"reflect"
	"testing"
)

// historyMode returns the text mode of a saved document's (first) history
// section.
func historyMode(t *testing.T, saved []byte) byte {
	t.Helper()
	d, err := DecodeDocument(saved)
	if err != nil {
		t.Fatal(err)
	}
	body, err := d.chunks[0].history.open()
	if err != nil {
		t.Fatal(err)
	}
	r := newReader(body, "history")
	r.uvarint()
	r.uvarint()
	m, err := r.byte()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDerivedTextRoundTrip saves documents whose text is written in text
// mode 1 (and with predicted right origins) and checks that every change
// decodes as it was.
func TestDerivedTextRoundTrip(t *testing.T) {
	d := typingDoc(t)
	for _, opt := range []Options{{}, {Compress: true}} {
		b, err := SaveDoc(d, opt)
		if err != nil {
			t.Fatal(err)
		}
		if m := historyMode(t, b); m != textDerived {
			t.Fatalf("text mode %d, want %d", m, textDerived)
		}
		dec, err := DecodeDocument(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Changes()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := canonicalOrder(d.Changes())
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("compress=%v: decoded changes differ", opt.Compress)
		}
	}
}

// TestPaperTraceRoundTrip decodes the saved automerge-paper history (a
// quarter of a million keystrokes in text mode 1) and compares it with the
// changes it was made from.
func TestPaperTraceRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes a large history")
	}
	cs, st := paperHistory(t)
	b, err := EncodeDocument(st, cs, Options{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := historyMode(t, b); m != textDerived {
		t.Fatalf("text mode %d, want %d", m, textDerived)
	}
	d, err := DecodeDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Changes()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(cs) {
		t.Fatalf("%d changes decoded, %d saved", len(got), len(cs))
	}
	for i := range cs {
		if !reflect.DeepEqual(got[i], cs[i]) {
			t.Fatalf("change %d differs:\n got %+v\nwant %+v", i, got[i], cs[i])
		}
	}
}
