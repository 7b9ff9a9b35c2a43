#!/usr/bin/env bash
# A single client's write, hop by hop across the three processes (issue
# 11's single-client goals): where between the client, the leader and the
# followers the time of one `redis-benchmark -c 1 -t set` SET goes. The
# latency anatomy (`INFO latency`) times stages inside one node; this
# follows one request through all of them from the kernel's side.
#
# Each run: a fresh local 3-node cluster (--durability, default none: no
# disk in the path, only the processes and their runtime), an untraced
# `redis-benchmark -c 1 -t set -n 20000` for reference, then one such
# client again while `perf record -a` records for --seconds (0.3) the
# scheduler's wake-ups and switches, io_uring's submissions and
# completions, and the sendto, recvfrom and io_uring_enter system calls.
# benches/write_path_table.py follows each request: the client's send,
# the leader's first step after it (its wake-up) and its read of the
# request, its first Accept, the first follower to answer (its first
# step, read, answer), the leader again, its reply and the client's first
# step after. Then the same for the floor on glommio (`loadgen floor
# --runtime glommio`, with --sync-dir under --durability sync): the same
# messages between three glommio executors and a blocking client, no
# consensus code, traced the same way, with its own untraced p50 from a
# 20,000-round-trip run. --runs times (3); the table shows, side by side,
# the medians over the runs of each run's per-segment p50 and mean.
#
#   benches/record-write-path.sh [--runs N] [--seconds S] [--durability none|sync] [--label NAME]
#                                [--bin PAXOSKV] [--loadgen LOADGEN]
#
# Writes results/write-path/<label>-<UTC time>/: README.md (the table),
# runs.txt (every run's segments and untraced p50) and each run's cluster
# log. Needs perf with the sched, io_uring and syscalls tracepoints (as
# root), redis-benchmark and redis-cli (benches/install-deps.sh) and the
# release build. Ports 17551-17553 (peers 18650+, metrics 19551+). About
# 20 s per run.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-write-path.sh $*"
seconds=0.3
runs=3
durability=none
label=run
bin=target/release/paxoskv
loadgen=target/release/loadgen
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=$2; shift ;;
        --runs) runs=$2; shift ;;
        --durability) durability=$2; shift ;;
        --label) label=$2; shift ;;
        --bin) bin=$2; shift ;;
        --loadgen) loadgen=$2; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ $durability == none || $durability == sync ]] || { echo "--durability: none or sync, not $durability" >&2; exit 2; }
# shellcheck source=benches/lib.sh
source benches/lib.sh
require_tools perf redis-benchmark redis-cli python3 ss
for tp in io_uring:io_uring_complete syscalls:sys_enter_sendto sched:sched_wakeup; do
    perf list "$tp" 2>/dev/null | grep -q "$tp" \
        || { echo "perf lists no $tp tracepoint here (needs root and tracefs)" >&2; exit 2; }
done
for b in "$bin" "$loadgen"; do
    [[ -x $b ]] || { echo "$b is missing (cargo build --release --workspace)" >&2; exit 2; }
done
bin=$(realpath "$bin")
loadgen=$(realpath "$loadgen")
out="results/write-path/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-write-path.XXXXXX)
pids=()
trap 'stop_pids_and_remove "$work"' EXIT

base=17550
events=(sched:sched_wakeup sched:sched_switch io_uring:io_uring_submit_req io_uring:io_uring_complete
    syscalls:sys_enter_sendto syscalls:sys_exit_sendto syscalls:sys_enter_recvfrom syscalls:sys_exit_recvfrom
    syscalls:sys_enter_io_uring_enter syscalls:sys_exit_io_uring_enter)
: >"$out/runs.txt"
for run in $(seq "$runs"); do
    echo "run $run of $runs..."
    "$bin" cluster --base-port "$base" --data-dir "$work/cluster-$run" --fresh --run-seconds 3600 \
        --durability "$durability" >"$out/run$run-cluster.log" 2>&1 &
    cluster=$!
    pids+=("$cluster")
    for i in 1 2 3; do wait_ping $((base + i)); done
    leader=$(leader_port "$base")
    for i in 1 2 3; do echo "$((base + i)) $(pid_of $((base + i)))"; done >"$work/pids.txt"
    p50=$(redis-benchmark -p "$leader" -c 1 -t set -d 100 -r 100000 -n 20000 --csv 2>/dev/null \
        | tail -1 | cut -d, -f5 | tr -d '"')
    echo "untraced $run set_p50_ms $p50" >>"$out/runs.txt"
    # Long enough to outlast the trace.
    redis-benchmark -p "$leader" -c 1 -t set -d 100 -r 100000 -n 10000000 -q >/dev/null 2>&1 &
    bench=$!
    pids+=("$bench")
    sleep 1 # past the benchmark's start-up
    args=()
    for e in "${events[@]}"; do args+=(-e "$e"); done
    perf record -q -a "${args[@]}" -o "$work/trace.data" -- sleep "$seconds" 2>"$out/run$run-perf-record.txt"
    kill -0 "$bench" 2>/dev/null || { echo "redis-benchmark ended before the trace did" >&2; exit 1; }
    kill "$bench" "$cluster" 2>/dev/null || true
    wait "$bench" "$cluster" 2>/dev/null || true
    perf script -i "$work/trace.data" -F comm,pid,tid,time,event,trace >"$work/trace.txt" 2>/dev/null
    python3 benches/write_path_table.py segments "$work/trace.txt" "$work/pids.txt" "$run" >>"$out/runs.txt"
    # The floor on glommio, traced the same way.
    floor_args=(floor --runtime glommio)
    [[ $durability == sync ]] && floor_args+=(--sync-dir "$work")
    floor_p50=$("$loadgen" "${floor_args[@]}" --ops 20000 | sed -n 's/.* p50 \([0-9.]*\) us.*/\1/p')
    echo "untraced-floor $run p50_us $floor_p50" >>"$out/runs.txt"
    "$loadgen" "${floor_args[@]}" --ops 100000000 >/dev/null 2>&1 &
    floor=$!
    pids+=("$floor")
    sleep 1
    perf record -q -a "${args[@]}" -o "$work/trace.data" -- sleep "$seconds" 2>>"$out/run$run-perf-record.txt"
    kill "$floor" 2>/dev/null || true
    wait "$floor" 2>/dev/null || true
    perf script -i "$work/trace.data" -F comm,pid,tid,time,event,trace >"$work/trace.txt" 2>/dev/null
    python3 benches/write_path_table.py segments "$work/trace.txt" floor "$run" | sed 's/^run /floor /' >>"$out/runs.txt"
done
python3 benches/write_path_table.py table "$out" "$command_line" "$(git rev-parse --short HEAD)" "$durability" "$seconds"
echo "written: $out"
