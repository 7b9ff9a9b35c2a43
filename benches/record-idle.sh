#!/usr/bin/env bash
# What an idle cluster costs: server CPU (user + system, every node process)
# of a local 3-node cluster that serves no request, over a measured window
# after it elected its leaders, for this build and optionally an older
# binary (--before BIN), interleaved, each run on a fresh cluster; next to an
# idle redis-server (its own timer, `hz 10`) as the reference.
#
#   benches/record-idle.sh [--before BIN] [--seconds N] [--repeats N] [--shards N]
#
# Writes results/idle/<UTC time>/: README.md (the table) and raw.txt (one
# line per run). Ports 17500-17599 (peers 18500+, metrics 19500+) and 6392.
# Run it on a quiet machine; takes about (seconds + 3) x repeats x 3 s.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-idle.sh $*"
before=""
seconds=10
repeats=3
shards=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --before) before=$(realpath "$2"); shift ;;
        --seconds) seconds=$2; shift ;;
        --repeats) repeats=$2; shift ;;
        --shards) shards=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# shellcheck source=benches/lib.sh
source benches/lib.sh
require_tools redis-server redis-cli python3
paxoskv=$(realpath target/release/paxoskv)
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)
out="results/idle/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-idle.XXXXXX)
trap 'pkill -INT -f "cluster --base-port 17500 --data-dir $work" 2>/dev/null || true; redis-cli -p 6392 shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
ticks_per_second=$(getconf CLK_TCK)

# Measure one idle window of PIDS; prints the fraction of one core.
measure() {
    local c0 c1
    c0=$(cpu_ticks "$@")
    sleep "$seconds"
    c1=$(cpu_ticks "$@")
    python3 -c "print(f'{($c1 - $c0) / $ticks_per_second / $seconds:.4f}')"
}

# One run of a paxoskv binary: fresh cluster, wait for every leader, let it
# settle 2 s, measure.
run_paxoskv() { # label binary
    local data="$work/data" log="$work/cluster.log"
    rm -rf "$data"
    "$2" cluster --base-port 17500 --data-dir "$data" --fresh --shards "$shards" --run-seconds 3600 >"$log" 2>&1 &
    local cluster=$!
    for _ in $(seq 300); do grep -q '^ready:' "$log" && break; sleep 0.1; done
    grep -q '^ready:' "$log" || { echo "$1: the cluster did not become ready (see $log)" >&2; exit 1; }
    sleep 2
    local pids
    pids=$(pgrep -f "server --config $data/cluster.toml" | tr '\n' ' ')
    # shellcheck disable=SC2086
    echo "$1 $(measure $pids)" | tee -a "$out/raw.txt"
    kill -INT "$cluster"; wait "$cluster" 2>/dev/null || true
}

run_redis() {
    redis-server --port 6392 --save '' --appendonly no --daemonize yes --logfile "$work/redis.log" >/dev/null
    for _ in $(seq 50); do redis-cli -p 6392 PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    sleep 2
    echo "redis $(measure "$(redis-cli -p 6392 INFO server | tr -d '\r' | sed -n 's/^process_id://p')")" | tee -a "$out/raw.txt"
    redis-cli -p 6392 shutdown nosave >/dev/null 2>&1 || true
}

for r in $(seq "$repeats"); do
    echo "== repeat $r/$repeats"
    run_paxoskv after "$paxoskv"
    [[ -n $before ]] && run_paxoskv before "$before"
    run_redis
done

python3 - "$out" "$command_line" "$commit" "$before" "$seconds" "$shards" <<'PY'
import statistics, sys
out, command, commit, before, seconds, shards = sys.argv[1:]
runs = {}
for line in open(f"{out}/raw.txt"):
    label, value = line.split()
    runs.setdefault(label, []).append(float(value))
rows = [("paxoskv after", f"`{commit}`", runs.get("after", []))]
if before:
    rows.append(("paxoskv before", f"`{before}`", runs.get("before", [])))
rows.append(("Redis (`hz 10`, no persistence)", "redis-server", runs.get("redis", [])))
with open(f"{out}/README.md", "w") as f:
    f.write("# An idle cluster's CPU\n\n")
    f.write(f"Server CPU (user + system) of a local 3-node cluster with {shards} shard(s) serving no request, "
            f"over {seconds} s after its leaders were elected, in fractions of one core summed over the three "
            "processes; each run on a fresh cluster, the binaries interleaved; an idle redis-server beside them.\n\n")
    f.write(f"Command: `{command}`\n\n")
    f.write("| system | binary | runs (cores) | median (cores) |\n| --- | --- | --- | ---: |\n")
    for name, binary, values in rows:
        listed = ", ".join(f"{v:.3f}" for v in values)
        median = f"{statistics.median(values):.3f}" if values else "-"
        f.write(f"| {name} | {binary} | {listed} | {median} |\n")
    f.write("\nRaw readings: [raw.txt](raw.txt).\n")
print(open(f"{out}/README.md").read())
PY
