package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/store/storetest"
)

func open(t testing.TB, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "store.db"))
	})
}

func TestPersistent(t *testing.T) {
	storetest.RunPersistent(t, func(t *testing.T, dir string) store.Store {
		return open(t, filepath.Join(dir, "store.db"))
	})
}

// The child side of TestLockedByAnotherProcess: the test binary run again
// with this variable set tries to open the store and reports how it went.
const lockChildEnv = "CONVERGE_SQLITE_LOCK_CHILD"

// The child side of TestKilledWriter: appends one change per call forever,
// printing each sequence number once Append has returned.
const killChildEnv = "CONVERGE_SQLITE_KILL_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(killChildEnv); path != "" {
		s, err := Open(context.Background(), path)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		for seq := uint64(1); ; seq++ {
			if err := s.Append(context.Background(), "d", []store.Change{change(1, seq, fmt.Sprint("change ", seq))}); err != nil {
				fmt.Println("error:", err)
				os.Exit(2)
			}
			fmt.Println(seq)
		}
	}
	if path := os.Getenv(lockChildEnv); path != "" {
		s, err := Open(context.Background(), path)
		switch {
		case errors.Is(err, store.ErrLocked):
			fmt.Println("locked:", err)
			os.Exit(0)
		case err != nil:
			fmt.Println("error:", err)
			os.Exit(2)
		}
		s.Close()
		fmt.Println("opened")
		os.Exit(3)
	}
	code := m.Run()
	cleanupFixtures()
	os.Exit(code)
}

func runLockChild(t *testing.T, path string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+path)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running the child process: %v", err)
	}
	return strings.TrimSpace(string(out)), cmd.ProcessState.ExitCode()
}

func TestLockedByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path)
	if err := s.Append(context.Background(), "d", []store.Change{change(1, 1, "x")}); err != nil {
		t.Fatal(err)
	}
	out, code := runLockChild(t, path)
	if code != 0 {
		t.Fatalf("second process opening a held store: exit %d, output %q; want ErrLocked", code, out)
	}
	if !strings.Contains(out, path) {
		t.Errorf("ErrLocked message %q does not name the store %s", out, path)
	}

	// In this process too: a second Store on one file is a second writer.
	_, err := Open(context.Background(), path)
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open in the same process: %v, want ErrLocked", err)
	}

	// Once closed, another process may open it.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if out, code := runLockChild(t, path); code != 3 {
		t.Fatalf("second process after Close: exit %d, output %q; want it to open", code, out)
	}
	s = open(t, path)
	defer s.Close()
	if v, err := s.Version(context.Background(), "d"); err != nil || v.Get(actor(1)) != 1 {
		t.Fatalf("after reopening: %v %v", v, err)
	}
}

// A writer killed with SIGKILL in the middle of its appends: every change
// it was told was stored is there, the store opens cleanly (the kernel
// dropped the lock), and nothing is damaged. A killed process keeps what
// the OS page cache holds, so this checks atomicity and recovery, not
// fsync; synchronous=FULL is checked by TestSettings.
func TestKilledWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var acked uint64
	for sc.Scan() && acked < 200 {
		n, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("child: %s", sc.Text())
		}
		acked = n
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked < 200 {
		t.Fatalf("child stopped after %d appends", acked)
	}

	s := open(t, path)
	defer s.Close()
	cs, err := s.Changes(context.Background(), "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(cs)) < acked {
		t.Fatalf("%d changes after the kill, but %d were acknowledged", len(cs), acked)
	}
	for i, c := range cs {
		if want := change(1, uint64(i+1), fmt.Sprint("change ", i+1)); c.ID != want.ID || !bytes.Equal(c.Bytes, want.Bytes) {
			t.Fatalf("change %d is %v %q", i, c.ID, c.Bytes)
		}
	}
	if err := s.Append(context.Background(), "d", []store.Change{change(1, uint64(len(cs)+1), "after")}); err != nil {
		t.Fatalf("Append after the kill: %v", err)
	}
}

func actor(i byte) causal.ActorID {
	var a causal.ActorID
	a[0], a[15] = i, 0x5a
	return a
}

func change(a byte, seq uint64, payload string) store.Change {
	return store.Change{ID: causal.ChangeID{Actor: actor(a), Seq: seq}, Bytes: []byte(payload)}
}

// fill writes n documents, each with a snapshot and a short log; the
// payloads carry unique markers so that tests can find them in the file.
func fill(t testing.TB, s *Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		doc := fmt.Sprintf("doc-%02d", i)
		snap := store.Snapshot{Version: causal.VersionVector{actor(1): 2}, Bytes: fmt.Appendf(nil, "SNAP<%s>%s", doc, strings.Repeat("s", 300))}
		if err := s.Append(ctx, doc, []store.Change{change(1, 1, "a"), change(1, 2, "b"), change(byte(10+i), 1, "LOG<"+doc+">"), change(1, 3, "c")}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveSnapshot(ctx, doc, snap); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads every document, returning the errors by document.
func readAll(s *Store, n int) map[string]error {
	ctx := context.Background()
	out := map[string]error{}
	for i := range n {
		doc := fmt.Sprintf("doc-%02d", i)
		_, _, err := s.Load(ctx, doc)
		if err == nil {
			_, err = s.Changes(ctx, doc, causal.VersionVector{actor(1): 1})
		}
		if err == nil {
			_, err = s.Version(ctx, doc)
		}
		out[doc] = err
	}
	return out
}

// wantOnlyCorrupt checks that exactly the named document reports damage, as
// a *store.CorruptError naming it, and every other one reads.
func wantOnlyCorrupt(t *testing.T, errs map[string]error, bad string) {
	t.Helper()
	for doc, err := range errs {
		if doc != bad {
			if err != nil {
				t.Errorf("%s: %v, want it readable (only %s is damaged)", doc, err, bad)
			}
			continue
		}
		var ce *store.CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("%s: got %v, want a *store.CorruptError", doc, err)
			continue
		}
		if ce.Doc != bad {
			t.Errorf("CorruptError names %q, want %q", ce.Doc, bad)
		}
	}
}

// rawExec changes the closed store's file behind its back, as a failing
// disk or a stray tool would.
func rawExec(t *testing.T, path, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s changed %d rows, want 1", query, n)
	}
}

func TestCorruptRows(t *testing.T) {
	const docs = 6
	for _, tc := range []struct {
		name, doc, query string
		writeSeesIt      bool // the Append below reads the damaged row
	}{
		{"log bytes", "doc-03", `UPDATE log SET bytes = CAST('LOG<doc-03]' AS BLOB) WHERE bytes = CAST('LOG<doc-03>' AS BLOB)`, true},
		{"log seq", "doc-01", `UPDATE log SET seq = 7 WHERE bytes = CAST('LOG<doc-01>' AS BLOB)`, false},
		{"log moved to another document", "doc-02", `UPDATE log SET doc = (SELECT doc FROM docs WHERE name = CAST('doc-02' AS BLOB)), n = 1000 WHERE bytes = CAST('LOG<doc-04>' AS BLOB)`, false},
		{"snapshot bytes", "doc-04", `UPDATE snapshots SET bytes = CAST(replace(CAST(bytes AS TEXT), 'sss', 'sts') AS BLOB) WHERE doc = (SELECT doc FROM docs WHERE name = CAST('doc-04' AS BLOB))`, false},
		{"snapshot version", "doc-00", `UPDATE snapshots SET version = zeroblob(24) WHERE doc = (SELECT doc FROM docs WHERE name = CAST('doc-00' AS BLOB))`, false},
		{"version seq", "doc-05", `UPDATE versions SET seq = seq + 1 WHERE actor = ? AND doc = (SELECT doc FROM docs WHERE name = CAST('doc-05' AS BLOB))`, true},
		{"doc counters", "doc-02", `UPDATE docs SET log_bytes = log_bytes + 1 WHERE name = CAST('doc-02' AS BLOB)`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			s := open(t, path)
			fill(t, s, docs)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			var args []any
			if strings.Contains(tc.query, "?") {
				a := actor(1)
				args = append(args, a[:])
			}
			rawExec(t, path, tc.query, args...)

			s = open(t, path)
			defer s.Close()
			wantOnlyCorrupt(t, readAll(s, docs), tc.doc)

			// Docs names the damaged document too (its entry or its
			// versions are what the list shows), or lists all.
			_, err := s.Docs(context.Background())
			var ce *store.CorruptError
			if err != nil && (!errors.As(err, &ce) || ce.Doc != tc.doc) {
				t.Errorf("Docs: %v, want nil or a CorruptError for %s", err, tc.doc)
			}
			// A write that reads the damaged row is refused rather than
			// built on bad data; the other documents take writes.
			var i byte
			fmt.Sscanf(tc.doc, "doc-%d", &i)
			err = s.Append(context.Background(), tc.doc, []store.Change{change(1, 9, "new"), change(10+i, 1, "again")})
			if tc.writeSeesIt && !errors.As(err, &ce) {
				t.Errorf("Append to the damaged document: %v, want a CorruptError", err)
			}
			if err := s.Append(context.Background(), "doc-99", []store.Change{change(3, 1, "new")}); err != nil {
				t.Errorf("Append to another document: %v", err)
			}
			// Deleting the damaged document is the way out, and it works.
			if err := s.Delete(context.Background(), tc.doc); err != nil {
				t.Fatalf("Delete of the damaged document: %v", err)
			}
			if _, err := s.Docs(context.Background()); err != nil {
				t.Fatalf("Docs after deleting the damaged document: %v", err)
			}
		})
	}
}

// A flipped byte in the file itself, inside one document's data, is blamed
// on that document.
func TestCorruptFileByte(t *testing.T) {
	const docs = 6
	for _, marker := range []string{"LOG<doc-02>", "SNAP<doc-04>"} {
		t.Run(marker, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			s := open(t, path)
			fill(t, s, docs)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("WAL still there after Close (%v): the marker might not be in the main file", err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(data, []byte(marker))
			if i < 0 || bytes.Count(data, []byte(marker)) != 1 {
				t.Fatalf("marker %q found %d times", marker, bytes.Count(data, []byte(marker)))
			}
			data[i+1] ^= 0x20
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			s = open(t, path)
			defer s.Close()
			doc := marker[strings.Index(marker, "<")+1 : len(marker)-1]
			wantOnlyCorrupt(t, readAll(s, docs), doc)
		})
	}
}

// Losing the end of the file loses the pages written last: here the last
// document's big snapshot. That document reports damage; the others read.
func TestTruncatedFile(t *testing.T) {
	const docs = 6
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path)
	fill(t, s, docs-1)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: overflow pages at the end of the file
	if err := s.SaveSnapshot(context.Background(), "doc-05", store.Snapshot{Version: causal.VersionVector{actor(1): 1}, Bytes: big}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-64<<10); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	defer s.Close()
	if !strings.Contains(s.Salvage(), "truncated") {
		t.Fatalf("Salvage() = %q, want it to say the file is truncated", s.Salvage())
	}
	wantOnlyCorrupt(t, readAll(s, docs), "doc-05")
	ds, err := s.Docs(context.Background())
	if err != nil || len(ds) != docs {
		t.Fatalf("Docs of a truncated store: %d documents, %v", len(ds), err)
	}
	// Nothing is written to a file in that state.
	err = s.Append(context.Background(), "doc-00", []store.Change{change(9, 1, "x")})
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("Append to a truncated store: %v, want ErrCorrupt saying it is truncated", err)
	}
	s.Close()

	// Cut within its first page, the schema is gone too: Open says so.
	if err := os.Truncate(path, 1000); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), path)
	t.Logf("open: %v", err)
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("Open of a store cut to 1,000 bytes: %v, want ErrCorrupt saying it is truncated", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 1000 {
		t.Fatalf("the refused file changed: %v, %v", fi, err)
	}
}

func TestGarbageFile(t *testing.T) {
	dir := t.TempDir()
	header := []byte("SQLite format 3\x00")
	for name, content := range map[string][]byte{
		"text":             []byte("these are not the bytes you are looking for\n"),
		"short":            []byte("SQLite"),
		"header only":      header,
		"header + garbage": append(append([]byte{}, header...), bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 2048)...),
		"random-ish":       bytes.Repeat([]byte{0x13, 0x37, 0x00, 0xff, 0x42}, 5000),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".db")
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Open(context.Background(), path)
			if err == nil {
				s.Close()
				t.Fatalf("Open of a garbage file succeeded")
			}
			if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open: %v; want ErrCorrupt naming the file", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, content) {
				t.Fatalf("Open changed the garbage file")
			}
		})
	}
}

func TestForeignDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE notes (body TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "another program") {
		t.Fatalf("Open of another program's database: %v", err)
	}
}

func TestFutureSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	open(t, path).Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "newer than this build") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

// The settings that durability rests on are in force on every connection,
// readers included.
func TestSettings(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "store.db"), Readers(3))
	defer s.Close()
	ctx := context.Background()
	var conns []*sql.Conn
	for range 4 {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var mode string
		var sync int
		if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || sync != 2 {
			t.Errorf("connection %d: journal_mode=%s synchronous=%d, want wal and 2 (FULL)", i, mode, sync)
		}
		c.Close()
	}
}

// Changes(since) reads only what is missing: the query plan seeks the
// (doc, actor, seq) index instead of scanning the log.
func TestChangesUsesIndex(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "store.db"))
	defer s.Close()
	a := actor(1)
	rows, err := s.db.Query(`EXPLAIN QUERY PLAN SELECT n, actor, seq, bytes, crc FROM log WHERE doc = ? AND actor = ? AND seq > ?`, 1, a[:], 5)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "log_by_id") || !strings.Contains(p, "seq>?") {
		t.Fatalf("plan %q does not seek log_by_id on (doc, actor, seq>?)", p)
	}
}

func TestDocIDWithURIMetacharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "store.db")
	s := open(t, path)
	if err := s.Append(context.Background(), "d", []store.Change{change(1, 1, "x")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the store is not where it was asked to be: %v", err)
	}
}

// olderStore writes a store holding change 1 of "d" ("old"), then runs
// stmts on it to make it what an older schema wrote, and returns its path.
func olderStore(t *testing.T, stmts ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path)
	if err := s.Append(context.Background(), "d", []store.Change{change(1, 1, "old")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return path
}

// migrated checks that s is at the current schema version.
func migrated(t *testing.T, s *Store) {
	t.Helper()
	var v int
	if err := s.db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion {
		t.Fatalf("user_version %d, %v", v, err)
	}
}

// A data folder written before origins were recorded (schema 1) opens,
// keeps its changes, and records origins from then on.
func TestMigrateSchema1(t *testing.T) {
	ctx := context.Background()
	path := olderStore(t, "DROP TABLE deletions", "DROP TABLE origins", "PRAGMA user_version = 1")
	s := open(t, path)
	defer s.Close()
	cs, err := s.Changes(ctx, "d", nil)
	if err != nil || len(cs) != 1 || string(cs[0].Bytes) != "old" {
		t.Fatalf("after migrating: %v, %v", cs, err)
	}
	if o, err := s.Origins(ctx, "d"); err != nil || len(o) != 0 {
		t.Fatalf("origins of old changes: %v, %v", o, err)
	}
	c := change(1, 2, "new")
	c.Origin = "ann"
	if err := s.Append(ctx, "d", []store.Change{c}); err != nil {
		t.Fatal(err)
	}
	if o, err := s.Origins(ctx, "d"); err != nil || len(o) != 1 || o[0].Subject != "ann" || o[0].First != 2 {
		t.Fatalf("origins after migrating: %v, %v", o, err)
	}
	migrated(t, s)
}

// A data folder written before deletions were counted (schema 2) opens,
// keeps its documents, and counts deletions from then on.
func TestMigrateSchema2(t *testing.T) {
	ctx := context.Background()
	path := olderStore(t, "DROP TABLE deletions", "PRAGMA user_version = 2")
	s := open(t, path)
	cs, err := s.Changes(ctx, "d", nil)
	if err != nil || len(cs) != 1 || string(cs[0].Bytes) != "old" {
		t.Fatalf("after migrating: %v, %v", cs, err)
	}
	if n, err := s.Deletions(ctx, "d"); err != nil || n != 0 {
		t.Fatalf("Deletions after migrating: %d, %v", n, err)
	}
	if err := s.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	migrated(t, s)
	s.Close()
	s = open(t, path)
	defer s.Close()
	if n, err := s.Deletions(ctx, "d"); err != nil || n != 1 {
		t.Fatalf("Deletions after a Delete and a reopen: %d, %v", n, err)
	}
}

// A damaged deletion count is reported, naming the document, by
// Deletions and by Delete, which must not count on from a wrong number
// (a replica would write a document's changes under an actor it used
// before); other documents are not affected.
func TestDamagedDeletionCount(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path)
	for _, doc := range []string{"d", "e"} {
		if err := s.Append(ctx, doc, []store.Change{change(1, 1, "x")}); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, doc); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Append(ctx, "d", []store.Change{change(1, 1, "again")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec("UPDATE deletions SET count = 0 WHERE name = ?", []byte("d")); err != nil {
		t.Fatal(err)
	}
	var ce *store.CorruptError
	if _, err := s.Deletions(ctx, "d"); !errors.As(err, &ce) || ce.Doc != "d" {
		t.Fatalf("Deletions of a damaged count: %v, want a CorruptError for d", err)
	}
	if err := s.Delete(ctx, "d"); !errors.As(err, &ce) || ce.Doc != "d" {
		t.Fatalf("Delete with a damaged count: %v, want a CorruptError for d", err)
	}
	if cs, err := s.Changes(ctx, "d", nil); err != nil || len(cs) != 1 {
		t.Fatalf("the refused Delete removed something: %v, %v", cs, err)
	}
	if n, err := s.Deletions(ctx, "e"); err != nil || n != 1 {
		t.Fatalf("Deletions of another document: %d, %v", n, err)
	}
	s.Close()
}
