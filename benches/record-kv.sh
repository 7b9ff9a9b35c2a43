#!/usr/bin/env bash
# The store's own cost per command (benches/kv.rs: applying a committed
# SET, serving a GET; 100,000 keys, 100-byte values) at this commit and at
# an earlier one, side by side.
#
#   benches/record-kv.sh --before REV [--runs N] [--label NAME]
#
# Builds REV in a temporary git worktree with this commit's benches/kv.rs
# (the bench uses only KvStore::apply_bytes and KvStore::read, which REV
# must have), then runs the two bench binaries alternately, N times each
# (criterion, 1 s warm-up, 4 s of measurement). Writes
# results/kv/<label>-<UTC time>/: README.md (medians over the runs, ns per
# command), runs.txt (every run's estimate) and the raw outputs. About
# 3 minutes with 3 runs, plus the builds. Run it on a quiet machine.
#
# With valgrind installed (benches/install-deps.sh), it also counts the
# instructions each binary executes applying 16,384 SETs to the filled
# store (`KV_BENCH_COUNT=1`, callgrind collecting inside `apply_counted`
# only): a figure that does not move with the machine's load, for changes
# smaller than the timings' run-to-run spread. The bench runs on the
# system's allocator (the library sets none), so allocation counts in it.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-kv.sh $*"
before=""
runs=3
label=run
while [[ $# -gt 0 ]]; do
    case $1 in
        --before) before=$2; shift ;;
        --runs) runs=$2; shift ;;
        --label) label=$2; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ -n $before ]] || { echo "--before REV is required (see --help)" >&2; exit 2; }
before_commit=$(git rev-parse --short "$before^{commit}")
after_commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src benches/kv.rs || echo -dirty)"
out="results/kv/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-kv.XXXXXX)
cleanup() {
    git worktree remove --force "$work/before" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The path of the bench binary cargo just built in target dir DIR.
bench_binary() { # DIR
    cargo bench --bench kv --no-run --message-format json 2>/dev/null --target-dir "$1" \
        | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "kv" and m.get("executable"):
        print(m["executable"])'
}

echo "building this commit's bench..."
after_bin=$(bench_binary target)
echo "building $before_commit's..."
git worktree add -q --detach "$work/before" "$before_commit"
cp benches/kv.rs "$work/before/benches/kv.rs"
# A store without `KvStore::warm` (before it existed) runs the warmed bench
# unwarmed: its node applied batches that way.
grep -q 'pub fn warm' "$work/before/src/kv/store.rs" || sed -i '/store\.warm(&batch);/d' "$work/before/benches/kv.rs"
grep -q 'name = "kv"' "$work/before/Cargo.toml" || printf '\n[[bench]]\nname = "kv"\nharness = false\n' >>"$work/before/Cargo.toml"
before_bin=$(cd "$work/before" && bench_binary "$PWD/target")

: >"$out/runs.txt"
for run in $(seq "$runs"); do
    order=(before after)
    if ((run % 2 == 0)); then order=(after before); fi
    for which in "${order[@]}"; do
        bin=$after_bin
        [[ $which == before ]] && bin=$before_bin
        echo "run $run: $which..."
        "$bin" --bench --warm-up-time 1 --measurement-time 4 --noplot >"$out/$which-$run.txt" 2>&1
        # "kv/apply_set_256  time: [low estimate high]": the estimate, in µs.
        python3 - "$out/$which-$run.txt" "$which" "$run" >>"$out/runs.txt" <<'PY'
import re, sys
path, which, run = sys.argv[1:4]
scale = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3}
text = open(path).read()
for name in ("apply_set_256", "apply_set_256_warmed", "read_get_256"):
    m = re.search(name + r"\s+time:\s+\[\S+ \S+ (\S+) (\S+)", text)
    print(which, run, name, f"{float(m[1]) * scale[m[2]]:.2f}")
PY
    done
done

# Instructions executed inside apply_counted, per applied SET.
: >"$out/instructions.txt"
if command -v valgrind >/dev/null; then
    for which in before after; do
        bin=$after_bin
        [[ $which == before ]] && bin=$before_bin
        echo "counting instructions: $which..."
        KV_BENCH_COUNT=1 valgrind --tool=callgrind --toggle-collect='*apply_counted*' \
            --callgrind-out-file="$work/callgrind.$which" "$bin" >"$out/$which-instructions.txt" 2>&1
        collected=$(awk '/Collected :/ {gsub(",", "", $NF); print $NF}' "$out/$which-instructions.txt")
        sets=$(awk '/^applied [0-9]+ SETs/ {print $2}' "$out/$which-instructions.txt")
        echo "$which $collected $sets" >>"$out/instructions.txt"
        callgrind_annotate --inclusive=yes "$work/callgrind.$which" 2>/dev/null | sed -n '1,80p' >"$out/$which-callgrind.txt"
    done
fi

python3 - "$out" "$command_line" "$before_commit" "$after_commit" "$runs" <<'PY'
import os, statistics, sys
out, command, before, after, runs = sys.argv[1:6]
rows = {}
for line in open(os.path.join(out, "runs.txt")):
    which, _, name, us = line.split()
    rows.setdefault((which, name), []).append(float(us))
med = {k: statistics.median(v) for k, v in rows.items()}
what = {
    "apply_set_256": "apply a committed SET (every replica), one by one",
    "apply_set_256_warmed": "the same, the batch's keys looked up first (`KvStore::warm`, as a node applies a batch; "
    "a store without it: unwarmed)",
    "read_get_256": "serve a GET (the leader)",
}
lines = [
    "# The store's own cost per command",
    "",
    f"Command: `{command}`",
    "",
    f"`benches/kv.rs` at `{after}` (after) and at `{before}` (before, with the same bench file), run alternately, "
    f"{runs} runs each; 100,000 keys, 100-byte values, 16 pipelining sessions; time per command = "
    "criterion's estimate for a batch of 256 / 256, median over the runs. Every run: `runs.txt`, raw outputs beside it.",
    "",
    "| what | before (ns/command) | after (ns/command) | after / before |",
    "| --- | ---: | ---: | ---: |",
]
for name in what:
    if ("before", name) not in med or ("after", name) not in med:
        continue
    b, a = med[("before", name)] * 1000 / 256, med[("after", name)] * 1000 / 256
    lines.append(f"| {what[name]} | {b:.0f} | {a:.0f} | {a / b:.2f}x |")
counts = {f[0]: int(f[1]) / int(f[2]) for f in (l.split() for l in open(os.path.join(out, "instructions.txt")))}
if "before" in counts and "after" in counts:
    b, a = counts["before"], counts["after"]
    lines += ["", "Instructions per applied SET (callgrind, inside `apply_counted` only; the same in every run, "
              "unlike the times; `<which>-callgrind.txt` lists them by function, inclusive):", "",
              "| before | after | after / before |", "| ---: | ---: | ---: |", f"| {b:,.0f} | {a:,.0f} | {a / b:.2f}x |"]
open(os.path.join(out, "README.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "wrote $out"
