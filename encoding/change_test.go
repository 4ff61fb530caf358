package encoding

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/converge-sync/converge/crdt"
)

func TestChangeRoundTrip(t *testing.T) {
	for seed := uint64(0); seed < 2000; seed++ {
		c := newGen(seed).change()
		b := EncodeChange(c)
		got, err := DecodeChange(b)
		if err != nil {
			t.Fatalf("seed %d: decode: %v", seed, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("seed %d: round trip differs\n got %#v\nwant %#v", seed, got, c)
		}
		if again := EncodeChange(got); !bytes.Equal(again, b) {
			t.Fatalf("seed %d: re-encoding differs", seed)
		}
	}
}

func TestChangeCompressedBody(t *testing.T) {
	c := &crdt.Change{Actor: newGen(1).actor(), Seq: 1, StartOp: 1}
	for i := 0; i < 50; i++ {
		c.Ops = append(c.Ops, crdt.Op{Action: crdt.ActInsertText, Text: "the same words again and again "})
	}
	b := EncodeChange(c)
	if b[6]&flagDeflate == 0 {
		t.Fatalf("a repetitive 1.5 KB change was not compressed (%d bytes)", len(b))
	}
	got, err := DecodeChange(b)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("compressed change: err %v, equal %v", err, reflect.DeepEqual(got, c))
	}
}

func TestChangeErrors(t *testing.T) {
	good := EncodeChange(newGen(7).change())
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"not ours", []byte("hello, world"), ErrBadMagic},
		{"short prefix of garbage", []byte{0x01}, ErrBadMagic},
		{"future version", mut(func(b []byte) []byte { b[4] = 2; return b }), ErrUnsupportedVersion},
		{"a document, not a change", mut(func(b []byte) []byte { b[5] = typeDocument; return b }), ErrBadMagic},
		{"flipped byte", mut(func(b []byte) []byte { b[len(b)-6] ^= 0x40; return b }), ErrChecksum},
		{"truncated", good[:len(good)-1], ErrTruncated},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformed},
		{"unknown flag", mut(func(b []byte) []byte { b[6] |= 0x80; return b }), ErrMalformed},
	}
	for _, tc := range cases {
		_, err := DecodeChange(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		var fe *FormatError
		if err != nil && !errors.As(err, &fe) {
			t.Errorf("%s: error %v is not a *FormatError", tc.name, err)
		}
	}
}

// A body whose checksum is right but whose content is not a change must be
// reported as malformed, not as corruption.
func TestChangeMalformedBody(t *testing.T) {
	bodies := map[string][]byte{
		"unknown action":     {0, 0, 0, 0, 0, 0, 0, 1, 9},
		"actor ref too far":  {5},
		"op count too large": {0, 0, 0, 0, 0, 0, 0, 200},
	}
	bodies["unknown action"] = append([]byte{0}, append(make([]byte, 16), 0, 0, 0, 0, 0, 1, 9)...)
	bodies["op count too large"] = append([]byte{0}, append(make([]byte, 16), 0, 0, 0, 0, 0, 100)...)
	for name, body := range bodies {
		b := appendBody(appendHeader(nil, typeChange), 0, body, codecNone)
		_, err := DecodeChange(b)
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}
