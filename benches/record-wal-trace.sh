#!/usr/bin/env bash
# How long the WAL's writes take the disk, next to how long a group commit
# takes as its shard sees it, under pipelined SETs (issue 11's -P 16 goal):
# `redis-benchmark -c 50 -P 16 -t set -d 100 -r 100000` at the leader of a
# fresh local 3-node cluster (durability sync), and meanwhile, for
# --seconds (2), `perf record -a` of io_uring's tracepoints
# (io_uring_submit_req, io_uring_complete), split by node afterwards
# (system-wide: a write completes on one of io_uring's worker threads,
# which come and go, and `perf record -p` follows only the threads there
# were when it started). Each block-aligned WRITE/WRITE_FIXED's time from
# its submission to its completion is the disk's time for it (an O_DSYNC
# write on a disk without FUA: a kernel worker thread makes it and waits
# for the device); records and the zeros written ahead of them (256 KiB
# and more) are told apart by size. The shard's view over the same
# seconds: `wal_sync` in INFO latency (the syncer's time from starting a
# group commit's write until it runs again after the write completed), its
# mean over the window from the histogram's count and sum before and
# after. The difference is time the completion waits for the executor: its
# next pass over the reactor and its turn among the tasks woken with it.
# --runs times (3), each on a fresh cluster; the table shows medians.
#
#   benches/record-wal-trace.sh [--runs N] [--seconds N] [--label NAME] [--bin PAXOSKV]
#
# Writes results/wal-trace/<label>-<UTC time>/: README.md (the table),
# runs.txt (every figure) and per run each node's write summary. Needs perf
# with io_uring tracepoints (as root), redis-benchmark and redis-cli
# (benches/install-deps.sh) and the release build. Ports 17551-17553
# (peers 18650+, metrics 19551+). About 15 s per run.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-wal-trace.sh $*"
seconds=2
runs=3
label=run
bin=target/release/paxoskv
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=$2; shift ;;
        --runs) runs=$2; shift ;;
        --label) label=$2; shift ;;
        --bin) bin=$2; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# shellcheck source=benches/lib.sh
source benches/lib.sh
require_tools perf redis-benchmark redis-cli python3 ss
perf list 'io_uring:*' 2>/dev/null | grep 'io_uring:io_uring_complete' >/dev/null \
    || { echo "perf lists no io_uring tracepoints here (needs root and tracefs)" >&2; exit 2; }
[[ -x $bin ]] || { echo "$bin is missing (cargo build --release)" >&2; exit 2; }
bin=$(realpath "$bin")
out="results/wal-trace/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-wal-trace.XXXXXX)
pids=()
trap 'stop_pids_and_remove "$work"' EXIT

base=17550
# Each node's "I COUNT SUM" of its wal_sync histogram, into FILE.
cat >"$work/snapshot.sh" <<SNAP
for i in 1 2 3; do
    echo "\$i \$(redis-cli -p \$(($base + i)) INFO latency | tr -d '\r' \\
        | sed -n 's/.*wal_sync_usec:count=\([0-9]*\),sum=\([0-9]*\).*/\1 \2/p')"
done >"\$1"
SNAP
: >"$out/runs.txt"
for run in $(seq "$runs"); do
    echo "run $run of $runs..."
    "$bin" cluster --base-port "$base" --data-dir "$work/cluster-$run" --fresh --run-seconds 3600 \
        >"$out/run$run-cluster.log" 2>&1 &
    cluster=$!
    pids+=("$cluster")
    for i in 1 2 3; do wait_ping $((base + i)); done
    leader=$(leader_port "$base")
    # Long enough to outlast the trace at any rate this machine reaches.
    redis-benchmark -p "$leader" -c 50 -P 16 -t set -d 100 -r 100000 -n 20000000 -q \
        >"$out/run$run-redis-benchmark.txt" 2>&1 &
    bench=$!
    pids+=("$bench")
    sleep 2 # past the benchmark's start-up
    # The histograms are read inside the traced command, so that perf's own
    # start and finish are not in their window.
    perf record -q -a -e io_uring:io_uring_submit_req -e io_uring:io_uring_complete -o "$work/trace.data" -- \
        sh -c "sh '$work/snapshot.sh' '$work/before.txt'; sleep $seconds; sh '$work/snapshot.sh' '$work/after.txt'" \
        2>"$out/run$run-perf-record.txt"
    kill -0 "$bench" 2>/dev/null || { echo "redis-benchmark ended before the trace did" >&2; exit 1; }
    perf script -i "$work/trace.data" -F pid,tid,time,event,trace >"$work/trace.txt" 2>/dev/null
    for i in 1 2 3; do
        port=$((base + i))
        role=follower
        [[ $port == "$leader" ]] && role=leader
        read -r _ c0 s0 < <(grep "^$i " "$work/before.txt")
        read -r _ c1 s1 < <(grep "^$i " "$work/after.txt")
        echo "$role $run wal_sync $((c1 - c0)) $((s1 - s0))" >>"$out/runs.txt"
        awk -v p="$(pid_of "$port")" '{ split($1, id, "/"); if (id[1] == p) print }' "$work/trace.txt" \
            | python3 benches/wal_trace_table.py writes "$role" "$run" >"$out/run$run-node$i-writes.txt"
        grep -v '^#' "$out/run$run-node$i-writes.txt" >>"$out/runs.txt"
    done
    kill "$bench" "$cluster" 2>/dev/null || true
    wait "$bench" "$cluster" 2>/dev/null || true
done
python3 benches/wal_trace_table.py table "$out" "$command_line" "$(git rev-parse --short HEAD)" "$seconds"
echo "written: $out"
