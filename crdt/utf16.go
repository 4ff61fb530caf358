package crdt

import (
	"fmt"
	"unicode/utf16"
)

// UTF16ToIndex converts a UTF-16 offset into text (what browser editors
// report) to a code point index (what converge's text positions count). An
// offset that falls inside a surrogate pair, or past the end, is an error.
func UTF16ToIndex(text string, offset int) (int, error) {
	if offset < 0 {
		return 0, fmt.Errorf("crdt: UTF-16 offset %d: %w", offset, ErrOutOfRange)
	}
	u, i := 0, 0
	for _, r := range text {
		if u == offset {
			return i, nil
		}
		if u > offset {
			break
		}
		u += utf16.RuneLen(r)
		i++
	}
	if u == offset {
		return i, nil
	}
	return 0, fmt.Errorf("crdt: UTF-16 offset %d is inside a character or past the end: %w", offset, ErrOutOfRange)
}

// IndexToUTF16 converts a code point index into text to a UTF-16 offset.
func IndexToUTF16(text string, index int) (int, error) {
	if index < 0 {
		return 0, fmt.Errorf("crdt: index %d: %w", index, ErrOutOfRange)
	}
	u, i := 0, 0
	for _, r := range text {
		if i == index {
			return u, nil
		}
		u += utf16.RuneLen(r)
		i++
	}
	if i == index {
		return u, nil
	}
	return 0, fmt.Errorf("crdt: index %d past the end (%d): %w", index, i, ErrOutOfRange)
}
