#!/usr/bin/env bash
# paxoskv's consensus core next to OmniPaxos and raft-rs (issue 11, part 3):
# builds benches/core-compare (a crate outside the workspace: raft-rs needs
# protoc, see benches/install-deps.sh), runs its side-by-side binary (the
# libraries take turns, allocation counts) and its criterion bench, and
# writes a bundle to results/core-compare/<UTC time>/: the raw JSON and
# criterion output, the command, commit, machine and versions, and a table
# (README.md).
#
# Usage: benches/core-compare.sh [--quick] [--note TEXT]
#   --quick   short samples (a smoke test, not a result)
#   --note    a line for the bundle's README (e.g. what else ran)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
quick=0
note=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --note) note="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
if ! command -v protoc >/dev/null; then
  echo "protoc not found: raft-rs's build needs it (benches/install-deps.sh installs protobuf-compiler)" >&2
  exit 1
fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$root/results/core-compare/$stamp
mkdir -p "$out"
crate=benches/core-compare
# Provenance first, before this script touches the tree.
{
  echo "command: benches/core-compare.sh $*"
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
python3 "$root/benches/core_compare_table.py" "$out"
echo "bundle: $out"
