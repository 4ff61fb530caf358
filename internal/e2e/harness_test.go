package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/converge-sync/converge/internal/logbuf"
)

// bin is the converge binary, built once for the package's tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "converge-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "converge")
	build := exec.Command("go", "build", "-o", bin, "github.com/converge-sync/converge/cmd/converge")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building converge:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// converge runs the binary and returns its stdout; a non-zero exit fails
// the test.
func run(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, err := convergeErr(args...)
	if err != nil {
		t.Fatalf("converge %s: %v\n%s", strings.Join(args, " "), err, errs)
	}
	return out
}

func convergeErr(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// server is a running `converge serve`.
type server struct {
	t    *testing.T
	data string
	addr string // host:port it listens on
	cmd  *exec.Cmd
	logs *logBuffer
	done chan error
}

type logBuffer = logbuf.Buffer

var listenRE = regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)

// startServer runs `converge serve` on a free loopback port with data
// folder data (addr "" picks a port; a later restart passes the old one),
// and any extra flags.
func startServer(t *testing.T, data, addr string, extra ...string) *server {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s := &server{t: t, data: data, logs: &logBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(bin, append([]string{"serve", "--addr", addr, "--data", data}, extra...)...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.logs, line)
			if m := listenRE.FindStringSubmatch(line); m != nil && strings.Contains(line, "listen") {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { s.done <- s.cmd.Wait() }()
	select {
	case s.addr = <-found:
	case err := <-s.done:
		t.Fatalf("converge serve exited: %v\n%s", err, s.logs)
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("converge serve did not say where it listens:\n%s", s.logs)
	}
	t.Cleanup(func() { s.kill() })
	s.waitHealthy()
	s.waitLog("access control") // the line after the listening line
	return s
}

func (s *server) url() string { return "http://" + s.addr }

func (s *server) waitHealthy() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("server never healthy:\n%s", s.logs)
}

// waitLog waits until the server has logged a line containing want: lines
// reach the buffer through a pipe, a moment after the server wrote them.
func (s *server) waitLog(want string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.logs.String(), want) {
		if time.Now().After(deadline) {
			s.t.Fatalf("the server never logged %q:\n%s", want, s.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the server with SIGTERM and waits for it to exit cleanly.
func (s *server) stop() {
	s.t.Helper()
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Fatalf("server exited with %v after SIGTERM:\n%s", err, s.logs)
		}
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		s.t.Fatalf("server did not stop on SIGTERM:\n%s", s.logs)
	}
}

func (s *server) kill() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		<-s.done
	}
}

// getDoc is the server's GET /v1/docs/{id}.
func (s *server) getDoc(id string) (int, string) {
	s.t.Helper()
	resp, err := http.Get(s.url() + "/v1/docs/" + strings.ReplaceAll(id, "/", "%2F"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}
