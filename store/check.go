package store

import (
	"fmt"
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
)

// CheckDocID returns ErrBadDocID (wrapped, naming the problem) unless doc is
// a valid document ID. Backends call it so that they all refuse the same IDs.
func CheckDocID(doc string) error {
	switch {
	case doc == "":
		return fmt.Errorf("%w: empty", ErrBadDocID)
	case len(doc) > MaxDocIDLen:
		return fmt.Errorf("%w: %d bytes", ErrBadDocID, len(doc))
	case !utf8.ValidString(doc):
		return fmt.Errorf("%w: not UTF-8: %q", ErrBadDocID, doc)
	}
	return nil
}

// CheckChangeID returns ErrBadChangeID (wrapped) unless c names a non-zero
// actor and a sequence number in 1..MaxSeq.
func CheckChangeID(c causal.ChangeID) error {
	if c.Actor.IsZero() || c.Seq == 0 || c.Seq > MaxSeq {
		return fmt.Errorf("%w: %v", ErrBadChangeID, c)
	}
	return nil
}

// CheckVersion returns ErrBadChangeID (wrapped) if v has an entry for the
// zero actor or above MaxSeq. Zero entries are allowed: they hold nothing.
func CheckVersion(v causal.VersionVector) error {
	for a, s := range v {
		if s == 0 {
			continue
		}
		if a.IsZero() || s > MaxSeq {
			return fmt.Errorf("%w: version entry %s:%d", ErrBadChangeID, a.Short(), s)
		}
	}
	return nil
}
