# Helpers the record-*.sh scripts source (not run on its own).

# Stop with a pointer to benches/install-deps.sh unless every tool is on PATH.
require_tools() { # TOOL...
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$tool is missing (benches/install-deps.sh)" >&2; exit 2; }
    done
}

# CPU ticks (user + system) of the given processes and their threads.
cpu_ticks() {
    local total=0 pid stat
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat")
        stat=${stat##*) }
        read -r -a f <<<"$stat"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# The client port of shard 0's leader in a local 3-node cluster whose node i
# listens on BASE+i (waits up to about 20 s for an election).
leader_port() { # BASE
    local base=$1 i
    for _ in $(seq 200); do
        for i in 1 2 3; do
            if redis-cli -p $((base + i)) INFO replication 2>/dev/null | grep -q "shard0_role:leader"; then
                echo $((base + i)); return 0
            fi
        done
        sleep 0.1
    done
    echo "no leader on ports $((base + 1))-$((base + 3))" >&2; return 1
}
