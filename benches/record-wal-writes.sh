#!/usr/bin/env bash
# paxoskv with `wal_writes = "async"` (the default: WAL writes through
# io_uring, whose O_DSYNC writes the kernel runs on a worker thread on a
# disk without FUA) next to `wal_writes = "inline"` (the shard's own thread
# makes each record write, blocking),
# durability sync, run after run, interleaved, each on a fresh local
# 3-node cluster; AOF Redis (appendfsync always) and Redis beside them.
#
#   benches/record-wal-writes.sh [--runs N] [--label NAME] [--before BIN] [--group DIR]
#
# With --before BIN: this build next to an earlier server binary instead,
# both with `wal_writes = "async"` (a change to the WAL's writes, or any
# change to the server, side by side); the systems are then named `this`
# and `before`, and the bundle goes to results/wal-pairs/ instead, or to
# results/DIR/ with --group DIR (build-pairs: a change that is not the
# WAL's, results/README.md section 28).
#
# Each run, per system:
#   SET -c 1     redis-benchmark -c 1 -t set -d 100 at the shard leader: p50,
#                and the leader's WAL sync p50 over it (INFO latency)
#   2k/s         loadgen run --rate 2000 --read-ratio 0.5 over every node:
#                p50 and p99
#   10k/s        the same at 10000 ops/s: p50, p99, and the servers' CPU per
#                operation (user + system ticks of every process, all
#                threads, io_uring's worker threads included, over 8 s of
#                the measured window; block-layer completions in kernel
#                threads are charged to no system); after it, each node's
#                WAL sync p99 and max since its start (INFO latency,
#                `wal_sync`), the median over the three nodes
# plus, once per run, the raw disk: three concurrent O_DIRECT 4 KiB
# overwrite + fdatasync loops (p50), the reference for the WAL sync. The two
# paxoskv modes swap order from run to run. The table also counts the
# requests loadgen saw answered with an error or time out, over every run
# (a latency is only worth reading next to that).
#
# Writes results/wal-writes/<label>-<UTC time>/: README.md (medians over the
# runs), runs.txt (every figure of every run) and the raw outputs. Needs
# redis-server, redis-cli, redis-benchmark (benches/install-deps.sh); /tmp
# must be on the disk under test. Ports 17550-17553 (peers and metrics
# +1000..+1300, +2000) and 17596. About 8 minutes with 3 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-wal-writes.sh $*"
runs=3
label=run
before=""
group=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=$2; shift ;;
        --label) label=$2; shift ;;
        --before) before=$2; shift ;;
        --group) group=$2; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [[ -n $group && -z $before ]]; then
    echo "--group needs --before (a pair of builds)" >&2
    exit 2
fi
[[ $group =~ ^[a-z0-9-]*$ ]] || { echo "--group $group: letters, digits and dashes only" >&2; exit 2; }

source benches/lib.sh
require_tools redis-server redis-cli redis-benchmark python3
cargo build --release --quiet -p paxoskv --bin paxoskv
cargo build --release --quiet -p loadgen
paxoskv=$(realpath target/release/paxoskv)
loadgen=$(realpath target/release/loadgen)
if [[ -n $before ]]; then
    before=$(realpath "$before")
    [[ -x $before ]] || { echo "--before $before: not an executable" >&2; exit 2; }
fi
out="results/$([[ -n $before ]] && echo "${group:-wal-pairs}" || echo wal-writes)/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-wal-writes.XXXXXX)
pids=()
trap 'stop_pids_and_remove "$work"' EXIT
base=17550
rate_high=10000
cpu_seconds=8
: >"$out/runs.txt"

raw_disk() { # RUN
    python3 benches/raw_disk.py "$work" >"$out/raw-disk-$1.txt"
    local p50
    p50=$(awk '$1 == "raw_disk_p50_us" {print $2}' "$out/raw-disk-$1.txt")
    [[ -n $p50 ]] || { echo "the raw disk loops gave no figure" >&2; exit 1; }
    echo "raw $1 $p50" >>"$out/runs.txt"
}

# redis-benchmark -c 1 SET (its CSV kept as FILE) -> its p50 in ms
set_p50() { # PORT FILE
    redis-benchmark -p "$1" -c 1 -t set -d 100 -n 5000 --csv >"$2"
    tail -1 "$2" | tr -d '"' | cut -d, -f5
}

# open-loop load over TARGETS at RATE ops/s into bundle OUT
load() { # TARGETS RATE OUT
    "$loadgen" run --target "resp://$1" --rate "$2" --read-ratio 0.5 --connections 16 --warmup-s 2 \
        --duration-s 10 --out "$3" >"$3.txt"
}

# CPU per op over the high-rate load, from TICKS before and after
cpu_per_op() { # T0 T1
    awk "BEGIN { printf \"%.1f\", ($2 - $1) / $(getconf CLK_TCK) * 1e6 / ($rate_high * $cpu_seconds) }"
}

# The median over the nodes at BASE+1..3 of their WAL sync FIELD (p99, max) in INFO latency
wal_sync_median() { # BASE FIELD
    local i
    for i in 1 2 3; do
        redis-cli -p $(($1 + i)) INFO latency | tr -d '\r' | sed -n "s/.*wal_sync_usec:.*,$2=\([0-9]*\).*/\1/p"
    done | sort -n | sed -n 2p
}

# One system's three steps; appends "NAME RUN set_p50 wal_sync_p50 p50_2k p99_2k p50_10k p99_10k
# cpu_us_per_op wal_sync_p99_10k wal_sync_max_10k" to runs.txt (not in a subshell, so that the
# EXIT trap knows every process). MODE: the wal_writes the nodes must report; BIN: the server.
paxoskv_steps() { # NAME RUN MODE BIN [flags...]
    local name=$1 run=$2 mode=$3 bin=$4
    shift 4
    local dir="$work/$name-$run" leader pid
    start_cluster() {
        "$bin" cluster --base-port "$base" --data-dir "$dir" --fresh --run-seconds 600 "$@" \
            >>"$out/$name-$run-cluster.log" 2>&1 &
        pid=$!
        pids+=("$pid")
        for i in 1 2 3; do wait_ping $((base + i)); done
        leader=$(leader_port "$base")
    }
    stop_cluster() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
    start_cluster "$@"
    # The mode the nodes really run, as INFO reports it.
    redis-cli -p "$leader" INFO | tr -d '\r' | grep -E '^(durability|wal_writes):' >"$out/$name-$run-config.txt"
    grep -qx "wal_writes:$mode" "$out/$name-$run-config.txt" \
        || { echo "$name: the cluster runs $(cat "$out/$name-$run-config.txt")" >&2; exit 1; }
    local p50 wal
    p50=$(set_p50 "$leader" "$out/$name-$run-set.csv")
    wal=$(redis-cli -p "$leader" INFO latency | tr -d '\r' | sed -n 's/.*wal_sync_usec:.*p50=\([0-9]*\).*/\1/p')
    wal=${wal:--}
    stop_cluster
    local targets="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
    start_cluster "$@"
    load "$targets" 2000 "$out/$name-$run-2k"
    stop_cluster
    start_cluster "$@"
    local servers t0 t1
    servers=$(pgrep -P "$pid" | tr '\n' ' ')
    load "$targets" "$rate_high" "$out/$name-$run-10k" &
    local lg=$!
    pids+=("$lg")
    sleep 3
    # shellcheck disable=SC2086
    t0=$(cpu_ticks $servers)
    sleep "$cpu_seconds"
    # shellcheck disable=SC2086
    t1=$(cpu_ticks $servers)
    wait "$lg"
    local sync99 syncmax
    sync99=$(wal_sync_median "$base" p99)
    syncmax=$(wal_sync_median "$base" max)
    stop_cluster
    echo "$name $run $p50 $wal $(load_p50_p99 "$out/$name-$run-2k") $(load_p50_p99 "$out/$name-$run-10k")" \
        "$(cpu_per_op "$t0" "$t1") ${sync99:--} ${syncmax:--}" >>"$out/runs.txt"
}

redis_steps() { # NAME RUN [redis flags...]
    local name=$1 run=$2
    shift 2
    local port=17596
    mkdir -p "$work/$name-$run"
    redis-server --port "$port" --dir "$work/$name-$run" --save '' "$@" >"$out/$name-$run-server.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_ping "$port"
    local p50 t0 t1
    p50=$(set_p50 "$port" "$out/$name-$run-set.csv")
    load "127.0.0.1:$port" 2000 "$out/$name-$run-2k"
    load "127.0.0.1:$port" "$rate_high" "$out/$name-$run-10k" &
    local lg=$!
    pids+=("$lg")
    sleep 3
    t0=$(cpu_ticks "$pid")
    sleep "$cpu_seconds"
    t1=$(cpu_ticks "$pid")
    wait "$lg"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$name $run $p50 - $(load_p50_p99 "$out/$name-$run-2k") $(load_p50_p99 "$out/$name-$run-10k")" \
        "$(cpu_per_op "$t0" "$t1") - -" >>"$out/runs.txt"
}

for run in $(seq "$runs"); do
    echo "run $run: raw disk..."
    raw_disk "$run"
    if [[ -n $before ]]; then
        systems=(this before)
    else
        systems=(async inline)
    fi
    if ((run % 2 == 0)); then systems=("${systems[1]}" "${systems[0]}"); fi
    for system in "${systems[@]}"; do
        echo "run $run: paxoskv, $system..."
        case $system in
            this) paxoskv_steps this "$run" async "$paxoskv" ;;
            before) paxoskv_steps before "$run" async "$before" ;;
            *) paxoskv_steps "$system" "$run" "$system" "$paxoskv" --wal-writes "$system" ;;
        esac
    done
    echo "run $run: AOF Redis..."
    redis_steps redis-aof "$run" --appendonly yes --appendfsync always
    echo "run $run: Redis..."
    redis_steps redis "$run" --appendonly no
done

python3 - "$out" "$command_line" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)" "$before" <<'PY'
import os, statistics, sys
out, command, commit, before = sys.argv[1:5]
rows = {}
raw = []
for line in open(os.path.join(out, "runs.txt")):
    f = line.split()
    if f[0] == "raw":
        raw.append(float(f[2]))
    else:
        rows.setdefault(f[0], []).append([None if v == "-" else float(v) for v in f[2:]])
def med(name, i):
    vals = [r[i] for r in rows.get(name, []) if r[i] is not None]
    return statistics.median(vals) if vals else None
fmt = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"
n = len(raw)
if before:
    names = ["this", "before"]
    head = [
        f"# paxoskv's WAL writes: this build and an earlier binary ({os.path.basename(out)}, commit {commit})",
        "",
        f"Command: `{command}`. Durability sync everywhere. Medians over {n} runs, the systems interleaved in",
        "each run (the two paxoskv binaries swap order from run to run), each paxoskv step on a fresh local",
        f"3-node cluster, both with `wal_writes = \"async\"` (the default). `this`: commit {commit}; `before`:",
        f"`{before}`.",
    ]
else:
    names = ["async", "inline"]
    head = [
        f"# paxoskv's WAL writes: through io_uring or inline ({os.path.basename(out)}, commit {commit})",
        "",
        f"Command: `{command}`. Durability sync everywhere. Medians over {n} runs, the systems interleaved in",
        "each run (the two paxoskv modes swap order from run to run), each paxoskv step on a fresh local",
        "3-node cluster. `async` is the default (`wal_writes = \"async\"`: WAL writes through io_uring; on a",
        "disk without FUA the kernel runs an O_DSYNC write on one of its worker threads); `inline`",
        "(`--wal-writes inline`) makes each record write a blocking system call on the shard's own thread.",
    ]
lines = head + [
    "SET -c 1: `redis-benchmark -c 1 -t set -d 100` at the leader, with the leader's WAL sync p50 over it",
    "(`INFO latency`, `wal_sync`: the histogram's bucket bound; a bucket is a sixteenth of a power of two, so",
    "271 us means 256-271 us). 2k/s and 10k/s: `loadgen run --read-ratio 0.5 --connections 16` over",
    "every node, 10 s after a 2 s warmup. CPU: the servers' user + system ticks per operation over 8 s",
    "of the 10k/s window (all three nodes, every thread, io_uring's workers included; block-layer",
    "completions in kernel threads are charged to no system). WAL sync p99 and max at 10k/s: each",
    "node's `wal_sync` histogram after the 10k/s step (since the cluster started), the median over the",
    "three nodes (bucket bounds, as above). Raw disk: three concurrent O_DIRECT 4 KiB",
    f"overwrite + fdatasync loops, p50 {statistics.median(raw):.0f} us (median of the runs). Every",
    "run's figures: `runs.txt`; the mode each cluster ran in, from its `INFO`: `*-config.txt`.",
    "Errors: the requests answered with an error or timed out at 2k/s and 10k/s, summed over every run",
    "(loadgen's `errors` and `timeouts`, `*-2k.txt` and `*-10k.txt`).",
    "",
    "| system | SET -c 1 p50 (ms) | WAL sync p50 (us) | WAL sync / raw disk | 2k/s p50 (ms) | 2k/s p99 (ms) "
    "| 10k/s p50 (ms) | 10k/s p99 (ms) | CPU us/op at 10k/s | CPU x Redis | 10k/s WAL sync p99 (us) "
    "| 10k/s WAL sync max (us) | errors |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
def errors(name):
    total = 0
    for f in os.listdir(out):
        if f.startswith(name + "-") and f[len(name) + 1:].split("-")[0].isdigit() and f.endswith(("-2k.txt", "-10k.txt")):
            for line in open(os.path.join(out, f)):
                v = line.split()
                if len(v) >= 14 and v[0] == "0" and v[1] == "rate" and v[3] == "all":
                    total += int(v[12]) + int(v[13])
    return total
redis_cpu = med("redis", 6)
for name in names + ["redis-aof", "redis"]:
    wal = med(name, 1)
    cpu = med(name, 6)
    lines.append(
        f"| {name} | {fmt(med(name, 0))} | {fmt(wal, 0)} | {fmt(wal / statistics.median(raw) if wal else None, 2)} "
        f"| {fmt(med(name, 2))} | {fmt(med(name, 3))} | {fmt(med(name, 4))} | {fmt(med(name, 5))} "
        f"| {fmt(cpu, 1)} | {fmt(cpu / redis_cpu if cpu and redis_cpu else None, 2)} "
        f"| {fmt(med(name, 7), 0)} | {fmt(med(name, 8), 0)} | {errors(name)} |"
    )
open(os.path.join(out, "README.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "bundle: $out"
