#!/usr/bin/env python3
"""The table of benches/record-p16-profile.sh: reads each run's leader and
follower `perf report --children --sort sym` texts in OUT and writes
OUT/README.md: each process's CPU per command, and the share of its
samples spent in (inclusive of everything it calls) each function that
does part of a SET's work, medians over the runs.

Usage: p16_profile_table.py OUT COMMAND COMMIT RUNS"""
import re
import statistics
import sys

out, command, commit, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

# (what, symbol substring). A symbol can have several entries in a report
# (an inlined copy beside the out-of-line one, each with the time spent
# under it): the largest is taken, so a row never counts a call twice and
# can come out a little low.
ROWS = [
    ("the node's driver: every input through the node and its output (inclusive)",
     "paxoskv::server::shard::run_driver"),
    ("apply committed commands to the store (every replica)", "paxoskv::kv::store::KvStore::apply"),
    ("  of which the key table's write (`Keyspace::put`)", "paxoskv::kv::keyspace::Keyspace::put"),
    ("decode committed commands (every replica)", "paxoskv::kv::command::Command::decode"),
    ("client connections: read requests, parse, hand to the node", "paxoskv::server::client::read_requests"),
    ("  of which parse RESP", "paxoskv::net::resp::parse_command"),
    ("  of which the node takes a write (`Node::admit`: encode it, file it, queue it)", "Node<C>>::admit"),
    ("  of which encode each command for the log", "paxoskv::kv::command::Command::encode"),
    ("client connections: write replies", "paxoskv::server::client::write_replies"),
    ("peer links: frames in", "paxoskv::server::links::run_connection"),
    ("peer links: frames out", "paxoskv::server::links::Link::send"),
    ("WAL: encode records (append)", "paxoskv::storage::wal::Wal::append"),
    ("WAL: write until durable (sync; the waiting is not CPU)", "paxoskv::storage::wal::Wal::sync"),
    ("snapshots (serializing the store on the blocking pool)",
     "paxoskv::kv::snapshot::<impl paxoskv::kv::store::KvStore>::snapshot"),
    ("page faults (memory touched for the first time)", "asm_exc_page_fault"),
    ("system calls, all", "entry_SYSCALL_64_after_hwframe"),
    ("  of which io_uring_enter (the runtime's reactor)", "__do_sys_io_uring_enter"),
    ("switched out (the scheduler)", "[k] schedule"),
]

LINE = re.compile(r"^\s+([0-9.]+)%\s+([0-9.]+)%\s+\[(.)\]\s+(.*)$")


def shares(path):
    """Every entry's (symbol, inclusive percentage), and the CPU time the
    samples stand for in seconds (cpu-clock counts nanoseconds)."""
    entries, cpu_s, event = [], None, None
    for line in open(path):
        m = re.match(r"^# Samples: \S+\s+of event '([^']+)'", line)
        if m:
            event = m.group(1)
        m = re.match(r"^# Event count \(approx\.\): (\d+)", line)
        if m:
            cpu_s = int(m.group(1)) / 1e9
        m = LINE.match(line)
        if m:
            entries.append((f"[{m.group(3)}] {m.group(4)}", float(m.group(1))))
    if not (event or "").startswith("cpu-clock"):
        sys.exit(f"{path}: samples of {event!r}, not cpu-clock: the event count is not CPU time")
    return entries, cpu_s


def share(entries, pattern):
    found = [pct for symbol, pct in entries if pattern in symbol]
    return max(found) if found else None


ROLES = ("leader", "follower")
reports = {(run, role): shares(f"{out}/run{run}-{role}-report.txt") for run in range(1, runs + 1) for role in ROLES}
per_command = {}
for (run, role), (_, cpu_s) in reports.items():
    commands = int(open(f"{out}/run{run}-{role}-commands.txt").read())
    per_command[run, role] = (cpu_s, commands, cpu_s * 1e6 / max(commands, 1))


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


with open(f"{out}/README.md", "w") as f:
    f.write("# Where the servers' CPU goes under pipelined SETs\n\n")
    f.write(f"Produced by `{command}` at commit {commit}. `redis-benchmark -c 50 -P 16 -t set -d 100 -r 100000` at "
            "the leader of a fresh local 3-node cluster (durability sync); meanwhile `perf record -e cpu-clock "
            "--call-graph dwarf -F 499` on the leader, then on a follower; "
            f"{runs} runs, each on a fresh cluster. Each share: the part of that process's samples spent in the "
            "function, including everything it calls (so rows nest and overlap; \"of which\" rows are part of the "
            "row above), the median over the runs. A function with several entries in a report (inlined copies) "
            "counts its largest.\n\n")
    f.write("CPU per command (the process's sampled CPU time over the commands the leader processed meanwhile):\n\n")
    f.write("| run | leader | follower |\n| --- | ---: | ---: |\n")
    for run in range(1, runs + 1):
        f.write(f"| {run} | " + " | ".join(f"{per_command[run, role][2]:.2f} µs" for role in ROLES) + " |\n")
    medians = {role: median(per_command[run, role][2] for run in range(1, runs + 1)) for role in ROLES}
    f.write("| median | " + " | ".join(f"**{medians[role]:.2f} µs**" for role in ROLES) + " |\n\n")
    f.write(f"So a SET costs the three nodes about {medians['leader'] + 2 * medians['follower']:.1f} µs of CPU "
            "(the leader's and twice a follower's). Raw reports: `run1-leader-report.txt` and the rest beside it.\n\n")
    f.write("| where | leader | follower |\n| --- | ---: | ---: |\n")
    for what, pattern in ROWS:
        cells = []
        for role in ROLES:
            found = [share(reports[run, role][0], pattern) for run in range(1, runs + 1)]
            # Absent from a run's profile: none of its samples (say, no
            # snapshot in that run); absent from all: not this role's work.
            pct = None if all(p is None for p in found) else median([p or 0.0 for p in found])
            cells.append("-" if pct is None else f"{pct:.1f}%")
        f.write(f"| {what} | {cells[0]} | {cells[1]} |\n")
print(open(f"{out}/README.md").read())
