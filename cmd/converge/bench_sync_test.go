package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestBenchSync(t *testing.T) {
	addr, _, _ := serveT(t, "--data", filepath.Join(t.TempDir(), "data"))
	var out, errb bytes.Buffer
	args := []string{"bench", "sync", "--server", "http://" + addr, "--clients", "6", "--docs", "2",
		"--rate", "10", "--duration", "500ms"}
	if runtime.GOOS == "linux" {
		args = append(args, "--server-pid", itoa(os.Getpid())) // the server runs in this process
	}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("not one JSON line: %v\n%s", err, out.String())
	}
	for _, k := range []string{"p50Ms", "p99Ms", "maxMs", "deliveredPerS", "errors", "lost", "clients", "docs", "rate", "duration"} {
		if _, ok := res[k]; !ok {
			t.Errorf("no %q in %s", k, out.String())
		}
	}
	if res["errors"].(float64) != 0 || res["lost"].(float64) != 0 || res["deliveries"].(float64) == 0 {
		t.Errorf("errors, losses or no deliveries: %s", out.String())
	}
	if runtime.GOOS == "linux" && res["serverPeakRssMB"] == nil {
		t.Errorf("--server-pid given, no server memory: %s", out.String())
	}
	if errb.Len() != 0 {
		t.Errorf("progress on a stderr that is not a terminal: %q", errb.String())
	}
}

func TestBenchSyncUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "sync", "--clients", "3"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--server") {
		t.Fatalf("no --server: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"bench", "sync", "--server", "http://127.0.0.1:1", "--clients", "2", "--docs", "3"}, &out, &errb); code != 2 {
		t.Fatalf("more documents than clients: exit %d, %q", code, errb.String())
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
