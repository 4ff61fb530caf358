package sqlite

import (
	"errors"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
	msqlite "modernc.org/sqlite"
)

// driver is what Store needs from a database/sql SQLite driver. Production
// code has one, modernc; the benchmarks add github.com/ncruces/go-sqlite3
// through the same seam (see drivercmp_test.go) so that both run the very
// same store code.
type driver struct {
	name string                                     // database/sql driver name
	code func(error) int                            // the SQLite primary result code in err, or 0
	dsn  func(path string, pragmas []string) string // data source name
}

// SQLite primary result codes this package tells apart.
const (
	codeCorrupt = 11 // SQLITE_CORRUPT: a page failed SQLite's own checks
	codeNotADB  = 26 // SQLITE_NOTADB: not a database file
)

var modernc = driver{
	name: "sqlite",
	code: func(err error) int {
		var e *msqlite.Error
		if errors.As(err, &e) {
			return e.Code() & 0xff // extended codes carry the primary in the low byte
		}
		return 0
	},
	dsn: dsnFor,
}

// dsnFor returns a "file:" URI for path that sets pragmas on every
// connection. Both drivers accept this form: SQLite itself reads the URI,
// and the drivers run each _pragma, in order, on every new connection.
func dsnFor(path string, pragmas []string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	// Writes take the write lock at BEGIN, not at the first write: a
	// transaction that reads and then writes cannot fail with SQLITE_BUSY
	// half way (and Store serialises writers anyway).
	q.Set("_txlock", "immediate")
	return "file:" + escapePath(path) + "?" + q.Encode()
}

// pragmas are set on every connection, in this order.
var normalPragmas = []string{
	// First, so that the pragmas after it and the first queries wait for a
	// checkpoint or WAL recovery by another connection of this Store
	// instead of failing.
	"busy_timeout(10000)",
	"journal_mode(WAL)",
	// FULL: the WAL is fsynced at every commit, so a commit that returned
	// survives power loss. NORMAL would sync only at checkpoints (see
	// doc.go).
	"synchronous(FULL)",
	// The schema needs no foreign keys; set explicitly so that a build of
	// SQLite with another default behaves the same.
	"foreign_keys(OFF)",
}

// salvagePragmas open a truncated file for reading only. SQLite refuses a
// file shorter than its header says unless writable_schema is on, in which
// case it reads the pages that are there and reports the missing ones as
// corrupt where they are needed: so the intact documents can be read and
// the damaged ones are named. query_only makes sure nothing is written to
// a file in that state.
var salvagePragmas = []string{
	"busy_timeout(10000)",
	"writable_schema(1)",
	"query_only(1)",
}

// escapePath makes path safe inside a SQLite URI: '%', '?' and '#' would be
// read as escapes, the query and the fragment.
func escapePath(path string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return r.Replace(path)
}
