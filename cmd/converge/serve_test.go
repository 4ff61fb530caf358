package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/converge-sync/converge/internal/logbuf"
)

// logBuffer collects a server's log lines, safe for concurrent use.
type logBuffer = logbuf.Buffer

// serveT runs `converge serve` in-process on a free port until the test
// ends, and returns its address and log.
func serveT(t *testing.T, args ...string) (string, *logBuffer, func() error) {
	t.Helper()
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), logs) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Error("converge serve did not shut down")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })

	listening := regexp.MustCompile(`msg="converge server listening" addr=(\S+) data=(\S+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The access-control line follows the listening line: wait for
		// both, so that tests may read either.
		if m := listening.FindStringSubmatch(logs.String()); m != nil && strings.Contains(logs.String(), "access control") {
			return m[1], logs, stop
		}
		select {
		case err := <-done:
			t.Fatalf("serve returned %v; log:\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line in the log:\n%s", logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServe(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	addr, logs, stop := serveT(t, "--data", data)
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("the log shows port 0: %s", addr)
	}
	if !strings.Contains(logs.String(), "data="+data) || !strings.Contains(logs.String(), "no access control") {
		t.Errorf("startup log:\n%s", logs)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if !strings.Contains(logs.String(), `msg="shut down"`) {
		t.Errorf("no shutdown line in the log:\n%s", logs)
	}
}

func TestServeJSONLogs(t *testing.T) {
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, []string{"--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log-format", "json", "--log-level", "warn"}, logs)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "no access control") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if rec["level"] == "INFO" {
			t.Errorf("info line at --log-level warn: %q", l)
		}
	}
	if len(lines) == 0 || !strings.Contains(logs.String(), "no access control") {
		t.Fatalf("log:\n%s", logs)
	}
}

func TestServeUsage(t *testing.T) {
	out, errs, code := cli(t, "serve", "-h")
	if code != 0 || !strings.Contains(errs, "--max-docs-in-memory") && !strings.Contains(errs, "-max-docs-in-memory") {
		t.Fatalf("serve -h: exit %d: %s%s", code, out, errs)
	}
	for _, args := range [][]string{
		{"serve", "--log-format", "xml"},
		{"serve", "--log-level", "loud"},
		{"serve", "--max-docs-in-memory", "0"},
		{"serve", "extra"},
	} {
		if _, errs, code := cli(t, args...); code != 2 {
			t.Errorf("%v: exit %d: %s", args, code, errs)
		}
	}
}

// A port already taken is reported with what to do about it.
func TestServePortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := filepath.Join(t.TempDir(), "data")
	_, errs, code := cli(t, "serve", "--data", data, "--addr", ln.Addr().String())
	if code != 1 || !strings.Contains(errs, "address already in use") || !strings.Contains(errs, "give another --addr") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("exit %d: %q", code, errs)
	}
	if _, err := os.Stat(data); err == nil {
		t.Fatal("a start that failed on its address made the data folder")
	}
}
