package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/causal"
)

// docCommand is one `converge doc` subcommand.
type docCommand struct {
	name, args, summary string
	min, max            int
	run                 func(ctx context.Context, c *docCall) error
}

// docCall is one run of a doc subcommand: its replica, arguments and
// output.
type docCall struct {
	r      *converge.Replica
	dir    string // the replica folder, for messages
	args   []string
	stdout io.Writer
	json   bool
	at     string // --at: read the document as it was just after this change
}

func docCommands() []docCommand {
	return []docCommand{
		{"get", "DOC [PATH]", "print the document, or the value at PATH, as JSON (--at CHANGE: as it was then)", 1, 2, docGet},
		{"set", "DOC PATH JSON", "set a value (objects and arrays become maps and lists)", 3, 3, docSet},
		{"del", "DOC PATH", "delete a map key or list element", 2, 2, docDel},
		{"text", "DOC PATH [INITIAL]", "create a collaborative text", 2, 3, docText},
		{"splice", "DOC PATH POS DEL TEXT", "delete DEL characters at POS of a text and insert TEXT", 5, 5, docSplice},
		{"incr", "DOC PATH N", "add N to a counter (created at N if absent: create it on one replica before others add, or concurrent creations are rival counters)", 3, 3, docIncr},
		{"conflicts", "DOC [PATH]", "unresolved conflicts (or every value at PATH), as JSON (--at CHANGE: then)", 1, 2, docConflicts},
		{"resolve", "DOC PATH OP", "end the conflict at PATH, keeping the value written by OP", 3, 3, docResolve},
		{"history", "DOC", "the document's changes: time, change (ACTOR/SEQ, for --at), ops, message", 1, 1, docHistory},
		{"origins", "DOC", "who sent the document's changes (a server's audit record)", 1, 1, docOrigins},
		{"ls", "", "list the replica's documents", 0, 0, docList},
	}
}

// readOnly reports whether the command only reads the replica, and so
// needs one to be there already.
func (c docCommand) readOnly() bool {
	switch c.name {
	case "get", "conflicts", "history", "origins", "ls":
		return true
	}
	return false
}

func runDoc(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdout, "Usage: converge doc COMMAND --replica DIR ARGS\n\nPaths are JSON Pointers (\"/todo/0/title\"); values are JSON literals.\n\nCommands:")
		for _, c := range docCommands() {
			fmt.Fprintf(stdout, "  %-10s %-22s %s\n", c.name, c.args, c.summary)
		}
		if len(args) == 0 {
			return fmt.Errorf("%w: name a doc command", errUsage)
		}
		return nil
	}
	for _, c := range docCommands() {
		if c.name == args[0] {
			return inSubcommand("doc "+c.name, runDocCommand(c, args[1:], stdout, stderr))
		}
	}
	if strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: name the doc command before %s: converge doc get %s ... (converge doc help lists the commands)", errUsage, args[0], args[0])
	}
	return fmt.Errorf("%w: unknown doc command %q (converge doc help lists the commands)", errUsage, args[0])
}

func runDocCommand(c docCommand, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("doc "+c.name, "doc "+c.name+" --replica DIR "+c.args+"\n\n"+strings.ToUpper(c.summary[:1])+c.summary[1:]+".", stderr)
	dir := replicaFlag(fs)
	asJSON := fs.Bool("json", false, "print as JSON (history, origins, ls; the others print JSON anyway, or nothing)")
	at := new(string)
	if c.readsPast() {
		fs.StringVar(at, "at", "", "read the document as it was just after `CHANGE`: ACTOR/SEQ as `converge doc history` prints it (ACTOR: the actor ID or a unique start of it)")
	}
	open := openCommand
	if c.readOnly() {
		open = openExisting
	}
	r, pos, err := open(fs, dir, args, c.min, c.max)
	if err != nil {
		return err
	}
	call := &docCall{r: r, dir: *dir, args: pos, stdout: stdout, json: *asJSON, at: *at}
	ctx := context.Background()
	if c.readOnly() && c.name != "ls" {
		// Reading a document that is not there would show it empty, as
		// if it were: say so instead.
		err = mustHaveDoc(ctx, r, *dir, pos[0])
	}
	if err == nil {
		err = c.run(ctx, call)
	}
	return errors.Join(err, r.Close())
}

// readsPast reports whether the command takes --at.
func (c docCommand) readsPast() bool {
	switch c.name {
	case "get", "conflicts", "history":
		return true
	}
	return false
}

// mustHaveDoc says that the replica has no document id, if it has none.
func mustHaveDoc(ctx context.Context, r *converge.Replica, dir, id string) error {
	docs, err := r.Docs(ctx)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if d.ID == id {
			return nil
		}
	}
	return fmt.Errorf("no document %q in %s (converge doc ls lists them)", id, dir)
}

func (c *docCall) doc(ctx context.Context) (*converge.Doc, error) { return c.r.Doc(ctx, c.args[0]) }

// reader is what the read commands read: the document now, or a past
// version of it.
type reader interface {
	JSON(pointer string) ([]byte, error)
	Conflicts() []converge.Conflict
	ConflictsAt(pointer string) ([]converge.Candidate, error)
	History() []converge.ChangeInfo
}

// reader returns the document, or with --at, the document as it was then.
func (c *docCall) reader(ctx context.Context) (reader, error) {
	d, err := c.doc(ctx)
	if err != nil || c.at == "" {
		return d, err
	}
	id, err := parseChangeArg(d, c.at)
	if err != nil {
		return nil, err
	}
	return d.AtChange(id)
}

// parseChangeArg reads ACTOR/SEQ, where ACTOR is an actor of the document
// or the start of one (as `doc history` prints it, 8 digits).
func parseChangeArg(d *converge.Doc, s string) (causal.ChangeID, error) {
	prefix, seqText, ok := strings.Cut(s, "/")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if !ok || prefix == "" || err != nil || seq == 0 {
		return causal.ChangeID{}, fmt.Errorf("%w: --at %q: want a change as ACTOR/SEQ, as `converge doc history` prints it (such as 3f2a9c1e/4)", errUsage, s)
	}
	prefix = strings.ToLower(prefix)
	var found []causal.ActorID
	for _, a := range d.Version().Actors() {
		if strings.HasPrefix(a.String(), prefix) {
			found = append(found, a)
		}
	}
	switch len(found) {
	case 0:
		return causal.ChangeID{}, fmt.Errorf("--at %s: no change of document %q was made by an actor whose ID starts %s (converge doc history lists the changes)", s, d.ID(), prefix)
	case 1:
		return causal.ChangeID{Actor: found[0], Seq: seq}, nil
	}
	return causal.ChangeID{}, fmt.Errorf("--at %s: %d actors of document %q have IDs that start %s: give more of the ID", s, len(found), d.ID(), prefix)
}

func (c *docCall) change(ctx context.Context, fn func(tx *converge.Txn) error) error {
	d, err := c.doc(ctx)
	if err != nil {
		return err
	}
	return d.Change(ctx, fn)
}

func (c *docCall) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", b)
	return err
}

func (c *docCall) pathArg(i int) string {
	if i < len(c.args) {
		return c.args[i]
	}
	return ""
}

func docGet(ctx context.Context, c *docCall) error {
	d, err := c.reader(ctx)
	if err != nil {
		return err
	}
	b, err := d.JSON(c.pathArg(1))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", b)
	return err
}

// parseJSON reads a JSON literal, keeping numbers exact (integers stay
// int64, not float64).
func parseJSON(s string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %q is not a JSON value (strings need quotes: '\"text\"')", errUsage, s)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: %q holds more than one JSON value", errUsage, s)
	}
	return v, nil
}

func docSet(ctx context.Context, c *docCall) error {
	v, err := parseJSON(c.args[2])
	if err != nil {
		return err
	}
	return c.change(ctx, func(tx *converge.Txn) error { return tx.Set(c.args[1], v) })
}

func docDel(ctx context.Context, c *docCall) error {
	return c.change(ctx, func(tx *converge.Txn) error { return tx.Delete(c.args[1]) })
}

func docText(ctx context.Context, c *docCall) error {
	return c.change(ctx, func(tx *converge.Txn) error { return tx.Set(c.args[1], converge.Text(c.pathArg(2))) })
}

func intArg(name, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %s must be a whole number, not %q", errUsage, name, s)
	}
	return n, nil
}

func docSplice(ctx context.Context, c *docCall) error {
	pos, err := intArg("POS", c.args[2])
	if err != nil {
		return err
	}
	del, err := intArg("DEL", c.args[3])
	if err != nil {
		return err
	}
	return c.change(ctx, func(tx *converge.Txn) error { return tx.Splice(c.args[1], pos, del, c.args[4]) })
}

func docIncr(ctx context.Context, c *docCall) error {
	n, err := strconv.ParseInt(c.args[2], 10, 64)
	if err != nil {
		return fmt.Errorf("%w: N must be a whole number, not %q", errUsage, c.args[2])
	}
	return c.change(ctx, func(tx *converge.Txn) error { return tx.Increment(c.args[1], n) })
}

func docConflicts(ctx context.Context, c *docCall) error {
	d, err := c.reader(ctx)
	if err != nil {
		return err
	}
	if len(c.args) == 2 {
		cands, err := d.ConflictsAt(c.args[1])
		if err != nil {
			return err
		}
		return c.printJSON(cands)
	}
	conflicts := d.Conflicts()
	if conflicts == nil {
		conflicts = []converge.Conflict{}
	}
	return c.printJSON(conflicts)
}

func docResolve(ctx context.Context, c *docCall) error {
	op, err := causal.ParseOpID(c.args[2])
	if err != nil {
		return fmt.Errorf("%w: OP must be an op ID as `doc conflicts` prints it (\"op\"): %v", errUsage, err)
	}
	return c.change(ctx, func(tx *converge.Txn) error { return tx.Resolve(c.args[1], op) })
}

func docHistory(ctx context.Context, c *docCall) error {
	d, err := c.reader(ctx)
	if err != nil {
		return err
	}
	h := d.History()
	if c.json {
		if h == nil {
			h = []converge.ChangeInfo{}
		}
		return c.printJSON(h)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tCHANGE\tOPS\tMESSAGE")
	for _, ch := range h {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", time.UnixMilli(ch.Time).Format(time.RFC3339), ch.ID, ch.Ops, ch.Message)
	}
	return tw.Flush()
}

// docOrigins prints the subjects a server recorded for the changes it
// received (store.Origins): read it from a server's data folder.
func docOrigins(ctx context.Context, c *docCall) error {
	runs, err := c.r.Store().Origins(ctx, c.args[0])
	if err != nil {
		return err
	}
	if c.json {
		type run struct {
			Actor   string `json:"actor"`
			First   uint64 `json:"first"`
			Last    uint64 `json:"last"`
			Subject string `json:"subject"`
		}
		out := make([]run, len(runs))
		for i, o := range runs {
			out[i] = run{o.Actor.String(), o.First, o.Last, o.Subject}
		}
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTOR\tSEQ\tSUBJECT")
	for _, o := range runs {
		fmt.Fprintf(tw, "%s\t%d-%d\t%s\n", o.Actor.Short(), o.First, o.Last, strconv.Quote(o.Subject))
	}
	return tw.Flush()
}

func docList(ctx context.Context, c *docCall) error {
	docs, err := c.r.Docs(ctx)
	if err != nil {
		return err
	}
	if c.json {
		type info struct {
			ID         string `json:"id"`
			Changes    uint64 `json:"changes"`
			LogChanges int    `json:"logChanges"` // not yet folded into the saved copy
			Bytes      int64  `json:"bytes"`
		}
		out := []info{}
		for _, d := range docs {
			out = append(out, info{d.ID, d.Version.Total(), d.LogChanges, d.Bytes})
		}
		return c.printJSON(out)
	}
	for _, d := range docs {
		fmt.Fprintln(c.stdout, d.ID)
	}
	return nil
}

func runExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", "export --replica DIR DOC FILE\n\nWrites the document with its full history to FILE (- for standard output), in the portable binary format.", stderr)
	dir := replicaFlag(fs)
	r, pos, err := openExisting(fs, dir, args, 2, 2)
	if err != nil {
		return err
	}
	defer r.Close()
	ctx := context.Background()
	if err := mustHaveDoc(ctx, r, *dir, pos[0]); err != nil {
		return err
	}
	d, err := r.Doc(ctx, pos[0])
	if err != nil {
		return err
	}
	b, err := d.Save()
	if err != nil {
		return err
	}
	if pos[1] == "-" {
		_, err := stdout.Write(b)
		return err
	}
	return writeFileAtomic(pos[1], b)
}

// writeFileAtomic writes b to path through a temporary file beside it, so
// that path holds either its old content or all of b. A failure leaves no
// temporary file behind and names path, not the temporary file.
func writeFileAtomic(path string, b []byte) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a folder: name the file to write", path)
	}
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, b, 0o644)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		var le *os.LinkError
		if errors.As(err, &le) {
			err = le.Err
		}
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func runImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import", "import --replica DIR [--doc ID] FILE...\n\nMerges documents saved by `converge export` into the replica. The document ID\nis --doc, or the file's name without its extension.", stderr)
	dir := replicaFlag(fs)
	docID := fs.String("doc", "", "document ID to import into (only with one FILE)")
	r, pos, err := openCommand(fs, dir, args, 1, -1)
	if err != nil {
		return err
	}
	defer r.Close()
	if *docID != "" && len(pos) > 1 {
		return fmt.Errorf("%w: --doc names one document; give one FILE", errUsage)
	}
	ctx := context.Background()
	progress := isTerminal(stderr) && len(pos) > 1
	for i, f := range pos {
		id := *docID
		if id == "" {
			id = docIDFromFile(f)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := r.Import(ctx, id, b); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if progress {
			fmt.Fprintf(stderr, "\rimported %d/%d", i+1, len(pos))
		}
	}
	if progress {
		fmt.Fprintln(stderr)
	}
	return nil
}
