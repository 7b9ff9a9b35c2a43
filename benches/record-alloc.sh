#!/usr/bin/env bash
# paxoskv's memory settings side by side, run after run, interleaved, each on
# a fresh local 3-node cluster (durability sync); Redis beside them in every
# run. Three comparisons (--compare):
#
#   thp    transparent huge pages turned off for the servers (the default,
#          --transparent-huge-pages false) or as the system sets them
#          (--transparent-huge-pages true). Why: under a pipelined write
#          load `perf` put 15% of the servers' CPU in `clear_page_erms`
#          under `vma_alloc_anon_folio_pmd`: mimalloc's arenas ask for huge
#          pages, freed memory goes back to the OS in smaller pieces, and
#          each huge page faulted back in is zeroed whole (2 MiB).
#   purge  mimalloc's purge delay (how long a freed page stays mapped before
#          it goes back to the OS) at its default, 1 s, and at 10 s
#          (MIMALLOC_PURGE_DELAY=10000 in the servers' environment).
#   allocator  the server binary built three ways: with mimalloc's 3.x line
#          (the default feature), its 2.x line (--no-default-features
#          --features mimalloc-v2) and the system's allocator
#          (--no-default-features). Why: under pipelined SETs `perf` put
#          about 6% of a 3.x leader's time in `mi_find_free_page`.
#   binary this commit's build against an earlier server binary (--before
#          BIN, required): a code change's end-to-end effect under
#          pipelined writes and reads, interleaved, instead of ad hoc pairs.
#
#   benches/record-alloc.sh [--compare thp|purge|allocator|binary] [--before BIN] [--runs N] [--label NAME] [--requests N] [--at leader|follower] [--perf]
#
# Each run, per system, at the shard leader (--at follower: at a follower,
# which forwards every command to the leader; Redis is its own target):
#   redis-benchmark -c 50 -P 16 -t set -n N -r 100000 -d 100, then the same
#   with -t get: ops/s, and over each the servers' CPU per operation (user +
#   system ticks of every server process, all threads) and minor page
#   faults per 1000 operations (every server process); the leader's peak
#   resident memory (VmHWM) after both.
# The settings take turns going first from run to run. With --perf, one more SET
# step per setting after the runs (not in the medians) under `perf record`
# of the three servers: the share of their samples in the kernel's page
# zeroing (`clear_page_erms`), and each profile's top symbols.
#
# Writes results/<thp|alloc|allocator|pairs>/<label>-<UTC time>/ (alloc: the
# purge comparison; pairs: the binary comparison): README.md (medians over
# the runs), runs.txt (every figure of every run) and the raw outputs. Needs redis-server, redis-cli,
# redis-benchmark (benches/install-deps.sh). Ports 17560-17563 (peers and
# metrics +1000..+1300, +2000) and 17597. About 4 minutes with 3 runs (6
# for the allocators, plus their builds).
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-alloc.sh $*"
compare=purge
profile=0
runs=3
label=run
requests=1000000
before=""
at=leader
while [[ $# -gt 0 ]]; do
    case $1 in
        --compare) compare=$2; shift ;;
        --before) before=$2; shift ;;
        --runs) runs=$2; shift ;;
        --perf) profile=1 ;;
        --label) label=$2; shift ;;
        --requests) requests=$2; shift ;;
        --at) at=$2; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

[[ $at == leader || $at == follower ]] || { echo "--at: leader or follower, not $at" >&2; exit 2; }
case $compare in
    thp) settings_order=(thp-off thp-on); directory=thp ;;
    purge) settings_order=(purge-1s purge-10s); directory=alloc ;;
    allocator) settings_order=(mimalloc-v3 mimalloc-v2 system-alloc); directory=allocator ;;
    binary) settings_order=(after before); directory=pairs ;;
    *) echo "--compare: thp, purge, allocator or binary, not $compare" >&2; exit 2 ;;
esac
if [[ $compare == binary ]]; then
    [[ -n $before && -x $before ]] || { echo "--compare binary needs --before BIN (an executable server binary)" >&2; exit 2; }
    before=$(realpath "$before")
elif [[ -n $before ]]; then
    echo "--before goes with --compare binary only" >&2; exit 2
fi

source benches/lib.sh
require_tools redis-server redis-cli redis-benchmark python3
out="results/$directory/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-alloc.XXXXXX)
pids=()
trap 'stop_pids_and_remove "$work"' EXIT
# The server binary of each setting: this commit as built by default, or
# (allocator) one build per allocator, copied aside; the default last, so
# target/ is left as a plain build finds it.
declare -A binary
if [[ $compare == allocator ]]; then
    for setting in system-alloc mimalloc-v2 mimalloc-v3; do
        case $setting in
            mimalloc-v3) features=() ;;
            mimalloc-v2) features=(--no-default-features --features mimalloc-v2) ;;
            system-alloc) features=(--no-default-features) ;;
        esac
        echo "building paxoskv ($setting)..."
        cargo build --release --quiet -p paxoskv --bin paxoskv "${features[@]}"
        cp target/release/paxoskv "$work/paxoskv-$setting"
        binary[$setting]=$work/paxoskv-$setting
    done
else
    cargo build --release --quiet -p paxoskv --bin paxoskv
    for setting in "${settings_order[@]}"; do binary[$setting]=$(realpath target/release/paxoskv); done
    if [[ $compare == binary ]]; then
        cp "$before" "$work/paxoskv-before"
        binary[before]=$work/paxoskv-before
    fi
fi
base=17560
: >"$out/runs.txt"

# Minor page faults of PIDS, summed.
minor_faults() { # PIDS...
    local p sum=0
    for p in "$@"; do sum=$((sum + $(awk '{print $10}' "/proc/$p/stat"))); done
    echo "$sum"
}

# One -P 16 benchmark of TEST at PORT while PIDS serve: "ops_s cpu_us_per_op faults_per_kop"
pipelined() { # TEST PORT CSV PIDS...
    local test=$1 port=$2 csv=$3
    shift 3
    local t0 f0 t1 f1 rps
    t0=$(cpu_ticks "$@"); f0=$(minor_faults "$@")
    redis-benchmark -p "$port" -t "$test" -c 50 -P 16 -n "$requests" -r 100000 -d 100 --csv >"$csv"
    t1=$(cpu_ticks "$@"); f1=$(minor_faults "$@")
    rps=$(tail -1 "$csv" | tr -d '"' | cut -d, -f2)
    awk "BEGIN { printf \"%s %.2f %.1f\", $rps, ($t1 - $t0) / $(getconf CLK_TCK) * 1e6 / $requests, ($f1 - $f0) * 1000 / $requests }"
}

# The servers' environment and the cluster's flags for setting NAME.
setting_args() { # NAME: sets env_args and flag_args
    env_args=()
    flag_args=()
    case $1 in
        purge-1s) env_args=(-u MIMALLOC_PURGE_DELAY) ;;
        purge-10s) env_args=(MIMALLOC_PURGE_DELAY=10000) ;;
        thp-off) flag_args=(--transparent-huge-pages false) ;;
        thp-on) flag_args=(--transparent-huge-pages true) ;;
    esac
}

# A fresh cluster of setting NAME in $work/TAG, its log in $out/TAG-cluster.log;
# sets cluster_pid (the `paxoskv cluster` process), leader (its leader's port)
# and target (the port the load goes to: the leader's, or with --at follower
# the next node's).
start_cluster() { # NAME TAG
    setting_args "$1"
    env "${env_args[@]}" "${binary[$1]}" cluster --base-port "$base" --data-dir "$work/$2" --fresh \
        --run-seconds 600 "${flag_args[@]}" >"$out/$2-cluster.log" 2>&1 &
    cluster_pid=$!
    pids+=("$cluster_pid")
    for i in 1 2 3; do wait_ping $((base + i)); done
    leader=$(leader_port "$base")
    target=$leader
    [[ $at == follower ]] && target=$((base + (leader - base) % 3 + 1))
    return 0
}

# One setting: NAME RUN; appends "NAME RUN set_ops set_cpu set_faults get_ops get_cpu get_faults hwm_kb"
paxoskv_steps() {
    local name=$1 run=$2
    start_cluster "$name" "$name-$run"
    local pid=$cluster_pid servers set get hwm
    mapfile -t servers < <(pgrep -P "$pid")
    set=$(pipelined set "$target" "$out/$name-$run-set.csv" "${servers[@]}")
    get=$(pipelined get "$target" "$out/$name-$run-get.csv" "${servers[@]}")
    local leader_pid
    leader_pid=$(pgrep -f "$work/$name-$run/cluster.toml --node-id $((leader - base))$")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$leader_pid/status")
    echo "$name $run: leader $(grep THP_enabled "/proc/$leader_pid/status" || echo 'THP_enabled: unknown')" >>"$out/thp-status.txt"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$name $run $set $get $hwm" >>"$out/runs.txt"
}

redis_steps() { # RUN
    local run=$1 port=17597
    mkdir -p "$work/redis-$run"
    redis-server --port "$port" --dir "$work/redis-$run" --save '' --appendonly no >"$out/redis-$run-server.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_ping "$port"
    local set get
    set=$(pipelined set "$port" "$out/redis-$run-set.csv" "$pid")
    get=$(pipelined get "$port" "$out/redis-$run-get.csv" "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "redis $run $set $get -" >>"$out/runs.txt"
}

echo "system setting: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)" >"$out/thp-status.txt"
for run in $(seq "$runs"); do
    # Rotate the order: each setting goes first in turn.
    first=$(((run - 1) % ${#settings_order[@]}))
    settings=("${settings_order[@]:first}" "${settings_order[@]:0:first}")
    for setting in "${settings[@]}"; do
        echo "run $run: paxoskv, $setting..."
        paxoskv_steps "$setting" "$run"
    done
    echo "run $run: Redis..."
    redis_steps "$run"
done

# One SET step of setting NAME under perf: "NAME zeroing_percent" into perf.txt.
profiled_set() { # NAME
    local name=$1
    start_cluster "$name" "$name-perf"
    local pid=$cluster_pid servers
    servers=$(pgrep -P "$pid" | paste -sd,)
    perf record -F 499 -g -p "$servers" -o "$work/$name.perf" >/dev/null 2>&1 &
    local recorder=$!
    redis-benchmark -p "$target" -t set -c 50 -P 16 -n "$requests" -r 100000 -d 100 --csv >"$out/$name-perf-set.csv"
    kill -INT "$recorder"; wait "$recorder" 2>/dev/null || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
    perf report -i "$work/$name.perf" --no-children --stdio --sort sym 2>/dev/null | grep -E '^ +[0-9]' | sed -n '1,40p' \
        >"$out/$name-perf-top.txt"
    local share
    share=$(awk '/clear_page_erms/ {sub("%", "", $1); s += $1} END {printf "%.1f", s}' "$out/$name-perf-top.txt")
    echo "$name $share" >>"$out/perf.txt"
}

if ((profile)); then
    require_tools perf
    for setting in "${settings_order[@]}"; do
        echo "perf: paxoskv, $setting..."
        profiled_set "$setting"
    done
fi

python3 - "$out" "$command_line" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)" "$compare" "$before" "$at" <<'PY'
import json, os, statistics, sys
out, command, commit, compare, before, at = sys.argv[1:7]
cols = ["set_ops_s", "set_cpu_us_per_op", "set_faults_per_kop", "get_ops_s", "get_cpu_us_per_op",
        "get_faults_per_kop", "leader_hwm_kb"]
rows = {}
for line in open(os.path.join(out, "runs.txt")):
    f = line.split()
    rows.setdefault(f[0], []).append({c: (None if v == "-" else float(v)) for c, v in zip(cols, f[2:])})
def med(name, c):
    vals = [r[c] for r in rows.get(name, []) if r[c] is not None]
    return statistics.median(vals) if vals else None
medians = {name: {c: med(name, c) for c in cols} for name in rows}
perf = {}
if os.path.exists(os.path.join(out, "perf.txt")):
    perf = {f[0]: float(f[1]) for f in (l.split() for l in open(os.path.join(out, "perf.txt")))}
json.dump({"command": command, "commit": commit, "compare": compare, "runs": rows, "medians": medians,
           "perf_zeroing_percent": perf},
          open(os.path.join(out, "summary.json"), "w"), indent=1)
fmt = lambda v, d=0: "-" if v is None else f"{v:,.{d}f}"
names = {"purge-1s": "paxoskv, purge delay 1 s (mimalloc's default)", "purge-10s": "paxoskv, purge delay 10 s",
         "thp-off": "paxoskv, transparent huge pages off (`--transparent-huge-pages false`)",
         "thp-on": "paxoskv, transparent huge pages as the system sets them (`--transparent-huge-pages true`)",
         "mimalloc-v3": "paxoskv, mimalloc 3.x (the default)", "mimalloc-v2": "paxoskv, mimalloc 2.x",
         "system-alloc": "paxoskv, the system's allocator (glibc)",
         "after": f"paxoskv at {commit} (this build)", "before": f"paxoskv, the earlier binary (`{before}`)",
         "redis": "Redis, no persistence"}
order = {"purge": ["purge-1s", "purge-10s"], "thp": ["thp-off", "thp-on"],
         "allocator": ["mimalloc-v3", "mimalloc-v2", "system-alloc"], "binary": ["after", "before"]}[compare]
title = {"purge": "paxoskv's allocator purge delay", "thp": "paxoskv with and without transparent huge pages",
         "allocator": "paxoskv's allocator", "binary": "paxoskv against an earlier binary"}[compare]
system = open(os.path.join(out, "thp-status.txt")).readline().strip()
where = "the shard leader" if at == "leader" else "a follower of the shard (it forwards every command to the leader)"
lines = [f"# {title} ({os.path.basename(out)}, commit {commit})", "",
         f"Produced by `{command}`. `redis-benchmark -c 50 -P 16 -r 100000 -d 100` at {where} of a fresh "
         "3-node cluster (durability sync), SET then GET; CPU: the servers' user + system time per operation (all "
         "three nodes); faults: minor page faults of the server processes per 1000 operations; memory: the "
         f"leader's peak RSS. Medians over {len(rows.get('redis', []))} interleaved runs; every run in `runs.txt`. "
         f"Transparent huge pages, {system} (`/sys/kernel/mm/transparent_hugepage/enabled`); each leader's own "
         "`THP_enabled` in `thp-status.txt`.", "",
         "| system | SET ops/s | SET CPU µs/op | SET faults / 1000 ops | GET ops/s | GET CPU µs/op | GET faults / 1000 ops | leader peak RSS (MiB) |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for name in order + ["redis"]:
    m = medians.get(name)
    if not m:
        continue
    hwm = m["leader_hwm_kb"] and m["leader_hwm_kb"] / 1024
    lines.append(f"| {names[name]} | {fmt(m['set_ops_s'])} | {fmt(m['set_cpu_us_per_op'], 2)} | "
                 f"{fmt(m['set_faults_per_kop'], 1)} | {fmt(m['get_ops_s'])} | {fmt(m['get_cpu_us_per_op'], 2)} | "
                 f"{fmt(m['get_faults_per_kop'], 1)} | {fmt(hwm)} |")
if compare == "binary" and rows.get("after") and rows.get("before"):
    pairs = list(zip(rows["after"], rows["before"]))
    lines += ["", "Run by run (interleaved, each binary first in turn), this build's figure over the earlier "
              "binary's:", "", "| run | SET ops/s | SET CPU µs/op | GET ops/s | GET CPU µs/op |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    for i, (a, b) in enumerate(pairs):
        cells = [f"{a[c]:,.{d}f} / {b[c]:,.{d}f}" for c, d in
                 (("set_ops_s", 0), ("set_cpu_us_per_op", 2), ("get_ops_s", 0), ("get_cpu_us_per_op", 2))]
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    cheaper = sum(a["set_cpu_us_per_op"] < b["set_cpu_us_per_op"] for a, b in pairs)
    faster = sum(a["set_ops_s"] > b["set_ops_s"] for a, b in pairs)
    lines += ["", f"This build's SET cost less CPU per operation in {cheaper} of {len(pairs)} runs and went faster "
              f"in {faster} of {len(pairs)}."]
if perf:
    shares = ", ".join(f"{names[n]}: {perf[n]:.1f}%" for n in order if n in perf)
    lines += ["", "Under `perf record -F 499 -g` of the three servers, one more SET step per setting (not in the "
              f"medians), the share of their samples in the kernel's page zeroing (`clear_page_erms`): {shares}. "
              "Each profile's top symbols: `<setting>-perf-top.txt`."]
open(os.path.join(out, "README.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "written: $out"
