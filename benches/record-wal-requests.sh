#!/usr/bin/env bash
# Device requests per WAL sync under load: a fresh local 3-node cluster of
# this build (and of --before BIN, interleaved), `redis-benchmark -c 50
# -P 16 -t set` at the leader, and over a window in the middle of it the
# block layer's requests counted by kind (perf's block:block_rq_issue
# tracepoint, every device) next to the WAL syncs the three nodes report
# (`paxoskv_fsync_seconds_count`). Kinds, as the block layer prints them:
#   WS   a synchronous data write (records, or zeros written ahead)
#   WSM  a synchronous metadata write (the file's inode, a journal block)
#   FF   a cache flush
# Counts, not timings: they move little from run to run on a noisy host.
# Throughput is printed beside them for reference only.
#
# And over the same window, how long a sync takes: as the syncers see it
# (`paxoskv_fsync_seconds`, from the syncer starting a sync until it has
# resumed after it, mean over the three nodes) next to the kernel's part of
# it (perf's io_uring:io_uring_submit_req and io_uring_complete tracepoints:
# each DMA write (WRITE_FIXED, the WAL's records and the zeros written
# ahead of them) from its submission to io_uring until its completion was
# posted). The rest is spent in the node: a write queued by the syncer
# waits for its executor to finish the tasks it is running before it is
# submitted, its completion waits for the executor's next poll, and a sync
# that wrote zeros ahead waits for that write too (how the rest splits
# between these is not measured).
#
#   benches/record-wal-requests.sh [--before BIN] [--runs N] [--label NAME]
#
# Only the requests to the device that holds the data directory count;
# kinds other than those three (FUA writes, async writes, reads) go to
# `other`.
#
# Needs root (perf tracepoints), perf, redis-server/redis-benchmark
# (benches/install-deps.sh) and the release build. Ports 17561-17563 (peers
# 18660, 18760, 18860, metrics 19561-19563). Writes
# results/wal-requests/<label>-<UTC>/: README.md (the table and the
# command) and each run's raw counts.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-wal-requests.sh $*"
before=""
runs=3
label=run
window_s=3
while [[ $# -gt 0 ]]; do
    case $1 in
        --before) before=$(realpath "$2"); shift ;;
        --runs) runs=$2; shift ;;
        --label) label=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $(id -u) == 0 ]] || { echo "needs root (perf tracepoints)" >&2; exit 2; }
# shellcheck source=benches/lib.sh
source benches/lib.sh
require_tools perf redis-benchmark redis-cli curl
paxoskv=$(realpath target/release/paxoskv)
out="results/wal-requests/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-wal-requests.XXXXXX)
base=17560
cluster=""
bench=""
cleanup() {
    [[ -n $bench ]] && kill "$bench" 2>/dev/null
    [[ -n $cluster ]] && kill "$cluster" 2>/dev/null && wait "$cluster" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
# The device the data directory is on, as the block tracepoints print it.
device=$(stat -c '%Hd,%Ld' "$work")

# The WAL syncs the three nodes reported so far, and their seconds: "COUNT SUM".
syncs() {
    for i in 1 2 3; do curl -s "http://127.0.0.1:$((base + 2000 + i))/metrics" || true; done |
        awk '/^paxoskv_fsync_seconds_count/ { n += $NF } /^paxoskv_fsync_seconds_sum/ { s += $NF }
             END { printf "%d %.6f\n", n, s }'
}

one_run() { # NAME BIN RUN
    local name=$1 bin=$2 run=$3
    "$bin" cluster --base-port $base --data-dir "$work/data" --fresh --run-seconds 600 >"$out/$name-$run-cluster.log" 2>&1 &
    cluster=$!
    local leader
    leader=$(leader_port $base)
    redis-benchmark -p "$leader" -t set -c 50 -P 16 -n 800000 -r 100000 -d 100 --csv >"$out/$name-$run-p16.csv" &
    bench=$!
    sleep 2
    # The syncs are read inside perf's window, so both count the same span.
    export -f syncs
    export base window_s work
    perf record -q -e block:block_rq_issue,io_uring:io_uring_submit_req,io_uring:io_uring_complete -a \
        -o "$work/blk.data" -- \
        bash -c 'syncs >"$work/s0"; sleep "$window_s"; syncs >"$work/s1"' 2>"$work/perf.err" ||
        { cat "$work/perf.err" >&2; exit 1; }
    local synced sync_mean_us
    synced=$(($(cut -d' ' -f1 "$work/s1") - $(cut -d' ' -f1 "$work/s0")))
    sync_mean_us=$(awk -v n="$synced" 'NR == FNR { s0 = $2; next } { printf "%.0f", (n > 0 ? ($2 - s0) * 1e6 / n : 0) }' \
        "$work/s0" "$work/s1")
    wait "$bench"
    bench=""
    [[ $synced -gt 0 ]] || { echo "$name run $run: no WAL syncs counted (metrics ports $((base + 2001))..)" >&2; exit 1; }
    perf script -i "$work/blk.data" 2>/dev/null >"$work/events.txt"
    local kernel
    kernel=$(python3 benches/wal_write_times.py <"$work/events.txt")
    awk -v name="$name" -v run="$run" -v syncs="$synced" -v dev="$device" -v sync_us="$sync_mean_us" -v kernel="$kernel" '
            { for (i = 1; i <= NF; i++) if ($i == "block:block_rq_issue:") {
                  if ($(i + 1) == dev) { k = $(i + 2); if (k == "WS" || k == "WSM" || k == "FF") n[k]++; else n["other"]++ }
                  break } }
            END { printf "%s %s syncs %d WS %d WSM %d FF %d other %d sync_mean_us %s %s\n", name, run, syncs, n["WS"],
                         n["WSM"], n["FF"], n["other"], sync_us, kernel }' "$work/events.txt" >>"$out/counts.txt"
    kill "$cluster"; wait "$cluster" 2>/dev/null || true
    cluster=""
}

for run in $(seq "$runs"); do
    # Alternate which build goes first.
    if [[ -n $before && $((run % 2)) == 1 ]]; then
        echo "before, run $run..."; one_run before "$before" "$run"
    fi
    echo "this build, run $run..."; one_run after "$paxoskv" "$run"
    if [[ -n $before && $((run % 2)) == 0 ]]; then
        echo "before, run $run..."; one_run before "$before" "$run"
    fi
done

python3 - "$out" "$command_line" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)" \
    "$before" <<'PY'
import csv, statistics, sys
out, command, rev, before = sys.argv[1:5]
rows = [line.split() for line in open(f"{out}/counts.txt")]
# name run, then key value pairs
def rps(name, run):
    with open(f"{out}/{name}-{run}-p16.csv") as f:
        return float(list(csv.reader(f))[-1][1])
table = {}
for name, run, *pairs in rows:
    kv = dict(zip(pairs[::2], pairs[1::2]))
    syncs = int(kv["syncs"])
    per = {k: int(kv[k]) / syncs for k in ("WS", "WSM", "FF", "other")}
    per["all"] = sum(per.values())
    per["rps"] = rps(name, run)
    # Runs recorded before the timings were added have none.
    for k in ("sync_mean_us", "write_p50_us", "record_write_mean_us", "zero_writes"):
        per[k] = float(kv[k]) if k in kv else None
    per["syncs_n"] = syncs
    table.setdefault(name, []).append(per)
with open(f"{out}/README.md", "w") as f:
    f.write("# Device requests per WAL sync under `redis-benchmark -c 50 -P 16 -t set`\n\n")
    f.write(f"Produced by `{command}` at {rev}")
    f.write(f" (before: `{before}`).\n\n" if before else ".\n\n")
    f.write("A fresh local 3-node cluster per run, SETs at the leader; over a 3 s window every block request "
            "issued to the data directory's device (perf `block:block_rq_issue`) by kind, divided by the WAL "
            "syncs the three nodes reported in the same window. WS: synchronous data write; WSM: synchronous "
            "metadata write (inode, extent tree or journal); FF: cache flush; other: any other kind. Medians "
            "over the runs; SET ops/s for reference only (this host's run-to-run spread is about 15%).\n\n")
    f.write("| build | runs | WS/sync | WSM/sync | FF/sync | other/sync | requests/sync | SET ops/s |\n")
    f.write("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for name in ("before", "after"):
        if name not in table:
            continue
        runs = table[name]
        med = lambda k: statistics.median(r[k] for r in runs)
        label = "this build" if name == "after" else "before"
        f.write(f"| {label} | {len(runs)} | {med('WS'):.2f} | {med('WSM'):.2f} | {med('FF'):.2f} | "
                f"{med('other'):.2f} | {med('all'):.2f} | {med('rps'):,.0f} |\n")
    timed = {name: [r for r in runs if r["sync_mean_us"] is not None] for name, runs in table.items()}
    if any(timed.values()):
        f.write("\nHow long a sync takes over the same window: as the syncers see it (`paxoskv_fsync_seconds`: from "
                "the syncer starting a sync until it resumed after it; mean over the three nodes' syncs) and the "
                "kernel's part (io_uring tracepoints: each DMA write from its submission to io_uring until its "
                "completion was posted). A write is a group commit's records, or zeros written ahead of them "
                "(writes of 256 KiB and more, counted as zeros here; a group commit that large would count "
                "with them). The rest of a sync is spent in the node, not the kernel: the write waiting for its "
                "executor to finish the tasks it is running before it is submitted, its completion waiting for "
                "the executor's next poll, and, for a sync that wrote zeros ahead, that write (how the rest "
                "splits between these is not measured here). Medians over the runs.\n\n")
        f.write("| build | runs | sync as the syncers see it (mean µs) | a records write in the kernel (mean µs) "
                "| every write in the kernel (p50 µs) | zero writes per sync | the sync outside the kernel |\n")
        f.write("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
        for name in ("before", "after"):
            runs = timed.get(name)
            if not runs:
                continue
            med = lambda k: statistics.median(r[k] for r in runs)
            zeros = statistics.median(r["zero_writes"] / r["syncs_n"] for r in runs)
            outside = statistics.median(1 - r["record_write_mean_us"] / r["sync_mean_us"] for r in runs)
            label = "this build" if name == "after" else "before"
            f.write(f"| {label} | {len(runs)} | {med('sync_mean_us'):,.0f} | {med('record_write_mean_us'):,.0f} | "
                    f"{med('write_p50_us'):,.0f} | {zeros:.2f} | {outside:.0%} |\n")
    f.write("\nRaw counts per run: `counts.txt`; each run's redis-benchmark CSV and cluster log beside it.\n")
print(open(f"{out}/README.md").read())
PY
echo "written: $out"
