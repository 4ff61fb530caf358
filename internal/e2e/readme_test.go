package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The README's quick start, run as it is written (on a free port instead of
// 7878), so that it stays true.
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- quickstart:begin")
	block, _, ok2 := strings.Cut(block, "<!-- quickstart:end -->")
	if !ok || !ok2 {
		t.Fatal("README has no quickstart block")
	}
	_, script, _ := strings.Cut(block, "```sh\n")
	script, _, _ = strings.Cut(script, "```")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().String()
	ln.Close()
	script = strings.ReplaceAll(script, "converge serve --data", "converge serve --addr "+port+" --data")
	script = strings.ReplaceAll(script, "127.0.0.1:7878", port)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script+"\nwait\n")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("quick start failed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var gets []string
	for _, l := range lines {
		if strings.HasPrefix(l, `{"dest"`) {
			gets = append(gets, l)
		}
	}
	// doc get twice, then the server's copy after the resolution.
	if len(gets) != 3 || gets[0] != gets[1] || !strings.Contains(gets[0], `"notes":"Bring boots. Pack light."`) {
		t.Fatalf("replicas did not converge:\n%s", out.String())
	}
	if gets[2] != `{"dest":"Lisbon","notes":"Bring boots. Pack light."}` {
		t.Fatalf("the server's copy after resolving: %s", gets[2])
	}
	o := out.String()
	if !strings.Contains(o, `"path":"/dest"`) || !strings.Contains(o, "Oslo") || !strings.Contains(o, "\n[]\n") {
		t.Fatalf("conflict not shown then resolved:\n%s", o)
	}
	if !strings.Contains(errb.String(), "converge server listening") {
		t.Fatalf("server log:\n%s", errb.String())
	}
}
