#!/usr/bin/env bash
# Where the servers' CPU goes under pipelined SETs (issue 11's -P 16 SET
# goal): `redis-benchmark -c 50 -P 16 -t set -d 100 -r 100000` at the leader
# of a fresh local 3-node cluster (durability sync), and meanwhile
# `perf record -e cpu-clock --call-graph dwarf` for --seconds (3) on the leader, then
# as long on a follower. Each process's samples are split by the functions
# that do a SET's work (inclusive time: a function's own samples and those
# of everything it calls), by benches/p16_profile_table.py. --runs times
# (3), each on a fresh cluster: the table shows the medians, as one
# profile's per-command CPU moves by a fifth from run to run here.
#
#   benches/record-p16-profile.sh [--runs N] [--seconds N] [--label NAME] [--bin PAXOSKV]
#
# Writes results/p16-profile/<label>-<UTC time>/: README.md (the table),
# per run (`runN-*`) each process's `perf report` text, the commands the
# leader processed while each profile ran and the benchmark's output. Needs perf,
# redis-benchmark and redis-cli (benches/install-deps.sh) and the release
# build. Ports 17551-17553 (peers 18650+, metrics 19551+). About a minute
# per run; run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-p16-profile.sh $*"
seconds=3
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
[[ -x $bin ]] || { echo "$bin is missing (cargo build --release)" >&2; exit 2; }
bin=$(realpath "$bin")
out="results/p16-profile/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-p16-profile.XXXXXX)
pids=()
trap 'stop_pids_and_remove "$work"' EXIT

base=17550
for run in $(seq "$runs"); do
    echo "run $run of $runs..."
    "$bin" cluster --base-port "$base" --data-dir "$work/cluster-$run" --fresh --run-seconds 3600 \
        >"$out/run$run-cluster.log" 2>&1 &
    cluster=$!
    pids+=("$cluster")
    for i in 1 2 3; do wait_ping $((base + i)); done
    leader=$(leader_port "$base")
    follower=$(( leader == base + 1 ? base + 2 : base + 1 ))
    # Long enough to outlast both profiles at any rate this machine reaches.
    redis-benchmark -p "$leader" -c 50 -P 16 -t set -d 100 -r 100000 -n 20000000 -q \
        >"$out/run$run-redis-benchmark.txt" 2>&1 &
    bench=$!
    pids+=("$bench")
    sleep 2 # past the benchmark's start-up and the cluster's first snapshot
    # The commands the leader processed while the samples were taken: read
    # inside the profiled command, so that perf's own start and finish
    # (which take a while with dwarf stacks) are not counted.
    count="redis-cli -p $leader INFO stats | tr -d '\\r' | awk -F: '/^total_commands_processed/ {print \$2}'"
    for role in leader follower; do
        port=$leader; [[ $role == follower ]] && port=$follower
        perf record -q -e cpu-clock --call-graph dwarf,16384 -F 499 -p "$(pid_of "$port")" -o "$work/$role.data" -- \
            sh -c "a=\$($count); sleep $seconds; b=\$($count); echo \$((b - a)) >'$out/run$run-$role-commands.txt'" \
            2>"$out/run$run-$role-perf-record.txt"
    done
    kill -0 "$bench" 2>/dev/null || { echo "redis-benchmark ended before the profiles did" >&2; exit 1; }
    kill "$bench" "$cluster" 2>/dev/null || true
    wait "$bench" "$cluster" 2>/dev/null || true
    # Reading the samples back (unwinding every stack) is heavy: only now.
    for role in leader follower; do
        perf report -i "$work/$role.data" --children --sort sym --stdio -g none 2>/dev/null \
            >"$out/run$run-$role-report.txt"
    done
done
python3 benches/p16_profile_table.py "$out" "$command_line" "$(git rev-parse --short HEAD)" "$runs"
echo "written: $out"
