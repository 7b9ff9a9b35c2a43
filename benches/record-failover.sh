#!/usr/bin/env bash
# A leader failover under open-loop load: a 3-node paxoskv cluster
# (durability sync) at 10k ops/s, its shard-0 leader killed with SIGKILL
# 3 s into the measured window. The timeline marks the connections lost and
# the new leader (polled from INFO replication); connections to the dead
# node keep failing, as they would for a real client. Writes results/failover/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/failover
scratch=$(mktemp -d /var/tmp/paxoskv-failover.XXXXXX)
data=$scratch/cluster
log=$scratch/cluster.log
cargo build --release -p paxoskv --bin paxoskv
cargo build --release -p loadgen
rm -rf "$out"
./target/release/paxoskv cluster --fresh --data-dir "$data" --base-port 7960 >"$log" 2>&1 &
cluster=$!
trap 'kill $cluster 2>/dev/null; wait $cluster 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 100); do grep -q '^ready:' "$log" && break; sleep 0.2; done
leader=$(sed -n 's/^  shard 0: leader node \([0-9]*\)$/\1/p' "$log")
pid=$(pgrep -f "paxoskv server --config $data/cluster.toml --node-id $leader")
warmup_s=1
(sleep $((warmup_s + 3)); kill -9 "$pid") &
./target/release/loadgen run --target resp://127.0.0.1:7961,127.0.0.1:7962,127.0.0.1:7963 --rate 10000 \
    --read-ratio 0.5 --connections 16 --warmup-s $warmup_s --duration-s 8 --out "$out" \
    --label system=paxoskv --label durability=sync --label nodes=3 --label "fault=SIGKILL of leader node $leader at ~3 s"
