package crdt

import (
	"errors"
	"testing"
)

func TestUTF16Conversion(t *testing.T) {
	text := "a😀b" // the emoji is 2 UTF-16 units, 1 code point
	for _, c := range []struct{ u, i int }{{0, 0}, {1, 1}, {3, 2}, {4, 3}} {
		if got, err := UTF16ToIndex(text, c.u); err != nil || got != c.i {
			t.Errorf("UTF16ToIndex(%d) = %d, %v; want %d", c.u, got, err, c.i)
		}
		if got, err := IndexToUTF16(text, c.i); err != nil || got != c.u {
			t.Errorf("IndexToUTF16(%d) = %d, %v; want %d", c.i, got, err, c.u)
		}
	}
	for _, bad := range []int{2, 5, -1} {
		if _, err := UTF16ToIndex(text, bad); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("UTF16ToIndex(%d) err %v", bad, err)
		}
	}
	if _, err := IndexToUTF16(text, 4); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("IndexToUTF16 past end: %v", err)
	}
}
