#!/usr/bin/env bash
# Record the comparisons behind results/README.md, one after the other on a
# quiet machine (nothing else running):
#   1. results/profiles: paxoskv's optimization profiles (tuning/*.toml),
#      baseline -> all, 3 interleaved repeats, sustainable throughput at
#      p99 <= 5 ms;
#   2. results/systems: paxoskv (all) vs etcd 3.4 (3 members, fsync) vs
#      unreplicated Redis, same loadgen and workload, 3 repeats;
#   3. results/loadgen-accuracy and results/stall (the measurement checks)
#      and results/failover (a leader killed under load);
# then regenerates results/README.md. Takes about 30 minutes.
# Needs redis-server, redis-benchmark, etcd and protoc: benches/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p paxoskv --bin paxoskv
cargo build --release -p loadgen --features etcd
workload=(--read-ratio 0.5 --keys 100000 --value-bytes 100 --connections 16
          --find-max --p99-ms 5 --step-duration-s 3 --step-warmup-s 1 --bisect-steps 3)
if [[ ${SKIP_PROFILES:-} != 1 ]]; then
    rm -rf results/profiles
    ./target/release/loadgen compare tuning/baseline.toml tuning/batching.toml tuning/pipelining.toml \
        tuning/lease.toml tuning/all.toml --repeats "${REPEATS:-3}" "${workload[@]}" --rate-start 1000 --ramp-factor 1.5 \
        --out results/profiles
fi
if [[ ${SKIP_SYSTEMS:-} != 1 ]]; then
    rm -rf results/systems
    ./target/release/loadgen compare benches/systems/etcd.toml benches/systems/paxoskv.toml benches/systems/redis.toml \
        --repeats "${REPEATS:-3}" --reference etcd "${workload[@]}" --rate-start 1000 --ramp-factor 2 \
        --out results/systems
fi
if [[ ${SKIP_CHECKS:-} != 1 ]]; then
    benches/record-loadgen-accuracy.sh
    benches/record-stall.sh
    benches/record-failover.sh
fi
python3 benches/results_readme.py
