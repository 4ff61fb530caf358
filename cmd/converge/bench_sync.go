package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"time"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/bench/load"
)

const benchSyncSynopsis = `bench sync --server URL [--clients C] [--docs D] [--rate R] [--duration T] [--server-pid PID] [--cpuprofile FILE]

Loads a running sync server (converge serve, in another process) with C
WebSocket clients spread over D documents, each making R edits per second
(a character typed into a text and a time put in a map) for T, and measures
fan-out latency: from an edit being made to its arrival at every other
client of its document. Prints one JSON line:
  {"clients","docs","rate","duration","p50Ms","p90Ms","p99Ms","maxMs","meanMs",
   "edits","editsPerS","deliveredPerS","deliveries","expected","lost","errors",
   "connectS","sendLagP99Ms","clientCpuS",...}
deliveredPerS is edits per second that reached the other clients; lost
counts (edit, client) pairs that had not arrived 10 s (--drain) after the
editing stopped. With --server-pid, the server's CPU seconds over the run
(serverCpuS, and serverCpuSPerChange per delivered edit), its resident set
at the end and its peak (serverRssMB, serverPeakRssMB: the peak since the
server started, so start a fresh one) are read from /proc.
Progress goes to stderr when it is a terminal.`

// benchSyncResult is load.Result with what the OS says about the server.
type benchSyncResult struct {
	*load.Result
	ServerCPUS          *float64 `json:"serverCpuS,omitempty"`
	ServerCPUSPerChange *float64 `json:"serverCpuSPerChange,omitempty"`
	ServerRSSMB         *float64 `json:"serverRssMB,omitempty"`
	ServerPeakRSSMB     *float64 `json:"serverPeakRssMB,omitempty"`
}

func runBenchSync(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench sync", benchSyncSynopsis, stderr)
	srv := fs.String("server", "", "the server: http://host:port or its ws:// sync URL (required)")
	clients := fs.Int("clients", 1000, "WebSocket clients, one connection each")
	docs := fs.Int("docs", 100, "documents; client i edits document i mod docs")
	rate := fs.Float64("rate", 1, "edits per second made by each client")
	duration := fs.Duration("duration", 30*time.Second, "how long the clients edit")
	drain := fs.Duration("drain", 10*time.Second, "after the editing, how long to wait for edits still in flight")
	pid := fs.Int("server-pid", 0, "the server's process ID, to report its CPU time and memory (Linux)")
	prefix := fs.String("doc-prefix", "", "document ID prefix (default: load- and a random run ID)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load client (this process) to FILE, to see what the clients cost")
	if _, err := parseCommand(fs, args, 0, 0); err != nil {
		return err
	}
	if *srv == "" {
		return fmt.Errorf("%w: --server is required (e.g. http://127.0.0.1:7878)", errUsage)
	}
	url, err := converge.SyncURL(*srv)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *clients < 1 || *docs < 1 || *docs > *clients || *rate <= 0 || *duration <= 0 {
		return fmt.Errorf("%w: want clients ≥ docs ≥ 1, rate > 0 and duration > 0", errUsage)
	}
	if err := ensureFiles(*clients+64, stderr); err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// The load client shares the machine with the server it measures,
		// and its heap is small (tens of MB for a thousand clients): four
		// times less garbage collection leaves that CPU to the server.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	cfg := load.Config{URL: url, Clients: *clients, Docs: *docs, Rate: *rate, Duration: *duration,
		Drain: *drain, DocPrefix: *prefix}
	tty := isTerminal(stderr)
	if tty {
		fmt.Fprintf(stderr, "connecting %d clients to %s…\n", *clients, url)
		cfg.Progress = func(p load.Progress) {
			fmt.Fprintf(stderr, "\r%5.0fs  %8d edits  %10d deliveries  p99 %7.2f ms (last second)  %d errors ",
				p.Elapsed.Seconds(), p.Edits, p.Deliveries, float64(p.P99.Microseconds())/1000, p.Errors)
		}
	}
	var before load.ProcUsage
	if *pid > 0 {
		if before, err = load.Usage(*pid); err != nil {
			return fmt.Errorf("--server-pid %d: %w", *pid, err)
		}
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	res, err := load.Run(ctx, cfg)
	if tty {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return err
	}
	out := benchSyncResult{Result: res}
	if *pid > 0 {
		after, err := load.Usage(*pid)
		if err != nil {
			return fmt.Errorf("--server-pid %d: %w", *pid, err)
		}
		cpu := after.CPUS - before.CPUS
		rss, peak := mb(after.RSSBytes), mb(after.PeakBytes)
		out.ServerCPUS, out.ServerRSSMB, out.ServerPeakRSSMB = &cpu, &rss, &peak
		if res.DeliveredPerS > 0 {
			per := cpu / (res.DeliveredPerS * res.DurationS)
			out.ServerCPUSPerChange = &per
		}
	}
	if res.FirstError != "" && tty {
		fmt.Fprintf(stderr, "%d errors; the first: %s\n", res.Errors, res.FirstError)
	}
	return json.NewEncoder(stdout).Encode(out)
}

func mb(b int64) float64 { return float64(b*10/(1<<20)) / 10 }
