#!/usr/bin/env bash
# Issue 11's latency goals, side by side in one session, on this machine:
#
#   raw disk      three concurrent O_DIRECT 4 KiB overwrite + fdatasync loops
#                 (the floor a durable replicated write waits for)
#   paxoskv       a local 3-node cluster of this build (durability sync, and
#                 `none` for the protocol cost alone), and optionally an older
#                 binary (--before BIN) for a before/after column
#   AOF Redis     redis-server --appendonly yes --appendfsync always
#   Redis         redis-server without persistence
#
# For each system: single-client SET at the leader (redis-benchmark -c 1),
# then loadgen open loop at 2000 ops/s, half reads, 16 connections over the
# nodes (p50, p99, worst second); for paxoskv also `INFO latency` (the
# latency anatomy) of the leader after each. Writes
# results/latency/<label>-<UTC time>/: README.md with the table, the
# redis-benchmark CSVs, the loadgen bundles, the INFO texts.
#
#   benches/record-latency.sh [--before BIN] [--label NAME] [--seconds N]
#
# Needs redis-server and redis-benchmark (benches/install-deps.sh) and the
# release build (cargo build --release; loadgen: cd loadgen && cargo build
# --release, or the workspace build). Ports 17500-17599. Run it on a quiet
# machine: every figure is compared with a reference measured next to it.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-latency.sh $*"
before=""
label=run
seconds=20
while [[ $# -gt 0 ]]; do
    case $1 in
        --before) before=$(realpath "$2"); shift ;;
        --label) label=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
for tool in redis-server redis-benchmark redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (benches/install-deps.sh)" >&2; exit 2; }
done
paxoskv=$(realpath target/release/paxoskv)
loadgen=$(realpath target/release/loadgen 2>/dev/null || realpath loadgen/target/release/loadgen)
out="results/latency/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-latency.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The floor: three processes, each an O_DIRECT 4 KiB overwrite + fdatasync
# loop on its own file, for 5 s; p50 and p99 of each write + sync.
raw_disk() {
    python3 - "$work" <<'PY' >"$out/raw-disk.txt"
import mmap, os, sys, time, multiprocessing as mp
def loop(path, q):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
    buf = mmap.mmap(-1, 4096)
    os.pwrite(fd, buf, 0); os.fdatasync(fd)
    lat, end = [], time.monotonic() + 5
    while time.monotonic() < end:
        t = time.perf_counter_ns(); os.pwrite(fd, buf, 0); os.fdatasync(fd)
        lat.append(time.perf_counter_ns() - t)
    os.close(fd); q.put(lat)
q = mp.Queue()
ps = [mp.Process(target=loop, args=(f"{sys.argv[1]}/raw-{i}", q)) for i in range(3)]
[p.start() for p in ps]
lat = sorted(sum((q.get() for _ in ps), []))
[p.join() for p in ps]
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000
print(f"raw_disk_p50_us {pct(0.5):.1f}\nraw_disk_p99_us {pct(0.99):.1f}\nraw_disk_samples {len(lat)}")
PY
}

wait_ping() { # port
    for _ in $(seq 200); do
        redis-cli -p "$1" PING 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    echo "port $1 does not answer" >&2; return 1
}

leader_port() { # base
    for _ in $(seq 100); do
        for i in 1 2 3; do
            if redis-cli -p $(($1 + i)) INFO replication 2>/dev/null | grep -q "shard0_role:leader"; then
                echo $(($1 + i)); return 0
            fi
        done
        sleep 0.1
    done
    echo "no leader" >&2; return 1
}

# measure NAME PORT TARGETS: the single-client SET and the open-loop run.
measure() {
    local name=$1 port=$2 targets=$3
    redis-benchmark -p "$port" -t set -c 1 -n 20000 -r 100000 -d 100 --csv >"$out/$name-set-c1.csv"
    redis-cli -p "$port" INFO latency >"$out/$name-info-latency-set-c1.txt" || true
    "$loadgen" run --target "resp://$targets" --rate 2000 --read-ratio 0.5 --connections 16 \
        --warmup-s 2 --duration-s "$seconds" --label "system=$name" --out "$out/$name-open-2k" >"$out/$name-open-2k.txt"
    redis-cli -p "$port" INFO latency >"$out/$name-info-latency-open-2k.txt" || true
}

paxoskv_system() { # NAME BIN BASE [flags...]
    local name=$1 bin=$2 base=$3
    shift 3
    "$bin" cluster --base-port "$base" --data-dir "$work/$name" --fresh --run-seconds 3600 "$@" >"$out/$name-cluster.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for i in 1 2 3; do wait_ping $((base + i)); done
    local leader
    leader=$(leader_port "$base")
    measure "$name" "$leader" "127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
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
    measure "$name" "$port" "127.0.0.1:$port"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "raw disk..."; raw_disk
echo "AOF Redis..."; redis_system redis-aof 17591 --appendonly yes --appendfsync always
echo "Redis..."; redis_system redis 17592 --appendonly no
echo "paxoskv..."; paxoskv_system paxoskv "$paxoskv" 17500
echo "paxoskv, durability none..."; paxoskv_system paxoskv-none "$paxoskv" 17510 --durability none
if [[ -n $before ]]; then
    echo "paxoskv before..."; paxoskv_system paxoskv-before "$before" 17520
    echo "paxoskv before, durability none..."; paxoskv_system paxoskv-before-none "$before" 17530 --durability none
fi

python3 - "$out" "$command_line" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)" "$before" <<'PY'
import csv, glob, json, os, sys
out, command, commit, before = sys.argv[1:5]
raw = dict(line.split() for line in open(f"{out}/raw-disk.txt"))
rows = []
for path in sorted(glob.glob(f"{out}/*-set-c1.csv")):
    name = os.path.basename(path)[: -len("-set-c1.csv")]
    r = next(csv.DictReader(open(path)))
    bundle = json.load(open(f"{out}/{name}-open-2k/bundle.json"))
    run = bundle["runs"][0]
    ops = run["ops"]["all"]
    worst = max((s["max_us"] for s in run["timeline"]), default=0)
    rows.append((name, float(r["p50_latency_ms"]), float(r["rps"]), ops["p50_us"], ops["p99_us"], worst,
                 run["achieved_ops_s"], ops["errors"] + ops["timeouts"]))
with open(f"{out}/README.md", "w") as f:
    f.write("# Latency: paxoskv next to the disk's floor, AOF Redis and Redis\n\n")
    f.write(f"Produced by `{command}` at commit {commit}" + (f" (before: `{before}`)" if before else "") + ".\n\n")
    f.write(f"Raw disk, three concurrent O_DIRECT 4 KiB overwrite + fdatasync loops: p50 **{float(raw['raw_disk_p50_us']):.0f} µs**, "
            f"p99 {float(raw['raw_disk_p99_us']):.0f} µs ({raw['raw_disk_samples']} samples).\n\n")
    f.write("| system | SET -c 1 p50 (ms) | SET -c 1 ops/s | open 2k/s p50 (µs) | p99 (µs) | worst second max (µs) | achieved ops/s | errors+timeouts |\n")
    f.write("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for row in rows:
        f.write("| {} | {:.3f} | {:,.0f} | {:,} | {:,} | {:,} | {:,.0f} | {} |\n".format(*row))
    f.write("\nSET -c 1: `redis-benchmark -t set -c 1 -n 20000 -r 100000 -d 100` at the shard's leader. Open 2k/s: "
            "`loadgen run --rate 2000 --read-ratio 0.5 --connections 16` over every node, measured from intended send times. "
            "`*-info-latency-*.txt`: the leader's `INFO latency` (the latency anatomy, cumulative since the cluster started) after each step.\n")
print(open(f"{out}/README.md").read())
PY
echo "written: $out"
