#!/usr/bin/env python3
"""The table of benches/record-p16-profile.sh: reads the leader's and a
follower's `perf report --children --sort sym` texts in OUT and writes
OUT/README.md, the share of each process's samples spent in (inclusive of
everything it calls) each function that does part of a SET's work.

Usage: p16_profile_table.py OUT COMMAND COMMIT"""
import re
import sys

out, command, commit = sys.argv[1:4]

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


reports = {role: shares(f"{out}/{role}-report.txt") for role in ("leader", "follower")}
with open(f"{out}/README.md", "w") as f:
    f.write("# Where the servers' CPU goes under pipelined SETs\n\n")
    f.write(f"Produced by `{command}` at commit {commit}. `redis-benchmark -c 50 -P 16 -t set -d 100 -r 100000` at "
            "the leader of a fresh local 3-node cluster (durability sync); meanwhile `perf record --call-graph dwarf "
            "-e cpu-clock -F 499` on the leader, then on a follower. Each cell: the share of that process's samples spent in the "
            "function, including everything it calls (so rows nest and overlap; \"of which\" rows are part of the "
            "row above). A function with several entries in the report (inlined copies) counts its largest.\n\n")
    for role in ("leader", "follower"):
        commands = int(open(f"{out}/{role}-commands.txt").read())
        cpu_s = reports[role][1]
        f.write(f"- The {role}'s profile: {cpu_s:.2f} s of its CPU sampled while the leader processed {commands:,} "
                f"commands, {cpu_s * 1e6 / max(commands, 1):.2f} µs per command.\n")
    f.write("\nRaw reports: `leader-report.txt`, `follower-report.txt`.\n\n")
    f.write("| where | leader | follower |\n| --- | ---: | ---: |\n")
    for what, pattern in ROWS:
        cells = []
        for role in ("leader", "follower"):
            pct = share(reports[role][0], pattern)
            cells.append("-" if pct is None else f"{pct:.1f}%")
        f.write(f"| {what} | {cells[0]} | {cells[1]} |\n")
print(open(f"{out}/README.md").read())
