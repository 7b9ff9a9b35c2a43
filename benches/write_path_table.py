#!/usr/bin/env python3
"""A single client's write, hop by hop across the processes (benches/record-write-path.sh).

  write_path_table.py segments TRACE PIDS RUN   one run's segments (lines for runs.txt); PIDS "floor":
                                                a trace of `loadgen floor --runtime glommio`
  write_path_table.py table OUT COMMAND COMMIT DURABILITY SECONDS   README.md from OUT/runs.txt

TRACE is `perf script -F comm,pid,tid,time,event,trace` of sched_wakeup,
sched_switch, io_uring's submit/complete tracepoints and the sendto,
recvfrom and io_uring_enter syscalls, system-wide, while one
`redis-benchmark -c 1 -t set` client writes to the leader. PIDS holds
"PORT PID" per node. Each request is followed from the client's send to
the leader's reply reaching it, through the first follower to answer.
"""
import os
import re
import statistics
import sys

SEGMENTS = [
    ("A", "client sends the SET -> the leader's first step after"),
    ("B", "the leader's first step -> it reads the request"),
    ("C", "the leader reads the request -> sends the first Accept"),
    ("D", "Accept sent -> the follower's first step after"),
    ("E", "the follower's first step -> it reads the Accept"),
    ("F", "the follower reads the Accept -> sends its answer"),
    ("G", "answer sent -> the leader's first step after"),
    ("H", "the leader's first step -> it reads the answer"),
    ("I", "the leader reads the answer -> sends the reply"),
    ("J", "reply sent -> the client's first step after"),
]
# Segments that start with a node's first step after a message reached it:
# how many io_uring_enter calls it made before its task read the socket.
STEP_TO_READ = {"B", "E", "H"}

LINE = re.compile(r"^\s*(\S+)\s+(\d+)/(\d+)\s+(?:\[\d+\]\s+)?([\d.]+):\s+(\S+):\s*(.*)$")
FD = re.compile(r"fd: 0x([0-9a-f]+)")
LEN = re.compile(r"len: 0x([0-9a-f]+)")


def events(path):
    """(time µs, pid, tid, kind, fd, size) per traced event, perf's own dropped.
    kind: send (sendto entry), recv (recvfrom exit with data), enter
    (io_uring_enter entry) or other."""
    out = []
    recv_fd = {}
    for line in open(path, errors="replace"):
        m = LINE.match(line)
        if not m:
            continue
        comm, pid, tid, t, event, rest = m.groups()
        if comm == "perf":
            continue
        pid, tid, t = int(pid), int(tid), float(t) * 1e6
        kind, fd, size = "other", None, None
        if event == "syscalls:sys_enter_sendto":
            kind, fd, size = "send", int(FD.search(rest).group(1), 16), int(LEN.search(rest).group(1), 16)
        elif event == "syscalls:sys_enter_recvfrom":
            recv_fd[tid] = int(FD.search(rest).group(1), 16)
        elif event == "syscalls:sys_exit_recvfrom":
            ret = int(rest.strip(), 16) if rest.strip().startswith("0x") else -1
            if ret <= 0 or ret >= 1 << 63:
                continue
            kind, fd, size = "recv", recv_fd.get(tid), ret
        elif event == "syscalls:sys_enter_io_uring_enter":
            kind = "enter"
        out.append((t, pid, tid, kind, fd, size))
    out.sort(key=lambda e: e[0])
    return out


def segments(trace, pids_file, run):
    ev = events(trace)
    if pids_file == "floor":
        # `loadgen floor --runtime glommio`: an executor thread per replica
        # (a process each since stop 49, one process's threads before) and
        # one blocking client thread; each event goes by its thread. The
        # client is the thread that sends and never enters io_uring; the
        # leader, of the others, the one that reads the most (from the
        # client and every follower).
        ev = [(t, tid, tid, kind, fd, size) for (t, pid, tid, kind, fd, size) in ev]
        threads = {e[1] for e in ev if e[3] in ("send", "recv")}
        uring = {e[1] for e in ev if e[3] == "enter"}
        clients = sorted(threads - uring)
        nodes = threads & uring
        reads = {n: sum(1 for e in ev if e[1] == n and e[3] == "recv") for n in nodes}
        client = clients[0] if len(clients) == 1 else None
        leader = max(nodes, key=reads.get) if len(nodes) >= 3 else None
    else:
        ports = dict(line.split() for line in open(pids_file) if line.strip())
        nodes = {int(pid) for pid in ports.values()}
        client = next((e[1] for e in ev if e[3] == "send" and e[1] not in nodes), None)
        # The leader answers the client: its sends of 5 bytes ("+OK\r\n").
        leader = next((e[1] for e in ev if e[3] == "send" and e[1] in nodes and e[5] == 5), None)
    if client is None or leader is None:
        print(f"# run {run}: no client or no leader in the trace")
        return
    # The leader's connection to the client: paxoskv's replies are 5 bytes
    # ("+OK\r\n"); in the floor, the socket the leader most often reads
    # first after a send of the client's (the trace may begin with a
    # follower's answer to an earlier request in flight).
    if pids_file == "floor":
        firsts = {}
        for i, e in enumerate(ev):
            if e[1] == client and e[3] == "send":
                fd = next((x[4] for x in ev[i:] if x[1] == leader and x[3] == "recv"), None)
                firsts[fd] = firsts.get(fd, 0) + 1
        client_fd = max(firsts, key=firsts.get)
    else:
        client_fd = next(e[4] for e in ev if e[1] == leader and e[3] == "send" and e[5] == 5)
    followers = sorted(nodes - {leader})

    def find(i, pred):
        while i < len(ev):
            if pred(ev[i]):
                return i
            i += 1
        return None

    def step_after(i, pid):
        return find(i + 1, lambda e: e[1] == pid)

    samples = {key: [] for key, _ in SEGMENTS}
    enters = {key: [] for key in STEP_TO_READ}
    i = 0
    while True:
        a = find(i, lambda e: e[1] == client and e[3] == "send")
        if a is None:
            break
        following = find(a + 1, lambda e: e[1] == client and e[3] == "send")
        try:
            b = step_after(a, leader)
            c = find(b, lambda e: e[1] == leader and e[3] == "recv" and e[4] == client_fd)
            d = find(c, lambda e: e[1] == leader and e[3] == "send" and e[4] != client_fd)
            first = None
            for f in followers:
                e_ = step_after(d, f)
                f_ = None if e_ is None else find(e_, lambda e, f=f: e[1] == f and e[3] == "recv")
                g = None if f_ is None else find(f_, lambda e, f=f: e[1] == f and e[3] == "send")
                if g is not None and (first is None or ev[g][0] < ev[first[2]][0]):
                    first = (e_, f_, g, f)
            e_, f_, g, follower = first  # None: no follower answered before the trace ended
            h = step_after(g, leader)
            i_ = find(h, lambda e: e[1] == leader and e[3] == "recv" and e[4] != client_fd)
            j = find(i_, lambda e: e[1] == leader and e[3] == "send" and e[4] == client_fd)
            k = step_after(j, client)
        except TypeError:  # a search ran off the end of the trace
            break
        if None in (b, c, d, h, i_, j, k) or (following is not None and j > following):
            i = a + 1  # not one whole request (the trace's edges, or a retry)
            continue
        bounds = [(a, b), (b, c), (c, d), (d, e_), (e_, f_), (f_, g), (g, h), (h, i_), (i_, j), (j, k)]
        for (key, _), (u, v) in zip(SEGMENTS, bounds):
            samples[key].append(ev[v][0] - ev[u][0])
        for key, (u, v, pid) in {"B": (b, c, leader), "E": (e_, f_, follower), "H": (h, i_, leader)}.items():
            enters[key].append(sum(1 for e in ev[u:v] if e[1] == pid and e[3] == "enter"))
        i = k
    n = len(samples["A"])
    print(f"# run {run}: {n} requests followed")
    for key, _ in SEGMENTS:
        if n == 0:
            break
        extra = f" {statistics.median(enters[key]):.1f}" if key in enters else " -"
        print(f"run {run} {key} {statistics.median(samples[key]):.1f} {statistics.mean(samples[key]):.1f}{extra} {n}")


def table(out, command, commit, durability, seconds):
    rows = {"run": {}, "floor": {}}
    untraced = {"untraced": [], "untraced-floor": []}
    for line in open(f"{out}/runs.txt"):
        f = line.split()
        if not f or f[0] == "#":
            continue
        if f[0] in untraced:
            untraced[f[0]].append(float(f[3]))
            continue
        which, run, key, p50, mean, enters, n = f
        rows[which].setdefault(key, []).append((float(p50), float(mean), enters, int(n)))
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    followed = lambda which: ", ".join(str(r[3]) for r in rows[which].get("A", [])) or "none"
    floor_disk = "an O_DIRECT write + fdatasync at each replica" if durability == "sync" else "no disk"
    lines = [
        "# A single client's write, hop by hop\n",
        f"Produced by `{command}` at commit {commit}. Each run: a fresh local 3-node cluster (durability "
        f"{durability}) with one `redis-benchmark -c 1 -t set -d 100` client at the leader, then the floor on "
        f"glommio (`loadgen floor --runtime glommio`: the same messages between three glommio executors, "
        f"{floor_disk}, no consensus code, one blocking client thread). For {seconds} s of each, "
        "`perf record -a` of the scheduler's wake-ups and switches, io_uring's submissions and completions and "
        "the sendto, recvfrom and io_uring_enter system calls; each request followed from the client's send "
        "to the leader's reply reaching it, through the follower that answered first. A process's (a "
        "replica's) *first step* is its first traced event after the message was sent to it: its wake-up when "
        "it slept, else its next system call. Every event costs the traced processes time, so a traced sum is "
        "longer than an untraced write: compare the two columns, and the untraced p50s.\n",
        f"Runs: {len(rows['run'].get('A', []))}; requests followed per run: paxoskv {followed('run')}; floor "
        f"{followed('floor')}. Untraced p50, median over the runs: paxoskv {med(untraced['untraced']) * 1000:.0f} "
        f"µs (`redis-benchmark -c 1 -t set`, the same cluster just before its trace), the floor "
        f"{med(untraced['untraced-floor']):.0f} µs (`loadgen floor`'s own p50, 20,000 round trips).\n",
        "| segment | what | paxoskv p50 (µs) | floor p50 (µs) | paxoskv mean | floor mean "
        "| io_uring_enter calls in it, paxoskv / floor (medians) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    totals = {w: sum(med([r[0] for r in rows[w].get(key, [])]) for key, _ in SEGMENTS) for w in rows}
    for key, what in SEGMENTS:
        cells = []
        for stat in (0, 1):
            for w in ("run", "floor"):
                cells.append(f"{med([r[stat] for r in rows[w].get(key, [])]):.1f}")
        enters = "-"
        if key in STEP_TO_READ:
            enters = " / ".join(f"{med([float(r[2]) for r in rows[w].get(key, [])]):.1f}" for w in ("run", "floor"))
        lines.append(f"| {key} | {what} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} | {enters} |")
    lines.append(f"| | sum of the p50s | {totals['run']:.1f} | {totals['floor']:.1f} | | | |\n")
    diffs = sorted(((med([r[0] for r in rows["run"].get(k, [])]) - med([r[0] for r in rows["floor"].get(k, [])]), k)
                    for k, _ in SEGMENTS), reverse=True)
    lines.append("Where paxoskv's traced path is longest against the floor's: "
                 + ", ".join(f"{k} (+{d:.0f} µs)" for d, k in diffs[:4]) + ".\n")
    lines.append("Every run's figures: `runs.txt` (`run|floor R SEGMENT p50 mean io_uring_enter n`; "
                 "`untraced R set_p50_ms P`, `untraced-floor R p50_us P`).\n")
    with open(f"{out}/README.md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "segments":
        segments(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 7 and sys.argv[1] == "table":
        table(*sys.argv[2:])
    else:
        sys.exit(__doc__)
