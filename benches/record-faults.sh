#!/usr/bin/env bash
# Checked benchmarks under faults (issue 13), into results/faults/: the same
# workload (open loop, 1000 ops/s offered, half reads, 30 s measured, 1000
# keys) under each nemesis, one fault kind per run:
#
# - paxoskv (benches/systems/paxoskv.toml) under kill, stop (a planned
#   restart: SIGTERM, on which the leader hands over first), pause and
#   partition of the shard leader (--nemesis-target leader), every history
#   checked for linearizability;
# - the issue's acceptance run: tuning/all.toml at 5000 ops/s under
#   kill,pause,partition of drawn nodes;
# - the same partition run against servers with the injected bug
#   stale-lease-reads (benches/faults/stale-reads-bug.toml): the checker
#   must say "not linearizable";
# - etcd (benches/systems/etcd.toml, loadgen --features etcd) under kill and
#   pause of a drawn member (loadgen does not ask etcd who leads); no check
#   (the recorder speaks RESP only).
#
# Then python3 benches/results_readme.py writes results/faults/README.md
# and the section in results/README.md.
#
#   benches/record-faults.sh            # needs root (partitions), etcd, protoc
#
# Ports: 17600-17699 (peers 18600+, metrics 19600+). Takes about 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "needs root: partitions run the nodes in network namespaces" >&2; exit 2; }
cargo build --release --quiet -p paxoskv
cargo build --release --quiet -p loadgen --features etcd
out=results/faults
rm -rf "$out" && mkdir -p "$out"
common=(--repeats 1 --warmup-s 2 --duration-s 30 --base-port 17600 --data-dir /var/tmp/paxoskv-faults)
workload=(--rate 1000 --read-ratio 0.5 --keys 1000)
for kind in kill stop pause partition; do
    echo "== paxoskv, $kind =="
    target/release/loadgen compare benches/systems/paxoskv.toml "${common[@]}" "${workload[@]}" \
        --check linearizable --nemesis "$kind" --nemesis-target leader --out "$out/paxoskv-$kind" | tail -n 4
done
echo "== paxoskv, the issue's acceptance command =="
target/release/loadgen compare tuning/all.toml "${common[@]}" --rate 5000 \
    --check linearizable --nemesis kill,pause,partition --out "$out/acceptance" | tail -n 4
echo "== paxoskv with the injected bug stale-lease-reads, partition =="
PAXOSKV_ALLOW_INJECTED_BUGS=1 target/release/loadgen compare benches/faults/stale-reads-bug.toml "${common[@]}" \
    "${workload[@]}" --check linearizable --nemesis partition --nemesis-target leader \
    --out "$out/stale-reads-bug" | tail -n 4
for kind in kill pause; do
    echo "== etcd, $kind =="
    target/release/loadgen compare benches/systems/etcd.toml "${common[@]}" "${workload[@]}" \
        --nemesis "$kind" --out "$out/etcd-$kind" | tail -n 4
done
python3 benches/results_readme.py
