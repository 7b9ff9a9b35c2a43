#!/usr/bin/env bash
# How far is a single-client write from what this machine allows? One run
# sets side by side, interleaved, each measured --runs times:
#   Redis          redis-server without persistence, redis-benchmark -c 1 SET
#   floor, 1       `loadgen floor --replicas 1`: one loopback round trip,
#                  blocking syscalls (what Redis is set beside)
#   floor, 3       `loadgen floor --replicas 3`: a 3-replica commit's
#                  messages (client, leader, two followers), no consensus code
#   floor, 3, glommio  the same with each replica on a glommio executor, as
#                  paxoskv's nodes run (`--runtime glommio`)
#   paxoskv none   a fresh local 3-node cluster, durability none,
#                  redis-benchmark -c 1 SET at the leader
#   floor, 3, sync the same messages plus an O_DIRECT write + fdatasync per
#                  op at each replica, in the data directory's filesystem
#   paxoskv sync   a fresh cluster, durability sync (the default), -c 1 SET
# Each: p50 latency, and the servers' CPU per op (all three nodes; for the
# floor its replicas: threads, or processes on glommio). Then the same systems at --rate ops/s (10,000)
# from 16 connections, all SETs at the leader: `loadgen run --read-ratio 0`
# against the servers (CPU over a 9 s window), `loadgen floor --clients 16
# --rate` (its leader batches what it read in one pass).
#
#   benches/record-floor.sh [--runs N] [--ops N] [--rate N] [--label NAME]
#
# Needs redis-server, redis-benchmark and redis-cli (benches/install-deps.sh)
# and the release builds (cargo build --release --workspace). Ports 17571-17573
# (peers 18670, 18770, 18870, metrics 19571-19573) and 17579 (Redis). Writes
# results/floor/<label>-<UTC>/: README.md (the table and the command),
# summary.json and every run's raw output.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-floor.sh $*"
runs=3
ops=20000
rate=10000
label=run
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=$2; shift ;;
        --ops) ops=$2; shift ;;
        --rate) rate=$2; shift ;;
        --label) label=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# shellcheck source=benches/lib.sh
source benches/lib.sh
require_tools redis-server redis-benchmark redis-cli python3
for bin in paxoskv loadgen; do
    [[ -x target/release/$bin ]] || { echo "target/release/$bin is missing (cargo build --release --workspace)" >&2; exit 2; }
done
paxoskv=$(realpath target/release/paxoskv)
loadgen=$(realpath target/release/loadgen)
out="results/floor/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(realpath "$(mktemp -d /var/tmp/record-floor.XXXXXX)")  # as the nodes' command lines show it
base=17570
redis_port=17579
cluster=""
redis=""
cleanup() {
    set +e  # a server that already failed must not stop the cleanup
    [[ -n $cluster ]] && kill "$cluster" 2>/dev/null && wait "$cluster" 2>/dev/null
    [[ -n $redis ]] && kill "$redis" 2>/dev/null && wait "$redis" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

hz=$(getconf CLK_TCK)

# -c 1 SETs at PORT while PIDS serve; appends "NAME RUN p50_us cpu_us_per_op".
single_client() { # NAME RUN PORT PIDS...
    local name=$1 run=$2 port=$3; shift 3
    redis-benchmark -p "$port" -t set -c 1 -n 2000 -r 100000 -d 100 -q >/dev/null  # warm-up
    local c0 c1
    c0=$(cpu_ticks "$@")
    redis-benchmark -p "$port" -t set -c 1 -n "$ops" -r 100000 -d 100 --csv >"$out/$name-$run.csv"
    c1=$(cpu_ticks "$@")
    python3 - "$out/$name-$run.csv" "$name" "$run" "$((c1 - c0))" "$hz" "$ops" >>"$out/runs.txt" <<'PY'
import csv, sys
path, name, run, ticks, hz, ops = sys.argv[1:7]
rows = list(csv.reader(open(path)))
p50_ms = float(rows[-1][rows[0].index("p50_latency_ms")])
print(name, run, f"{p50_ms * 1000:.1f}", f"{int(ticks) / int(hz) * 1e6 / int(ops):.1f}")
PY
}

floor() { # NAME RUN loadgen-floor-flags...
    local name=$1 run=$2; shift 2
    "$loadgen" floor --json "$work/floor.json" "$@" >"$out/$name-$run.txt"
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(*sys.argv[2:4], "%.1f" % r["p50_us"], "%.1f" % r["replica_cpu_us_per_op"])' \
        "$work/floor.json" "$name" "$run" >>"$out/runs.txt"
}

# Open loop at $rate ops/s, 16 connections, SETs, at PORT while PIDS serve;
# appends "NAME RUN p50_us cpu_us_per_op" (CPU over 9 s in the middle).
paced() { # NAME RUN PORT PIDS...
    local name=$1 run=$2 port=$3; shift 3
    "$loadgen" run --target "resp://127.0.0.1:$port" --rate "$rate" --read-ratio 0 --connections 16 \
        --warmup-s 2 --duration-s 10 --label "system=$name" --out "$out/$name-$run" >"$out/$name-$run.txt" &
    local lg=$! c0 c1
    sleep 2.5
    c0=$(cpu_ticks "$@")
    sleep 9
    c1=$(cpu_ticks "$@")
    wait "$lg"
    python3 - "$out/$name-$run/summary.csv" "$name" "$run" "$((c1 - c0))" "$hz" "$rate" >>"$out/runs.txt" <<'PY'
import csv, sys
path, name, run, ticks, hz, rate = sys.argv[1:7]
row = next(r for r in csv.DictReader(open(path)) if r["op"] == "all")
print(name, run, row["p50_us"], f"{int(ticks) / int(hz) * 1e6 / (9 * float(rate)):.1f}")
PY
}

redis_run() { # RUN
    redis-server --port $redis_port --save '' --appendonly no >"$out/redis-$1-server.log" 2>&1 &
    redis=$!
    for _ in $(seq 200); do
        redis-cli -p $redis_port ping >/dev/null 2>&1 && break
        kill -0 "$redis" 2>/dev/null || { echo "redis-server did not start (port $redis_port taken?): $out/redis-$1-server.log" >&2; exit 1; }
        sleep 0.05
    done
    redis-cli -p $redis_port ping >/dev/null 2>&1 || { echo "redis-server on $redis_port does not answer" >&2; exit 1; }
    single_client redis "$1" $redis_port "$redis"
    paced redis-rate "$1" $redis_port "$redis"
    kill "$redis"; wait "$redis" 2>/dev/null || true
    redis=""
}

paxoskv_run() { # DURABILITY RUN
    "$paxoskv" cluster --base-port $base --data-dir "$work/data" --fresh --run-seconds 900 --durability "$1" \
        >"$out/paxoskv-$1-$2-cluster.log" 2>&1 &
    cluster=$!
    local leader pids
    leader=$(leader_port $base)
    pids=$(pgrep -f "server --config $work/data/cluster.toml" | tr '\n' ' ')
    # shellcheck disable=SC2086 # one argument per pid
    single_client "paxoskv-$1" "$2" "$leader" $pids
    # shellcheck disable=SC2086 # one argument per pid
    paced "paxoskv-$1-rate" "$2" "$leader" $pids
    kill "$cluster"; wait "$cluster" 2>/dev/null || true
    cluster=""
}

: >"$out/runs.txt"
for run in $(seq "$runs"); do
    echo "run $run of $runs..."
    redis_run "$run"
    floor floor-1 "$run" --ops "$ops" --replicas 1
    floor floor-3 "$run" --ops "$ops" --replicas 3
    floor floor-3-glommio "$run" --ops "$ops" --replicas 3 --runtime glommio
    paxoskv_run none "$run"
    floor floor-3-sync "$run" --ops "$ops" --replicas 3 --sync-dir "$work"
    paced_floor=(--clients 16 --rate "$rate" --ops $((rate * 10)) --warmup $((rate * 2)))
    floor floor-1-rate "$run" --replicas 1 "${paced_floor[@]}"
    floor floor-3-rate "$run" --replicas 3 "${paced_floor[@]}"
    paxoskv_run sync "$run"
done

python3 - "$out" "$command_line" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src loadgen || echo -dirty)" \
    "$rate" <<'PY'
import json, statistics, sys
out, command, rev, rate = sys.argv[1:5]
runs = {}
for line in open(f"{out}/runs.txt"):
    name, run, p50, cpu = line.split()
    runs.setdefault(name, []).append((float(p50), float(cpu)))
med = {name: (statistics.median(p for p, _ in rs), statistics.median(c for _, c in rs), len(rs)) for name, rs in runs.items()}
rows = [
    ("redis", "Redis, no persistence", None),
    ("floor-1", "floor: 1 replica (one loopback round trip)", None),
    ("floor-3", "floor: 3 replicas, no disk", None),
    ("floor-3-glommio", "floor: 3 replicas on glommio executors, no disk", "floor-3"),
    ("paxoskv-none", "paxoskv, durability none", "floor-3"),
    ("floor-3-sync", "floor: 3 replicas, O_DIRECT write + fdatasync each", None),
    ("paxoskv-sync", "paxoskv, durability sync", "floor-3-sync"),
]
def table(f, rows):
    """Each row's medians, and its ratios to the floor it names."""
    f.write("| what | runs | p50 (us) | CPU per op (us) | p50 / floor | CPU / floor |\n")
    f.write("| --- | ---: | ---: | ---: | ---: | ---: |\n")
    for key, label, floor in rows:
        if key not in med:
            continue
        p50, cpu, n = med[key]
        ratio = lambda i: f"{med[key][i] / med[floor][i]:.2f}x" if floor in med else ""
        f.write(f"| {label} | {n} | {p50:.0f} | {cpu:.0f} | {ratio(0)} | {ratio(1)} |\n")
json.dump({"command": command, "commit": rev, "runs": runs, "medians": {k: {"p50_us": v[0], "cpu_us_per_op": v[1]} for k, v in med.items()}},
          open(f"{out}/summary.json", "w"), indent=1)
with open(f"{out}/README.md", "w") as f:
    f.write("# A single client's write next to the machine's floor\n\n")
    f.write(f"Produced by `{command}` at {rev}.\n\n")
    f.write("Each run, interleaved: `redis-benchmark -c 1 -t set -d 100` against Redis and against the shard leader "
            "of a fresh local 3-node paxoskv cluster, and `loadgen floor`, which plays the same request's messages "
            "between threads over loopback TCP with blocking syscalls and no consensus code (on glommio: each replica a "
            "glommio executor instead; with `sync`, each "
            "replica also makes every op durable with an O_DIRECT 4 KiB overwrite + fdatasync). CPU: the servers' "
            "user + system time per op (all three paxoskv nodes; the floor's replica threads, not its client). "
            "Medians over the runs.\n\n")
    table(f, rows)
    if "paxoskv-none" in med and "floor-3-glommio" in med:
        g, n = med["floor-3-glommio"], med["paxoskv-none"]
        f.write(f"\nAgainst the floor on glommio (the same messages, each replica on a glommio executor as paxoskv's "
                f"nodes are), paxoskv with durability none is {n[0] / g[0]:.2f}x its p50 and {n[1] / g[1]:.2f}x its "
                "CPU per op: what is left is the node's own work; the rest of the gap to the blocking floor is the "
                "runtime's.\n")
    if "redis" in med and "floor-1" in med:
        f.write(f"\nRedis's p50 is {med['redis'][0] / med['floor-1'][0]:.2f}x the one-replica floor, a calibration of "
                "the client: redis-benchmark against a server that does almost nothing. ")
    f.write("Every run's figures: `runs.txt`; raw outputs beside it.\n")
    paced = [
        ("redis-rate", "Redis, no persistence", None),
        ("floor-1-rate", "floor: 1 replica", None),
        ("floor-3-rate", "floor: 3 replicas, no disk", None),
        ("paxoskv-none-rate", "paxoskv, durability none", "floor-3-rate"),
        ("paxoskv-sync-rate", "paxoskv, durability sync", "floor-3-rate"),
    ]
    if any(key in med for key, _, _ in paced):
        f.write(f"\n### At {float(rate):,.0f} ops/s from 16 connections, all SETs at the leader\n\n")
        f.write("Servers: `loadgen run --rate R --read-ratio 0 --connections 16` (open loop) at the leader, CPU over a "
                "9 s window in the middle. Floor: `loadgen floor --clients 16 --rate R`, its clients on a fixed "
                "schedule, its leader sending what it read in one pass to the followers as one batch. No floor with a "
                "disk here: the floor's blocking leader would stop reading while it writes, which no real leader "
                "does, so durable paxoskv is set beside the floor without one.\n\n")
        table(f, paced)
        if "redis-rate" in med and "floor-3-rate" in med:
            f.write(f"\nThe bare 3-replica messages cost {med['floor-3-rate'][1] / med['redis-rate'][1]:.2f}x Redis's "
                    "CPU per op at this rate.\n")
print(open(f"{out}/README.md").read())
PY
echo "written: $out"
