#!/usr/bin/env bash
# Install the real Redis clients that tests/clients.rs runs against a
# paxoskv cluster: redis-py 8 for python3 (sync and asyncio) and, under
# tests/clients/node/node_modules, node-redis 6 (default RESP3), node-redis
# 5 (as `redis5`) and ioredis, at the versions package-lock.json pins.
# Without them tests/clients.rs prints SKIPPED and passes.
set -euo pipefail
cd "$(dirname "$0")"
if ! python3 -c 'import redis, sys; sys.exit(int(redis.__version__.split(".")[0]) < 8)' 2>/dev/null; then
    # Debian's python3 is "externally managed": pip needs the flag to
    # install beside it.
    python3 -m pip install --quiet 'redis>=8,<9' ||
        python3 -m pip install --quiet --break-system-packages 'redis>=8,<9'
fi
(cd node && npm ci --no-audit --no-fund)
