package seq

// ownRange reports whether the IDs id…id+n-1 (n > 0) can name elements at
// all. Counter 0 belongs to the zero ID (the start or end of the sequence),
// and the range's end, id+n, must not wrap around: both engines then work
// with half-open counter ranges and never meet a counter that means two
// things. Inserts outside these bounds fail with ErrOutOfRange.
func ownRange(id ID, n int) bool {
	return id.Counter != 0 && id.Counter+uint64(n) > id.Counter
}
