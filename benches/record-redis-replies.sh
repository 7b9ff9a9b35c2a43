#!/usr/bin/env bash
# Record the replies of redis-server 7.0 into tests/redis_compat/*.txt, the
# specification that tests/redis_compat.rs checks paxoskv against in CI.
#
# For each transcript it starts a fresh `redis-server --port <free port
# from 30900> --save '' --appendonly no` in target/redis-record/ (with
# --requirepass when the transcript has a %requirepass header), replays
# every case over a raw TCP socket in RESP2 and in RESP3, rewrites the
# transcript's reply lines with the bytes Redis answered, and stops it.
# Review the result with `git diff tests/redis_compat`.
#
# Needs redis-server 7.0.x (benches/install-deps.sh installs Debian's);
# REDIS_SERVER=/path/to/redis-server picks another binary, and
# RECORD_ANY_VERSION=1 accepts a version other than 7.0.
set -euo pipefail
cd "$(dirname "$0")/.."
redis_server=${REDIS_SERVER:-redis-server}
if ! command -v "$redis_server" >/dev/null; then
    echo "no $redis_server on PATH: run benches/install-deps.sh" >&2
    exit 1
fi
"$redis_server" --version
cargo test --release --test redis_compat -- --ignored --exact record_redis_replies --nocapture
git diff --stat -- tests/redis_compat || true
