#!/usr/bin/env bash
# Snapshots under a steady write load: `loadgen run` at the shard leader
# of a fresh local 3-node cluster (durability sync), R SETs per second of
# V-byte values over 100,000 keys for S seconds, so that the store is tens
# of MB and every node snapshots it (and compacts its log) while clients
# write. Per step: p50, p99, p99.9 and max over the measured window, the
# worst second's p99, the snapshots the three nodes started
# (`paxoskv_snapshots_total`; "-" for a build without that counter) and
# the errors.
#
#   benches/record-snapshot-stall.sh [--runs N] [--label NAME] [--before BIN]
#       [--rate R] [--value-bytes V] [--seconds S]
#
# --before BIN: an older build's binary (a copy of target/release/paxoskv
# built at the earlier commit), run interleaved with this build, the order
# swapped from run to run. Defaults: 3 runs, 20,000 SET/s of 1,000-byte
# values for 30 s after a 2 s warm-up (with the default snapshot interval,
# 256 MiB of commands, each node snapshots about every 13 s).
#
# Writes results/snapshot-stall/<label>-<UTC time>/: README.md (medians
# over the runs, then every run), runs.txt and each step's loadgen output
# and cluster log. Ports 17560-17563 (peers and metrics +1000..+1300,
# +2000). About 1 minute per step.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-snapshot-stall.sh $*"
runs=3
label=run
before=""
rate=20000
value_bytes=1000
seconds=30
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=$2; shift ;;
        --label) label=$2; shift ;;
        --before) before=$(realpath "$2"); shift ;;
        --rate) rate=$2; shift ;;
        --value-bytes) value_bytes=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for v in runs rate value_bytes seconds; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "--${v//_/-}: a positive number, not ${!v}" >&2; exit 2; }
done

source benches/lib.sh
require_tools redis-cli curl python3
cargo build --release --quiet -p paxoskv --bin paxoskv
cargo build --release --quiet -p loadgen
paxoskv=$(realpath target/release/paxoskv)
loadgen=$(realpath target/release/loadgen)
out="results/snapshot-stall/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-snapshot-stall.XXXXXX)
pids=()
trap 'stop_pids_and_remove "$work"' EXIT
base=17560
builds=(this)
if [[ -n $before ]]; then
    [[ -x $before ]] || { echo "--before: $before is not an executable" >&2; exit 2; }
    builds=(this before)
fi
: >"$out/runs.txt"

# The three nodes' paxoskv_snapshots_total summed, or "-" without it.
snapshots() {
    local port total=0 found=no value
    for port in $((base + 2001)) $((base + 2002)) $((base + 2003)); do
        value=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^paxoskv_snapshots_total/ { s += $NF; f = 1 } END { if (f) print s }')
        if [[ -n $value ]]; then total=$((total + ${value%.*})); found=yes; fi
    done
    if [[ $found == yes ]]; then echo "$total"; else echo "-"; fi
}

step() { # BUILD RUN
    local build=$1 run=$2 bin=$paxoskv
    [[ $build == before ]] && bin=$before
    "$bin" cluster --base-port "$base" --data-dir "$work/$build-$run" --fresh --run-seconds 600 \
        >"$out/$build-$run-cluster.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for i in 1 2 3; do wait_ping $((base + i)); done
    local leader
    leader=$(leader_port "$base")
    "$loadgen" run --target "resp://127.0.0.1:$leader" --rate "$rate" --read-ratio 0 --connections 16 \
        --value-bytes "$value_bytes" --warmup-s 2 --duration-s "$seconds" --out "$work/lg-$build-$run" \
        >"$out/$build-$run-loadgen.txt"
    local taken
    taken=$(snapshots)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$out/$build-$run-loadgen.txt" "$build" "$run" "$taken" >>"$out/runs.txt" <<'PY'
import re, sys
path, build, run, taken = sys.argv[1:5]
text = open(path).read()
row = next(l.split() for l in text.splitlines() if re.match(r"\s*\d+\s+rate \d+\s+all\s", l))
# run, "rate", R, op, offered, achieved, p50, p90, p99, p99.9, max, ok, errors, timeouts
achieved, p50, p99, p999, worst = row[5], row[6], row[8], row[9], row[10]
errors = int(row[12]) + int(row[13])
seconds = [float(m) for m in re.findall(r"^rate \d+:\s+\d+/\d+s .*?p99 ([0-9.]+) ms", text, re.M)]
print(f"{build} {run} {float(achieved):.0f} {p50} {p99} {p999} {worst} {max(seconds):.3f} {taken} {errors}")
PY
}

for run in $(seq "$runs"); do
    for k in $(seq 0 $((${#builds[@]} - 1))); do
        build=${builds[$(((run - 1 + k) % ${#builds[@]}))]}
        echo "run $run: $build..."
        step "$build" "$run"
    done
done

python3 - "$out" "$command_line" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)" \
    "$before" "$rate" "$value_bytes" "$seconds" <<'PY'
import os, statistics, sys
out, command, commit, before, rate, value_bytes, seconds = sys.argv[1:8]
rows = {}
for line in open(os.path.join(out, "runs.txt")):
    build, *figures = line.split()
    rows.setdefault(build, []).append(figures)  # run, then the step's figures
names = {"this": f"this build ({commit})", "before": f"before (`{before}`)"}
lines = [f"# Snapshots under a steady write load ({os.path.basename(out)})", "",
         f"Produced by `{command}` at commit {commit}. Each step: a fresh local 3-node cluster (durability sync), "
         f"`loadgen run --rate {rate} --read-ratio 0 --connections 16 --value-bytes {value_bytes}` at the shard "
         f"leader for {seconds} s after a 2 s warm-up, 100,000 keys: the store grows to about "
         f"{100_000 * int(value_bytes) / 1e6:,.0f} MB and every node snapshots it while the clients write. "
         "Latencies in ms over the measured window; *worst second*: the highest per-second p99; *snapshots*: "
         "the three nodes' `paxoskv_snapshots_total` at the end (\"-\": a build without the counter). Medians "
         "over the runs, every run below; the builds interleaved, the order swapped from run to run.", "",
         "| build | runs | SET/s | p50 | p99 | p99.9 | max | worst second's p99 | snapshots | errors |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
def med(col):
    values = [float(v) for v in col if v != "-"]
    return statistics.median(values) if values else None
for build in ("this", "before"):
    if build not in rows:
        continue
    cols = list(zip(*[r[1:] for r in rows[build]]))
    m = [med(c) for c in cols]
    snaps = "-" if m[6] is None else f"{m[6]:.0f}"
    lines.append(f"| {names[build]} | {len(rows[build])} | {m[0]:,.0f} | {m[1]:.2f} | {m[2]:.2f} | {m[3]:.2f} | "
                 f"{m[4]:.2f} | {m[5]:.2f} | {snaps} | {m[7]:.0f} |")
lines += ["", "Every run:", "", "| build | run | SET/s | p50 | p99 | p99.9 | max | worst second's p99 | snapshots | errors |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for build in ("this", "before"):
    for r in rows.get(build, []):
        lines.append(f"| {names[build]} | {r[0]} | {float(r[1]):,.0f} | " + " | ".join(r[2:]) + " |")
with open(os.path.join(out, "README.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
print(f"\nbundle: {out}")
PY
