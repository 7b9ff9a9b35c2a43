#!/usr/bin/env bash
# paxoskv's allocator side by side: mimalloc's purge delay (how long a freed
# page stays mapped before it goes back to the OS) at its default, 1 s, and
# at 10 s (MIMALLOC_PURGE_DELAY=10000 in the servers' environment, as
# jemalloc's decay), run after run, interleaved, each on a fresh local
# 3-node cluster (durability sync); Redis beside them in every run. Why:
# under a pipelined write load `perf` showed 7-12% of the servers' CPU in
# `clear_page_erms`, pages faulted back in after a purge.
#
#   benches/record-alloc.sh [--runs N] [--label NAME] [--requests N]
#
# Each run, per system, at the shard leader:
#   redis-benchmark -c 50 -P 16 -t set -n N -r 100000 -d 100, then the same
#   with -t get: ops/s, and over each the servers' CPU per operation (user +
#   system ticks of every server process, all threads) and minor page
#   faults per 1000 operations (every server process); the leader's peak
#   resident memory (VmHWM) after both.
# The two settings swap order from run to run.
#
# Writes results/alloc/<label>-<UTC time>/: README.md (medians over the
# runs), runs.txt (every figure of every run) and the raw outputs. Needs
# redis-server, redis-cli, redis-benchmark (benches/install-deps.sh). Ports
# 17560-17563 (peers and metrics +1000..+1300, +2000) and 17597. About 4
# minutes with 3 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-alloc.sh $*"
runs=3
label=run
requests=1000000
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=$2; shift ;;
        --label) label=$2; shift ;;
        --requests) requests=$2; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

source benches/lib.sh
require_tools redis-server redis-cli redis-benchmark python3
cargo build --release --quiet -p paxoskv --bin paxoskv
paxoskv=$(realpath target/release/paxoskv)
out="results/alloc/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-alloc.XXXXXX)
pids=()
trap 'stop_pids_and_remove "$work"' EXIT
base=17560
: >"$out/runs.txt"

# Minor page faults of PIDS, summed.
minor_faults() { # PIDS...
    local p sum=0
    for p in "$@"; do sum=$((sum + $(awk '{print $10}' "/proc/$p/stat"))); done
    echo "$sum"
}

# One -P 16 benchmark of TEST at PORT while PIDS serve: "ops_s cpu_us_per_op faults_per_kop"
pipelined() { # TEST PORT CSV PIDS...
    local test=$1 port=$2 csv=$3
    shift 3
    local t0 f0 t1 f1 rps
    t0=$(cpu_ticks "$@"); f0=$(minor_faults "$@")
    redis-benchmark -p "$port" -t "$test" -c 50 -P 16 -n "$requests" -r 100000 -d 100 --csv >"$csv"
    t1=$(cpu_ticks "$@"); f1=$(minor_faults "$@")
    rps=$(tail -1 "$csv" | tr -d '"' | cut -d, -f2)
    awk "BEGIN { printf \"%s %.2f %.1f\", $rps, ($t1 - $t0) / $(getconf CLK_TCK) * 1e6 / $requests, ($f1 - $f0) * 1000 / $requests }"
}

# One setting: NAME RUN [env...]; appends "NAME RUN set_ops set_cpu set_faults get_ops get_cpu get_faults hwm_kb"
paxoskv_steps() {
    local name=$1 run=$2
    shift 2
    env "$@" "$paxoskv" cluster --base-port "$base" --data-dir "$work/$name-$run" --fresh --run-seconds 600 \
        >"$out/$name-$run-cluster.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for i in 1 2 3; do wait_ping $((base + i)); done
    local leader servers set get hwm
    leader=$(leader_port "$base")
    mapfile -t servers < <(pgrep -P "$pid")
    set=$(pipelined set "$leader" "$out/$name-$run-set.csv" "${servers[@]}")
    get=$(pipelined get "$leader" "$out/$name-$run-get.csv" "${servers[@]}")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$(pgrep -f "$work/$name-$run/cluster.toml --node-id $((leader - base))$")/status")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$name $run $set $get $hwm" >>"$out/runs.txt"
}

redis_steps() { # RUN
    local run=$1 port=17597
    mkdir -p "$work/redis-$run"
    redis-server --port "$port" --dir "$work/redis-$run" --save '' --appendonly no >"$out/redis-$run-server.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_ping "$port"
    local set get
    set=$(pipelined set "$port" "$out/redis-$run-set.csv" "$pid")
    get=$(pipelined get "$port" "$out/redis-$run-get.csv" "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "redis $run $set $get -" >>"$out/runs.txt"
}

for run in $(seq "$runs"); do
    settings=(purge-1s purge-10s)
    if ((run % 2 == 0)); then settings=(purge-10s purge-1s); fi
    for setting in "${settings[@]}"; do
        echo "run $run: paxoskv, $setting..."
        if [[ $setting == purge-1s ]]; then
            paxoskv_steps "$setting" "$run" -u MIMALLOC_PURGE_DELAY
        else
            paxoskv_steps "$setting" "$run" MIMALLOC_PURGE_DELAY=10000
        fi
    done
    echo "run $run: Redis..."
    redis_steps "$run"
done

python3 - "$out" "$command_line" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)" <<'PY'
import json, os, statistics, sys
out, command, commit = sys.argv[1:4]
cols = ["set_ops_s", "set_cpu_us_per_op", "set_faults_per_kop", "get_ops_s", "get_cpu_us_per_op",
        "get_faults_per_kop", "leader_hwm_kb"]
rows = {}
for line in open(os.path.join(out, "runs.txt")):
    f = line.split()
    rows.setdefault(f[0], []).append({c: (None if v == "-" else float(v)) for c, v in zip(cols, f[2:])})
def med(name, c):
    vals = [r[c] for r in rows.get(name, []) if r[c] is not None]
    return statistics.median(vals) if vals else None
medians = {name: {c: med(name, c) for c in cols} for name in rows}
json.dump({"command": command, "commit": commit, "runs": rows, "medians": medians},
          open(os.path.join(out, "summary.json"), "w"), indent=1)
fmt = lambda v, d=0: "-" if v is None else f"{v:,.{d}f}"
names = {"purge-1s": "paxoskv, purge delay 1 s (mimalloc's default)", "purge-10s": "paxoskv, purge delay 10 s",
         "redis": "Redis, no persistence"}
lines = [f"# paxoskv's allocator purge delay ({os.path.basename(out)}, commit {commit})", "",
         f"Produced by `{command}`. `redis-benchmark -c 50 -P 16 -r 100000 -d 100` at the shard leader of a fresh "
         "3-node cluster (durability sync), SET then GET; CPU: the servers' user + system time per operation (all "
         "three nodes); faults: minor page faults of the server processes per 1000 operations; memory: the "
         f"leader's peak RSS. Medians over {len(rows.get('redis', []))} interleaved runs; every run in `runs.txt`.", "",
         "| system | SET ops/s | SET CPU µs/op | SET faults / 1000 ops | GET ops/s | GET CPU µs/op | GET faults / 1000 ops | leader peak RSS (MiB) |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for name in ["purge-1s", "purge-10s", "redis"]:
    m = medians.get(name)
    if not m:
        continue
    hwm = m["leader_hwm_kb"] and m["leader_hwm_kb"] / 1024
    lines.append(f"| {names[name]} | {fmt(m['set_ops_s'])} | {fmt(m['set_cpu_us_per_op'], 2)} | "
                 f"{fmt(m['set_faults_per_kop'], 1)} | {fmt(m['get_ops_s'])} | {fmt(m['get_cpu_us_per_op'], 2)} | "
                 f"{fmt(m['get_faults_per_kop'], 1)} | {fmt(hwm)} |")
open(os.path.join(out, "README.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "written: $out"
