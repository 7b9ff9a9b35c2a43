#!/usr/bin/env bash
# The README's failover picture: a fixed simulator seed in which the leader
# crashes, drawn by `paxoskv viz` and checked in headless Chromium
# (benches/viz-check.sh: no console messages, the views differ), zoomed on
# the failover through the URL fragment. Keeps results/viz/failover.html
# (the interactive page of the whole run) and results/viz/failover.png.
#
#   benches/record-viz-failover.sh
#
# Seed 24, 3 replicas, crashes: leader 1 (ballot 1.1) crashes at 337 ms of
# simulated time; nodes 2 and 3 stand for election at 459-461 ms and 3
# wins (ballot 2.3) at 463 ms. Needs Debian's chromium (installs nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin paxoskv
mkdir -p target/viz-failover
trace=target/viz-failover/failover.jsonl
target/release/paxoskv sim --seed 24 --crashes --duration-ms 520 --trace "$trace"
VIEW_A="#t0=325000&t1=500000" VIEW_B="#t0=325000&t1=500000&kinds=prepare,promise,accept,accepted" \
    PAXOSKV=target/release/paxoskv benches/viz-check.sh "$trace" --out-dir target/viz-failover/check --keep results/viz
