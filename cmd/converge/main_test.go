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
