package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTrace writes a small sequential trace, gzipped as the real ones are.
func writeTrace(t *testing.T, dir, name, body string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(body))
	zw.Close()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBenchTraceFlagsAfterFiles(t *testing.T) {
	dir := t.TempDir()
	f := writeTrace(t, dir, "tiny.json.gz", `{"endContent":"hey","txns":[{"patches":[[0,0,"hy"]]},{"patches":[[1,0,"e"]]}]}`)
	out, errs, code := cli(t, "bench", "trace", f, "--runs", "1", "--warmup", "0")
	if code != 0 || !strings.Contains(out, `"trace":"tiny"`) || !strings.Contains(out, `"ok":true`) || strings.Count(out, "\n") != 1 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// A damaged trace file is refused in one line naming it, with status 1.
func TestBenchTraceBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := writeTrace(t, dir, "good.json.gz", `{"endContent":"a","txns":[{"patches":[[0,0,"a"]]}]}`)
	b, _ := os.ReadFile(good)
	truncated := filepath.Join(dir, "truncated.json.gz")
	os.WriteFile(truncated, b[:len(b)/2], 0o644)
	cases := map[string]string{
		truncated: "truncated.json.gz",
		writeTrace(t, dir, "badjson.json.gz", `{"endContent":`):                                        "badjson",
		writeTrace(t, dir, "negative.json.gz", `{"endContent":"a","txns":[{"patches":[[0,-1,"a"]]}]}`): "negative",
		filepath.Join(dir, "missing.json.gz"):                                                          "missing.json.gz",
	}
	for f, name := range cases {
		_, errs, code := cli(t, "bench", "trace", "--runs", "1", f)
		if code != 1 || !strings.HasPrefix(errs, "converge bench trace: ") || !strings.Contains(errs, name) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q", filepath.Base(f), code, errs)
		}
	}
}

// --cpuprofile writes a profile of the replays (a gzipped protobuf) that
// go tool pprof reads; a path it cannot create is refused before replaying.
func TestBenchTraceCPUProfile(t *testing.T) {
	dir := t.TempDir()
	f := writeTrace(t, dir, "tiny.json.gz", `{"endContent":"hey","txns":[{"patches":[[0,0,"hy"]]},{"patches":[[1,0,"e"]]}]}`)
	prof := filepath.Join(dir, "cpu.pprof")
	out, errs, code := cli(t, "bench", "trace", "--runs", "1", "--cpuprofile", prof, f)
	if code != 0 || !strings.Contains(out, `"ok":true`) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	b, err := os.ReadFile(prof)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile %d bytes (%v), want a gzipped profile", len(b), err)
	}
	out, errs, code = cli(t, "bench", "trace", "--cpuprofile", filepath.Join(dir, "no", "such", "dir", "cpu.pprof"), f)
	if code == 0 || out != "" || !strings.Contains(errs, "--cpuprofile") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want a refusal naming --cpuprofile", code, out, errs)
	}
}
