#!/usr/bin/env bash
# paxoskv with `wal_writes = "async"` (the default: WAL writes through
# io_uring, whose O_DSYNC writes the kernel runs on a worker thread) next to
# `wal_writes = "inline"` (the shard's own thread makes each write, blocking),
# durability sync, run after run, interleaved, each on a fresh local
# 3-node cluster; AOF Redis (appendfsync always) and Redis beside them.
#
#   benches/record-wal-writes.sh [--runs N] [--label NAME]
#
# Each run, per system:
#   SET -c 1     redis-benchmark -c 1 -t set -d 100 at the shard leader: p50,
#                and the leader's WAL sync p50 over it (INFO latency)
#   2k/s         loadgen run --rate 2000 --read-ratio 0.5 over every node:
#                p50 and p99
#   10k/s        the same at 10000 ops/s: p50, p99, and the servers' CPU per
#                operation (user + system ticks of every process, all
#                threads, over the measured window)
# plus, once per run, the raw disk: three concurrent O_DIRECT 4 KiB
# overwrite + fdatasync loops (p50), the reference for the WAL sync.
#
# Writes results/wal-writes/<label>-<UTC time>/: README.md (medians over the
# runs), runs.txt (every figure of every run) and the raw outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-wal-writes.sh $*"
runs=3
label=run
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=$2; shift ;;
        --label) label=$2; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

source benches/lib.sh
require_tools redis-server redis-cli redis-benchmark python3
cargo build --release --quiet -p paxoskv --bin paxoskv
cargo build --release --quiet -p loadgen
paxoskv=$(realpath target/release/paxoskv)
loadgen=$(realpath target/release/loadgen)
out="results/wal-writes/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-wal-writes.XXXXXX)
pids=()
trap 'stop_pids_and_remove "$work"' EXIT
base=17550
: >"$out/runs.txt"

raw_disk() { # RUN
    python3 - "$work" <<'PY' >"$out/raw-disk-$1.txt"
import mmap, os, sys, time, multiprocessing as mp
def loop(path, q):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
    buf = mmap.mmap(-1, 4096)
    os.pwrite(fd, buf, 0); os.fdatasync(fd)
    lat, end = [], time.monotonic() + 5
    while time.monotonic() < end:
        t = time.perf_counter_ns(); os.pwrite(fd, buf, 0); os.fdatasync(fd)
        lat.append(time.perf_counter_ns() - t)
    os.close(fd); os.unlink(path); q.put(lat)
q = mp.Queue()
ps = [mp.Process(target=loop, args=(f"{sys.argv[1]}/raw-{i}", q)) for i in range(3)]
[p.start() for p in ps]
lat = sorted(sum((q.get() for _ in ps), []))
[p.join() for p in ps]
print(f"raw_disk_p50_us {lat[len(lat) // 2] / 1000:.1f}")
PY
    awk '{print $2}' "$out/raw-disk-$1.txt"
}

# CSV line of redis-benchmark -c 1 SET -> its p50 in ms
set_p50() { # PORT
    redis-benchmark -p "$1" -c 1 -t set -d 100 -n 5000 --csv | tail -1 | tr -d '"' | cut -d, -f5
}

# A loadgen run's "all" row -> "p50 p99" in ms
load_p50_p99() { # FILE
    awk '$4 == "all" { print $7, $9 }' "$1"
}

# One system's three steps; appends "NAME RUN set_p50 wal_sync_p50 p50_2k p99_2k p50_10k p99_10k
# cpu_us_per_op" to runs.txt (not in a subshell, so that the EXIT trap knows every process)
paxoskv_steps() { # NAME RUN [flags...]
    local name=$1 run=$2
    shift 2
    local dir="$work/$name-$run" leader pid
    start_cluster() {
        "$paxoskv" cluster --base-port "$base" --data-dir "$dir" --fresh --run-seconds 600 "$@" \
            >>"$out/$name-$run-cluster.log" 2>&1 &
        pid=$!
        pids+=("$pid")
        for i in 1 2 3; do wait_ping $((base + i)); done
        leader=$(leader_port "$base")
    }
    stop_cluster() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
    start_cluster "$@"
    local p50 wal
    p50=$(set_p50 "$leader")
    wal=$(redis-cli -p "$leader" INFO latency | tr -d '\r' | sed -n 's/.*wal_sync_usec:.*p50=\([0-9]*\).*/\1/p')
    stop_cluster
    local targets="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
    start_cluster "$@"
    "$loadgen" run --target "resp://$targets" --rate 2000 --read-ratio 0.5 --warmup-s 2 --duration-s 10 \
        --out "$out/$name-$run-2k" >"$out/$name-$run-2k.txt"
    stop_cluster
    start_cluster "$@"
    local servers t0 t1
    servers=$(pgrep -P "$pid" | tr '\n' ' ')
    "$loadgen" run --target "resp://$targets" --rate 10000 --read-ratio 0.5 --warmup-s 2 --duration-s 10 \
        --out "$out/$name-$run-10k" >"$out/$name-$run-10k.txt" &
    local lg=$!
    sleep 3
    # shellcheck disable=SC2086
    t0=$(cpu_ticks $servers)
    sleep 8
    # shellcheck disable=SC2086
    t1=$(cpu_ticks $servers)
    wait "$lg"
    stop_cluster
    local cpu
    cpu=$(awk "BEGIN { printf \"%.1f\", ($t1 - $t0) / $(getconf CLK_TCK) * 1e6 / (10000 * 8) }")
    echo "$name $run $p50 $wal $(load_p50_p99 "$out/$name-$run-2k.txt") $(load_p50_p99 "$out/$name-$run-10k.txt") $cpu" \
        >>"$out/runs.txt"
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
    p50=$(set_p50 "$port")
    "$loadgen" run --target "resp://127.0.0.1:$port" --rate 2000 --read-ratio 0.5 --warmup-s 2 --duration-s 10 \
        --out "$out/$name-$run-2k" >"$out/$name-$run-2k.txt"
    "$loadgen" run --target "resp://127.0.0.1:$port" --rate 10000 --read-ratio 0.5 --warmup-s 2 --duration-s 10 \
        --out "$out/$name-$run-10k" >"$out/$name-$run-10k.txt" &
    local lg=$!
    sleep 3
    t0=$(cpu_ticks "$pid")
    sleep 8
    t1=$(cpu_ticks "$pid")
    wait "$lg"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local cpu
    cpu=$(awk "BEGIN { printf \"%.1f\", ($t1 - $t0) / $(getconf CLK_TCK) * 1e6 / (10000 * 8) }")
    echo "$name $run $p50 - $(load_p50_p99 "$out/$name-$run-2k.txt") $(load_p50_p99 "$out/$name-$run-10k.txt") $cpu" \
        >>"$out/runs.txt"
}

for run in $(seq "$runs"); do
    echo "run $run: raw disk..."
    echo "raw $run $(raw_disk "$run")" >>"$out/runs.txt"
    echo "run $run: paxoskv, wal_writes async..."
    paxoskv_steps async "$run" --wal-writes async
    echo "run $run: paxoskv, wal_writes inline..."
    paxoskv_steps inline "$run" --wal-writes inline
    echo "run $run: AOF Redis..."
    redis_steps redis-aof "$run" --appendonly yes --appendfsync always
    echo "run $run: Redis..."
    redis_steps redis "$run" --appendonly no
done

python3 - "$out" "$command_line" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)" <<'PY'
import os, statistics, sys
out, command, commit = sys.argv[1:4]
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
lines = [
    f"# paxoskv's WAL writes: through io_uring or inline ({os.path.basename(out)}, commit {commit})",
    "",
    f"Command: `{command}`. Durability sync everywhere. Medians over {n} runs, the systems interleaved in",
    "each run, each paxoskv step on a fresh local 3-node cluster. `async` is the default (`wal_writes =",
    "\"async\"`: WAL writes through io_uring; the kernel runs an O_DSYNC write on one of its worker threads);",
    "`inline` (`--wal-writes inline`) makes each write a blocking system call on the shard's own thread.",
    "SET -c 1: `redis-benchmark -c 1 -t set -d 100` at the leader, with the leader's WAL sync p50 over it",
    "(`INFO latency`, `wal_sync`). 2k/s and 10k/s: `loadgen run --read-ratio 0.5` over every node (16",
    "connections), 10 s after a 2 s warmup. CPU: the servers' user + system ticks per operation over 8 s",
    f"of the 10k/s window (all three nodes, every thread). Raw disk: three concurrent O_DIRECT 4 KiB",
    f"overwrite + fdatasync loops, p50 {statistics.median(raw):.0f} us (median of the runs). Every",
    "run's figures: `runs.txt`.",
    "",
    "| system | SET -c 1 p50 (ms) | WAL sync p50 (us) | WAL sync / raw disk | 2k/s p50 (ms) | 2k/s p99 (ms) "
    "| 10k/s p50 (ms) | 10k/s p99 (ms) | CPU us/op at 10k/s | CPU x Redis |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
redis_cpu = med("redis", 6)
for name in ["async", "inline", "redis-aof", "redis"]:
    wal = med(name, 1)
    cpu = med(name, 6)
    lines.append(
        f"| {name} | {fmt(med(name, 0))} | {fmt(wal, 0)} | {fmt(wal / statistics.median(raw) if wal else None, 2)} "
        f"| {fmt(med(name, 2))} | {fmt(med(name, 3))} | {fmt(med(name, 4))} | {fmt(med(name, 5))} "
        f"| {fmt(cpu, 1)} | {fmt(cpu / redis_cpu if cpu and redis_cpu else None, 2)} |"
    )
open(os.path.join(out, "README.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "bundle: $out"
