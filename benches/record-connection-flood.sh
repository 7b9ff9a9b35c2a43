#!/usr/bin/env bash
# A flood of connections at the leader: 9,000 TCP connections opened at
# once (well under `clients_max`, 10,000), each sending a PING 1 s later,
# then all closed. What it costs the cluster's leadership, and how long a
# probe client (a process of its own) on an open connection to the same
# node waits for a PING meanwhile (one PING every millisecond, from before
# the flood until after the close); the same flood and probe at a
# redis-server (`maxclients` raised past the flood) is the reference. For this build and optionally
# an older binary (--before BIN), interleaved, each run on a fresh cluster.
#
#   benches/record-connection-flood.sh [--before BIN] [--repeats N] [--floods N] [--connections N]
#
# Writes results/connection-flood/<UTC time>/: README.md (the table) and
# raw.txt (one line per run: label, floods, elections begun and leaders
# stepped down during them, the probe's p50, p99 and max PING latency in ms). Needs python3 with
# a file limit of at least connections + 100 (the script raises its own).
# Ports 17520-17529 (peers 18620+, metrics 19520+) and 6392. Takes about
# 7 s per flood, times floods x repeats x systems.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-connection-flood.sh $*"
before=""
repeats=2
floods=5
connections=9000
while [[ $# -gt 0 ]]; do
    case $1 in
        --before) before=$(realpath "$2"); shift ;;
        --repeats) repeats=$2; shift ;;
        --floods) floods=$2; shift ;;
        --connections) connections=$2; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# shellcheck source=benches/lib.sh
source benches/lib.sh
require_tools redis-server redis-cli python3
ulimit -n $((connections + 1000)) 2>/dev/null || { echo "cannot raise the file limit to $((connections + 1000))" >&2; exit 2; }
paxoskv=$(realpath target/release/paxoskv)
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)
out="results/connection-flood/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-connection-flood.XXXXXX)
base=17520
redis_port=6392
trap 'pkill -INT -f "cluster --base-port $base --data-dir $work" 2>/dev/null || true; redis-cli -p $redis_port shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# FLOODS floods at PORT_COMMAND's port (a command printing the port to
# flood, run before each flood: the leader may move), with the probe on an
# open connection to that port throughout each; prints the probe's PING
# latencies in ms: p50 p99 max over every flood.
cat >"$work/flood.py" <<'PY'
import os, signal, socket, subprocess, sys, time
if sys.argv[1] == "probe":
    # A process of its own (not a thread beside the flood: the interpreter's
    # lock would make it wait for the flood's loop): PING every millisecond
    # until SIGTERM, then print each latency in ms.
    port = int(sys.argv[2])
    latencies = []
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while not stop:
        start = time.perf_counter()
        s.sendall(b"PING\r\n")
        got = b""
        while not got.endswith(b"\r\n"):
            chunk = s.recv(100)
            if not chunk:
                break
            got += chunk
        latencies.append((time.perf_counter() - start) * 1e3)
        time.sleep(0.001)
    print(" ".join("%.3f" % x for x in latencies))
    sys.exit(0)
floods, connections, port_command = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
latencies = []
for _ in range(floods):
    port = int(subprocess.check_output(port_command, shell=True))
    prober = subprocess.Popen([sys.executable, __file__, "probe", str(port)], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    socks = []
    for _ in range(connections):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        socks.append(s)
    time.sleep(1)
    for s in socks:
        try:
            s.send(b"PING\r\n")
        except OSError:
            pass
    time.sleep(1)
    for s in socks:
        s.close()
    time.sleep(2)
    prober.send_signal(signal.SIGTERM)
    latencies += [float(x) for x in prober.communicate()[0].split()]
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))]
print("%.2f %.2f %.1f" % (pick(0.5), pick(0.99), latencies[-1]))
PY

# One run of paxoskv binary BIN labelled LABEL: appends a line to raw.txt.
run_paxoskv() { # LABEL BIN RUN
    local label=$1 bin=$2 run=$3
    local dir="$work/$label-$run" log="$work/$label-$run.log"
    "$bin" cluster --base-port "$base" --data-dir "$dir" --fresh --run-seconds 3600 >"$log" 2>&1 &
    for i in 1 2 3; do wait_ping $((base + i)); done
    leader_port "$base" >/dev/null
    local begun0 down0
    begun0=$(grep -ac "election started" "$log" || true)
    down0=$(grep -ac "stepped down" "$log" || true)
    local probe
    probe=$(python3 "$work/flood.py" "$floods" "$connections" "bash -c 'source benches/lib.sh; leader_port $base'")
    local begun down
    begun=$(( $(grep -ac "election started" "$log" || true) - begun0 ))
    down=$(( $(grep -ac "stepped down" "$log" || true) - down0 ))
    echo "$label $floods $begun $down $probe" >>"$out/raw.txt"
    pkill -INT -f "cluster --base-port $base --data-dir $dir" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}

run_redis() { # RUN
    redis-server --port "$redis_port" --save '' --appendonly no --maxclients $((connections + 100)) \
        --daemonize yes --logfile "$work/redis.log" >/dev/null
    wait_ping "$redis_port"
    local probe
    probe=$(python3 "$work/flood.py" "$floods" "$connections" "echo $redis_port")
    echo "redis $floods - - $probe" >>"$out/raw.txt"
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
}

for run in $(seq "$repeats"); do
    echo "run $run of $repeats..."
    # Interleaved, each binary first in turn.
    if [[ -n $before && $((run % 2)) -eq 0 ]]; then
        run_paxoskv before "$before" "$run"
        run_paxoskv this "$paxoskv" "$run"
    else
        run_paxoskv this "$paxoskv" "$run"
        [[ -n $before ]] && run_paxoskv before "$before" "$run"
    fi
    run_redis "$run"
done

python3 - "$out" "$command_line" "$commit" "$before" "$connections" <<'PY'
import sys
out, command_line, commit, before, connections = sys.argv[1:6]
rows = {}
for line in open(f"{out}/raw.txt"):
    label, floods, begun, down, p50, p99, worst = line.split()
    rows.setdefault(label, []).append((int(floods), begun, down, float(p50), float(p99), float(worst)))
names = {"this": f"paxoskv at {commit} (this build)", "before": f"paxoskv, the earlier binary (`{before}`)",
         "redis": "Redis, no persistence"}
lines = [
    "# A flood of connections at the leader", "",
    f"Command: `{command_line}`", "",
    f"Each flood opens {int(connections):,} TCP connections at once to the shard leader (to the redis-server for the reference), "
    "each sends a PING 1 s later, and 1 s after that all close. A probe client on an already open connection to the same "
    "node sends a PING every millisecond throughout. Each run is a fresh 3-node cluster (durability sync) taking several floods in a row; "
    "the binaries interleaved, each first in turn. Elections: elections begun and leaders stepped down over the run's floods, "
    "from the cluster's log (the leader moves: each flood goes to the leader of the moment). Every run: `raw.txt`.", "",
    "| system | floods | elections begun | leaders stepped down | probe PING p50 (ms) | p99 (ms) | max (ms) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
]
for label in ("this", "before", "redis"):
    for floods, begun, down, p50, p99, worst in rows.get(label, []):
        lines.append(f"| {names[label]} | {floods} | {begun} | {down} | {p50:.2f} | {p99:.2f} | {worst:.1f} |")
open(f"{out}/README.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "written: $out"
