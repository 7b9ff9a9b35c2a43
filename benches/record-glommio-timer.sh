#!/usr/bin/env bash
# What glommio's throughput-preemption timer costs a paxoskv node, measured
# rather than guessed. glommio 0.9 arms that timer on every pass of its
# reactor (`Reactor::wait` in its `src/sys/uring.rs`): an io_uring TIMEOUT
# with a linked eventfd WRITE, and it cancels the previous one
# (ASYNC_CANCEL), whether or not the previous one ever fired. Issue 11 left
# patching or replacing glommio for it to the steering; this measures what
# the patch would buy before anyone takes that on.
#
#   benches/record-glommio-timer.sh [--runs N] [--label NAME]
#
# Builds three binaries of this commit: `stock` (the glommio Cargo.lock
# names); `kept-timer`, the same code against a copy of that glommio
# (from cargo's registry, into a temporary directory, never into this
# repository) edited so that a pass keeps an armed throughput timer until it
# fires instead of cancelling and re-arming it; and `none-timer`, against a
# copy that never arms it (the most this lever can give; glommio then
# leaves a busy task queue for I/O only on its latency ring's events and its
# 100 ms preemption timer). The edits are the few lines of Python below; the
# variants build in a git worktree under target/glommio-variant/
# (gitignored), with `[patch.crates-io]` pointing at the copy.
#
# Each run, each binary on a fresh local 3-node cluster (durability sync;
# each binary goes first in turn): `loadgen run --rate 10000
# --read-ratio 0.5 --connections 16` over every node (2 s warmup, 12 s
# measured) and over 8 s of it the servers' CPU (user + system ticks of
# every thread, io_uring workers included) and, with `perf stat -p`, their
# io_uring_enter calls, io_uring submissions (io_uring:io_uring_submit_req),
# membarrier calls and context switches, each per operation offered.
#
# Writes results/glommio-timer/<label>-<UTC time>/: README.md (medians),
# runs.txt (every run) and the raw outputs. Needs perf, redis-cli
# (benches/install-deps.sh) and a tree whose src/ and Cargo files are
# committed (every binary builds the commit). Ports 17560-17563 (peers and
# metrics +1000..+1300, +2000). About 20 s per binary and run (4 minutes
# with 4 runs), plus two builds of glommio and paxoskv.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-glommio-timer.sh $*"
runs=4
label=run
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=$2; shift ;;
        --label) label=$2; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "--runs takes a positive number" >&2; exit 2; }
# shellcheck source=benches/lib.sh
source benches/lib.sh
require_tools redis-cli perf python3 git
git diff --quiet HEAD -- src Cargo.toml Cargo.lock \
    || { echo "src/ or the Cargo files have uncommitted changes: every binary builds the commit" >&2; exit 2; }

work=$(mktemp -d /tmp/record-glommio-timer.XXXXXX)
tree=target/glommio-variant/tree
pids=()
cleanup() {
    stop_pids_and_remove "$work"
    git worktree remove --force "$tree" 2>/dev/null || true
}
trap cleanup EXIT

cargo build --release --quiet -p paxoskv --bin paxoskv
cargo build --release --quiet -p loadgen
loadgen=$(realpath target/release/loadgen)
cp target/release/paxoskv "$work/stock"

# glommio's source as this build resolved it, copied once per variant and
# edited there.
glommio_dir=$(cargo metadata --format-version 1 --locked --filter-platform "$(rustc -vV | sed -n 's/^host: //p')" \
    | python3 -c '
import json, os, sys
packages = json.load(sys.stdin)["packages"]
print(os.path.dirname(next(p["manifest_path"] for p in packages if p["name"] == "glommio")))')
glommio_version=$(basename "$glommio_dir")
edit_glommio() { # MODE DIR: copy glommio into DIR, edit its reactor (MODE kept or none)
    cp -r "$glommio_dir" "$2"
    python3 - "$1" "$2/src/sys/uring.rs" <<'PY'
# Wrap the statement that re-arms the throughput timer in a condition:
# "kept": only when the armed one is no longer pending (a pending source
# has no result); "none": never.
import sys
mode, path = sys.argv[1:]
lines = open(path).read().split("\n")
anchor = "self.throughput_preemption_timeout_src.replace(Some("
starts = [i for i, line in enumerate(lines) if line.strip() == anchor]
if len(starts) != 1:
    sys.exit(f"expected one `{anchor}` in {path}, found {len(starts)}: another glommio version?")
start = starts[0]
end = next(i for i in range(start, len(lines)) if lines[i].strip() == "));")
indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
if mode == "kept":
    guard = [
        "let pending = self.throughput_preemption_timeout_src.take().filter(|src| src.result().is_none());",
        "let rearm = pending.is_none();",
        "self.throughput_preemption_timeout_src.set(pending);",
    ]
else:
    guard = ["let rearm = false;"]
lines[end] += " }"
lines[start:start] = [indent + line for line in guard + ["if rearm {"]]
open(path, "w").write("\n".join(lines))
PY
}

git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
git worktree prune
git worktree add --quiet --detach "$tree" HEAD
cp "$tree/Cargo.toml" "$work/Cargo.toml"
for mode in kept none; do
    edit_glommio "$mode" "$work/glommio-$mode"
    cp "$work/Cargo.toml" "$tree/Cargo.toml"
    printf '\n[patch.crates-io]\nglommio = { path = "%s" }\n' "$work/glommio-$mode" >>"$tree/Cargo.toml"
    (cd "$tree" && CARGO_TARGET_DIR="$(realpath ..)/target" cargo build --release --quiet -p paxoskv --bin paxoskv)
    cp target/glommio-variant/target/release/paxoskv "$work/$mode-timer"
done
names=(stock kept-timer none-timer)

out="results/glommio-timer/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
base=17560
rate=10000
seconds=8
ops=$((rate * seconds))
: >"$out/runs.txt"

# perf stat's CSV -> the count of EVENT per offered operation
per_op() { # CSV EVENT
    awk -F, -v event="$2" -v ops="$ops" '$3 == event { printf "%.3f", $1 / ops; found = 1 } END { if (!found) print "-" }' "$1"
}

# One binary on a fresh cluster; appends "NAME RUN cpu_us_per_op enter sqe membarrier cs p50 p99" to runs.txt
measure() { # NAME RUN
    local name=$1 run=$2 dir="$work/$1-$2" pid servers t0 t1 lg
    "$work/$name" cluster --base-port "$base" --data-dir "$dir" --fresh --run-seconds 120 \
        >"$out/$name-$run-cluster.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    for i in 1 2 3; do wait_ping $((base + i)); done
    leader_port "$base" >/dev/null
    servers=$(pgrep -P "$pid" | tr '\n' ' ')
    "$loadgen" run --target "resp://127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))" \
        --rate "$rate" --read-ratio 0.5 --connections 16 --warmup-s 2 --duration-s 12 \
        --out "$out/$name-$run-10k" >"$out/$name-$run-10k.txt" &
    lg=$!
    pids+=("$lg")
    sleep 4
    # shellcheck disable=SC2086
    t0=$(cpu_ticks $servers)
    perf stat -x, -o "$out/$name-$run-perf.csv" \
        -e syscalls:sys_enter_io_uring_enter,io_uring:io_uring_submit_req,syscalls:sys_enter_membarrier,context-switches \
        -p "$(echo $servers | tr ' ' ',')" -- sleep "$seconds"
    # shellcheck disable=SC2086
    t1=$(cpu_ticks $servers)
    wait "$lg"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    local csv="$out/$name-$run-perf.csv"
    echo "$name $run" \
        "$(awk "BEGIN { printf \"%.1f\", ($t1 - $t0) / $(getconf CLK_TCK) * 1e6 / $ops }")" \
        "$(per_op "$csv" syscalls:sys_enter_io_uring_enter)" "$(per_op "$csv" io_uring:io_uring_submit_req)" \
        "$(per_op "$csv" syscalls:sys_enter_membarrier)" "$(per_op "$csv" context-switches)" \
        "$(load_p50_p99 "$out/$name-$run-10k")" >>"$out/runs.txt"
}

for run in $(seq "$runs"); do
    # Each binary first in turn, so that none always runs on the freshest machine.
    for i in 0 1 2; do
        name=${names[$(((run + i) % 3))]}
        measure "$name" "$run"
        tail -1 "$out/runs.txt"
    done
done

python3 - "$out" "$command_line" "$(git rev-parse --short HEAD)" "$glommio_version" "$runs" <<'PY'
import statistics, sys
out, command, commit, glommio, runs = sys.argv[1:]
rows = [line.split() for line in open(f"{out}/runs.txt")]
columns = ["CPU us/op", "io_uring_enter/op", "io_uring submissions/op", "membarrier/op",
           "context switches/op", "p50 (ms)", "p99 (ms)"]
def median(name, i):
    values = [float(r[2 + i]) for r in rows if r[0] == name and r[2 + i] != "-"]
    return statistics.median(values) if values else None
medians = {name: [median(name, i) for i in range(len(columns))] for name in ("stock", "kept-timer", "none-timer")}
def cell(v):
    return "-" if v is None else (f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}")
lines = [
    "# glommio's throughput-preemption timer: re-armed every pass (stock), kept until it fires, or never armed",
    "",
    f"Produced by `{command}` at commit {commit}, against {glommio}.",
    "",
    "`stock`: paxoskv as built. `kept-timer`: the same commit against a copy of that glommio whose",
    "reactor keeps an armed throughput timer until it fires instead of cancelling and re-arming it on",
    "every pass. `none-timer`: against a copy that never arms it. (The script's edits; the copies stay",
    "out of the repository.) Each run, each binary on a",
    "fresh local 3-node cluster (durability sync): `loadgen run --rate 10000 --read-ratio 0.5",
    "--connections 16` over every node; the servers' CPU (user + system, every thread) and `perf stat`",
    "counts over 8 s of the measured window, per operation offered. Medians over "
    f"{runs} runs; every run in `runs.txt`.",
    "",
    "| binary | " + " | ".join(columns) + " |",
    "| --- | " + " | ".join("---:" for _ in columns) + " |",
]
for name, values in medians.items():
    lines.append(f"| {name} | " + " | ".join(cell(v) for v in values) + " |")
stock = medians["stock"][0]
for name in ("kept-timer", "none-timer"):
    if stock and medians[name][0]:
        lines += ["", f"CPU per op, {name} / stock: {medians[name][0] / stock:.3f} (medians)."]
# What the CPU per op moves with from run to run, whatever the binary.
cpu = [float(r[2]) for r in rows]
enters = [float(r[3]) for r in rows if r[3] != "-"]
p50s = [float(r[7]) for r in rows]
if len(enters) == len(cpu) and len(set(cpu)) > 1 and len(set(enters)) > 1 and len(set(p50s)) > 1:
    lines += ["", f"Over all {len(rows)} runs, CPU per op against io_uring_enter calls per op (one or more per "
              f"reactor pass): Pearson r = {statistics.correlation(enters, cpu):.2f}; against p50: "
              f"r = {statistics.correlation(p50s, cpu):.2f}."]
lines += ["", "Raw outputs: `*-10k/` (loadgen bundles), `*-perf.csv` (perf stat), `*-cluster.log`."]
open(f"{out}/README.md", "w").write("\n".join(lines) + "\n")
PY
echo "bundle: $out"
