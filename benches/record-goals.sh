#!/usr/bin/env bash
# Issue 11's goals, side by side in one session, on this machine. Every
# figure of paxoskv is set beside a reference measured minutes apart:
#
#   raw disk      three concurrent O_DIRECT 4 KiB overwrite + fdatasync loops
#                 (the floor a durable replicated write waits for)
#   paxoskv       a local 3-node cluster of this build (durability sync, and
#                 `none` for the protocol cost alone), and optionally an older
#                 binary (--before BIN) for a before/after column
#   AOF Redis     redis-server --appendonly yes --appendfsync always
#   Redis         redis-server without persistence
#
# For each system, each step on a fresh server or cluster (so `INFO latency`,
# the latency anatomy, covers that step alone; paxoskv's binaries take turns
# step by step, each going first in every other step):
#   set-c1   redis-benchmark -t set -c 1 at the leader (p50)
#   open-2k  loadgen open loop, 2000 ops/s, half reads, 16 connections over
#            the nodes (p50, p99, worst second); paxoskv's `wal_sync` p50,
#            and what each node's WAL writes held (benches/wal_write_kinds.py)
#   cpu-10k  the same at 10,000 ops/s; server CPU (user + system, every
#            server process) over the measured window / operations
#   p16      redis-benchmark -c 50 -P 16 -t set,get at the leader (ops/s)
# then find-max (`loadgen compare` of benches/systems/{paxoskv,redis-aof,
# redis}.toml: the highest rate with p99 <= 5 ms, the systems comparison's
# settings) and paxoskv at half its found rate (p99 goal: <= 2 ms).
#
# And the machine's floor in the same session (`loadgen floor`: a commit's
# messages between threads over loopback with blocking syscalls, no
# consensus code; see benches/record-floor.sh): a single client with and
# without an O_DIRECT write + fdatasync per replica, and 16 paced clients at
# 10,000 ops/s with 3 replicas (a write) and with 1 (a read at the leader);
# and the single client's and the paced clients' floors again with each
# replica on a glommio executor (`--runtime glommio`), the runtime
# paxoskv's nodes run on; the
# open-2k step's mix against the floor (16 paced clients at 2,000 ops/s,
# half of them reads the leader answers at once, the writes durable with
# a group commit at every replica: the tail the machine gives that mix);
# and the p16 step's SETs against the floor serving RESP (`loadgen floor
# --serve`), with and without a disk (group commit at every replica).
# The table marks a goal whose bound even the floor misses here, and one
# whose bound the floor on glommio misses (the single-client and CPU goals).
#
# Writes results/goals/<label>-<UTC time>/: README.md (the tables, the goals
# met or missed), goals.json, and every raw output (CSVs, loadgen bundles,
# INFO texts, CPU readings).
#
#   benches/record-goals.sh [--before BIN] [--label NAME] [--seconds N] [--no-find-max]
#
# Needs redis-server and redis-benchmark (benches/install-deps.sh) and the
# release build (cargo build --release). Ports 17500-17599 (peers 18500+,
# metrics 19500+), 6390-6391 and 7400+ (find-max). Takes about 15 minutes.
# Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-goals.sh $*"
before=""
label=run
seconds=20
find_max=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --before) before=$(realpath "$2"); shift ;;
        --label) label=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        --no-find-max) find_max=0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# shellcheck source=benches/lib.sh
source benches/lib.sh
require_tools redis-server redis-benchmark redis-cli python3
paxoskv=$(realpath target/release/paxoskv)
loadgen=$(realpath target/release/loadgen)
out="results/goals/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-goals.XXXXXX)
pids=()
trap 'stop_pids_and_remove "$work"' EXIT

# The floor: three processes, each an O_DIRECT 4 KiB overwrite + fdatasync
# loop on its own file, for 5 s; p50 and p99 of each write + sync.
raw_disk() {
    python3 benches/raw_disk.py "$work" >"$out/raw-disk.txt"
}

# paxoskv's counters summed over the nodes (slots: the largest node's
# count, every node applies every slot): peer socket writes, peer frames,
# slots, WAL syncs.
metrics_ports=""
counters() {
    local port
    for port in $metrics_ports; do curl -s "http://127.0.0.1:$port/metrics" || true; done | awk '
        /^paxoskv_peer_writes_total/ { w += $NF }
        /^paxoskv_peer_frames_out_total/ { f += $NF }
        /^paxoskv_commits_total/ { if ($NF > c) c = $NF }
        /^paxoskv_fsync_seconds_count/ { s += $NF }
        END { printf "%d %d %d %d\n", w, f, c, s }'
}

# Run one step against a fresh server: STEP NAME PORT TARGETS SERVER_PIDS...
step() {
    local step=$1 name=$2 port=$3 targets=$4
    shift 4
    case $step in
        set-c1)
            redis-benchmark -p "$port" -t set -c 1 -n 20000 -r 100000 -d 100 --csv >"$out/$name-set-c1.csv" ;;
        open-2k)
            "$loadgen" run --target "resp://$targets" --rate 2000 --read-ratio 0.5 --connections 16 \
                --warmup-s 2 --duration-s "$seconds" --label "system=$name" --out "$out/$name-open-2k" \
                >"$out/$name-open-2k.txt" ;;
        cpu-10k)
            "$loadgen" run --target "resp://$targets" --rate 10000 --read-ratio 0.5 --connections 16 \
                --warmup-s 2 --duration-s 10 --label "system=$name" --out "$out/$name-cpu-10k" \
                >"$out/$name-cpu-10k.txt" &
            local lg=$!
            sleep 2.5
            local c0 t0 c1 t1
            local m0 m1
            c0=$(cpu_ticks "$@"); t0=$(date +%s.%N); m0=$(counters)
            sleep 9
            c1=$(cpu_ticks "$@"); t1=$(date +%s.%N); m1=$(counters)
            wait "$lg"
            if [[ -n $metrics_ports ]]; then
                echo "before $m0 after $m1 (peer_writes peer_frames_out slots wal_syncs)" \
                    >"$out/$name-cpu-10k-counters.txt"
            fi
            echo "ticks_per_s $(getconf CLK_TCK) ticks $((c1 - c0)) seconds $(awk "BEGIN { print $t1 - $t0 }")" \
                >"$out/$name-cpu-10k-ticks.txt" ;;
        p16)
            redis-benchmark -p "$port" -t set,get -c 50 -P 16 -n 400000 -r 100000 -d 100 --csv \
                >"$out/$name-p16.csv" ;;
    esac
    redis-cli -p "$port" INFO latency >"$out/$name-info-latency-$step.txt" 2>/dev/null || true
}

STEPS=(set-c1 open-2k cpu-10k p16)

paxoskv_step() { # STEP NAME BIN BASE [flags...]
    local s=$1 name=$2 bin=$3 base=$4
    shift 4
    metrics_ports="$((base + 2001)) $((base + 2002)) $((base + 2003))"
    "$bin" cluster --base-port "$base" --data-dir "$work/$name" --fresh --run-seconds 3600 "$@" \
        >"$out/$name-$s-cluster.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for i in 1 2 3; do wait_ping $((base + i)); done
    local leader
    leader=$(leader_port "$base")
    # shellcheck disable=SC2046
    step "$s" "$name" "$leader" "127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))" \
        $(pgrep -P "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    if [[ $s == open-2k ]]; then
        # What each group commit wrote, node by node (a write of
        # commit-index records alone is a sync nothing waited for).
        python3 benches/wal_write_kinds.py "$work/$name"/node-*/shard-*/wal-*.log \
            >"$out/$name-open-2k-wal-writes.txt" 2>&1 || true
    fi
    metrics_ports=""
}

paxoskv_run() { # WHICH STEP, WHICH one of: after after-none before before-none
    case $1 in
        after) paxoskv_step "$2" paxoskv "$paxoskv" 17500 ;;
        after-none) paxoskv_step "$2" paxoskv-none "$paxoskv" 17510 --durability none ;;
        before) paxoskv_step "$2" paxoskv-before "$before" 17520 ;;
        before-none) paxoskv_step "$2" paxoskv-before-none "$before" 17530 --durability none ;;
    esac
}

redis_system() { # NAME PORT [redis flags...]
    local name=$1 port=$2
    shift 2
    for s in "${STEPS[@]}"; do
        rm -rf "$work/$name"; mkdir -p "$work/$name"
        redis-server --port "$port" --dir "$work/$name" --save '' "$@" >"$out/$name-$s-server.log" 2>&1 &
        local pid=$!
        pids+=("$pid")
        wait_ping "$port"
        step "$s" "$name" "$port" "127.0.0.1:$port" "$pid"
        kill "$pid"; wait "$pid" 2>/dev/null || true
    done
}

# The floor runs: NAME loadgen-floor-flags...; JSON to floor-NAME.json.
floor_run() {
    local name=$1; shift
    "$loadgen" floor --json "$out/floor-$name.json" "$@" >"$out/floor-$name.txt"
}

# The floor serving RESP (`loadgen floor --serve`: its blocking leader
# replicates every pass's commands as one batch, nothing stored) under the
# p16 step's SETs: NAME [floor flags...]. redis-benchmark's CSV to
# floor-NAME.csv; SIGTERM then ends the serving, and the floor writes its
# own summary to floor-NAME.json. Each SET is about 144 bytes of RESP (-d 100).
floor_p16() {
    local name=$1; shift
    local port=17597
    "$loadgen" floor --serve "127.0.0.1:$port" --serve-seconds 600 --request-bytes 144 \
        --json "$out/floor-$name.json" "$@" >"$out/floor-$name.txt" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_ping "$port"
    redis-benchmark -p "$port" -t set -c 50 -P 16 -n 400000 -r 100000 -d 100 --csv >"$out/floor-$name.csv"
    kill -TERM "$pid"
    wait "$pid"
}

echo "raw disk..."; raw_disk
echo "floor..."
floor_run c1-sync --ops 20000 --sync-dir "$work"
floor_run c1-none --ops 20000
floor_run c1-sync-glommio --runtime glommio --ops 20000 --sync-dir "$work"
floor_run c1-none-glommio --runtime glommio --ops 20000
floor_run rate-3 --clients 16 --rate 10000 --ops 100000 --warmup 20000
floor_run rate-1 --replicas 1 --clients 16 --rate 10000 --ops 100000 --warmup 20000
floor_run rate-3-glommio --runtime glommio --clients 16 --rate 10000 --ops 100000 --warmup 20000
floor_run rate-1-glommio --runtime glommio --replicas 1 --clients 16 --rate 10000 --ops 100000 --warmup 20000
floor_run open-2k --clients 16 --rate 2000 --read-ratio 0.5 --ops 20000 --warmup 4000 --sync-dir "$work" --group-commit
floor_p16 p16-sync --sync-dir "$work" --group-commit
floor_p16 p16-none
echo "AOF Redis..."; redis_system redis-aof 17591 --appendonly yes --appendfsync always
echo "Redis..."; redis_system redis 17592 --appendonly no
# paxoskv and, with --before, the older binary take turns step by step,
# each going first in every other step: the host's drift over the minutes
# a binary's steps take lands on both columns alike (one binary's steps
# and then the other's read a slower stretch of the host as a change).
turn=0
for s in "${STEPS[@]}"; do
    if [[ -z $before ]]; then
        order=(after after-none)
    elif ((turn % 2 == 0)); then
        order=(after after-none before before-none)
    else
        order=(before before-none after after-none)
    fi
    for which in "${order[@]}"; do
        echo "paxoskv $which, $s..."
        paxoskv_run "$which" "$s"
    done
    turn=$((turn + 1))
done

if [[ $find_max == 1 ]]; then
    fm=(--repeats 1 --read-ratio 0.5 --keys 100000 --value-bytes 100 --connections 16 --find-max --p99-ms 5
        --step-duration-s 3 --step-warmup-s 1 --bisect-steps 3 --rate-start 1000 --ramp-factor 2
        --data-dir "$work/compare")
    echo "find-max..."
    "$loadgen" compare benches/systems/paxoskv.toml benches/systems/redis-aof.toml benches/systems/redis.toml \
        "${fm[@]}" --paxoskv "$paxoskv" --out "$out/find-max" >"$out/find-max.txt" 2>&1
    if [[ -n $before ]]; then
        "$loadgen" compare benches/systems/paxoskv.toml "${fm[@]}" --paxoskv "$before" \
            --out "$out/find-max-before" >"$out/find-max-before.txt" 2>&1
    fi
    for which in find-max find-max-before; do
        [[ -d $out/$which ]] || continue
        rate=$(python3 -c "
import json, sys
c = json.load(open('$out/$which/comparison.json'))
print(next(int(p['throughput_median']) for p in c['profiles'] if p['name'] == 'paxoskv'))" 2>/dev/null || echo 0)
        if [[ $rate -gt 1 ]]; then
            bin=$paxoskv; [[ $which == find-max-before ]] && bin=$before
            "$loadgen" compare benches/systems/paxoskv.toml --repeats 1 --read-ratio 0.5 --keys 100000 \
                --value-bytes 100 --connections 16 --rate $((rate / 2)) --duration-s "$seconds" \
                --data-dir "$work/compare" --paxoskv "$bin" --out "$out/$which-half" >"$out/$which-half.txt" 2>&1
        fi
    done
fi

python3 benches/goals_table.py "$out" "$command_line" \
    "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)" "$before"
echo "written: $out"
