#!/usr/bin/env bash
# Debian packages the benchmarks compare against or drive (not needed to
# build or test paxoskv): redis-server and redis-benchmark (the ceiling and
# a third-party client), etcd (the replicated peer), protobuf-compiler (protoc,
# for loadgen's optional etcd target and raft-rs in benches/core-compare),
# valgrind (benches/core-compare.sh's instruction counts).
# Run as root or with sudo.
set -euo pipefail
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools etcd-server etcd-client protobuf-compiler valgrind
