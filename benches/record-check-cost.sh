#!/usr/bin/env bash
# What does `--check linearizable` cost the load generator? Against one
# redis-server (no persistence: the fastest target here), closed loop
# (connections x pipeline outstanding), half reads, side by side: loadgen
# without and with --check, interleaved, REPEATS times. The recorder keeps a
# 48-byte entry per operation and SETs write unique values; the goal is a
# throughput ratio (with / without) of at least 0.9. The check itself runs
# after the measured window and is not in the figure.
#
# Writes results/check-cost/summary.json and the run bundles beside it.
#
#   benches/record-check-cost.sh
#   REPEATS=5 PIPELINE=8 benches/record-check-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${REPEATS:-3}
connections=${CONNECTIONS:-16}
pipeline=${PIPELINE:-16}
duration_s=${DURATION_S:-5}
port=${PORT:-6393}
command -v redis-server >/dev/null || { echo "missing redis-server: run benches/install-deps.sh" >&2; exit 2; }
cargo build --release --quiet -p loadgen
out=results/check-cost
rm -rf "$out" && mkdir -p "$out"
redis-server --port "$port" --save '' --appendonly no --daemonize yes --pidfile "/tmp/redis-$port.pid" >/dev/null
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
flags=(--target "resp://127.0.0.1:$port" --closed --connections "$connections" --pipeline "$pipeline"
    --read-ratio 0.5 --keys 100000 --warmup-s 1 --duration-s "$duration_s")
for r in $(seq "$repeats"); do
    target/release/loadgen run "${flags[@]}" --out "$out/plain-r$r" >/dev/null
    target/release/loadgen run "${flags[@]}" --check linearizable --out "$out/checked-r$r" >/dev/null
done
python3 - "$out" "$repeats" "$connections" "$pipeline" <<'PY'
import json, statistics, subprocess, sys
out, repeats, connections, pipeline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def run(name):
    return json.load(open(f"{out}/{name}/bundle.json"))["runs"][0]
pairs = []
for r in range(1, repeats + 1):
    plain, checked = run(f"plain-r{r}"), run(f"checked-r{r}")
    pairs.append((plain["achieved_ops_s"], checked["achieved_ops_s"], checked["check"]))
ratios = [c / p for p, c, _ in pairs]
summary = {
    "command": "benches/record-check-cost.sh",
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "connections": connections, "pipeline": pipeline, "repeats": repeats,
    "plain_ops_s": [p for p, _, _ in pairs], "checked_ops_s": [c for _, c, _ in pairs],
    "ratios": ratios, "median_ratio": statistics.median(ratios),
    "verdicts": [chk["verdict"] for _, _, chk in pairs],
    "check_ms": [chk["check_ms"] for _, _, chk in pairs],
    "operations": [chk["operations"] for _, _, chk in pairs],
}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
for (p, c, chk), ratio in zip(pairs, ratios):
    print(f"plain {p:,.0f} ops/s, checked {c:,.0f} ops/s: {ratio:.3f} ({chk['verdict']}, {chk['operations']} ops checked in {chk['check_ms']} ms)")
print(f"median ratio {summary['median_ratio']:.3f} (goal >= 0.9)")
PY
