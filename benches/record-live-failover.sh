#!/usr/bin/env bash
# A live failover, traced (issue 12): a local 3-node cluster with protocol
# tracing on (1 in 16 peer messages as arrows), under `loadgen run
# --trace-dir` (1000 ops/s, half reads); its leader is killed (SIGKILL)
# 4 s into the measured window and not restarted. Keeps in
# results/viz/live-failover/: the loadgen bundle (its timeline marks the
# election from the nodes' trace files, at their wall-clock times), the
# nodes' trace files, the merged diagram (`paxoskv viz`) and its
# screenshot (through benches/viz-check.sh, zoomed on the failover).
#
#   benches/record-live-failover.sh
#
# Ports 17950-17999 (peers 18950+, metrics 19950+). Needs Debian's chromium
# for the screenshot (installs nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --workspace
out=results/viz/live-failover
rm -rf "$out" && mkdir -p "$out"
work=$(mktemp -d /tmp/live-failover.XXXXXX)
base=17950
target/release/paxoskv cluster --base-port $base --data-dir "$work/data" --fresh --run-seconds 120 \
    --trace-dir "$out/trace" --trace-messages-every 16 >"$out/cluster.log" 2>&1 &
cluster=$!
trap 'kill $cluster 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
for i in 1 2 3; do
    until redis-cli -p $((base + i)) PING 2>/dev/null | grep -q PONG; do sleep 0.1; done
done
leader=""
until [[ -n $leader ]]; do
    for i in 1 2 3; do
        redis-cli -p $((base + i)) INFO replication | grep -q "shard0_role:leader" && leader=$i
    done
done
(
    sleep 5 # 1 s warm-up + 4 s into the window
    pkill -9 -f "server --config $work/data/cluster.toml --node-id $leader"
    echo "killed node $leader (the leader) at $(date +%s.%N)" >>"$out/cluster.log"
) &
target/release/loadgen run --target "resp://127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))" \
    --rate 1000 --read-ratio 0.5 --connections 6 --warmup-s 1 --duration-s 10 --timeout-ms 3000 \
    --trace-dir "$out/trace" --label system=paxoskv --out "$out/loadgen" | tail -n 3
wait %2 2>/dev/null || true
kill $cluster; wait $cluster 2>/dev/null || true
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
run = json.load(open(f"{out}/loadgen/bundle.json"))["runs"][0]
for e in run["events"]:
    print(f"  t = {e['t_s']:.4f} s  {e['what']}")
PY
PAXOSKV=target/release/paxoskv VIEW_B="#kinds=accept,accepted" benches/viz-check.sh "$out"/trace/*.jsonl \
    --out-dir "$work/check" | tail -n 1
cp "$work/check/page.html" "$out/cluster.html"
cp "$work/check/all.png" "$out/cluster.png"
echo "written: $out"
