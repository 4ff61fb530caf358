#!/usr/bin/env bash
# Refreshes cmd/converge/default.pgo: the CPU profile from which the Go
# compiler optimises the converge binary (profile-guided optimisation:
# `go build` uses a default.pgo in the main package's folder by itself).
#
# The profile is the binary's own work, in equal parts of time:
#   - a sync server (converge serve) under load: 1,000 WebSocket clients on
#     100 documents, 4 edits a second each (bench sync);
#   - the load's clients, which are sync clients (bench sync --cpuprofile);
#   - replaying, saving, loading and opening the editing traces (bench trace
#     --cpuprofile).
# Run it from anywhere, after a change that moves the hot code, with the
# traces folder as the argument (default ../shared/traces beside the
# repository). It takes about a minute and a half.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
traces="$(cd "${1:-$root/../shared/traces}" && pwd)"
port="${PGO_PORT:-17878}"
tmp="$(mktemp -d)"
server=""
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
cd "$root"

echo "building converge without a profile…"
go build -pgo=off -o "$tmp/converge" ./cmd/converge

echo "profiling a server and its clients under load (20 s)…"
"$tmp/converge" serve --addr "127.0.0.1:$port" --data "$tmp/data" --log-level warn \
	--max-conns-per-addr -1 --pprof "127.0.0.1:$((port + 1))" &
server=$!
sleep 1
go tool pprof -proto -seconds 20 "http://127.0.0.1:$((port + 1))/debug/pprof/profile" >"$tmp/serve.pprof" 2>/dev/null &
fetch=$!
"$tmp/converge" bench sync --server "http://127.0.0.1:$port" --clients 1000 --docs 100 --rate 4 \
	--duration 20s --drain 5s --cpuprofile "$tmp/client.pprof" >/dev/null
wait "$fetch"
kill "$server"
wait "$server" 2>/dev/null || true
server=""

echo "profiling trace replays, saves, loads and opens…"
"$tmp/converge" bench trace --runs 10 --cpuprofile "$tmp/trace.pprof" "$traces"/*.json.gz >/dev/null

go tool pprof -proto "$tmp/serve.pprof" "$tmp/client.pprof" "$tmp/trace.pprof" >cmd/converge/default.pgo
echo "wrote cmd/converge/default.pgo ($(wc -c <cmd/converge/default.pgo) bytes)"
