package sqlite

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/converge-sync/converge/causal"
)

// Castagnoli: hardware-accelerated on amd64 and arm64, and better at
// catching burst errors than IEEE.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// summer builds the CRC of one row from its fields. Integers go in as 8
// bytes big-endian, so that no two different rows feed the same bytes.
type summer struct{ crc uint32 }

func (s *summer) bytes(b []byte) *summer {
	s.crc = crc32.Update(s.crc, castagnoli, b)
	return s
}

func (s *summer) int(v int64) *summer {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return s.bytes(b[:])
}

func (s *summer) sum() int64 { return int64(s.crc) }

func logCRC(doc, n int64, actor []byte, seq int64, bytes []byte) int64 {
	var s summer
	return s.int(doc).int(n).bytes(actor).int(seq).int(int64(len(bytes))).bytes(bytes).sum()
}

func versionCRC(doc int64, actor []byte, seq, snapSeq int64) int64 {
	var s summer
	return s.int(doc).bytes(actor).int(seq).int(snapSeq).sum()
}

func snapshotCRC(doc int64, version, bytes []byte) int64 {
	var s summer
	return s.int(doc).int(int64(len(version))).bytes(version).bytes(bytes).sum()
}

func originCRC(doc int64, actor []byte, first, last int64, subject []byte) int64 {
	var s summer
	return s.int(doc).bytes(actor).int(first).int(last).int(int64(len(subject))).bytes(subject).sum()
}

func deletionsCRC(name []byte, count int64) int64 {
	var s summer
	return s.int(int64(len(name))).bytes(name).int(count).sum()
}

func (d *docRow) crc() int64 {
	var s summer
	return s.int(int64(len(d.name))).bytes([]byte(d.name)).int(d.nextN).int(d.logChanges).int(d.logBytes).int(d.snapBytes).sum()
}

// encodeVersion writes v as (16-byte actor, 8-byte big-endian seq) pairs
// sorted by actor, leaving out zero entries: one version, one encoding.
func encodeVersion(v causal.VersionVector) []byte {
	actors := v.Actors()
	out := make([]byte, 0, len(actors)*24)
	for _, a := range actors {
		out = append(out, a[:]...)
		out = binary.BigEndian.AppendUint64(out, v[a])
	}
	return out
}

func decodeVersion(b []byte) (causal.VersionVector, error) {
	if len(b)%24 != 0 {
		return nil, fmt.Errorf("version of %d bytes is not a whole number of entries", len(b))
	}
	v := make(causal.VersionVector, len(b)/24)
	for ; len(b) > 0; b = b[24:] {
		a := causal.ActorID(b[:16])
		v[a] = binary.BigEndian.Uint64(b[16:24])
	}
	return v, nil
}

func actorOf(b []byte) (causal.ActorID, bool) {
	if len(b) != len(causal.ActorID{}) {
		return causal.ActorID{}, false
	}
	return causal.ActorID(b), true
}
