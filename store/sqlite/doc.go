// Package sqlite is the embedded default store.Store: one SQLite file per
// replica folder, on modernc.org/sqlite (SQLite translated to Go, so no cgo:
// CGO_ENABLED=0 builds work).
//
// # Durability
//
// The file is in WAL mode with synchronous=FULL: every commit fsyncs the
// WAL before it returns, so a call that returned nil survives a crash or a
// power cut. NORMAL, the usual WAL pairing, syncs only at checkpoints: the
// database stays consistent, but the last commits before a power cut can
// roll back, which breaks the contract ("durable when the call returns").
// FULL costs one fsync per commit: callers that write often batch changes
// into one Append, and write calls made at the same time from different
// goroutines are committed together (group commit: one transaction, one
// fsync, each call in its own savepoint so that one call's failure undoes
// only its own writes).
//
// A new file's directory is fsynced once it exists, so that the file
// itself survives a crash; SQLite does the same for the WAL it creates.
// Checkpoints run automatically (every 1000 WAL pages) and at Close.
//
// # One writer per folder
//
// Open takes an exclusive flock (LockFileEx on Windows) on path+".lock"
// and keeps it until Close. A second Open of the same path, from any
// process, fails at once with store.ErrLocked. The OS drops the lock when
// the process dies, so a crash never leaves a store locked. Within the
// process, writes go through one writer goroutine (SQLite has one writer anyway)
// and reads run on up to Readers connections beside it, each in its own
// read transaction, so they see one committed state and never wait for a
// write's fsync.
//
// # Damage
//
// Every row carries a CRC-32C over its content and its place (document,
// append number, actor), so a flipped byte, a stray edit or a row moved to
// another document is reported as a *store.CorruptError naming the one
// document whose data it is; SQLite's own corruption errors inside a
// document's pages are reported the same way. The other documents stay
// readable, and Delete of the damaged document always works (it checks
// none of the document's rows), after which Docs lists the rest again;
// only a damaged deletion count stops it, since counting on from a wrong
// number could hand a replica an incarnation it used before.
//
// A file that is not SQLite, another program's database, or a schema
// newer than this build is refused at Open with an error naming the file
// (matching store.ErrCorrupt for damage). A file shorter than its header
// says (truncated) is opened read-only in salvage mode (see
// Store.Salvage): the documents whose pages survive read normally, the
// others give a CorruptError, and every write fails with store.ErrCorrupt.
//
// # Schema
//
// The schema version is PRAGMA user_version (now 3) and the file is marked
// with PRAGMA application_id "cnvg". Migrations run in one transaction at
// Open; a version newer than this build is refused. The tables are
// described in schema.go and docs/store.md.
//
// # Driver choice and figures
//
// modernc.org/sqlite was measured against github.com/ncruces/go-sqlite3
// (SQLite as Wasm translated to Go, also cgo-free) on the same Store code;
// the comparison lives in drivercmp_test.go and bench_test.go and is re-run
// with
//
//	go test ./store/sqlite -run '^$' -bench . -count 5 > bench.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /driver bench.txt
//
// The figures and the decision are in docs/store.md.
package sqlite
