package encoding

import "slices"

// grow2 returns s with room for one more element, grown as room grows it:
// a long history's list of pieces reaches millions of entries.
func grow2[T any](s []T) []T { return room(s, 1) }

// room returns s with space for n more elements, doubling its capacity
// when it must grow, up to a million elements. Past a few hundred elements
// append grows a slice by about a quarter at a time, so a buffer appended
// to for ever (a History's columns, its text tracking, its index) would be
// allocated and copied some four times over; past a million a quarter
// is the better trade, as the slack of a doubled buffer is memory
// held for as long as the document is.
func room[T any](s []T, n int) []T {
	if cap(s)-len(s) >= n {
		return s
	}
	if cap(s) >= 1<<20 {
		return slices.Grow(s, n)
	}
	return slices.Grow(s, max(n, len(s), 16))
}
