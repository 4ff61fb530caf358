package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDemoConvergesAndResolves(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"demo"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	for _, want := range []string{
		"a conflict appeared",
		"the conflict is resolved",
		"conflicts left: alice 0, bob 0",
		`"notes":"Bring sunscreen. Pack light. Hiking boots!","votes":2`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}

func TestUnknownCommandAndHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := run(nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "demo") {
		t.Fatalf("help: exit %d, %q", code, out.String())
	}
}

// Every command answers -h and --help with its usage and exit status 0,
// never with an error.
func TestEveryCommandHelp(t *testing.T) {
	for _, c := range commands() {
		for _, h := range []string{"-h", "--help"} {
			var out, errb bytes.Buffer
			code := run([]string{c.name, h}, &out, &errb)
			all := out.String() + errb.String()
			if code != 0 || !strings.Contains(all, "Usage: converge "+c.name) || strings.Contains(all, "help requested") {
				t.Errorf("converge %s %s: exit %d, output %q", c.name, h, code, all)
			}
		}
		var out, errb bytes.Buffer
		if code := run([]string{"help", c.name}, &out, &errb); code != 0 || !strings.Contains(out.String()+errb.String(), "Usage: converge "+c.name) {
			t.Errorf("converge help %s: exit %d, output %q", c.name, code, out.String()+errb.String())
		}
	}
}

// A mistake in a command's words gets a short answer: one line for a flag
// (naming it and where the options are listed), the command's form and one
// line for a wrong number of arguments; never the whole usage, and never
// the same message twice.
func TestUsageMistakesAreShort(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args  []string
		lines int
		want  []string
	}{
		{[]string{"doc", "get", "--replica", dir, "d", "--bogus"}, 1, []string{"-bogus", "converge doc get -h"}},
		{[]string{"serve", "--addr"}, 1, []string{"flag needs an argument: -addr", "converge serve -h"}},
		{[]string{"token", "issue", "--ttl", "5"}, 1, []string{`invalid value "5" for flag -ttl: want a duration such as`}},
		{[]string{"serve", "--max-frame", "1.5"}, 1, []string{`invalid value "1.5" for flag -max-frame: want a whole number`}},
		{[]string{"bench", "sync", "--rate", "fast"}, 1, []string{`for flag -rate: want a number`}},
		{[]string{"serve", "--insecure-no-auth=maybe"}, 1, []string{`invalid boolean value "maybe" for -insecure-no-auth: want true or false`}},
		{[]string{"doc", "set", "--replica", dir, "d", "/x"}, 2, []string{"Usage: converge doc set --replica DIR DOC PATH JSON", "expected 3 arguments, got 2"}},
		{[]string{"doc", "text", "--replica", dir, "d", "/t", "hello", "world"}, 2, []string{`expected 2 to 3 arguments, got 4 (left over: "world")`}},
		{[]string{"import", "--replica", dir}, 2, []string{"expected at least 1 argument, got 0"}},
		{[]string{"serve", "extra"}, 3, []string{`expected 0 arguments, got 1 (left over: "extra")`}},
	}
	for _, c := range cases {
		_, errs, code := cli(t, c.args...)
		name := strings.Join(c.args, " ")
		if code != 2 {
			t.Errorf("converge %s: exit %d, want 2", name, code)
		}
		if n := strings.Count(errs, "\n"); n != c.lines {
			t.Errorf("converge %s: %d lines on stderr, want %d:\n%s", name, n, c.lines, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(errs, w) {
				t.Errorf("converge %s: stderr lacks %q:\n%s", name, w, errs)
			}
		}
		if strings.Contains(errs, "  -replica") || strings.Contains(errs, "  -addr") {
			t.Errorf("converge %s: the flags were listed for a mistake:\n%s", name, errs)
		}
	}
}

// An error names the subcommand it came from, and a flag put before the
// doc command is answered with where it goes.
func TestErrorsNameTheSubcommand(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"doc", "get", "--replica", dir, "d", "/nope"}, 1, "converge doc get: "},
		{[]string{"doc", "--replica", dir, "get", "d"}, 2, "converge doc: usage: name the doc command before --replica: converge doc get --replica ..."},
		{[]string{"token", "issue", "--sub", "a"}, 2, "converge token issue: usage: at least one --allow"},
		{[]string{"token", "frob"}, 2, `converge token: usage: unknown token command "frob"`},
		{[]string{"bench", "trace", "--runs", "0", "f"}, 2, "converge bench trace: usage: --runs"},
		{[]string{"sync", "--replica", dir, "--server", "127.0.0.1:7878"}, 1, `converge sync: server URL "127.0.0.1:7878" has no scheme`},
	}
	for _, c := range cases {
		_, errs, code := cli(t, c.args...)
		if code != c.code || !strings.HasPrefix(errs, c.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("converge %s: exit %d, stderr %q; want exit %d, one line starting %q", strings.Join(c.args, " "), code, errs, c.code, c.want)
		}
	}
	// converge token -h shows the options of token issue, the one token command.
	_, errs, code := cli(t, "token", "-h")
	if code != 0 || !strings.Contains(errs, "-secret-file") {
		t.Errorf("converge token -h: exit %d, %q", code, errs)
	}
}
