#!/usr/bin/env bash
# paxoskv's consensus core next to OmniPaxos and raft-rs (issue 11, part 3):
# builds benches/core-compare (a crate outside the workspace: raft-rs needs
# protoc, see benches/install-deps.sh), runs its side-by-side binary (the
# libraries take turns, allocation counts) and its criterion bench, and
# writes a bundle to results/core-compare/<UTC time>/: the raw JSON and
# criterion output, the command, commit, machine and versions, and a table
# (README.md). With valgrind installed it also counts instructions per
# command (benches/core_compare_instructions.py): deterministic, where the
# timings move with the machine's noise.
#
# Usage: benches/core-compare.sh [--quick] [--note TEXT] [--before REV]
#   --quick   short samples (a smoke test, not a result)
#   --note    a line for the bundle's README (e.g. what else ran)
#   --before  also count paxoskv's instructions with the core (src/) of
#             git revision REV, driven by this harness: a before/after
#             column measured in the same bundle (needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
command_line="benches/core-compare.sh $*"
quick=0
note=""
before=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --note) note="$2"; shift 2 ;;
    --before) before="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
if ! command -v protoc >/dev/null; then
  echo "protoc not found: raft-rs's build needs it (benches/install-deps.sh installs protobuf-compiler)" >&2
  exit 1
fi
if [[ -n "$before" && $quick -eq 1 ]]; then
  echo "--before adds instruction counts, which --quick skips: use one or the other" >&2
  exit 2
fi
if [[ -n "$before" ]] && ! git rev-parse --verify -q "$before^{commit}" >/dev/null; then
  echo "--before $before: not a commit of this repository" >&2
  exit 2
fi
if [[ -n "$before" ]] && ! command -v valgrind >/dev/null; then
  echo "--before counts instructions: valgrind not found (benches/install-deps.sh installs it)" >&2
  exit 1
fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$root/results/core-compare/$stamp
mkdir -p "$out"
crate=benches/core-compare
# Provenance first, before this script touches the tree.
{
  echo "command: $command_line"
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- src benches/core-compare || echo ' (dirty)')"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cores: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "rustc: $(rustc --version)"
  echo "protoc: $(protoc --version)"
  for p in omnipaxos omnipaxos_storage raft raft-proto protobuf criterion; do
    v=$(awk -v p="$p" '$0 == "name = \"" p "\"" {getline; print $3}' "$crate/Cargo.lock" | tr -d '"' | head -1)
    echo "$p: $v"
  done
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "fuzzers running before: $( (pgrep -f libfuzzer; pgrep -f 'fuzz run') | sort -u | wc -l)"
  [[ -n "$note" ]] && echo "note: $note"
} > "$out/machine.txt"
(cd "$crate" && nice -n 5 cargo build --release --all-targets)
args=()
bench_args=()
if [[ $quick -eq 1 ]]; then
  args=(--repeats 3 --sample-ms 50)
  bench_args=(--warm-up-time 0.2 --measurement-time 0.5 --sample-size 10)
fi
echo "binary: target/release/core-compare --out DIR ${args[*]:-}" >> "$out/machine.txt"
echo "criterion: cargo bench --bench compare -- --noplot ${bench_args[*]:-}" >> "$out/machine.txt"
(cd "$crate" && ./target/release/core-compare --out "$out" "${args[@]}") | tee "$out/side-by-side.txt"
rm -rf "$crate/target/criterion"
(cd "$crate" && cargo bench --bench compare -- --noplot "${bench_args[@]}") | tee "$out/criterion.txt"
mkdir -p "$out/criterion"
(cd "$crate/target/criterion" && find . -path '*/new/estimates.json' | while read -r f; do
  d=$(dirname "$(dirname "$f")")
  mkdir -p "$out/criterion/$d"
  cp "$f" "$out/criterion/$d/estimates.json"
done)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
# Where paxoskv's time goes, at the issue's goal shape (16 entries of 64
# commands) and per slot (1 entry of 1 command): perf's flat profile.
if command -v perf >/dev/null && [[ $quick -eq 0 ]]; then
  for shape in "16 64" "1 1"; do
    set -- $shape
    perf record -q -F 999 -g -o "$out/perf.data" -- "$crate/target/release/core-compare" \
      --library paxoskv --entries-per-round "$1" --commands-per-entry "$2" --repeats 5 --sample-ms 300 >/dev/null
    perf report -i "$out/perf.data" --no-children --stdio -g none --percent-limit 0.3 2>/dev/null \
      | grep -v '^$' > "$out/profile-paxoskv-$1x$2.txt"
    rm -f "$out/perf.data"
  done
  echo "profiles: perf record -F 999 -g target/release/core-compare --library paxoskv --entries-per-round E --commands-per-entry C --repeats 5 --sample-ms 300" >> "$out/machine.txt"
fi
# Instructions per command (valgrind): every library, and with --before
# paxoskv with REV's core under this same harness (a worktree of REV with
# this commit's benches/core-compare copied in, built in its own target
# directory so its dependencies stay cached between runs).
if command -v valgrind >/dev/null && [[ $quick -eq 0 ]]; then
  python3 "$root/benches/core_compare_instructions.py" "$out" "$crate/target/release/core-compare"
  echo "instructions: python3 benches/core_compare_instructions.py BUNDLE benches/core-compare/target/release/core-compare" >> "$out/machine.txt"
  if [[ -n "$before" ]]; then
    tree=$(mktemp -d)
    trap 'git -C "$root" worktree remove --force "$tree" 2>/dev/null || true' EXIT
    git worktree add -q --detach "$tree" "$before"
    rm -rf "$tree/benches/core-compare"
    mkdir -p "$tree/benches/core-compare"
    cp -r "$crate/Cargo.toml" "$crate/Cargo.lock" "$crate/src" "$crate/benches" "$tree/benches/core-compare/"
    # A core from before Replica::has_ready is drained the way its shells
    # were: ready() until one comes back empty.
    features=()
    if ! grep -q "pub fn has_ready" "$tree/src/paxos/replica.rs"; then
      features=(--features core-without-has-ready)
      echo "before: REV has no Replica::has_ready: built with --features core-without-has-ready" >> "$out/machine.txt"
    fi
    if ! grep -q "pub fn apply_owned" "$tree/src/paxos/persist.rs"; then
      features+=(--features core-without-apply-owned)
      echo "before: REV has no DurableState::apply_owned: built with --features core-without-apply-owned" >> "$out/machine.txt"
    fi
    (cd "$tree/benches/core-compare" && CARGO_TARGET_DIR="$root/$crate/target-before" nice -n 5 cargo build --release --bin core-compare "${features[@]}")
    rev=$(git rev-parse --short=7 "$before")
    python3 "$root/benches/core_compare_instructions.py" "$out" "$crate/target-before/release/core-compare" --label "paxoskv@$rev"
    echo "before: paxoskv's core at $(git rev-parse "$before") (src/ of that commit, this commit's harness), counted as paxoskv@$rev" >> "$out/machine.txt"
  fi
fi
python3 "$root/benches/core_compare_table.py" "$out"
echo "bundle: $out"
