package sqlite

import (
	"context"
	"database/sql"
	"strings"
)

// statements are prepared once per Store. database/sql prepares each again
// on every connection that runs it, once, and reuses it there.
type statements struct {
	findDoc, docID, insertDoc, updateDoc, docs *sql.Stmt
	version, versions, allVersions             *sql.Stmt
	logged, since, allLog, prune               *sql.Stmt
	snapshot, putSnapshot                      *sql.Stmt
	deleteLog, deleteVersions                  *sql.Stmt
	deleteSnapshot, deleteDoc                  *sql.Stmt
	originBefore, originsFrom, putOrigin       *sql.Stmt
	deleteOrigin, origins, deleteOrigins       *sql.Stmt
	deletions, putDeletions                    *sql.Stmt
	// insertLogs[k] inserts 2^k log rows in one statement: an Append of
	// many changes (a busy document's batch) runs a few statements, not
	// one per change.
	insertLogs [4]*sql.Stmt
	// putVersions[k] writes 2^k version rows in one statement, likewise
	// (each client in a batch is an actor of its own).
	putVersions [4]*sql.Stmt
	// A group commit runs each call in a savepoint: prepared once, not
	// parsed again for every call.
	savepoint, release, rollbackTo *sql.Stmt
}

// putVersionRows returns the upsert of n version rows.
func putVersionRows(n int) string {
	return `INSERT INTO versions (doc, actor, seq, snap_seq, crc) VALUES ` + strings.Repeat(`(?, ?, ?, ?, ?), `, n-1) + `(?, ?, ?, ?, ?)
			ON CONFLICT (doc, actor) DO UPDATE SET seq = excluded.seq, snap_seq = excluded.snap_seq, crc = excluded.crc`
}

// insertLogRows returns the INSERT of n log rows.
func insertLogRows(n int) string {
	return `INSERT INTO log (doc, n, actor, seq, bytes, crc) VALUES ` + strings.Repeat(`(?, ?, ?, ?, ?, ?), `, n-1) + `(?, ?, ?, ?, ?, ?)`
}

func (st *statements) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		s **sql.Stmt
		q string
	}{
		{&st.findDoc, `SELECT doc, next_n, log_changes, log_bytes, snap_bytes, crc FROM docs WHERE name = ?`},
		{&st.docID, `SELECT doc FROM docs WHERE name = ?`},
		{&st.insertDoc, `INSERT INTO docs (name, next_n, log_changes, log_bytes, snap_bytes, crc) VALUES (?, ?, ?, ?, ?, ?) RETURNING doc`},
		{&st.updateDoc, `UPDATE docs SET next_n = ?, log_changes = ?, log_bytes = ?, snap_bytes = ?, crc = ? WHERE doc = ?`},
		{&st.docs, `SELECT doc, name, next_n, log_changes, log_bytes, snap_bytes, crc FROM docs ORDER BY name`},
		{&st.version, `SELECT seq, snap_seq, crc FROM versions WHERE doc = ? AND actor = ?`},
		{&st.versions, `SELECT actor, seq, snap_seq, crc FROM versions WHERE doc = ?`},
		{&st.allVersions, `SELECT doc, actor, seq, snap_seq, crc FROM versions`},
		{&st.savepoint, `SAVEPOINT w`},
		{&st.release, `RELEASE w`},
		{&st.rollbackTo, `ROLLBACK TO w`},
		{&st.putVersions[0], putVersionRows(1)},
		{&st.putVersions[1], putVersionRows(2)},
		{&st.putVersions[2], putVersionRows(4)},
		{&st.putVersions[3], putVersionRows(8)},
		{&st.logged, `SELECT n, bytes, crc FROM log WHERE doc = ? AND actor = ? AND seq = ?`},
		{&st.insertLogs[0], insertLogRows(1)},
		{&st.insertLogs[1], insertLogRows(2)},
		{&st.insertLogs[2], insertLogRows(4)},
		{&st.insertLogs[3], insertLogRows(8)},
		{&st.since, `SELECT n, actor, seq, bytes, crc FROM log WHERE doc = ? AND actor = ? AND seq > ?`},
		{&st.allLog, `SELECT n, actor, seq, bytes, crc FROM log WHERE doc = ? ORDER BY n`},
		{&st.prune, `DELETE FROM log WHERE doc = ? AND actor = ? AND seq <= ? RETURNING length(bytes)`},
		{&st.snapshot, `SELECT version, bytes, crc FROM snapshots WHERE doc = ?`},
		{&st.putSnapshot, `INSERT OR REPLACE INTO snapshots (doc, version, bytes, crc) VALUES (?, ?, ?, ?)`},
		{&st.deleteLog, `DELETE FROM log WHERE doc = ?`},
		{&st.deleteVersions, `DELETE FROM versions WHERE doc = ?`},
		{&st.deleteSnapshot, `DELETE FROM snapshots WHERE doc = ?`},
		{&st.deleteDoc, `DELETE FROM docs WHERE doc = ?`},
		{&st.originBefore, `SELECT first_seq, last_seq, subject, crc FROM origins WHERE doc = ? AND actor = ? AND first_seq < ? ORDER BY first_seq DESC LIMIT 1`},
		{&st.originsFrom, `SELECT first_seq, last_seq, subject, crc FROM origins WHERE doc = ? AND actor = ? AND first_seq BETWEEN ? AND ? ORDER BY first_seq`},
		{&st.putOrigin, `INSERT OR REPLACE INTO origins (doc, actor, first_seq, last_seq, subject, crc) VALUES (?, ?, ?, ?, ?, ?)`},
		{&st.deleteOrigin, `DELETE FROM origins WHERE doc = ? AND actor = ? AND first_seq = ?`},
		{&st.origins, `SELECT actor, first_seq, last_seq, subject, crc FROM origins WHERE doc = ? ORDER BY actor, first_seq`},
		{&st.deleteOrigins, `DELETE FROM origins WHERE doc = ?`},
		{&st.deletions, `SELECT count, crc FROM deletions WHERE name = ?`},
		{&st.putDeletions, `INSERT OR REPLACE INTO deletions (name, count, crc) VALUES (?, ?, ?)`},
	} {
		s, err := db.PrepareContext(ctx, p.q)
		if err != nil {
			return err
		}
		*p.s = s
	}
	return nil
}

func (st *statements) close() {
	for _, s := range []*sql.Stmt{
		st.findDoc, st.docID, st.insertDoc, st.updateDoc, st.docs,
		st.version, st.versions, st.allVersions,
		st.logged, st.since, st.allLog, st.prune,
		st.snapshot, st.putSnapshot,
		st.deleteLog, st.deleteVersions, st.deleteSnapshot, st.deleteDoc,
		st.originBefore, st.originsFrom, st.putOrigin, st.deleteOrigin, st.origins, st.deleteOrigins,
		st.deletions, st.putDeletions,
		st.insertLogs[0], st.insertLogs[1], st.insertLogs[2], st.insertLogs[3],
		st.putVersions[0], st.putVersions[1], st.putVersions[2], st.putVersions[3],
		st.savepoint, st.release, st.rollbackTo,
	} {
		if s != nil {
			s.Close()
		}
	}
}
