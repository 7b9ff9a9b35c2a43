#!/usr/bin/env bash
# A client that never reads: it pipelines GETs of one large value (900 KB)
# and never reads a reply. What it costs the servers' memory and the
# cluster's leadership, sent to a follower (every GET forwarded to the
# leader) and, as the reference, to a redis-server, which holds a client's
# unread replies without limit by default (`client-output-buffer-limit
# normal 0 0 0`). For this build and optionally an older binary (--before
# BIN), interleaved, each run on a fresh cluster; the GETs start at once
# after the SET (the follower may not have the value yet) and, in a second
# run, 1 s after it (the follower has applied it).
#
#   benches/record-nonreading-client.sh [--before BIN] [--repeats N] [--gets N] [--hold-seconds S]
#
# Writes results/nonreading-client/<UTC time>/: README.md (the table) and
# raw.txt (one line per run: label, seconds between the SET and the GETs,
# the leader's and the follower's peak
# RSS in MB while the client holds its connection, elections after the
# first, messages the peer links dropped). Ports 17530-17539 (peers 18630+,
# metrics 19530+) and 6393. Takes about (hold + 5) x repeats x 5 s.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/record-nonreading-client.sh $*"
before=""
repeats=3
gets=3000
hold=5
while [[ $# -gt 0 ]]; do
    case $1 in
        --before) before=$(realpath "$2"); shift ;;
        --repeats) repeats=$2; shift ;;
        --gets) gets=$2; shift ;;
        --hold-seconds) hold=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# shellcheck source=benches/lib.sh
source benches/lib.sh
require_tools redis-server redis-cli python3 curl
paxoskv=$(realpath target/release/paxoskv)
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty)
out="results/nonreading-client/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/record-nonreading.XXXXXX)
base=17530
trap 'pkill -INT -f "cluster --base-port $base --data-dir $work" 2>/dev/null || true; redis-cli -p 6393 shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# The client: SET the value at SET_PORT, wait SETTLE seconds, then GETS
# pipelined GETs of it at GET_PORT from a socket with a small receive
# buffer that never reads;
# meanwhile sample the RSS of each PID every 0.1 s until HOLD seconds after
# the last GET was sent; print each PID's peak in MB.
cat >"$work/flood.py" <<'PY'
import socket, sys, time
set_port, get_port, gets, hold, settle = map(int, sys.argv[1:6])
pids = sys.argv[6:]
def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
s = socket.create_connection(("127.0.0.1", set_port))
s.sendall(command(b"SET", b"bigv", b"x" * 900_000))
assert s.recv(16).startswith(b"+OK"), "SET failed"
time.sleep(settle)
c = socket.socket()
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
c.connect(("127.0.0.1", get_port))
c.setblocking(False)
payload = command(b"GET", b"bigv") * gets
peak = {p: rss_kb(p) for p in pids}
sent, start, end = 0, time.time(), None
while end is None or time.time() < end:
    if sent < len(payload):
        try:
            sent += c.send(payload[sent:])
        except BlockingIOError:
            pass
    # Hold from the last GET sent, or from 10 s in (the server stopped reading).
    if end is None and (sent == len(payload) or time.time() - start > 10):
        end = time.time() + hold
    for p in pids:
        peak[p] = max(peak[p], rss_kb(p))
    time.sleep(0.1)
print(" ".join(f"{peak[p] / 1024:.0f}" for p in pids))
PY

metric_sum() { # PORT NAME
    curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 ~ "^"n"(\\{|$)" {s += $2} END {print s + 0}'
}

# One run of a paxoskv binary: fresh cluster, the flood at a follower.
run_paxoskv() { # label binary settle
    local data="$work/data" log="$work/cluster.log"
    rm -rf "$data"
    "$2" cluster --base-port "$base" --data-dir "$data" --fresh --run-seconds 3600 >"$log" 2>&1 &
    local cluster=$!
    for _ in $(seq 300); do grep -q '^ready:' "$log" && break; sleep 0.1; done
    grep -q '^ready:' "$log" || { echo "$1: the cluster did not become ready (see $log)" >&2; exit 1; }
    local leader_port leader follower lpid fpid
    leader_port=$(leader_port "$base")
    leader=$((leader_port - base))
    follower=$((leader % 3 + 1))
    lpid=$(sed -n "s/.*node $leader: .*pid \([0-9]*\).*/\1/p" "$log")
    fpid=$(sed -n "s/.*node $follower: .*pid \([0-9]*\).*/\1/p" "$log")
    local peaks elections dropped
    peaks=$(python3 "$work/flood.py" "$leader_port" $((base + follower)) "$gets" "$hold" "$3" "$lpid" "$fpid")
    elections=$(($(grep -c 'became leader' "$log") - 1))
    dropped=0
    for i in 1 2 3; do dropped=$((dropped + $(metric_sum $((base + 2000 + i)) paxoskv_peer_errors_total))); done
    echo "$1 $3 $peaks $elections $dropped" | tee -a "$out/raw.txt"
    kill -INT "$cluster"; wait "$cluster" 2>/dev/null || true
}

run_redis() {
    redis-server --port 6393 --save '' --appendonly no --daemonize yes --logfile "$work/redis.log" >/dev/null
    for _ in $(seq 50); do redis-cli -p 6393 PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    local pid
    pid=$(redis-cli -p 6393 INFO server | tr -d '\r' | sed -n 's/^process_id://p')
    echo "redis 0 $(python3 "$work/flood.py" 6393 6393 "$gets" "$hold" 0 "$pid")" | tee -a "$out/raw.txt"
    redis-cli -p 6393 shutdown nosave >/dev/null 2>&1 || true
}

for r in $(seq "$repeats"); do
    echo "== repeat $r/$repeats"
    for settle in 0 1; do
        run_paxoskv after "$paxoskv" "$settle"
        [[ -n $before ]] && run_paxoskv before "$before" "$settle"
    done
    run_redis
done

python3 - "$out" "$command_line" "$commit" "$gets" "$hold" <<'PY'
import statistics, sys
out, command_line, commit, gets, hold = sys.argv[1:]
rows = {}
for line in open(f"{out}/raw.txt"):
    label, settle, *fields = line.split()
    rows.setdefault((label, settle), []).append(fields)
def median(values):
    values = [float(v) for v in values if v != "-"]
    return f"{statistics.median(values):,.0f}" if values else "-"
def spread(values):
    values = [v for v in values if v != "-"]
    return ", ".join(values) if values else "-"
lines = [
    "# A client that never reads, at a follower\n",
    f"`{command_line}` at {commit}: one client SETs a 900 KB value at the leader, then sends {gets} "
    f"pipelined GETs of it and never reads a reply, holding its connection {hold} s after the last one is "
    "sent (or after the server stops reading); the GETs start at once after the SET, or 1 s after it. paxoskv: a fresh local 3-node cluster (durability `sync`), the client at a follower, so every "
    "GET is forwarded to the leader. Redis: one redis-server, the same client, for what a server that holds "
    "a client's unread replies costs. Medians of the runs; every run in brackets. Peak RSS in MB while the "
    "client holds on; elections after the first; messages dropped by full peer-link queues "
    "(`paxoskv_peer_errors_total`, all nodes).\n",
    "| build | GETs after the SET | leader peak MB | follower (or Redis) peak MB | elections | dropped |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
]
names = {"after": f"this build ({commit})", "before": "`--before` binary", "redis": "redis-server"}
for label, settle in [("after", "0"), ("after", "1"), ("before", "0"), ("before", "1"), ("redis", "0")]:
    if (label, settle) not in rows:
        continue
    cols = list(zip(*rows[(label, settle)]))
    when = "at once" if settle == "0" else f"{settle} s later"
    if label == "redis":
        cells = [when, "-", f"{median(cols[0])} ({spread(cols[0])})", "-", "-"]
    else:
        cells = [when] + [f"{median(c)} ({spread(c)})" for c in cols]
    lines.append(f"| {names[label]} | " + " | ".join(cells) + " |")
lines.append("\nRaw: `raw.txt`.\n")
open(f"{out}/README.md", "w").write("\n".join(lines))
print(f"wrote {out}/README.md")
PY
