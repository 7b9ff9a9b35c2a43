#!/usr/bin/env bash
# A leader whose disk falls behind: `loadgen run` at the shard leader of a
# fresh local 3-node cluster (durability sync), R SETs per second of
# V-byte values for S seconds; from second W of the run (warm-up
# included) the leader's process may write only B bytes per second to the
# disk, for T seconds (a blkio cgroup: v1 `blkio.throttle.write_bps_device`,
# else v2 `io.max`), then the throttle is lifted. Its WAL falls more than
# `unsynced_bytes_max` (64 MiB) behind, so the node holds what clients and
# peers send until its disk catches up. Per step: the step-downs and
# elections in the cluster's log (and the first step-down's reason), how
# long after the node first held requests it stepped down, whether the
# first leader still leads at the end, the client errors and timeouts, and
# p50/p99 over the measured window.
#
# With --node follower, a follower's disk is throttled instead (the
# load still goes to the leader), and a light second load runs at that
# follower for its own clients (200 ops/s, half reads, 4 connections);
# the step also reports that load's p99, errors and timeouts, the
# follower's dropped peer frames (`paxoskv_peer_frames_dropped_total`;
# "-" for a build without it) and how many slots its applied state is
# behind the leader's commit at the end.
#
#   benches/record-slow-leader-disk.sh [--runs N] [--label NAME] [--before BIN]
#       [--rate R] [--value-bytes V] [--seconds S] [--throttle-at W]
#       [--throttle-seconds T] [--write-bps B] [--node leader|follower]
#
# --before BIN: an older build's binary, run interleaved with this build,
# the order swapped from run to run. Defaults: 2 runs, 20,000 SET/s of
# 1,000-byte values for 24 s after a 2 s warm-up, the throttle from second
# 6 for 10 s at 5 MiB/s (a quarter of what the load writes).
#
# Needs root (a cgroup of its own, removed at the end). Writes
# results/slow-<node>-disk/<label>-<UTC time>/: README.md (every run),
# runs.txt and each step's loadgen output and cluster log. Ports
# 17570-17573 (peers and metrics +1000..+1300, +2000). About 40 s per step.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-slow-leader-disk.sh $*"
runs=2
label=run
before=""
rate=20000
value_bytes=1000
seconds=24
throttle_at=6
throttle_seconds=10
write_bps=5242880
node=leader
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=$2; shift ;;
        --label) label=$2; shift ;;
        --before) before=$(realpath "$2"); shift ;;
        --rate) rate=$2; shift ;;
        --value-bytes) value_bytes=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        --throttle-at) throttle_at=$2; shift ;;
        --throttle-seconds) throttle_seconds=$2; shift ;;
        --write-bps) write_bps=$2; shift ;;
        --node) node=$2; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for v in runs rate value_bytes seconds throttle_at throttle_seconds write_bps; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "--${v//_/-}: a positive number, not ${!v}" >&2; exit 2; }
done
[[ $node == leader || $node == follower ]] || { echo "--node: leader or follower, not $node" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "needs root: it throttles the leader's disk writes through a cgroup" >&2; exit 2; }

source benches/lib.sh
require_tools redis-cli python3 ss findmnt
cargo build --release --quiet -p paxoskv --bin paxoskv
cargo build --release --quiet -p loadgen
paxoskv=$(realpath target/release/paxoskv)
loadgen=$(realpath target/release/loadgen)
out="results/slow-$node-disk/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-slow-leader-disk.XXXXXX)
device=$(findmnt -no MAJ:MIN -T "$work" | tr -d ' ')
[[ $device =~ ^[0-9]+:[0-9]+$ ]] || { echo "no block device under $work ($device)" >&2; exit 2; }

# The throttle: a cgroup v1 blkio group, else a v2 group with io enabled.
if [[ -d /sys/fs/cgroup/blkio ]]; then
    cgroup=/sys/fs/cgroup/blkio/paxoskv-slow-disk
    mkdir -p "$cgroup"
    throttle() { echo "$device $1" >"$cgroup/blkio.throttle.write_bps_device"; }
    unthrottle() { echo "$device 0" >"$cgroup/blkio.throttle.write_bps_device"; }
else
    root=/sys/fs/cgroup
    grep -qw io "$root/cgroup.subtree_control" || echo +io >"$root/cgroup.subtree_control"
    cgroup=$root/paxoskv-slow-disk
    mkdir -p "$cgroup"
    throttle() { echo "$device wbps=$1" >"$cgroup/io.max"; }
    unthrottle() { echo "$device wbps=max" >"$cgroup/io.max"; }
fi
pids=()
cleanup() {
    unthrottle 2>/dev/null || true
    stop_pids_and_remove "$work"
    # Processes leave the group when they exit; then it can go.
    rmdir "$cgroup" 2>/dev/null || true
}
trap cleanup EXIT
base=17570
builds=(this)
if [[ -n $before ]]; then
    [[ -x $before ]] || { echo "--before: $before is not an executable" >&2; exit 2; }
    builds=(this before)
fi
: >"$out/runs.txt"

step() { # BUILD RUN
    local build=$1 run=$2 bin=$paxoskv
    [[ $build == before ]] && bin=$before
    local log="$out/$build-$run-cluster.log"
    "$bin" cluster --base-port "$base" --data-dir "$work/$build-$run" --fresh --run-seconds 600 >"$log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for i in 1 2 3; do wait_ping $((base + i)); done
    local leader slow slow_pid i light=""
    leader=$(leader_port "$base")
    slow=$leader
    if [[ $node == follower ]]; then
        for i in 1 2 3; do [[ $((base + i)) != "$leader" ]] && { slow=$((base + i)); break; }; done
    fi
    slow_pid=$(ss -ltnpH "sport = :$slow" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
    [[ -n $slow_pid ]] || { echo "no process listens on $slow" >&2; exit 1; }
    (
        sleep "$throttle_at"
        echo "$slow_pid" >"$cgroup/cgroup.procs"
        throttle "$write_bps"
        echo "$(date +%s.%N) throttled" >>"$work/marks-$build-$run"
        sleep "$throttle_seconds"
        unthrottle
        echo "$(date +%s.%N) lifted" >>"$work/marks-$build-$run"
    ) &
    local throttler=$!
    if [[ $node == follower ]]; then
        "$loadgen" run --target "resp://127.0.0.1:$slow" --rate 200 --read-ratio 0.5 --connections 4 \
            --value-bytes 100 --warmup-s 2 --duration-s "$seconds" --out "$work/lgf-$build-$run" \
            >"$out/$build-$run-follower-loadgen.txt" &
        light=$!
    fi
    "$loadgen" run --target "resp://127.0.0.1:$leader" --rate "$rate" --read-ratio 0 --connections 16 \
        --value-bytes "$value_bytes" --warmup-s 2 --duration-s "$seconds" --out "$work/lg-$build-$run" \
        >"$out/$build-$run-loadgen.txt" || true
    wait "$throttler"
    [[ -n $light ]] && { wait "$light" || true; }
    local now_leader dropped="-" lag="-"
    now_leader=$(leader_port "$base" || echo none)
    if [[ $node == follower ]]; then
        dropped=$(curl -s "http://127.0.0.1:$((slow + 2000))/metrics" |
            awk '/^paxoskv_peer_frames_dropped_total/ { s += $NF; f = 1 } END { if (f) print s; else print "-" }')
        if [[ $now_leader != none ]]; then
            lag=$(($(redis-cli -p "$now_leader" INFO replication | tr -d '\r' | sed -n 's/^shard0_commit://p') -
                $(redis-cli -p "$slow" INFO replication | tr -d '\r' | sed -n 's/^shard0_applied://p')))
        fi
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$out/$build-$run-loadgen.txt" "$log" "$work/marks-$build-$run" "$build" "$run" \
        "$((leader - base))" "$([[ $now_leader == none ]] && echo none || echo $((now_leader - base)))" \
        "$node" "$out/$build-$run-follower-loadgen.txt" "$dropped" "$lag" >>"$out/runs.txt" <<'PY'
import re, sys
lg_path, log_path, marks_path, build, run, first, last, node, flg_path, dropped, lag = sys.argv[1:12]
def summary(path):
    text = open(path).read()
    # run, "rate", R, op, offered, achieved, p50, p90, p99, p99.9, max, ok, errors, timeouts
    return next(l.split() for l in text.splitlines() if re.match(r"\s*\d+\s+rate \d+\s+all\s", l))
row = summary(lg_path)
p50, p99, errors, timeouts = row[6], row[8], int(row[12]), int(row[13])
marks = dict(line.split()[::-1] for line in open(marks_path))
throttled, lifted = float(marks["throttled"]), float(marks["lifted"])
held = None
stepdowns, elections, reason, first_stepdown = 0, 0, "-", None
for line in open(log_path):
    m = re.match(r"n\d+ \| ([0-9.]+) node=\d+ shard=0 (.*)", line)
    if not m:
        continue
    t, what = float(m.group(1)), m.group(2)
    if what.startswith("holding client requests") and held is None and t >= throttled:
        held = t
    if t < throttled:
        continue
    if what.startswith("stepped down"):
        stepdowns += 1
        if first_stepdown is None:
            first_stepdown = t
            reason = what.rsplit(": ", 1)[-1]
    if what.startswith("election started"):
        elections += 1
def since(t, origin):
    return "-" if t is None or origin is None else f"{(t - origin) * 1000:.0f}"
# Where the first step-down fell: during the throttle, or after it lifted.
when = "-" if first_stepdown is None else ("throttled" if first_stepdown < lifted else "after")
kept = "yes" if first == last else "no"
follower = ""
if node == "follower":
    f = summary(flg_path)
    follower = f" {f[8]} {f[12]} {f[13]} {dropped} {lag}"
print(f"{build} {run} {since(held, throttled)} {stepdowns} {elections} {reason} {since(first_stepdown, held)} "
      f"{when} {kept} {errors} {timeouts} {p50} {p99}{follower}")
PY
}

for run in $(seq "$runs"); do
    for k in $(seq 0 $((${#builds[@]} - 1))); do
        build=${builds[$(((run - 1 + k) % ${#builds[@]}))]}
        echo "run $run: $build..."
        step "$build" "$run"
        tail -1 "$out/runs.txt"
    done
done

python3 - "$out" "$command_line" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)" \
    "$before" "$rate" "$value_bytes" "$seconds" "$throttle_at" "$throttle_seconds" "$write_bps" "$node" <<'PY'
import os, sys
out, command, commit, before, rate, value_bytes, seconds, at, length, bps, node = sys.argv[1:12]
names = {"this": f"this build ({commit})", "before": f"before (`{before}`)"}
whose = "the leader's" if node == "leader" else "a follower's"
lines = [f"# {'A leader' if node == 'leader' else 'A follower'} whose disk falls behind ({os.path.basename(out)})", "",
         f"Produced by `{command}` at commit {commit}. Each step: a fresh local 3-node cluster (durability sync), "
         f"`loadgen run --rate {rate} --read-ratio 0 --connections 16 --value-bytes {value_bytes}` at the shard "
         f"leader for {seconds} s after a 2 s warm-up; from second {at} (warm-up included) {whose} process may "
         f"write {int(bps) / 2**20:g} MiB/s to the disk (a blkio cgroup) for {length} s, then the throttle is "
         "lifted. *Held after*: ms from the throttle to the node's first \"holding client requests\" (its WAL 64 MiB "
         "behind); *step-downs* and *elections*: in the three nodes' logs from the throttle on; *first step-down "
         "after holding*: ms from holding to the first step-down, and whether it fell while the disk was "
         "throttled or after it was lifted; *kept*: the first leader leads at the end. Latencies in ms over the "
         "measured window. The builds interleaved, the order swapped from run to run."]
header = "| build | run | held after | step-downs | elections | first step-down | after holding | when | kept | errors | timeouts | p50 | p99 |"
rule = "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- | --- | ---: | ---: | ---: | ---: |"
if node == "follower":
    lines[-1] += (" The follower's clients: `loadgen run --rate 200 --read-ratio 0.5 --connections 4 "
                  "--value-bytes 100` at the throttled follower over the same window (*f p99* in ms, *f errors*, "
                  "*f timeouts*); *dropped*: the peer frames with entries the follower dropped, the ones it held "
                  "over `unsynced_bytes_max` (`paxoskv_peer_frames_dropped_total`, \"-\" for a build without it); "
                  "*lag*: slots between the leader's commit and the follower's applied state at the end.")
    header += " f p99 | f errors | f timeouts | dropped | lag |"
    rule += " ---: | ---: | ---: | ---: | ---: |"
lines += ["", header, rule]
rows = [line.split() for line in open(os.path.join(out, "runs.txt"))]
for build in ("this", "before"):
    for r in rows:
        if r[0] == build:
            lines.append(f"| {names[build]} | " + " | ".join(r[1:]) + " |")
with open(os.path.join(out, "README.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
print(f"\nbundle: {out}")
PY
