#!/usr/bin/env bash
# What bounds pipelined SETs on this machine: the whole machine's CPU
# around `redis-benchmark -c C -P 16 -t set` at the shard leader of a fresh
# local 3-node cluster, for durability sync and none, 50 and 200 clients;
# Redis (no persistence, 50 clients) beside them. Run after run, the
# settings interleaved, each on a fresh cluster.
#
#   benches/record-p16-machine.sh [--runs N] [--label NAME] [--requests N] [--before BIN]
#
# --before BIN: an older build's binary (a copy of target/release/paxoskv
# built at the earlier commit) beside this one, at 50 clients, sync and
# none, interleaved with this build's steps (the 200-client steps are left
# out then).
#
# Each step: redis-benchmark -c C -P 16 -t set -n N -r 100000 -d 100; over
# it, /proc/stat (every CPU: busy = user + nice + system + irq + softirq;
# idle and iowait apart, iowait being idle time with I/O pending) and the
# servers' own user + system ticks (every thread). Per step: SET/s, cores
# busy and idle, the machine's CPU per SET (every process and the kernel,
# the load generator included), the servers' share of it, and the SET/s
# that the cores busy divided by the machine's CPU per SET would give (the
# same figure by construction: it shows which of the two moved).
#
# Writes results/p16-machine/<label>-<UTC time>/: README.md (medians over
# the runs), runs.txt (every figure of every run) and the raw outputs.
# Needs redis-server, redis-cli, redis-benchmark (benches/install-deps.sh).
# Ports 17570-17573 (peers and metrics +1000..+1300, +2000) and 17598.
# About 4 minutes with 3 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-p16-machine.sh $*"
runs=3
label=run
requests=1000000
before=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=$2; shift ;;
        --label) label=$2; shift ;;
        --requests) requests=$2; shift ;;
        --before) before=$(realpath "$2"); shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "--runs: a positive number, not $runs" >&2; exit 2; }
[[ $requests =~ ^[1-9][0-9]*$ ]] || { echo "--requests: a positive number, not $requests" >&2; exit 2; }

source benches/lib.sh
require_tools redis-server redis-cli redis-benchmark python3
cargo build --release --quiet -p paxoskv --bin paxoskv
paxoskv=$(realpath target/release/paxoskv)
out="results/p16-machine/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-p16-machine.XXXXXX)
pids=()
trap 'stop_pids_and_remove "$work"' EXIT
base=17570
settings=(sync-50 none-50 sync-200 none-200)
if [[ -n $before ]]; then
    [[ -x $before ]] || { echo "--before: $before is not an executable" >&2; exit 2; }
    settings=(sync-50 before-sync-50 none-50 before-none-50)
fi
: >"$out/runs.txt"

# The first line of /proc/stat without its name: user nice system idle iowait irq softirq ...
machine_ticks() { head -1 /proc/stat | cut -d' ' -f2- | sed 's/^ *//'; }

# One benchmark of C clients at PORT while PIDS serve; appends to runs.txt
# "NAME RUN set_s busy_cores idle_cores iowait_cores machine_us servers_us".
measure() { # NAME RUN PORT CLIENTS PIDS...
    local name=$1 run=$2 port=$3 clients=$4
    shift 4
    local m0 m1 s0 s1 t0 t1 rps
    m0=$(machine_ticks); s0=$(cpu_ticks "$@"); t0=$(date +%s.%N)
    redis-benchmark -p "$port" -t set -c "$clients" -P 16 -n "$requests" -r 100000 -d 100 --csv \
        >"$out/$name-$run.csv"
    m1=$(machine_ticks); s1=$(cpu_ticks "$@"); t1=$(date +%s.%N)
    rps=$(tail -1 "$out/$name-$run.csv" | tr -d '"' | cut -d, -f2)
    python3 - "$m0" "$m1" "$s0" "$s1" "$t0" "$t1" "$(getconf CLK_TCK)" "$requests" "$rps" "$name" "$run" \
        >>"$out/runs.txt" <<'PY'
import sys
m0, m1, s0, s1, t0, t1, hz, n, rps, name, run = sys.argv[1:12]
d = [int(b) - int(a) for a, b in zip(m0.split(), m1.split())]
user, nice, system, idle, iowait, irq, softirq = d[:7]
wall, hz, n = float(t1) - float(t0), int(hz), int(n)
busy = user + nice + system + irq + softirq
servers = int(s1) - int(s0)
print(f"{name} {run} {float(rps):.0f} {busy / hz / wall:.3f} {idle / hz / wall:.3f} {iowait / hz / wall:.3f} "
      f"{busy / hz / n * 1e6:.2f} {servers / hz / n * 1e6:.2f}")
PY
}

paxoskv_step() { # SETTING RUN
    local setting=$1 run=$2 bin=$paxoskv
    if [[ $setting == before-* ]]; then bin=$before; fi
    local bare=${setting#before-}
    local durability=${bare%-*} clients=${bare#*-}
    "$bin" cluster --base-port "$base" --data-dir "$work/$setting-$run" --fresh --run-seconds 600 \
        --durability "$durability" >"$out/$setting-$run-cluster.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for i in 1 2 3; do wait_ping $((base + i)); done
    local leader servers
    leader=$(leader_port "$base")
    mapfile -t servers < <(pgrep -P "$pid")
    measure "$setting" "$run" "$leader" "$clients" "${servers[@]}"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

redis_step() { # RUN
    local run=$1 port=17598
    mkdir -p "$work/redis-$run"
    redis-server --port "$port" --dir "$work/redis-$run" --save '' --appendonly no >"$out/redis-$run-server.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_ping "$port"
    measure redis-50 "$run" "$port" 50 "$pid"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

for run in $(seq "$runs"); do
    # Rotate the order: each setting goes first in turn.
    for k in $(seq 0 $((${#settings[@]} - 1))); do
        setting=${settings[$(((run - 1 + k) % ${#settings[@]}))]}
        echo "run $run: paxoskv $setting..."
        paxoskv_step "$setting" "$run"
    done
    echo "run $run: Redis..."
    redis_step "$run"
done

python3 - "$out" "$command_line" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)" \
    "$(nproc)" "$before" <<'PY'
import os, statistics, sys
out, command, commit, cores, before = sys.argv[1:6]
rows = {}
for line in open(os.path.join(out, "runs.txt")):
    name, run, *figures = line.split()
    rows.setdefault(name, []).append([float(f) for f in figures])
names = {"sync-50": "paxoskv, durability sync, 50 clients", "none-50": "paxoskv, durability none, 50 clients",
         "sync-200": "paxoskv, durability sync, 200 clients", "none-200": "paxoskv, durability none, 200 clients",
         "redis-50": "Redis (no persistence), 50 clients",
         "before-sync-50": "paxoskv before, durability sync, 50 clients",
         "before-none-50": "paxoskv before, durability none, 50 clients"}
order = ["sync-50", "before-sync-50", "none-50", "before-none-50", "sync-200", "none-200", "redis-50"]
lines = [f"# Pipelined SETs and the whole machine's CPU ({os.path.basename(out)})", "",
         f"Produced by `{command}` at commit {commit}, on {cores} cores. Each step: `redis-benchmark -c C -P 16 "
         "-t set -d 100 -r 100000` at the shard leader of a fresh local 3-node cluster (or at Redis); over it, "
         "`/proc/stat` (busy: user + nice + system + irq + softirq; idle and iowait, idle time with I/O pending, "
         "apart) and the servers' own user + system ticks. Machine CPU per SET: every process and the kernel, "
         "the load generator included. Medians over the runs; every run in `runs.txt`."
         + (f" *Before*: the binary `{before}`, an earlier build, run interleaved with this one." if before else ""),
         "",
         "| system | SET/s | cores busy | cores idle | of which iowait | machine CPU µs per SET | servers' CPU µs "
         "per SET | the rest (client, kernel threads) µs per SET |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for key in order:
    if key not in rows:
        continue
    med = [statistics.median(col) for col in zip(*rows[key])]
    rps, busy, idle, iowait, machine, servers = med
    lines.append(f"| {names[key]} | {rps:,.0f} | {busy:.2f} | {idle + iowait:.2f} | {iowait:.2f} | {machine:.2f} | "
                 f"{servers:.2f} | {machine - servers:.2f} |")
lines += ["", "Per run, SET/s against the cores busy divided by the machine's CPU per SET (equal by construction, "
          "up to rounding: which of the two factors moves is the point):", "",
          "| system | run | SET/s | cores busy | machine CPU µs per SET |", "| --- | ---: | ---: | ---: | ---: |"]
for key in order:
    for i, r in enumerate(rows.get(key, []), 1):
        lines.append(f"| {names[key]} | {i} | {r[0]:,.0f} | {r[1]:.2f} | {r[4]:.2f} |")
with open(os.path.join(out, "README.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
print(f"\nbundle: {out}")
PY
