package store

import (
	"cmp"
	"fmt"
	"slices"
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

// AddOrigin records that change id came from subject in runs, one actor's
// origin runs sorted by First, and returns the runs: the change joins the
// run before it and the run after it when they hold the neighbouring
// sequence numbers with the same subject, so runs are always maximal and
// every backend returns the same ones. A change already in a run is left
// as it is (the first sender is kept).
func AddOrigin(runs []Origin, id causal.ChangeID, subject string) []Origin {
	i, _ := slices.BinarySearchFunc(runs, id.Seq, func(o Origin, seq uint64) int { return cmp.Compare(o.First, seq) })
	// runs[i-1] is the last run starting at or before id.Seq.
	if i > 0 && runs[i-1].Last >= id.Seq {
		return runs
	}
	if i < len(runs) && runs[i].First == id.Seq {
		return runs
	}
	joinPrev := i > 0 && runs[i-1].Last == id.Seq-1 && runs[i-1].Subject == subject
	joinNext := i < len(runs) && runs[i].First == id.Seq+1 && runs[i].Subject == subject
	switch {
	case joinPrev && joinNext:
		runs[i-1].Last = runs[i].Last
		return slices.Delete(runs, i, i+1)
	case joinPrev:
		runs[i-1].Last = id.Seq
	case joinNext:
		runs[i].First = id.Seq
	default:
		runs = slices.Insert(runs, i, Origin{Actor: id.Actor, First: id.Seq, Last: id.Seq, Subject: subject})
	}
	return runs
}
