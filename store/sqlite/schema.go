package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/converge-sync/converge/store"
)

// applicationID marks a SQLite file as a converge store ("cnvg"), so that
// Open refuses some other program's database instead of adding tables to
// it.
const applicationID = 0x636e7667

// schemaVersion is kept in PRAGMA user_version. A file with a higher number
// was written by a newer converge and is refused: this build cannot know
// what the newer schema means.
const schemaVersion = 3

// migrations[i] takes a store from schema version i to i+1.
//
// docs: one row per document. doc is the internal number that other tables
// use (names can be 1 KiB); next_n numbers the document's logged changes in
// append order; the counters make Docs cost one row per document.
//
// log: the changes not folded into a snapshot, clustered by (doc, n) so
// that a document's log is contiguous on disk and Load is one range scan
// in append order. log_by_id finds a change by ID (idempotence) and an
// actor's changes after a sequence number (Changes), so that Changes costs
// one index seek per actor plus what it returns.
//
// versions: per document and actor, the highest sequence number held (seq)
// and the one the snapshot holds (snap_seq): Version without scanning the
// log, and the "already held" and "never back in time" checks.
//
// snapshots: one saved copy per document, with its version encoded.
//
// origins (schema 2): who sent each change, for audit, as runs of one
// actor's consecutive sequence numbers from one subject (a connection
// sends an actor's changes in order, so a run is usually a whole session).
// Unlike the log, origins are kept when a snapshot folds the log away.
//
// deletions (schema 3): per document name, how many times Delete removed
// it (store.Store.Deletions), the tombstone a replica numbers a
// document's incarnations by. Keyed by name, not by doc: it outlives the
// docs row, and a document written again gets a new doc number. Nothing
// else of a deleted document is kept.
//
// Every row carries a CRC-32C (crc) over its content and its place (doc, n,
// actor), so that damage is found and blamed on one document.
var migrations = []string{
	`CREATE TABLE docs (
		doc         INTEGER PRIMARY KEY,
		name        BLOB    NOT NULL UNIQUE,
		next_n      INTEGER NOT NULL,
		log_changes INTEGER NOT NULL,
		log_bytes   INTEGER NOT NULL,
		snap_bytes  INTEGER NOT NULL,
		crc         INTEGER NOT NULL
	) STRICT;
	CREATE TABLE log (
		doc   INTEGER NOT NULL,
		n     INTEGER NOT NULL,
		actor BLOB    NOT NULL,
		seq   INTEGER NOT NULL,
		bytes BLOB    NOT NULL,
		crc   INTEGER NOT NULL,
		PRIMARY KEY (doc, n)
	) STRICT, WITHOUT ROWID;
	CREATE UNIQUE INDEX log_by_id ON log (doc, actor, seq);
	CREATE TABLE versions (
		doc      INTEGER NOT NULL,
		actor    BLOB    NOT NULL,
		seq      INTEGER NOT NULL,
		snap_seq INTEGER NOT NULL,
		crc      INTEGER NOT NULL,
		PRIMARY KEY (doc, actor)
	) STRICT, WITHOUT ROWID;
	CREATE TABLE snapshots (
		doc     INTEGER PRIMARY KEY,
		version BLOB    NOT NULL,
		bytes   BLOB    NOT NULL,
		crc     INTEGER NOT NULL
	) STRICT;`,
	`CREATE TABLE origins (
		doc       INTEGER NOT NULL,
		actor     BLOB    NOT NULL,
		first_seq INTEGER NOT NULL,
		last_seq  INTEGER NOT NULL,
		subject   BLOB    NOT NULL,
		crc       INTEGER NOT NULL,
		PRIMARY KEY (doc, actor, first_seq)
	) STRICT, WITHOUT ROWID;`,
	`CREATE TABLE deletions (
		name  BLOB    PRIMARY KEY,
		count INTEGER NOT NULL,
		crc   INTEGER NOT NULL
	) STRICT, WITHOUT ROWID;`,
}

// migrate brings the database on conn to schemaVersion, creating the
// schema in a new file, in one transaction. It returns whether the file
// was new.
// With mayWrite false (salvage), a file that needs any change is refused.
func migrate(ctx context.Context, conn *sql.Conn, path string, mayWrite bool) (created bool, err error) {
	// Read the header fields before anything could write to the file.
	var appID, version int64
	if err := conn.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return false, err
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return false, err
	}
	var tables int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
		return false, err
	}
	switch {
	case appID == 0 && version == 0 && tables == 0:
		created = true // a new, empty file
	case appID != applicationID:
		return false, fmt.Errorf("store/sqlite: %s is a SQLite database of another program (application_id %#x), not a converge store", path, appID)
	case version > schemaVersion:
		return false, fmt.Errorf("store/sqlite: %s has schema version %d, newer than this build of converge understands (%d): upgrade converge to open it", path, version, schemaVersion)
	case version == schemaVersion:
		return false, nil
	case !mayWrite:
		return false, fmt.Errorf("store/sqlite: %s is damaged and its schema (version %d) is not current: %w", path, version, store.ErrCorrupt)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	for v := version; v < schemaVersion; v++ {
		if _, err := conn.ExecContext(ctx, migrations[v]); err != nil {
			return false, fmt.Errorf("store/sqlite: %s: migrating schema %d to %d: %w", path, v, v+1, err)
		}
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
		return false, err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return false, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return false, err
	}
	return created, nil
}
