#!/usr/bin/env python3
"""The table of a core-compare bundle (benches/core-compare.sh): reads the
binary's results.json and criterion's estimates, writes the bundle's
README.md and prints the table. Usage: core_compare_table.py BUNDLE_DIR"""
import json
import os
import sys

out = sys.argv[1]
doc = json.load(open(os.path.join(out, "results.json")))
machine = open(os.path.join(out, "machine.txt")).read()
rows = doc["rows"]


def criterion_ns_per_command(row):
    path = os.path.join(out, "criterion", f"entries_per_round_{row['entries_per_round']}",
                        row["library"], str(row["commands_per_entry"]), "estimates.json")
    if not os.path.exists(path):
        return None
    median = json.load(open(path))["median"]["point_estimate"]  # ns per round
    return median / (row["entries_per_round"] * row["commands_per_entry"])


def by_library(name):
    return {(r["entries_per_round"], r["commands_per_entry"]): r for r in rows if r["library"] == name}


paxoskv = by_library("paxoskv")
harness = by_library("harness-only")
instructions_path = os.path.join(out, "instructions.json")
instructions = json.load(open(instructions_path)) if os.path.exists(instructions_path) else {"rows": []}
counted = {(r["library"], r["entries_per_round"], r["commands_per_entry"]): r["instructions_per_command"]
           for r in instructions["rows"]}


def instructions_text(library, shape):
    """Instructions per command, and the own ones' ratio to paxoskv's."""
    mine, base, floor = (counted.get((name, *shape)) for name in (library, "paxoskv", "harness-only"))
    if mine is None:
        return "-", "-"
    if library == "harness-only" or base is None or floor is None or base <= floor:
        return f"{mine:,.1f}", "-"
    return f"{mine:,.1f}", f"{(mine - floor) / (base - floor):.2f}"


lines = [
    "| entries per round | commands per entry | library | ns per committed command: median of interleaved samples (min-max) | ratio to paxoskv | own ns per command (minus harness-only) | own ratio to paxoskv | criterion median ns per command | instructions per command (valgrind) | own instructions ratio to paxoskv | allocations per command | bytes allocated per command | messages per entry |",
    "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
for r in rows:
    shape = (r["entries_per_round"], r["commands_per_entry"])
    base = paxoskv[shape]
    floor = harness[shape]["ns_per_command_median"] if shape in harness else 0.0
    ratio = r["ns_per_command_median"] / base["ns_per_command_median"]
    if r["library"] == "harness-only":
        own_text, own_ratio_text = "-", "-"
    else:
        own = r["ns_per_command_median"] - floor
        own_base = base["ns_per_command_median"] - floor
        own_text = f"{own:,.1f}"
        own_ratio_text = f"{own / own_base:.2f}" if own_base > 0 else "-"
    crit = criterion_ns_per_command(r)
    crit_text = f"{crit:,.1f}" if crit is not None else "-"
    ins_text, ins_ratio_text = instructions_text(r["library"], shape)
    lines.append(
        f"| {r['entries_per_round']} | {r['commands_per_entry']} | {r['library']} "
        f"| {r['ns_per_command_median']:,.1f} ({r['ns_per_command_min']:,.1f}-{r['ns_per_command_max']:,.1f}) "
        f"| {ratio:.2f} | {own_text} | {own_ratio_text} | {crit_text} | {ins_text} | {ins_ratio_text} "
        f"| {r['allocations_per_command']:.3f} | {r['bytes_per_command']:,.1f} | {r.get('messages_per_entry', 0):.2f} |"
    )
# Builds counted only for instructions (--before: an earlier commit's core).
others = sorted({r["library"] for r in instructions["rows"]} - {r["library"] for r in rows})
for library in others:
    for shape in sorted(paxoskv):
        ins_text, ins_ratio_text = instructions_text(library, shape)
        if ins_text != "-":
            lines.append(f"| {shape[0]} | {shape[1]} | {library} | - | - | - | - | - | {ins_text} | {ins_ratio_text} | - | - | - |")
table = "\n".join(lines) + "\n"

readme = f"""# Consensus core comparison: paxoskv vs OmniPaxos vs raft-rs

Produced by `benches/core-compare.sh` (crate `benches/core-compare`, outside
the workspace). Three replicas of each library in one thread, messages
passed in memory, each library's in-memory storage with every write
acknowledged at once (not durable: no I/O). A command is 16 bytes. A
*round* hands the leader `entries per round` log entries of `commands per
entry` commands each, then delivers every message until none is left;
each sample ends when all three replicas have applied every command, and
is checked (an order-sensitive digest per replica must equal the
proposer's). Lower is better; "ratio to paxoskv" is the library's time
over paxoskv's in the same shape (above 1: slower than paxoskv).

"Batch" per library: paxoskv, one slot whose value holds the entry's
commands (`batch_count_max` = commands per entry; the proposed `Vec`
behind an `Rc`); OmniPaxos, one `append` of an entry type holding the
proposed `Vec` of commands behind an `Arc` (its entries must be `Send`);
raft-rs, one `propose` whose data is the commands, each behind a 4-byte
length. With 16
entries per round each library groups them on the wire its own way (one
Accept with 16 slots; one AcceptDecide extended 16 times; one append
merged by `batch_append`).

Configuration: paxoskv `Config::new` defaults (window 64 slots) with
`batch_count_max` = commands per entry; OmniPaxos defaults (`batch_size`
1); raft-rs defaults except `max_size_per_msg` 1 MiB (0 would send one
entry per append), `batch_append` and `skip_bcast_commit` (the commit
index rides on the next append, as paxoskv's does). Release builds: slog
compiles raft-rs's debug logging out, OmniPaxos is built without its
`logging` feature. Leaders are elected before measuring (paxoskv's new
leader's window of no-ops included).

`paxoskv-no-storage` drops the core's `persist` output instead of storing
it: no library may do that; the row shows what paxoskv's storage model
costs. `harness-only` runs no library: it makes the commands and folds
them into the proposer's and three replicas' digests, work that every
other row includes; "own ns per command" subtracts it. "Messages per
entry" counts the messages delivered between replicas (each library's
own messages to itself excluded), over the allocation run.

Instructions: `instructions.json` holds valgrind's count (cachegrind,
no cache simulation) of the instructions per committed command, from two
runs of the binary at different fixed numbers of rounds, so that only the
rounds count (`benches/core_compare_instructions.py` says how). The same
work gives the same count on every run, however noisy the machine; but an
instruction is not a nanosecond (cache misses and mispredicted branches
cost time, not instructions). A `paxoskv@REV` row counts the core of an
earlier commit driven by this harness (`core-compare.sh --before REV`).

Timing: `results.json` holds the binary's interleaved samples
(the libraries take turns, {doc['repeats']} samples of about
{doc['sample_ms']} ms each); `criterion/` holds criterion's estimates
(one library after another), a cross-check. Allocations are counted over
{4 * doc['trim_every_entries']} entries (four log trims) with a counting
wrapper around the system allocator (all libraries run on it).

{table}
```
{machine}```
"""
open(os.path.join(out, "README.md"), "w").write(readme)
sys.stdout.write(table)
