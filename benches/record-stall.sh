#!/usr/bin/env bash
# Why open loop: the same redis-server is stopped (SIGSTOP) for 1 s in the
# middle of two runs, one open-loop (a fixed schedule of arrivals; latency
# from each request's intended send time) and one closed-loop (each
# connection waits for a reply before sending the next). The open loop's
# p99.9 shows the stall; the closed loop's barely does, because it stops
# sending while the server is stopped (coordinated omission).
# Writes results/stall/{open,closed}/ and results/stall/stall.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
port=6393
out=results/stall
command -v redis-server >/dev/null || { echo "missing redis-server: run benches/install-deps.sh" >&2; exit 2; }
cargo build --release -p loadgen
rm -rf "$out"
mkdir -p "$out"
redis-server --port $port --save "" --appendonly no >/dev/null 2>&1 &
pid=$!
trap 'kill -CONT $pid 2>/dev/null; kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
common=(--target "resp://127.0.0.1:$port" --warmup-s 1 --duration-s 8 --read-ratio 0.5 --connections 16
        --stall-pid "$pid" --stall-at-s 3 --stall-ms 1000 --label system=redis --label durability=none)
./target/release/loadgen run "${common[@]}" --rate 20000 --out "$out/open"
./target/release/loadgen run "${common[@]}" --closed --pipeline 1 --out "$out/closed"
./target/release/loadgen stall-chart --open "$out/open" --closed "$out/closed" --out "$out"
