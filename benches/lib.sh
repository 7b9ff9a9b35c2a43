# Helpers the record-*.sh scripts source (not run on its own).

# Stop with a pointer to benches/install-deps.sh unless every tool is on PATH.
require_tools() { # TOOL...
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$tool is missing (benches/install-deps.sh)" >&2; exit 2; }
    done
}

# CPU ticks of the given processes and their threads: "USER SYSTEM".
split_ticks() {
    local user=0 sys=0 pid stat
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat")
        stat=${stat##*) }
        read -r -a f <<<"$stat"
        user=$((user + f[11])); sys=$((sys + f[12]))
    done
    echo "$user $sys"
}

# CPU ticks (user + system) of the given processes and their threads.
cpu_ticks() {
    local user sys
    read -r user sys < <(split_ticks "$@")
    echo $((user + sys))
}

# Wait until a RESP server answers PING on PORT (about 20 s at most).
wait_ping() { # PORT
    for _ in $(seq 200); do
        redis-cli -p "$1" PING 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    echo "port $1 does not answer" >&2; return 1
}

# An EXIT trap's work: kill the processes in the caller's `pids` array,
# wait for them, and remove DIR.
stop_pids_and_remove() { # DIR
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$1"
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

# A loadgen bundle's summary.csv -> "p50 p99" in ms of its "all" row
load_p50_p99() { # BUNDLE
    python3 - "$1/summary.csv" <<'PY'
import csv, sys
row = next(r for r in csv.DictReader(open(sys.argv[1])) if r["op"] == "all")
print(f"{float(row['p50_us']) / 1000:.3f} {float(row['p99_us']) / 1000:.3f}")
PY
}

# The process listening on TCP PORT (a node: its client port).
pid_of() { # PORT
    ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}
