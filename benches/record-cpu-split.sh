#!/usr/bin/env bash
# Where a server's CPU per operation goes at a fixed open-loop rate: user
# time, kernel time, system calls and context switches per operation, for
# paxoskv (a local 3-node cluster, durability sync and none) next to Redis
# and AOF Redis (appendfsync always) driven the same way. Issue 11's CPU
# goal compares the totals; this splits them, to show how much of the gap
# is our code and how much the kernel work our messages and syncs cause.
#
#   benches/record-cpu-split.sh [--rate N] [--seconds N] [--label NAME]
#
# Each system on fresh processes: `loadgen run --rate N --read-ratio 0.5
# --connections 16` over every node (2 s warmup), and over the next
# --seconds (10) the servers' user and system ticks (/proc/PID/stat, every
# thread, io_uring workers included) and, with `perf` installed, their
# system calls (raw_syscalls:sys_enter) and context switches (`perf stat
# -p`). Kernel work in kernel threads (block-layer completions) is not
# charged to any process, for any system.
#
# Writes results/cpu-split/<label>-<UTC time>/: README.md (the table) and
# every raw output. Needs redis-server, redis-cli (benches/install-deps.sh)
# and the release build. Ports 17540-17549 (peers and metrics +1000,
# +2000) and 17593-17594. About 2 minutes; run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-cpu-split.sh $*"
rate=10000
seconds=10
label=run
while [[ $# -gt 0 ]]; do
    case $1 in
        --rate) rate=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        --label) label=$2; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# shellcheck source=benches/lib.sh
source benches/lib.sh
require_tools redis-server redis-cli python3
paxoskv=$(realpath target/release/paxoskv)
loadgen=$(realpath target/release/loadgen)
out="results/cpu-split/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-cpu-split.XXXXXX)
pids=()
trap 'stop_pids_and_remove "$work"' EXIT
# Every system call, context switches, and the calls that make up most of
# the count for these servers (io_uring, sockets, epoll, files, futexes).
perf_events=raw_syscalls:sys_enter,context-switches
for call in io_uring_enter recvfrom sendto read write epoll_wait membarrier futex fdatasync pwrite64; do
    perf_events+=",syscalls:sys_enter_$call"
done
have_perf=0
if command -v perf >/dev/null && perf stat -e "$perf_events" -- true >/dev/null 2>&1; then
    have_perf=1
fi

# measure NAME TARGETS PID...: the load, and the servers' CPU over the window
measure() {
    local name=$1 targets=$2
    shift 2
    "$loadgen" run --target "resp://$targets" --rate "$rate" --read-ratio 0.5 --connections 16 \
        --warmup-s 2 --duration-s $((seconds + 2)) --label "system=$name" --out "$out/$name-load" \
        >"$out/$name-load.txt" &
    local lg=$! perf_pid=""
    sleep 2.5
    if [[ $have_perf == 1 ]]; then
        perf stat -x, -e "$perf_events" -p "$(IFS=,; echo "$*")" \
            -o "$out/$name-perf.csv" -- sleep "$seconds" &
        perf_pid=$!
    fi
    local t0 t1 u0 s0 u1 s1 ticks
    ticks=$(split_ticks "$@"); t0=$(date +%s.%N)
    read -r u0 s0 <<<"$ticks"
    sleep "$seconds"
    ticks=$(split_ticks "$@"); t1=$(date +%s.%N)
    read -r u1 s1 <<<"$ticks"
    if [[ -n $perf_pid ]] && ! wait "$perf_pid"; then
        echo "perf stat could not count $name's processes; no syscall columns for it" >&2
        rm -f "$out/$name-perf.csv"
    fi
    wait "$lg"
    echo "hz=$(getconf CLK_TCK) user=$((u1 - u0)) system=$((s1 - s0)) seconds=$(awk "BEGIN { print $t1 - $t0 }") rate=$rate" \
        >"$out/$name-ticks.txt"
}

paxoskv_system() { # NAME BASE [flags...]
    local name=$1 base=$2
    shift 2
    "$paxoskv" cluster --base-port "$base" --data-dir "$work/$name" --fresh --run-seconds 600 "$@" \
        >"$out/$name-cluster.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for i in 1 2 3; do wait_ping $((base + i)); done
    leader_port "$base" >/dev/null
    # shellcheck disable=SC2046
    measure "$name" "127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))" $(pgrep -P "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

redis_system() { # NAME PORT [redis flags...]
    local name=$1 port=$2
    shift 2
    mkdir -p "$work/$name"
    redis-server --port "$port" --dir "$work/$name" --save '' "$@" >"$out/$name-server.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_ping "$port"
    measure "$name" "127.0.0.1:$port" "$pid"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "Redis..."; redis_system redis 17593 --appendonly no
echo "AOF Redis..."; redis_system redis-aof 17594 --appendonly yes --appendfsync always
echo "paxoskv..."; paxoskv_system paxoskv 17540
echo "paxoskv, durability none..."; paxoskv_system paxoskv-none 17545 --durability none

python3 - "$out" "$command_line" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)" "$rate" <<'PY'
import os, sys
out, command, commit, rate = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = []
for name in ["redis", "redis-aof", "paxoskv", "paxoskv-none"]:
    t = dict(kv.split("=") for kv in open(os.path.join(out, f"{name}-ticks.txt")).read().split())
    hz, ops = int(t["hz"]), int(t["rate"]) * float(t["seconds"])
    user = int(t["user"]) / hz * 1e6 / ops
    kern = int(t["system"]) / hz * 1e6 / ops
    counts = {}
    perf = os.path.join(out, f"{name}-perf.csv")
    if os.path.exists(perf):
        for line in open(perf):
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[0].isdigit():
                counts[parts[2]] = int(parts[0]) / ops
    calls = {k.split("sys_enter_")[1]: v for k, v in counts.items() if "sys_enter_" in k and v > 0}
    rows.append((name, user, kern, counts.get("raw_syscalls:sys_enter"), counts.get("context-switches"), calls))
ref = rows[0][1] + rows[0][2]
fmt = lambda v: "-" if v is None else f"{v:.1f}"
lines = [
    f"# Server CPU per operation, split ({os.path.basename(out)}, commit {commit})",
    "",
    f"Command: `{command}`. Open loop at {rate} ops/s, half reads, 16 connections",
    "over every node (loadgen run), measured over the window after a 2 s warmup.",
    "CPU: the server processes' user and system ticks (every thread, io_uring",
    "workers included); system calls and context switches from `perf stat -p`.",
    "Block-layer completions in kernel threads are charged to no system. Raw",
    "readings: `paxoskv-ticks.txt`, `paxoskv-perf.csv` and the other systems' beside them.",
    "",
    "| system | user us/op | kernel us/op | total us/op | x Redis | kernel share | syscalls/op | context switches/op |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
for name, user, kern, calls, switches, _ in rows:
    total = user + kern
    lines.append(
        f"| {name} | {user:.1f} | {kern:.1f} | {total:.1f} | {total / ref:.2f} | {100 * kern / total:.0f}% "
        f"| {fmt(calls)} | {fmt(switches)} |"
    )
names = sorted({c for row in rows for c in row[5]}, key=lambda c: -max(row[5].get(c, 0) for row in rows))
if names:
    lines += ["", "System calls per operation, by call (those counted; `-`: none):", ""]
    lines.append("| system | " + " | ".join(names) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in names) + " |")
    for row in rows:
        lines.append(f"| {row[0]} | " + " | ".join(fmt(row[5].get(c)) for c in names) + " |")
open(os.path.join(out, "README.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "bundle: $out"
