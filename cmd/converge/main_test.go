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
	}
}
