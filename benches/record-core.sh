#!/usr/bin/env bash
# Run the core bench and write a result bundle to results/core-bench/:
# criterion's raw estimates, the machine and commit that produced them, and
# a summary table (README.md) generated from those estimates.
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/core-bench
mkdir -p "$out"
# Provenance first, before this script touches the tree.
{
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet || echo ' (dirty)')"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cores: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "rustc: $(rustc --version)"
} > "$out/machine.txt.new"
cargo bench --bench core -- --noplot | tee "$out/criterion.txt"
for b in 1 64 1024; do
  cp "target/criterion/core_commit_3_replicas/commands_per_slot/$b/new/estimates.json" "$out/estimates-batch-$b.json"
done
mv "$out/machine.txt.new" "$out/machine.txt"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = []
for b in (1, 64, 1024):
    e = json.load(open(f"{out}/estimates-batch-{b}.json"))
    med = e["median"]["point_estimate"]  # ns per committed slot
    lo = e["median"]["confidence_interval"]["lower_bound"]
    hi = e["median"]["confidence_interval"]["upper_bound"]
    rows.append((b, med, lo, hi))
machine = open(f"{out}/machine.txt").read()
with open(f"{out}/README.md", "w") as f:
    f.write("# Core bench: 3 in-memory replicas, no I/O\n\n")
    f.write("Produced by `benches/record-core.sh` (which runs `cargo bench --bench core`).\n")
    f.write("Instant network and persistence: this is the core's own CPU cost for the whole\n")
    f.write("group (leader and both followers), not a network benchmark. Not durable (no I/O).\n\n")
    f.write("| commands per slot | time per slot (median, 95% CI) | slots/s | commands/s | ns per command |\n")
    f.write("| --- | --- | --- | --- | --- |\n")
    for b, med, lo, hi in rows:
        f.write(f"| {b} | {med/1000:.2f} us ({lo/1000:.2f}-{hi/1000:.2f}) | {1e9/med:,.0f} | {b*1e9/med:,.0f} | {med/b:.1f} |\n")
    f.write("\n```\n" + machine + "```\n")
PY
cat "$out/README.md"
