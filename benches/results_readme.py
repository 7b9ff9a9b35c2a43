#!/usr/bin/env python3
"""Regenerate results/README.md from the committed result bundles.

Every number in results/README.md comes from a JSON file under results/,
written by the command quoted next to it; this script only formats them.
Run it from the repository root: python3 benches/results_readme.py
"""
import json
import os
import re
import statistics

R = "results"


def load(path):
    try:
        with open(os.path.join(R, path)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def ms(us):
    return f"{us / 1000:.2f}"


def rate(x):
    return f"{x:,.0f}"


def per_repeat_ratio(comparison, a, b):
    """Median, min, max of a's throughput over b's, repeat by repeat."""
    prof = {p["name"]: p for p in comparison["profiles"]}
    ra = {r["repeat"]: r["throughput_ops_s"] for r in prof[a]["repeats"]}
    rb = {r["repeat"]: r["throughput_ops_s"] for r in prof[b]["repeats"]}
    ratios = [ra[k] / rb[k] for k in ra if k in rb and rb[k] > 0]
    if not ratios:
        return None
    return statistics.median(ratios), min(ratios), max(ratios)


def comparison_table(c, bound_ms):
    bound = f" at p99 <= {bound_ms:g} ms" if bound_ms is not None else ""
    lines = [
        f"| profile | sustainable ops/s{bound}, median (min - max) | ratio to `{c['reference']}`, median (min - max) "
        "| p50 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in c["profiles"]:
        errors = sum(r["errors"] for r in p["repeats"])
        lines.append(
            f"| `{p['name']}` | {rate(p['throughput_median'])} ({rate(p['throughput_min'])} - {rate(p['throughput_max'])}) "
            f"| {p['ratio_to_reference']:.2f}x ({p['ratio_min']:.2f} - {p['ratio_max']:.2f}) "
            f"| {ms(p['p50_us_median'])} | {ms(p['p99_us_median'])} | {errors} |"
        )
    return "\n".join(lines)


def p99_bound_ms(comparison_dir):
    """The p99 bound from any run bundle's `sustainable` record."""
    runs = os.path.join(R, comparison_dir, "runs")
    if not os.path.isdir(runs):
        return None
    for name in sorted(os.listdir(runs)):
        b = load(os.path.join(comparison_dir, "runs", name, "bundle.json"))
        if b and b.get("sustainable"):
            return b["sustainable"]["p99_bound_us"] / 1000
    return None


def bundles_by_time(base):
    """The bundle directories under `base`, oldest first by the UTC time that ends every bundle's name
    (`<label>-<time>`), whatever the label."""
    if not os.path.isdir(base):
        return []
    names = (d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))
    return sorted(names, key=lambda d: d.rsplit("-", 1)[-1])


def section_comparison(out, title, directory, intro):
    c = load(f"{directory}/comparison.json")
    if not c:
        out.append(f"## {title}\n\n(not recorded yet: `benches/record-comparisons.sh`)\n")
        return None
    table = comparison_table(c, p99_bound_ms(directory))
    m = c["machine"]
    p = c["params"]
    out.append(f"## {title}\n")
    out.append(intro + "\n")
    out.append(f"```\n{c['command']}\n```\n")
    out.append(
        f"Commit `{c['git_commit']}`, {m['cores']} cores, kernel {m['kernel']}. Workload: {p['mode']} loop "
        f"({p['arrivals']} arrivals), {p['connections']} connections, {int(p['read_ratio'] * 100)}% reads, "
        f"{p['keys']:,} keys ({p['distribution']}), {p['value_bytes']}-byte values. Each repeat measures every "
        f"profile once, in order (side by side); the headline is the highest offered rate whose p99 stayed under "
        f"the bound and whose achieved rate kept up (`--find-max`).\n"
    )
    out.append(table + "\n")
    for chart in ("comparison-throughput.svg", "comparison-latency.svg", "comparison-percentiles.svg"):
        if os.path.exists(os.path.join(R, directory, chart)):
            out.append(f"![{chart}]({directory}/{chart})\n")
    out.append(f"Per-run bundles (JSON, CSV, HDR histograms, charts): `{directory}/runs/`.\n")
    return c


def profile_shares(path):
    """perf's flat profile of paxoskv, grouped by what the time went to."""
    import re

    groups = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*([\d.]+)%\s+\S+\s+\S+\s+\[.\]\s+(.*)", line)
            if not m:
                continue
            pct, sym = float(m.group(1)), m.group(2)
            if "btree" in sym:
                key = "`BTreeMap` code (not inlined)"
            elif "core_compare::" in sym or "bytes::bytes::static" in sym:
                key = "the harness"
            elif re.search(r"malloc|free|realloc|_int_|tcache|unlink_chunk|drop_slow", sym):
                key = "malloc/free"
            elif "memcmp" in sym or "equal_same_length" in sym:
                key = "comparing batches (`memcmp`)"
            elif "DurableState" in sym:
                key = "`DurableState::apply` (paxoskv's storage model)"
            elif "learner::" in sym or "learn_chosen" in sym:
                key = "`Learner::learn`, `learn_chosen`"
            elif "from_iter" in sym or "memmove" in sym or "memcpy" in sym or "grow_one" in sym:
                key = "building and copying `Vec`s"
            else:
                key = "the rest of the core"
            groups[key] = groups.get(key, 0.0) + pct
    return sorted(groups.items(), key=lambda kv: -kv[1])


def instruction_counts(name):
    """A core-compare bundle's instructions per command, by (library, entries, commands)."""
    if not os.path.exists(os.path.join(R, "core-compare", name, "instructions.json")):
        return {}
    doc = load(f"core-compare/{name}/instructions.json")
    return {(r["library"], r["entries_per_round"], r["commands_per_entry"]): r["instructions_per_command"]
            for r in doc["rows"]}


def section_core_instructions(out, name, shapes, machine):
    """Section 8's deterministic half: valgrind's instructions per command."""
    ins = instruction_counts(name)
    if not ins:
        return
    doc = load(f"core-compare/{name}/instructions.json")
    befores = sorted({lib for lib, _, _ in ins if lib.startswith("paxoskv@")})
    before = befores[-1] if befores else None
    out.append(
        "\nInstructions per committed command, counted by valgrind (`benches/core_compare_instructions.py`, "
        f"{doc.get('valgrind', 'valgrind')}): the same work counts the same on every run, where the timings above "
        "move with this machine's noise; an instruction is not a nanosecond (cache misses and mispredicted "
        "branches cost time, not instructions), so the goal is judged on the timings, and this table says how "
        "much of a gap is work. `own` subtracts the harness's count"
        + (f"; `{before}` is the core (`src/`) of the earlier commit `{before.split('@', 1)[1]}`, "
           "driven by the same harness and counted in the same run" if before else "")
        + ".\n"
    )
    header = "| entries | cmds | paxoskv | OmniPaxos | raft-rs | harness-only | own: OmniPaxos / paxoskv | own: raft-rs / paxoskv |"
    rule = "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    if before:
        header += f" {before} | paxoskv / {before} |"
        rule += " ---: | ---: |"
    out.append(header)
    out.append(rule)
    for e, c in shapes:
        p, o, r, h = (ins.get((lib, e, c)) for lib in ("paxoskv", "omnipaxos", "raft-rs", "harness-only"))
        if None in (p, o, r, h):
            continue
        line = (f"| {e} | {c} | {p:,.1f} | {o:,.1f} | {r:,.1f} | {h:,.1f} | {(o - h) / (p - h):.2f} | "
                f"{(r - h) / (p - h):.2f} |")
        if before:
            b = ins.get((before, e, c))
            line += f" {b:,.1f} | {p / b:.2f} |" if b else " - | - |"
        out.append(line)
    out.append("")
    # The changes behind the before column this list was written for (a
    # bundle with another --before says nothing it cannot back).
    if before == "paxoskv@f091ead":
        out.append(
            f"What changed in the core since `{before}` (commits 2276808, 5fa3541, 0f10d4b), none of it visible to "
            "the simulator "
            "(`paxoskv sim --seeds 1..=60 --crashes --partitions` and `--seeds 1..=40 --crashes --stalls "
            "--read-mode read-index` print byte-identical output before and after):\n\n"
            "- newly committed slots are appended to the recycled `Ready::committed` (they went into a new `Vec` "
            "at every `ready()` that had any);\n"
            "- `release_reads`, called at every commit, returns at once when no read waits (it first counted which "
            "horizon a majority stored);\n"
            "- `propose` checks every command's size and sums their bytes in one pass (it took two), and the "
            "proposal queue keeps each chunk's byte count, so a chunk that fits a batch is taken without a pass "
            "over its commands;\n"
            "- a commit collects the chosen slots in one `Vec` (it built two);\n"
            "- `SlotMap::drop_below` pops one to four entries (what a commit drops) instead of `drain`ing them;\n"
            "- a slot learned chosen is inserted without first looking for a known value once `is_chosen` said "
            "there is none (`Learner::learn_new`), and a follower that learns a slot from the leader's commit index "
            "takes the value from its own acceptor without looking it up and comparing it a second time;\n"
            "- `Replica::propose_one` queues a single command without a `Vec` (it joins the queue's last chunk while "
            "that chunk fits a batch): the node proposes every write with it. This harness proposes whole entries "
            "with `propose`, so the table does not show it.\n"
        )
    elif before == "paxoskv@14a05d1":
        out.append(
            f"What changed in the core since `{before}` (commits 5960f4a, 8e3a523, 50bdcca, 4be121b, 5df1f76, "
            "a014ec6), none of it visible to the simulator "
            "(`paxoskv sim --seeds 1..=60 --crashes --partitions` and `--seeds 1..=40 --crashes --stalls "
            "--read-mode read-index` print byte-identical output before and after):\n\n"
            "- a batch is the proposed `Vec` of commands behind an `Rc` (`Rc<Vec<Bytes>>`), where it was a copy of "
            "it in an `Arc<[Bytes]>`: no copy and free of every batch, a 16-byte `Value`, and no atomic reference "
            "counts (some nine increments and as many decrements per slot over three replicas). A replica lives on "
            "its shard's thread, so `Value`, the messages, the persist ops and `Replica` are no longer `Send`;\n"
            "- a follower that learns slots from the leader's commit index moves each value out of its acceptor "
            "(which pruned that copy right after) instead of cloning it;\n"
            "- `DurableState::apply_owned` moves a persist op's values in (this harness stores its ops with it, as "
            "the simulator's disk could); an Accept of new slots past everything held is appended as one run, and "
            "a Commit moves its run of accepted values into `chosen` with one check for the run; the acceptor "
            "appends an Accept's new slots as one run too;\n"
            "- per message: `release_reads`, `maybe_finish_recovery` and `maybe_catch_up` are an inlined check "
            "in front of their bodies (called at every commit or contact with the leader), and `step` walks a "
            "message for its highest round once.\n\n"
            "The harness changed as well (5df1f76): OmniPaxos's entry and the harness-only batch hold the "
            "proposed `Vec` (`Arc<Vec<Bytes>>`, not copied) as paxoskv's value now does; they were copies in an "
            "`Arc<[Bytes]>`. OmniPaxos's entries must be `Send`, so theirs is an `Arc`.\n"
        )
    elif before == "paxoskv@db3a29e":
        out.append(
            f"What changed in the core since `{before}` (commits 5b8ecc6, afb2d25, 4633e8b, febe434, 17905c1), none of it visible to "
            "the simulator "
            "(`paxoskv sim --seeds 1..=60 --crashes --partitions` and `--seeds 1..=40 --crashes --stalls "
            "--read-mode read-index` print byte-identical output before and after):\n\n"
            "- `Replica::has_ready` says whether `ready()` has anything to hand out, as raft-rs's `has_ready` does, "
            "and this harness drains a replica while it says yes, where it took `ready()` until one came back empty "
            "(the core before it is drained that way: it has no `has_ready`). The node checks the promise at every "
            "`ready()` (`has_ready` false means an empty `Ready`), so every simulated run checks it;\n"
            "- `DurableState` (the WAL's model, this harness's storage) moves newly committed values from "
            "`accepted` to `chosen` by popping the front of `accepted`, where it looked each slot up in both maps "
            "and cloned its value, and it skips the lookup in `chosen` for an accepted slot past the last chosen "
            "one;\n"
            "- `SlotMap::insert` is inlined with a `push_back` fast path for a slot past the last one (nearly every "
            "insert), and its lookups (`get`, `contains_key`) are inlined;\n"
            "- the learner moves its commit index only when it learns that very slot and stops looking past its "
            "last chosen slot; `is_chosen` needs no lookup for the commit index itself (never chosen: the index "
            "moves past every chosen slot that follows it), nor for a slot past the last chosen one (an Accept's new "
            "slots); `take_committed_into` finds its run with one lookup, "
            "and none when nothing is new;\n"
            "- `propose` sums the commands' bytes and looks for the longest command only when that sum is over a "
            "batch's bytes;\n"
            "- the slots an `Accepted` makes chosen go into a scratch `Vec` the replica keeps, and the leader sizes "
            "its list of batches from its queue (no allocation when nothing waits) instead of growing it.\n\n"
            "The harness changed as well, for every group alike (0daa809): each digests a batch of applied "
            "commands on a local copy and stores it once. paxoskv's group updated the digest in place, inside "
            "`self.applied[index]`, and paid a store and reload per command that the other groups' loops did not "
            "(the same instructions; about 3 ns per command of its time at 16 x 64 in a perf profile), so the "
            "timings of the bundles before this one overstate paxoskv's own share by that much.\n"
        )


def section_core_compare(out):
    title = "## 8. The consensus core next to OmniPaxos and raft-rs (in memory, not durable)\n"
    base = os.path.join(R, "core-compare")
    bundles = sorted(d for d in os.listdir(base)) if os.path.isdir(base) else []
    if not bundles:
        out.append(title + "\n(not recorded yet: `benches/core-compare.sh`)\n")
        return
    name = bundles[-1]
    doc = load(f"core-compare/{name}/results.json")
    with open(os.path.join(base, name, "machine.txt")) as f:
        machine = dict(line.rstrip("\n").split(": ", 1) for line in f if ": " in line)
    rows = doc["rows"]
    at = {(r["library"], r["entries_per_round"], r["commands_per_entry"]): r for r in rows}
    out.append(title)
    out.append(
        "paxoskv's `src/paxos` core, OmniPaxos 0.2 (`omnipaxos` + `omnipaxos_storage`) and raft-rs 0.7 (`raft`, "
        "the Raft of TiKV) each run 3 replicas in one thread: messages passed in memory, each library's in-memory "
        "storage acknowledged at once, 16-byte commands. A round hands the leader `entries` log entries of `cmds` "
        "commands each and delivers messages until none is left; every sample is checked (all three replicas "
        "applied exactly the proposed sequence). `harness-only` is the harness's own share, included in every "
        "row; `own ratio` compares the libraries with it subtracted. Definitions, configuration and the full "
        f"table (criterion's cross-check, messages per entry): [core-compare/{name}](core-compare/{name}/README.md). "
        "Command:\n"
    )
    command = machine.get("command", "benches/core-compare.sh")
    # The --note's text is the bundle's, not part of the command to copy.
    command = command.split(" --note ")[0]
    out.append(f"```\n{command}\n```\n")
    out.append(
        f"Commit `{machine.get('commit', '?')[:12]}`, {machine.get('cores', '?')} cores, {machine.get('cpu', '?')}, "
        f"{machine.get('rustc', '?')}; omnipaxos {machine.get('omnipaxos', '?')}, raft {machine.get('raft', '?')}. "
        f"Load average before the run: {machine.get('load before', '?')}; fuzzers running: "
        f"{machine.get('fuzzers running before', '?')}." + (f" Note: {machine['note']}" if "note" in machine else "")
        + "\n"
    )
    out.append(
        "| entries | cmds | library | ns per committed command, median (min - max) | ratio to paxoskv | "
        "own ratio to paxoskv | allocations per command | bytes per command |"
    )
    out.append("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        if r["library"] in ("paxoskv-no-storage",):
            continue
        e, c = r["entries_per_round"], r["commands_per_entry"]
        p = at[("paxoskv", e, c)]["ns_per_command_median"]
        floor = at[("harness-only", e, c)]["ns_per_command_median"]
        own = "-" if r["library"] == "harness-only" else f"{(r['ns_per_command_median'] - floor) / (p - floor):.2f}"
        out.append(
            f"| {e} | {c} | {r['library']} | {r['ns_per_command_median']:,.1f} ({r['ns_per_command_min']:,.1f} - "
            f"{r['ns_per_command_max']:,.1f}) | {r['ns_per_command_median'] / p:.2f} | {own} | "
            f"{r['allocations_per_command']:.3f} | {r['bytes_per_command']:,.1f} |"
        )
    out.append("")

    def ratio(lib, e, c):
        return at[(lib, e, c)]["ns_per_command_median"] / at[("paxoskv", e, c)]["ns_per_command_median"]

    goal = [(lib, e) for lib in ("omnipaxos", "raft-rs") for e in (1, 16)]
    behind = [f"{lib} is {1 / ratio(lib, e, 64):.2f}x faster with {e} {'entry' if e == 1 else 'entries'} per round"
              for lib, e in goal if ratio(lib, e, 64) < 1]
    shapes = sorted({(r["entries_per_round"], r["commands_per_entry"]) for r in rows})
    slowest = [s for s in shapes if all(ratio(lib, *s) < 1 for lib in ("omnipaxos", "raft-rs"))]

    def own(lib, e, c):
        return at[(lib, e, c)]["ns_per_command_median"] - at[("harness-only", e, c)]["ns_per_command_median"]

    out.append(
        "**The goal (issue 11): paxoskv ahead of both per committed command at 64 commands per entry. "
        + ("Met.**" if not behind else "Missed**: " + "; ".join(behind) + ".")
        + f" paxoskv is the slowest of the three in {len(slowest)} of the {len(shapes)} shapes. "
        + ("Storage is not the main reason: " if behind else "Its storage model's share: ")
        + "dropping paxoskv's persist output altogether (`paxoskv-no-storage` in the full table) "
        f"takes it to {at[('paxoskv-no-storage', 16, 64)]['ns_per_command_median'] / at[('paxoskv', 16, 64)]['ns_per_command_median']:.2f}x "
        "of its time at 16 x 64"
        + ("; nor is the message count: it exchanges as many messages per entry as raft-rs "
           "(OmniPaxos more: a separate Decide).\n" if behind else ". It exchanges as many messages per entry as "
           "raft-rs (OmniPaxos more: a separate Decide).\n")
    )
    out.append(
        "Two costs, each library's own (harness subtracted): per slot, read at one command per entry with 16 "
        f"entries per round: paxoskv {own('paxoskv', 16, 1):,.0f} ns, OmniPaxos {own('omnipaxos', 16, 1):,.0f} ns, "
        f"raft-rs {own('raft-rs', 16, 1):,.0f} ns; and per command, read at 1024 commands per entry: paxoskv "
        f"{own('paxoskv', 16, 1024):.1f} ns, OmniPaxos {own('omnipaxos', 16, 1024):.1f} ns, raft-rs "
        f"{own('raft-rs', 16, 1024):.1f} ns. At 64 commands per entry both count.\n"
    )
    for shape in ("16x64", "1x1"):
        path = os.path.join(base, name, f"profile-paxoskv-{shape}.txt")
        if not os.path.exists(path):
            continue
        shares = ", ".join(f"{k} {v:.0f}%" for k, v in profile_shares(path) if v >= 2)
        e, c = shape.split("x")
        out.append(f"- perf, paxoskv at {e} x {c} (entries per round x commands per entry) ([profile](core-compare/{name}/profile-paxoskv-{shape}.txt)): {shares}.")
    before_name = "20261130T181827Z"
    before_path = os.path.join(base, before_name, "results.json")
    if name != before_name and os.path.exists(before_path):
        old = {(r["library"], r["entries_per_round"], r["commands_per_entry"]): r for r in load(f"core-compare/{before_name}/results.json")["rows"]}
        out.append(
            "\nWhat changed in the core since the bundle before this round's work on it "
            f"([core-compare/{before_name}](core-compare/{before_name}/README.md)), each change checked by the "
            "simulator's sweeps and the core's unit tests:\n\n"
            "- every per-slot map (the leader's `in_flight`, the acceptor's `accepted`, the learner's `chosen`, "
            "`DurableState`'s `accepted` and `chosen`, recovery's and election's `accepted`) is a `SlotMap` "
            "(`src/paxos/slotmap.rs`): a sorted `VecDeque` of `(slot, value)`, looked up in a dense run by "
            "`slot - first slot`, with a binary search as the fallback; pruning drains the front where "
            "`BTreeMap::split_off` built a new tree at every commit. Memory follows the entries, not the span of "
            "slots, so a far slot costs one entry;\n"
            "- the proposal queue keeps commands in the chunks they were proposed in, and a chunk that fits becomes "
            "the batch as it is (it was moved one command at a time into a growing `Vec`);\n"
            "- a drained `Ready` goes back to the core (`Replica::recycle`, used by the node and this harness) and "
            "the next one reuses its buffers; an Accept whose slots are all stored goes to disk as it came, not "
            "copied into runs; a broadcast moves the message into the last peer instead of cloning it; "
            "`horizon_acked` (every commit) no longer clones and sorts a `Vec`.\n"
        )
        with open(os.path.join(base, before_name, "machine.txt")) as f:
            before_cpu = dict(line.rstrip("\n").split(": ", 1) for line in f if ": " in line).get("cpu", "?")
        if before_cpu != machine.get("cpu", "?"):
            out.append(
                f"The two bundles ran on different host CPUs ({before_cpu}, then {machine.get('cpu', '?')}): "
                "their nanoseconds do not compare, only each bundle's ratios and the allocation counts do.\n"
            )
        out.append("| entries | cmds | paxoskv ns per command, before | after | allocations per command, before | after |")
        out.append("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for e, c in shapes:
            b, a = old.get(("paxoskv", e, c)), at.get(("paxoskv", e, c))
            if b and a:
                out.append(f"| {e} | {c} | {b['ns_per_command_median']:,.1f} | {a['ns_per_command_median']:,.1f} | "
                           f"{b['allocations_per_command']:.3f} | {a['allocations_per_command']:.3f} |")
        out.append("")
    section_core_instructions(out, name, shapes, machine)
    slot_ratio = own("paxoskv", 16, 1) / own("omnipaxos", 16, 1)
    cmd_ratio = max(own("paxoskv", 16, 1024) / own(lib, 16, 1024) for lib in ("omnipaxos", "raft-rs"))
    if slot_ratio > 1:
        text = (
            f"What is left: per slot, paxoskv's own time is {slot_ratio:.1f}x OmniPaxos's although it exchanges "
            "fewer messages per entry and allocates less per slot: every replica stores each slot in its acceptor, "
            "in its `DurableState` (the WAL's model) and then in its learner, where OmniPaxos keeps one log; per "
        )
    else:
        text = (
            f"Per slot (one command per entry, 16 entries per round), paxoskv's own time is {slot_ratio:.2f}x "
            "OmniPaxos's, though every replica still stores each slot in its acceptor, in its `DurableState` (the "
            "WAL's model) and then in its learner, where OmniPaxos keeps one log; per "
        )
    text += (
        f"command (1024 commands per entry) its own time is at most {cmd_ratio:.1f}x either library's"
        + (" (below both)" if cmd_ratio < 1 else "")
    )
    counted = instruction_counts(name)
    if counted:
        def own_ins(lib, e, c):
            return counted[(lib, e, c)] - counted[("harness-only", e, c)]

        text += (
            ", a figure the harness's share blurs at that size: in instructions (harness subtracted) paxoskv does "
            f"{own_ins('paxoskv', 16, 1):,.0f} per slot to OmniPaxos's {own_ins('omnipaxos', 16, 1):,.0f}, and "
            f"{own_ins('paxoskv', 16, 1024):.1f} per command at 1024 commands per entry to OmniPaxos's "
            f"{own_ins('omnipaxos', 16, 1024):.1f} and raft-rs's {own_ins('raft-rs', 16, 1024):.1f}"
        )
    out.append(text + ".\n")


def session_check(out, runs, g):
    """Flag the references of bundle `g` that moved far from their median over every goals bundle: the
    verdicts computed from them then say more about the session than about paxoskv."""
    references = [
        ("Redis's -P 16 GET", lambda b: b["systems"].get("redis", {}).get("p16_get_rps"), "{:,.0f} ops/s"),
        ("Redis's -P 16 SET", lambda b: b["systems"].get("redis", {}).get("p16_set_rps"), "{:,.0f} ops/s"),
        ("Redis's find-max", lambda b: b["systems"].get("redis", {}).get("find_max_ops_s"), "{:,.0f} ops/s"),
        ("AOF Redis's 2k/s p99", lambda b: b["systems"].get("redis-aof", {}).get("open_2k_p99_us"), "{:,.0f} µs"),
        ("the raw disk's p50", lambda b: b["raw_disk"].get("raw_disk_p50_us"), "{:,.0f} µs"),
    ]
    bundles = [load(f"goals/{d}/goals.json") for d in runs]
    number = lambda v: float(v) if v not in (None, "", "-") else None
    moved = []
    for name, get, unit in references:
        values = [v for v in (number(get(b)) for b in bundles) if v]
        value = number(get(g))
        if not value or len(values) < 3:
            continue
        median = statistics.median(values)
        ratio = value / median
        if ratio > 1.5 or ratio < 1 / 1.5:
            moved.append(f"{name} {unit.format(value)}, {ratio:.2f}x its median over {len(values)} sessions "
                         f"({unit.format(median)})")
    if moved:
        out.append(f"\n**This session's references moved** (by more than 1.5x from their median over every goals "
                   f"bundle): {'; '.join(moved)}. The verdicts computed from them say more about the session than "
                   f"about paxoskv; read them with the earlier bundles.")


def goals_cpu_model(name):
    """The host CPU a goals bundle ran on, from its loadgen bundles (the
    script itself does not record it): sessions on different host CPUs
    compare by ratios only."""
    import glob

    for path in sorted(glob.glob(os.path.join(R, "goals", name, "*", "bundle.json"))):
        with open(path) as f:
            model = json.load(f).get("machine", {}).get("cpu_model")
        if model:
            return model
    return "CPU not recorded"


def section_goals(out):
    """Issue 11's goals, before and after, from the newest results/goals bundle."""
    out.append("## 9. Issue 11's goals: before and after, each next to its reference (durable unless said)\n")
    runs = [d for d in bundles_by_time(os.path.join(R, "goals")) if load(f"goals/{d}/goals.json")]
    if not runs:
        out.append("(not recorded yet: `benches/record-goals.sh --before OLD_BINARY`)\n")
        return
    name = runs[-1]
    g = load(f"goals/{name}/goals.json")
    out.append(
        f"Every figure from one session on this 2-core machine, measured minutes apart by "
        f"`benches/record-goals.sh`: paxoskv at commit `{g['commit']}` (after)"
        + (" and an earlier build's binary (before; the bundle names its commit), each" if "before" in g["goals"] else "")
        + f" on fresh 3-node clusters, next to the raw disk (three concurrent O_DIRECT "
        f"4 KiB overwrite + fdatasync loops: p50 {float(g['raw_disk']['raw_disk_p50_us']):.0f} µs), AOF Redis "
        f"(`appendfsync always`) and Redis. Read the ratios, not the absolute figures, on another machine. "
        f"Bundle with every raw output and the steps' definitions: [goals/{name}](goals/{name}/README.md). "
        f"Command:\n"
    )
    out.append(f"```\n{g['command']}\n```\n")
    has_before = "before" in g["goals"]
    met = {True: "met", False: "**missed**", None: "-"}

    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float) and v < 100:
            return f"{v:.3f}" if v < 10 else f"{v:.1f}"
        return f"{v:,.0f}"

    has_floor = bool(g.get("floor_cpu_mix_us_per_op"))
    has_rt = any(row.get("runtime_floor") is not None for row in g["goals"]["after"])
    head = "| goal | before | after | bound (from the reference) | after: |"
    out.append((head if has_before else "| goal | after | bound (from the reference) | after: |")
               + (" the machine's floor | the floor meets it |" if has_floor else "")
               + (" the floor on glommio | that floor meets it |" if has_rt else ""))
    out.append(("| --- | ---: | ---: | ---: | --- |" if has_before else "| --- | ---: | ---: | --- |")
               + (" ---: | --- |" if has_floor else "") + (" ---: | --- |" if has_rt else ""))
    for i, row in enumerate(g["goals"]["after"]):
        cells = [row["goal"]]
        if has_before:
            b = g["goals"]["before"][i]
            cells.append(f"{fmt(b['value'])} {b['unit']}")
        cells += [f"{fmt(row['value'])} {row['unit']}", f"{fmt(row['bound'])} {row['unit']}" + (f" ({row['reference']})" if row["reference"] else ""),
                  met[row["met"]]]
        # A floor's cells: what it reaches, and whether that meets the bound.
        for shown, key in ((has_floor, "floor"), (has_rt, "runtime_floor")):
            if shown:
                floor = row.get(key)
                cells.append(f"{fmt(floor)} {row['unit']}" if floor is not None else "-")
                verdict = {True: "yes", False: "**no**", None: "-"}[row.get(f"{key}_met")]
                cells.append(verdict if row.get("floor_bounds", True) or floor is None else "a reference")
        out.append("| " + " | ".join(cells) + " |")
    session_check(out, runs, g)
    if has_floor:
        f3, f1 = g["floors"]["rate-3"], g["floors"]["rate-1"]
        out.append(
            f"\nThe machine's floor, measured in the same session (`loadgen floor`: a commit's messages between "
            f"threads over loopback TCP with blocking syscalls and no consensus code, section 13): a single client's "
            f"write with an O_DIRECT write + fdatasync at each of 3 replicas, the same without the disk, and the CPU "
            f"per op at 10,000 ops/s of the goals' mix, half writes (3 replicas: {f3['replica_cpu_us_per_op']:.1f} µs) "
            f"and half reads at the leader (one round trip: {f1['replica_cpu_us_per_op']:.1f} µs), every client at "
            f"the leader (which favours the floor: no request is forwarded). find-max's floor is the rate at which "
            f"that mix keeps all {g['cores']} cores busy, before the load generator's own share: a reference, not "
            f"a bound, since it prices every op at its cost at 10,000 ops/s, where a wake-up serves about one "
            f"request, and at higher rates each serves several (stop 49's bundle found paxoskv itself above it). "
            f"Where the floor misses any other bound (**no**), no 3-replica server with a leader can meet that goal "
            f"on this machine in that session; where it meets it (yes), what paxoskv adds over the floor is what is left to remove. The CPU "
            f"and find-max floors do no disk work, so there a yes says only that the goal is not out of reach for "
            f"want of CPU: a durable write's CPU depends on how many writes each sync covers, latency traded for "
            f"CPU (`loadgen floor --sync-dir --group-commit --rate R` shows that trade on this disk).")
    if has_rt:
        fs, fn = g["floors"]["c1-sync-glommio"], g["floors"]["c1-none-glommio"]
        out.append(
            f"\nThe floor on glommio, in the same session: the single client's messages again with each replica on "
            f"a glommio executor, as paxoskv's nodes run (`loadgen floor --runtime glommio`: io_uring, its reactor "
            f"and timers; the disk writes stay blocking): p50 {fs['p50_us']:.0f} µs with the disk, "
            f"{fn['p50_us']:.0f} µs without. Where it misses a single-client bound (**no**), the bare messages on "
            f"paxoskv's runtime already miss it on this machine in that session, before any consensus code; "
            f"paxoskv's distance from that floor is the node's own work.")
        gm = g.get("glommio_cpu_mix_us_per_op")
        if gm:
            g3, g1 = g["floors"]["rate-3-glommio"], g["floors"]["rate-1-glommio"]
            out.append(
                f"\nSince stop 49 the paced runs too (16 clients, 10,000 ops/s; `loadgen floor --runtime glommio "
                f"--clients 16 --rate 10000`, each replica a process of its own, the leader's tasks shaped as a "
                f"node's): a write's 3-replica messages {g3['replica_cpu_us_per_op']:.1f} µs of CPU, a read at the "
                f"leader {g1['replica_cpu_us_per_op']:.1f} µs, so {gm:.1f} µs for the goals' mix, and find-max's "
                f"floor on glommio {g['cores'] * 1e6 / gm:,.0f} ops/s (a reference, as above). What that costs above the blocking floor is "
                f"the runtime's work per wake-up (every pass submits and cancels timers through io_uring, and a "
                f"memory barrier precedes every sleep); where it misses the CPU bound (**no**), paxoskv cannot meet "
                f"it here on glommio, whatever the node does.")
    fs16, fn16 = g["floors"].get("p16-sync") or {}, g["floors"].get("p16-none") or {}
    s16 = g["systems"].get("redis", {}).get("p16_set_rps")
    if fs16.get("p16_set_rps") and fn16.get("p16_set_rps"):
        out.append(
            f"\nThe pipelined SET's floor, in the same session: the p16 step's `redis-benchmark -t set -c 50 -P 16` "
            f"against `loadgen floor --serve`, a blocking leader that sends every pass's commands to both followers "
            f"as one batch and answers them once a majority has them, nothing stored (a reference for this goal, "
            f"not a bound: a floor built otherwise could go faster): {fs16['p16_set_rps']:,.0f} "
            f"SET/s with a durable group commit at every replica (the replicas' CPU "
            f"{fs16['replica_cpu_us_per_op']:.1f} µs per command), {fn16['p16_set_rps']:,.0f} SET/s without the "
            f"disk ({fn16['replica_cpu_us_per_op']:.1f} µs). "
            + ("So the messages and the disk of a replicated durable write leave room for the goal here; "
               if fs16["p16_set_rps"] >= 0.4 * (s16 or 0) else "Even the bare messages and disk miss the goal's bound here. ")
            + "What the floor leaves out is a store: applying each SET at every replica (section 19 prices it "
              "alone, section 20 inside the servers), which a replicated store pays three times and Redis once.")
    o2k = g["floors"].get("open-2k") or {}
    if o2k:
        aof_p99 = g["systems"].get("redis-aof", {}).get("open_2k_p99_us")
        verdict = ""
        if aof_p99:
            verdict = (" It meets the p99 bound, so the rest of paxoskv's tail there is its own."
                       if o2k["p99_us"] <= 2 * aof_p99 else
                       " It misses the p99 bound: the tail this machine gives the mix already misses it.")
        out.append(
            f"\nThe open-loop floor, in the same session: the open-2k step's mix against `loadgen floor`, 16 clients "
            f"paced at 2,000 ops/s in all, half of the ops reads that the blocking leader answers at once, the writes "
            f"replicated with a durable group commit at every replica (`--rate 2000 --read-ratio 0.5 --sync-dir "
            f"--group-commit`), every client at the leader: p50 {o2k['p50_us']:,.0f} µs, p99 {o2k['p99_us']:,.0f} µs, "
            f"max {o2k['max_us']:,.0f} µs." + verdict)
    s = g["systems"]
    px = s.get("paxoskv", {})
    out.append("")
    if px.get("peer_writes_per_op") is not None:
        out.append(
            f"Where paxoskv's CPU goes at 10k ops/s (after): {px['cpu_10k_us_per_op']:.0f} µs of server CPU per "
            f"operation over three processes, against Redis's {s['redis']['cpu_10k_us_per_op']:.0f} µs for one; per "
            f"operation {px['peer_writes_per_op']:.2f} peer socket writes, {px['slots_per_op']:.2f} log slots "
            f"(one slot per {1 / px['slots_per_op']:.1f} operations) and {px['wal_syncs_per_op']:.2f} "
            f"WAL writes summed over the nodes; two of every three client connections land on a follower, which "
            f"forwards the request to the leader and its answer back.\n")
    others = [d for d in runs if d != name]
    if others:
        def spread(values):
            values = [float(v) for v in values if v not in (None, "", "?")]
            return max(values) / min(values) if values and min(values) > 0 else 1.0
        bundles = [load(f"goals/{d}/goals.json") for d in [name] + others]
        disk = spread(b.get("raw_disk", {}).get("raw_disk_p50_us") for b in bundles)
        redis_c1 = spread(b["systems"].get("redis", {}).get("set_c1_p50_ms") for b in bundles)
        out.append("One run of each step per bundle, so compare with the other bundles (same script, earlier builds) "
                   "before reading a small difference, and compare ratios: the sessions ran on virtual machines of "
                   f"the same size whose raw disk p50 differs by up to {disk:.1f}x and Redis's single-client SET p50 "
                   f"by up to {redis_c1:.1f}x (the references in brackets). paxoskv (after) in each:\n")
        for d in [name] + others[::-1]:
            x = load(f"goals/{d}/goals.json")
            p = x["systems"].get("paxoskv", {})
            r = x["systems"].get("redis-aof", {})
            raw = x.get("raw_disk", {}).get("raw_disk_p50_us", "?")
            red = x["systems"].get("redis", {})
            out.append(f"- [{d}](goals/{d}/README.md) at `{x['commit']}` ({goals_cpu_model(d)}; raw disk p50 {raw} µs, Redis SET -c 1 "
                       f"p50 {red.get('set_c1_p50_ms')} ms): SET -c 1 p50 {p.get('set_c1_p50_ms')} ms, "
                       f"2k/s p99 {p.get('open_2k_p99_us', 0):,} µs (AOF Redis {r.get('open_2k_p99_us', 0):,} µs), "
                       f"find-max {p.get('find_max_ops_s') or 0:,.0f} ops/s (AOF Redis "
                       f"{r.get('find_max_ops_s') or 0:,.0f} ops/s).")
        out.append("\nfind-max (the highest rate whose p99 over a 3 s step stays under 5 ms) swings by 2-10x between "
                   "runs for every durable system here, AOF Redis included: one disk stall of 10-20 ms in a step "
                   "is enough to fail it (issue 13's benchmark hygiene).\n")
    out.append("")


def section_faults(out):
    """Section 10 and results/faults/README.md: checked runs under faults."""
    base = os.path.join(R, "faults")
    if not os.path.isdir(base):
        return
    rows, details = [], []
    for name in sorted(os.listdir(base)):
        if not os.path.isdir(os.path.join(base, name)):
            continue
        comparison = load(f"faults/{name}/comparison.json")
        if not comparison:
            continue
        for p in comparison["profiles"]:
            for r in p["repeats"]:
                bundle = load(f"faults/{name}/{r['bundle']}/bundle.json")
                if not bundle:
                    continue
                run = bundle["runs"][0]
                labels = bundle["labels"]
                check = run.get("check")
                faults = run.get("faults", [])
                all_ops = run["ops"]["all"]
                verdict = check["verdict"] if check else "not checked (etcd: no RESP)"
                if check and check["keys_failing"]:
                    verdict += f" ({check['keys_failing']} keys)"
                recovered = ", ".join(
                    f"{f['kind']} n{f['node']} {f['start_s']:.0f}-{f['end_s']:.0f} s: "
                    + (f"{f['recovered_s']:.0f} s" if f.get("recovered_s") is not None else "not in window")
                    for f in faults
                )
                rows.append(
                    f"| [{name}](faults/{name}/README.md) | {labels.get('system', p['name'])} | "
                    f"{labels.get('nemesis', '-')} | {rate(run['offered_ops_s'] or 0)} | {rate(run['achieved_ops_s'])} | "
                    f"{ms(all_ops['p99_us'])} | {all_ops['errors'] + all_ops['timeouts']} | "
                    f"{check['indeterminate_writes'] if check else '-'} | {verdict} | "
                    f"{check['lost_acknowledged_writes'] if check else '-'} | {recovered} |"
                )
                if check and check["violations"]:
                    details.append(f"\n**{name}**: {check['headline'] if 'headline' in check else check['verdict']}; first violations:\n")
                    for v in check["violations"][:2]:
                        details.append(f"- key `{v['key']}`: {v['summary']}\n\n  ```")
                        details.extend(f"  {op}" for op in v["ops"])
                        details.append("  ```")
    if not rows:
        return
    header = (
        "| run | system | nemesis | offered ops/s | achieved ops/s | p99 ms | errors + timeouts | indeterminate writes "
        "| check | lost acknowledged writes | faults: recovered after |\n"
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"
    )
    intro = (
        "`benches/record-faults.sh` (root: partitions run the nodes in network namespaces): `loadgen compare` "
        "with `--nemesis` (faults on real processes during the measured window: `kill` = SIGKILL, restarted "
        "with the same command line and data after 3 s; `stop` = a planned restart, SIGTERM (the node hands "
        "the leadership of the shards it leads over, then exits; since stop 58), restarted the same way after "
        "3 s; `pause` = SIGSTOP for 3 s; `partition` = the node cut "
        "off from the others for 3 s, clients still reaching it) and `--check linearizable` (every operation "
        "recorded, each key's history checked with the simulator's checker; writes without a reply are "
        "indeterminate). Workload: 1000 ops/s offered, half reads, 1000 keys, 30 s; the acceptance run is the "
        "issue's command (5000 ops/s, 90% reads, all three fault kinds). `stale-reads-bug` runs servers with "
        "an injected bug (`--unsafe-inject-bug stale-lease-reads`: reads served from any node's own state) to "
        "show the checker fails when it should. Recovered: from the fault's start to the end of the first "
        "second with no errors, 90% of the usual throughput and a p99 within 2x of the usual.\n"
    )
    out.append("## 10. Checked benchmarks under faults (kill, stop, pause, partition)\n")
    out.append(intro)
    out.append(header)
    out.extend(rows)
    out.append("\nDetails, timelines and violations: [faults/README.md](faults/README.md).\n")
    out.append("`stop` against `kill` (stop 58, both re-run in the same session at the same commit, each time "
               "the shard leader): the errors are the same in both, about 300 a second for as long as the node "
               "is down, the requests of the clients connected to it (3,029 and 3,076 over the three faults). "
               "What differs is the others' wait for a leader. In the second each fault began, the slowest "
               "request took 1.8-2.3 ms under `stop` and 159-259 ms under `kill` (each run's `timeline`); the "
               "cluster log of the `stop` run shows the next leader elected 1 ms after each hand-over "
               "(`stepped down ...: HandedOver`, then `became leader`), where a killed leader's followers wait "
               "out its lease and an election timeout. The p99 over the whole window: 110 and 181 ms. "
               "`loadgen --nemesis stop` and `paxoskv cluster --control-stdin`'s `stop N` are new in stop 58; "
               "`benches/record-faults.sh` runs `stop` beside the others from now on, and the other rows "
               "are from its last full run.\n")
    cost = load("check-cost/summary.json")
    if cost:
        out.append(
            f"**What recording costs the load generator**: `benches/record-check-cost.sh`, closed loop "
            f"{cost['connections']}x{cost['pipeline']} against one redis-server, half reads, loadgen without and with "
            f"`--check` interleaved, {cost['repeats']} repeats: with/without throughput **{cost['median_ratio']:.2f}x** "
            f"(per repeat {', '.join(f'{r:.2f}' for r in cost['ratios'])}; goal >= 0.9); checking the "
            f"{max(cost['operations']):,} operations of a run took {max(cost['check_ms'])} ms at most. Commit "
            f"`{cost['commit']}`.\n"
        )
    page = ["# Checked benchmarks under faults\n", intro, header]
    page.extend(row.replace("](faults/", "](") for row in rows)
    page.append("\nEach run's timeline (faults shaded, elections marked): `<run>/runs/*/timeline.svg`.\n")
    for name in sorted(os.listdir(base)):
        if os.path.isdir(os.path.join(base, name)):
            page.append(f"- {name}: ![timeline]({name}/runs/{os.listdir(os.path.join(base, name, 'runs'))[0]}/timeline.svg)")
    if details:
        page.append("\n## Violations found\n")
        page.extend(details)
    with open(os.path.join(base, "README.md"), "w") as f:
        f.write("\n".join(page) + "\n")


def section_idle(out):
    """Section 11: an idle cluster's CPU (benches/record-idle.sh), the newest bundle."""
    base = os.path.join(R, "idle")
    if not os.path.isdir(base):
        return
    newest = sorted(os.listdir(base))[-1]
    with open(os.path.join(base, newest, "README.md")) as f:
        page = f.read().split("\n", 2)[2]  # without its title
    out.append("## 11. An idle cluster's CPU\n")
    out.append(page.replace("](raw.txt)", f"](idle/{newest}/raw.txt)"))
    out.append(f"Bundle: [idle/{newest}](idle/{newest}/README.md). The server's ticker sleeps until the node's next "
               "deadline (`Node::next_tick_us`) instead of ticking every millisecond; what is left is mostly the "
               "leader's heartbeats (every 10 ms to each follower) and their replies. Since stop 50 a thread of "
               "each shard's own wakes its ticker (`src/server/alarm.rs`, section 28), so a tick wakes that thread "
               "and then the executor; the bundle of 20261204T182945Z sets that build (3887e8a1) beside the one "
               "before it (b5745fa4, `/tmp/pk-base`): 0.057 against 0.059 cores, no cost that shows.\n")


def section_newest_bundle(out, directory, heading, raw_name):
    """A section made of the newest bundle's README under results/DIRECTORY (its title replaced by HEADING,
    its RAW_NAME file linked), then links to the bundle and to the earlier ones. Returns the bundles, oldest
    first (none: the section is left out)."""
    base = os.path.join(R, directory)
    bundles = bundles_by_time(base)
    if not bundles:
        return bundles
    newest = bundles[-1]
    with open(os.path.join(base, newest, "README.md")) as f:
        page = f.read().split("\n", 2)[2]  # without its title
    out.append(f"## {heading}\n")
    out.append(page.replace(f"`{raw_name}`", f"[{raw_name}]({directory}/{newest}/{raw_name})"))
    links = ", ".join(f"[{d}]({directory}/{d}/README.md)" for d in bundles if d != newest)
    out.append(f"Bundle: [{directory}/{newest}]({directory}/{newest}/README.md)" + (f"; earlier: {links}" if links else "")
               + ".\n")
    return bundles


def section_wal_requests(out):
    """Section 12: block requests per WAL sync (benches/record-wal-requests.sh)."""
    section_newest_bundle(out, "wal-requests", "12. What a WAL sync costs the disk", "counts.txt")
    out.append("The zeros written ahead of the records were measured against the build before them in "
               "[zero-ahead-chunked-20261201T124117Z](wal-requests/zero-ahead-chunked-20261201T124117Z/README.md): "
               "block requests per sync fell from 5.04 to 3.21, synchronous metadata writes from 1.70 to 0.82.\n")


def section_floor(out):
    """Section 13: a single client's write beside the machine's floor (benches/record-floor.sh)."""
    section_newest_bundle(out, "floor", "13. A single client's write next to the machine's floor", "runs.txt")


def section_p16_profile(out):
    """Section 20: where the servers' CPU goes under pipelined SETs (benches/record-p16-profile.sh)."""
    bundles = section_newest_bundle(out, "p16-profile", "20. Where the servers' CPU goes under pipelined SETs",
                                    "run1-leader-report.txt")
    if bundles:
        out.append("How to read it: per command, the leader's and each follower's CPU add up to what one SET costs "
                   "the cluster (section 9's -P 16 SET goal is bounded by it: the three nodes and the client share "
                   "the machine's cores). A follower's biggest part is applying the command to its store, and most "
                   "of that is the key table's write, a cache miss or two per key on a keyspace this large (section "
                   "19 measures the store alone); the leader adds reading, parsing and answering its clients. The "
                   "pipelined floor in section 9 (`loadgen floor --serve`, nothing stored) prices the messages and "
                   "the disk without a store.\n")


def section_cpu_split(out):
    """Section 14: server CPU per operation split into user and kernel time (benches/record-cpu-split.sh)."""
    section_newest_bundle(out, "cpu-split", "14. Where the CPU per operation goes: user, kernel, syscalls",
                          "paxoskv-ticks.txt")
    out.append("How to read it: most of every server's CPU per operation here is kernel time, Redis's too "
               "(its socket reads and writes). paxoskv's system calls are its own socket reads and writes "
               "(`recvfrom`, `sendto`, between nodes as well as to clients) and `io_uring_enter`, which its "
               "runtime (glommio 0.9) makes several of each time an executor runs out of work and waits: it "
               "flushes each of its rings, arms a throughput timer and re-arms its preemption timer on every "
               "pass (`Reactor::wait` in its `sys/uring.rs`), and issues a `membarrier` before it sleeps. Section 18 "
               "measures what removing that timer would save: submissions, but no CPU.\n")


def section_wal_writes(out):
    """Section 15: WAL writes through io_uring or inline (benches/record-wal-writes.sh)."""
    section_newest_bundle(out, "wal-writes", "15. WAL writes through io_uring or on the shard's own thread",
                          "runs.txt")
    out.append("How to read it: `inline` saves the two cross-thread wake-ups io_uring's worker costs per group "
               "commit (the CPU per operation, the WAL sync itself), and gives up the overlap of an executor's "
               "disk wait with its other work: its reads and forwarded requests wait for each sync, and a disk "
               "hiccup stalls them all. How much that moves p50 and p99 here is within the run-to-run spread of "
               "a few runs: compare the runs in `runs.txt` and the bundles, not one median. The default stays "
               "`async`; `--wal-writes inline` is for CPU-bound deployments that can take the latency.\n")


def section_alloc(out):
    """Section 16: mimalloc's purge delay (benches/record-alloc.sh)."""
    bundles = section_newest_bundle(out, "alloc", "16. The allocator's purge delay under pipelined writes", "runs.txt")
    if not bundles:
        return
    m = load(f"alloc/{bundles[-1]}/summary.json")["medians"]
    a, b = m.get("purge-1s"), m.get("purge-10s")
    if not a or not b:
        return
    out.append(
        "Why it was measured: under this load `perf` put 7-12% of the servers' CPU in `clear_page_erms`, pages "
        "faulted in, and mimalloc hands a page back to the OS once it has been free for its purge delay (1 s), "
        f"so a buffer reused after that is faulted in again. A 10 s delay takes the faults from "
        f"{a['set_faults_per_kop']:.1f} to {b['set_faults_per_kop']:.1f} per 1000 SETs, and the CPU per SET from "
        f"{a['set_cpu_us_per_op']:.2f} to {b['set_cpu_us_per_op']:.2f} µs (ops/s {a['set_ops_s']:,.0f} and "
        f"{b['set_ops_s']:,.0f}; compare the runs in `runs.txt` before reading a difference of a few percent), with "
        f"the leader's peak memory {a['leader_hwm_kb'] / 1024:.0f} and {b['leader_hwm_kb'] / 1024:.0f} MiB. Most "
        "of the faults left are the log's own growth (commands are kept until the next snapshot). paxoskv keeps "
        "mimalloc's default; `MIMALLOC_PURGE_DELAY` in the servers' environment changes it.\n")


def section_thp(out):
    """Section 17: transparent huge pages on or off (benches/record-alloc.sh --compare thp)."""
    bundles = section_newest_bundle(out, "thp", "17. Transparent huge pages under pipelined writes and reads",
                                    "runs.txt")
    if not bundles:
        return
    rows = []
    for b in bundles:
        summary = load(f"thp/{b}/summary.json")
        off, on = summary["medians"].get("thp-off"), summary["medians"].get("thp-on")
        if not off or not on:
            continue
        requests = re.search(r"--requests (\d+)", summary["command"])
        requests = int(requests.group(1)) if requests else 1_000_000
        zeroing = summary.get("perf_zeroing_percent") or {}
        zero = lambda n: f"{zeroing[n]:.1f}%" if n in zeroing else "-"
        rows.append(f"| [{b}](thp/{b}/README.md) | {requests:,} | {off['set_cpu_us_per_op']:.2f} / "
                    f"{on['set_cpu_us_per_op']:.2f} ({off['set_cpu_us_per_op'] / on['set_cpu_us_per_op'] - 1:+.0%}) | "
                    f"{off['get_cpu_us_per_op']:.2f} / {on['get_cpu_us_per_op']:.2f} "
                    f"({off['get_cpu_us_per_op'] / on['get_cpu_us_per_op'] - 1:+.0%}) | {zero('thp-off')} / "
                    f"{zero('thp-on')} |")
    out.append("Every bundle, huge pages off / as the system sets them (medians; the change is off against on):\n")
    out.append("| bundle | requests per step | SET CPU µs/op | GET CPU µs/op | page zeroing in `perf` |")
    out.append("| --- | ---: | ---: | ---: | ---: |")
    out.extend(rows)
    out.append("")
    out.append(
        "Why it was measured: under `redis-benchmark -P 16` SETs `perf` put about 18% of the servers' samples in "
        "`clear_page_erms` under `vma_alloc_anon_folio_pmd`: mimalloc marks its arenas for huge pages, and each "
        "one faulted in is zeroed whole, 2 MiB. Turning them off (`--transparent-huge-pages false`, "
        "`prctl(PR_SET_THP_DISABLE)`, what Redis's `disable-thp` does) removes that zeroing but makes every "
        "access to the key index go through 4 KiB pages (more TLB misses). Over the bundles above, a SET costs "
        "less CPU without huge pages in 13 of 15 interleaved pairs, and GETs show no consistent difference (8 of "
        "15 pairs slower, medians -1% to +9%), so paxoskv turns them off by default; `--transparent-huge-pages true` "
        "leaves the system's setting.\n")


def section_glommio_timer(out):
    """Section 18: glommio's throughput-preemption timer kept or removed (benches/record-glommio-timer.sh)."""
    if not section_newest_bundle(out, "glommio-timer",
                                 "18. glommio's per-pass throughput timer: what patching it would buy", "runs.txt"):
        return
    out.append("How to read it: glommio 0.9 arms an io_uring TIMEOUT (with a linked eventfd WRITE) on every pass "
               "of its reactor and cancels the previous one, which section 14 names among the causes of paxoskv's "
               "io_uring_enter calls. "
               "Keeping the timer armed, or never arming it, cuts io_uring submissions per operation by a quarter to a "
               "third, but not the CPU per operation: that follows how many times per operation the executors "
               "wake and pass through the reactor (the correlation under the table), which neither edit changes. "
               "Patching or replacing glommio for this timer would not move issue 11's CPU goal. The variants' "
               "lower p50 and p99 sit on the same line as the stock runs (more passes, less waiting, more CPU); "
               "they are not a free gain either.\n")


def section_kv(out):
    """Section 19: the store's own cost per command (benches/record-kv.sh)."""
    if not section_newest_bundle(out, "kv", "19. The store's own cost per command", "runs.txt"):
        return
    out.append("How to read it: what every replica pays to apply a committed SET, and the leader to serve a GET, "
               "inside the store alone (decoding, the session table, the keyspace), without the network, the WAL "
               "or the runtime. On a keyspace this large the cost is mostly cache misses in the key table and on "
               "the values' allocations, so it moves with the machine's caches more than its clock. The times "
               "here move by 15-30% from run to run with the machine's load (the GET row measures code that no "
               "recent change touched), so the instruction count, which does not, is the figure to compare for a "
               "change of a few tens of percent or less. The `lookups` bundle's changes: the key table hashed "
               "with aHash (seeded per process) instead of SipHash-1-3; the walk for a session's released "
               "commands skipped when none waits; the sessions in a hash table with a fixed hasher instead of a "
               "`BTreeMap`; the last cached reply found without a search. They take a third of the "
               "instructions of applying a SET away, and none of its time measurably: on 100,000 keys a SET's "
               "time is the key table's and the allocator's cache misses, which fewer instructions do not "
               "remove. A GET, which hashes its key and little else, takes less than half the time. "
               "The newest bundle (stop 51) measures `KvStore::warm`: a node now looks every key of a committed batch up "
               "in the key table, one after another, before it applies the batch, so that their cache misses "
               "overlap instead of each stalling its SET in turn (a SET's lookup and write depend on the store's "
               "state, so the processor cannot run ahead into the next SET's miss by itself; plain lookups, as "
               "the GET row's, already overlap, and warming them gained nothing when tried). The warmed row is "
               "the one a node runs; the build before, without `warm`, runs it unwarmed. In `perf` of a follower "
               "under `-P 16` SETs the key table's share (`Keyspace::put`) fell from about 17% to 10% with "
               "`warm` counted in; section 29's newest bundle measures the servers.\n")


def section_allocator(out):
    """Section 21: mimalloc 3.x, mimalloc 2.x and glibc side by side (benches/record-alloc.sh --compare allocator)."""
    bundles = section_newest_bundle(out, "allocator", "21. Which allocator", "runs.txt")
    if not bundles:
        return
    runs = load(f"allocator/{bundles[-1]}/summary.json")["runs"]
    names = [("mimalloc-v3", "mimalloc 3.x"), ("mimalloc-v2", "mimalloc 2.x"), ("system-alloc", "glibc")]
    out.append("Every run's SET CPU µs per operation (the servers', all three nodes; runs are interleaved, each "
               "setting first in turn):\n")
    out.append("| run | " + " | ".join(label for _, label in names) + " |")
    out.append("| ---: | " + " | ".join("---:" for _ in names) + " |")
    for i in range(len(runs.get("redis", []))):
        cells = [f"{runs[n][i]['set_cpu_us_per_op']:.2f}" if i < len(runs.get(n, [])) else "-" for n, _ in names]
        out.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("Why it was measured: a `perf` profile of a leader under `-P 16` SETs put about 6% of its time in "
               "mimalloc 3.x's `mi_find_free_page` (walking a size class's pages for a free block: a store that "
               "overwrites 100,000 values at random frees one block here and one there), and three ad hoc rounds "
               "had 2.x about 8% cheaper per SET. Measured properly, interleaved, the two lines are the same within "
               "this machine's spread (3.x cheaper in 4 of 5 runs), and glibc costs a little more. The 2.x default "
               "that the ad hoc rounds suggested was reverted (the bundle's table names 2.x the default: it was, at "
               "that commit); mimalloc 3.x stays. `--no-default-features --features mimalloc-v2` builds the 2.x "
               "line.\n")


def section_pairs(out):
    """Section 22: this build against an earlier binary (benches/record-alloc.sh --compare binary)."""
    bundles = section_newest_bundle(out, "pairs", "22. A build against an earlier binary, interleaved", "runs.txt")
    if not bundles:
        return
    out.append("Why: a change's end-to-end effect under pipelined SETs and GETs, measured by a command in the "
               "repository, interleaved and with Redis beside it, instead of ad hoc pairs. The bundles so far "
               "compare the store changes of stop 37 (the key table hashed with aHash instead of SipHash-1-3, the "
               "session table in a hash table, fewer session lookups and reply searches per applied command: "
               "section 19 counts a third fewer instructions per applied SET) against the build before them "
               "(5341df79). Over the two bundles the SET cost less server CPU in 10 of 15 runs, medians 6.53 "
               "against 7.17 and 7.12 against 7.45 µs per SET (4-9% less), a difference smaller than one run's "
               "spread; GETs show none. The newest bundle, `key-slices`, measured a change tried and reverted in the same stop: "
               "a SET's key decoded as a slice of the log entry instead of a copy (one allocation less per applied "
               "SET). It cost as much CPU (lower in 5 of 10 runs) and raised the leader's peak memory from 285 to "
               "315 MiB: slicing a command held in a buffer of its own makes that buffer shared, which allocates "
               "a header that lives as long as the log keeps the command. The newest, `inline-values` (stop 38), "
               "measured another change tried and reverted: each stored value in one allocation right after the "
               "reference count its clones share (`Bytes::from_owner`), so that a GET's clone of the value and its "
               "copy of the bytes would miss the cache once instead of twice (the count and the bytes). GETs got "
               "no faster (median 570,638 against 598,798 GET/s, slower in 7 of 10 runs); `perf` showed the miss "
               "moved from copying the bytes into cloning the value rather than going away. The newest, `get-copy` "
               "(stop 38, not committed either): a GET's reply given a copy of a small value (up to 1 KiB) instead "
               "of sharing it, so that a read never touches the value's reference count: 505,690 against 506,330 "
               "GET/s, lower CPU per GET in 5 of 10 runs, no difference. The newest, `follower` (stop 41, "
               "`--at follower`): the load at a follower, so that every command is forwarded to the leader, "
               "against the build before the forward read window and the peer link's two queues (d45fcf64; "
               "section 25): what the window costs pipelined commands through a follower. The newest, `drained-8` "
               "(stop 42), measures the connection-flood fix of section 26 (client tasks that step aside once the "
               "executor's queue has not drained for 5 ms, io_uring rings of 4,096 entries) against the build before "
               "it (e5009fd0), 8 runs in a noisy session (Redis's SET from 267,000 to 351,000/s between bundles): no "
               "cost shows, the SET cheaper in 6 of 8 runs. Its earlier bundles `flood-gate` and `flood-gate-5` "
               "measured the fix's first version (bedd1282, with a timer of its own every millisecond), `drained` "
               "the final one over 5 runs, and `rings-vs-not` the first version with and without the larger rings; "
               "all within the runs' spread. Stop 47's bundles: `order-work` measures what stops 41-46 (the forward "
               "window, the peer links' two queues, the give-way above, and a connection's pipelined commands kept "
               "in order, section 23) cost pipelined GETs at the leader, "
               "4f84cb35 against f1644c3a (the build of section 9's previous goals bundle): 456,934 against "
               "550,964 GET/s, 2.25 against 1.84 µs of CPU per GET, slower in 6 of 7 runs (SETs: no difference "
               "beyond the spread). `perf` on the leader put 7.8% of its samples in the new order bookkeeping "
               "(every read and write looked its session up in a `BTreeMap`, counted itself in a second one and "
               "left). `session-table` measures that bookkeeping in hash tables and sorted deques instead "
               "(commit after 4f84cb35; a simulated run is the same event for event, traces compared byte for "
               "byte): 488,400 against 482,509 GET/s, less CPU per GET in 5 of 7 runs (2.08 against 2.12 µs), "
               "and 5.2% of the leader's samples in the bookkeeping. Most of the GET cost added since f1644c3a is "
               "still there; ad hoc runs of the leader's CPU per GET at the commits between f1644c3a and 4f84cb35 "
               "(dac0c8ba, 137bdf16, e5009fd0, 80d48eb7) moved by more between runs than between builds, so where "
               "the rest comes from is not found. `before-order-rules` sets dac0c8ba (the build just before the order "
               "rules) against the same f1644c3a binary, 5 runs: 399,122 against 468,604 GET/s, more CPU per GET in "
               "3 of 5 runs, with runs from 1.87 to 2.88 µs per GET: part of the cost may predate the order rules, "
               "and five runs this spread do not say how much. `reply-copy` repeats `get-copy` (values up to 512 "
               "bytes copied into the GET's reply): slower in 6 of 7 runs (454,856 against 496,894 GET/s), not "
               "committed. `no-give-way` measures 14f48375 with client tasks that never give way (section 26's "
               "flood fix turned off, not committed) against 14f48375: a SET cost less CPU in 7 of 7 runs (9.19 "
               "against 9.60 µs), a GET less in 4 of 7 (2.32 against 2.42 µs): the give-way costs an ordinary "
               "pipelined load a few percent, and is not the GETs' missing 20%. In stop 48 the 20% did not come back: "
               "five interleaved rounds of the leader's CPU per GET alone (each on a fresh cluster: 1M SETs, then "
               "3M GETs under `-c 50 -P 16`, the leader's user + system ticks over the GETs; ad hoc, not a script "
               "here) gave medians of 2.23 µs at f1644c3a, 2.02 at e5009fd0, 2.00 at 80d48eb7, 1.96 at dac0c8ba and "
               "2.21 at 14f48375 (the order bookkeeping in hash tables), each build's rounds spreading by 0.2-1.6 "
               "µs; and section 9's newest bundle met the `-P 16` GET goal at dede32bf. Read `order-work`'s gap as "
               "this host's spread, not a found regression.\n")


def section_wal_pairs(out):
    """Section 23: a WAL change, this build against an earlier binary (benches/record-wal-writes.sh --before)."""
    bundles = section_newest_bundle(out, "wal-pairs", "23. A change to the WAL's writes against an earlier binary",
                                    "runs.txt")
    if not bundles:
        return
    out.append("Why: a change to how the WAL writes, measured where a WAL change shows (a single client, open "
               "loop at 2k and 10k ops/s, each node's WAL sync tail), interleaved, next to AOF Redis and Redis. "
               "The newest bundle measures the change kept in stop 39: a group commit's write goes out beside the "
               "one in flight (at most two at once; the later starts at the next multiple of the disk's block "
               "size and is reported durable only once the earlier one is), against 48de7490's build, 5 runs: "
               "2k/s p99 2.99 against 6.02 ms (lower in 4 of 5 runs), SET -c 1 p50 0.463 against 0.519 ms, "
               "10k/s p99 5.72 against 5.44 ms, CPU per operation at 10k/s 113.9 against 112.8 µs. The machine "
               "was noisy in that session (AOF Redis's 2k/s p99 4.5 ms). `wal_sync` now counts from the start "
               "of a sync's task, so a write beside another includes its wait for that one. Where writes do "
               "overlap, at 18k ops/s (ad hoc, one run each, `loadgen run --read-ratio 0.5 --connections 16`): "
               "the leader's `local_sync` mean 550 against 1,018 µs (p99 1,791 against 3,071), the followers' "
               "`forward` mean about 900 against 1,350 µs (p99 3,071 against 5,119); section 9's find-max and "
               "half-rate goals measure it from this repository. The bundle before it, "
               "[overlap](wal-pairs/overlap-20261203T090943Z/README.md), measured the first version (2caaa3a6), "
               "whose write beside another started at the next 4 KiB: 2k/s p99 4.03 against 2.23 ms, higher in 4 "
               "of 5 runs. About 12-24% of the writes at 2k/s went out beside another, each skipping 2 KiB on "
               "average: a node's log grew 3 times as fast, and its zero top-ups (section 12) with it; with "
               "512-byte gaps it grows 1-10% faster than before the change (ad hoc). The oldest bundle, "
               "zero-background, measured a change tried and reverted in stop 38: "
               "the zeros the WAL writes ahead "
               "of its records (section 12) topped up in the background instead of beside a record write, whose "
               "sync waited for both (about a sixth of the syncs under `-P 16` SETs, each about 0.45 ms longer). "
               "The background top-up made no sync measurably faster and the 10k/s tail worse (p99 3.16 against "
               "2.45 ms, higher in 3 of 4 runs; the nodes' WAL sync max 6.2 against 4.7 ms): a background zero "
               "write is in flight beside several record writes instead of one.\n")


def section_build_pairs(out):
    """Section 28: a change to the server that is not the WAL's, this build against an earlier binary
    (benches/record-wal-writes.sh --before BIN --group build-pairs)."""
    bundles = section_newest_bundle(out, "build-pairs", "28. A change to the server against an earlier binary",
                                    "runs.txt")
    if not bundles:
        return
    out.append("Why: the same steps as section 23 (a single client, open loop at 2k and 10k ops/s with the "
               "servers' CPU per operation, each node's WAL sync tail), for a change that is not the WAL's. "
               "`alarm` (stop 50) measures 9e313c44, whose ticker is woken by a thread of its own over a socket "
               "pair instead of a glommio timer (`src/server/alarm.rs`), against the build before it (b5745fa4). "
               "While a glommio timer is pending, the executor arms it on its ring each time it goes to sleep and "
               "cancels it when it wakes: two `io_uring_enter` calls per wake-up that the floor on glommio "
               "(section 27) does not make. Traced under one client (`perf trace` of a follower), a wake-up now "
               "makes the floor's calls. CPU per operation at 10k ops/s: 119.1 against 121.0 µs, lower in 4 of "
               "5 runs; SET -c 1 p50 0.415 against 0.431 ms (mixed run by run). Two runs of `this` had a stall "
               "(run 1: 2k/s p99 5.6 ms; run 5: one second with a 122 ms max, no election in the log), as one of "
               "`before` had (run 3: a 56 ms WAL sync); so 2k/s p99 reads 1.73 against 1.59 ms. Ad hoc, the same "
               "binaries alone, 5 interleaved pairs at 2k ops/s (`loadgen run --rate 2000 --read-ratio 0.5 "
               "--connections 16`, 10 s): p99 1.23 against 1.29 ms (lower in 3 of 5), CPU lower in 4 of 5 (about "
               "4%); 4 pairs at 10k ops/s: CPU 116 against 122 µs per operation (lower in 4 of 4). A small gain, "
               "and the idle cluster's CPU did not move (5.9-6.4% of a core either way, ad hoc). This bundle "
               "was recorded into `wal-pairs/` before the script had `--group`, and moved here.\n")


def section_p16_machine(out):
    """Section 29: the whole machine's CPU under pipelined SETs (benches/record-p16-machine.sh)."""
    bundles = section_newest_bundle(out, "p16-machine", "29. What bounds pipelined SETs: the whole machine's CPU",
                                    "runs.txt")
    if not bundles:
        return
    out.append("Why: section 9's `-P 16` SET goal (40% of Redis's SET/s) stayed missed while the leader ran about "
               "65% busy, and section 24 left open what bounds it. The first bundle (stop 50) answers: the machine "
               "is about three quarters busy under this closed loop whatever runs it (paxoskv with or without "
               "durability, with 50 or 200 clients, and Redis alike: 1.50-1.64 of 2 cores, the rest idle), so "
               "SET/s is that busy fraction over the machine's CPU per SET, and the goal is a CPU goal: at Redis's "
               "busy fraction, 40% of its SET/s needs at most 2.5 times its machine CPU per SET (about 5.3 µs in "
               "that bundle; paxoskv: 7.9 µs durable, 7.6 µs without the disk). More clients or no disk move "
               "paxoskv's SET/s only as far as they move its CPU per SET (bigger batches). Section 20 splits the "
               "servers' share by function. The stop 51 bundle (`warm`) ran that build against the one before "
               "`KvStore::warm` (section 19), interleaved, at 50 clients: the servers' CPU per SET fell by about "
               "a tenth with durability sync and a twentieth without (medians of 5 runs; the host was noisy, "
               "Redis's own SET/s moved by a quarter between runs), which the SET/s follow: higher than the run's "
               "before in 5 of 5 runs durable, 3 of 5 without the disk. The goal's bound "
               "needs the machine's CPU per SET a third lower still.\n")
    out.append("The newest bundle, `vs-stop46` (stop 57), checks a drop seen in section 9's single goals run "
               "(`after28`: -P 16 SET 183,150/s after, 204,918/s for 4f84cb35's binary): interleaved over 5 runs "
               "the same two builds give the opposite order, 205,508 against 180,245 SET/s durable (this build "
               "ahead in 5 of 5 runs; the servers' CPU 6.11 against 6.77 µs per SET) and 236,239 against 210,926 "
               "without the disk. One run of each step, as in the goals script, does not separate two builds "
               "this close; the goal (40% of Redis's 782,473/s here) stays missed at 26%.\n")


def section_snapshot_stall(out):
    """Section 30: snapshots under a steady write load (benches/record-snapshot-stall.sh)."""
    bundles = section_newest_bundle(out, "snapshot-stall", "30. Snapshots under a steady write load", "runs.txt")
    if not bundles:
        return
    out.append("Why: at 20,000 SET/s of 1,000-byte values (stop 52, ad hoc) a second's p99 reached 400-580 ms "
               "every 13 s or so while other seconds stayed near 3 ms. Timed by hand in an instrumented build, "
               "a node's snapshot stopped its executor: the WAL encoded the store's image for its file on the "
               "executor thread (a checksum, a copy into one buffer and another into an aligned one) for "
               "69-308 ms per snapshot of a 60-95 MB store, then wrote it; every client and peer of that shard "
               "waited, and when the node was the leader its followers' answers went unread long enough for it "
               "to step down (`LostMajorityContact`) in every run of the build before (`/tmp/pk-start`, built at "
               "53a6fc1f: 1-12 elections beyond the first per run; once the cluster did not settle and 200,293 "
               "requests failed). This build had none beyond the first in 4 of 5 runs; in run 2 its leader "
               "stepped down three times, each at its own snapshot (p99 376 ms): why is not yet known (an "
               "instrumented run showed no executor pass over 60 ms). Since stop 52 "
               "(4ddb4707) the file is written from the image's bytes and synced on glommio's blocking thread "
               "pool, and (7a2011a2) the segments a compaction leaves behind are deleted in the background, "
               "not before the records appended after it (15-58 ms of unlinks, the filesystem discarding "
               "their blocks). What is left, timed the same way: the executor still copies the store for the "
               "snapshot job (`KvStore::clone`, 10-60 ms at 100,000 keys of 1,000 bytes), and the snapshotting "
               "node's WAL writes wait for the file (100-300 ms), which the other two nodes' majority covers "
               "unless the cluster is down to two. Nodes snapshot a third of an interval apart "
               "(`NodeConfig::phase`), so at most one node stalls at a time.\n")
    out.append("The step-downs, found with `--trace-dir DIR --trace-messages-every 1` through a leader's own "
               "snapshot: its followers sent `accepted` and `heartbeat_reply` all along, and the leader delivered "
               "none of them for 150 ms, then stepped down. The node counted a snapshot's whole image (about "
               "95 MB) as input waiting for the disk (`unsynced_bytes_max`, 64 MiB), so it stopped accepting "
               "until the image was written, and the server stops reading clients and peers alike while a node "
               "does not accept (`server/links.rs`). Since aec342e2 a snapshot counts as a small record (a node "
               "test fails with the old rule). The newest bundle, `backpressure`, measures that build against "
               "4ddb4707's binary (the snapshot file already off the executor; the metric commit between them "
               "changes nothing at run time): p99 28.6 against 52.1 ms, lower in 5 of 5 pairs; max 90.6 against "
               "208.8 ms; no election beyond the first in any of its runs (the build before: 1 and 2 in two "
               "runs, whose p99 was 240 and 326 ms). What remains: 7-10 of a run's 30 seconds still have a p99 "
               "above 10 ms (mostly 20-50 ms; a second without a snapshot or a roll runs near 3 ms), about as many "
               "as the snapshots (7 per run) and segment rolls (one per 64 MiB per node) in it. Not yet taken "
               "apart; candidates timed ad hoc: the store's copy and the snapshot op's append on the executor "
               "(10-60 and 14-32 ms), the snapshotting node's WAL writes waiting for its file, and the disk the "
               "three nodes share.\n")
    out.append("Stop 54 took those candidates apart. Timed in an instrumented build (ad hoc, one run, every node's "
               "snapshots): the store's copy held the executor 11-26 ms per snapshot of 57,000-100,000 keys, and "
               "the WAL's own copy of the log, freed when the snapshot compacted it, another 2.6-12 ms (the "
               "checkpoint's encoding 1-6 ms). Since then a snapshot copies the store a share per drain "
               "(1,024 keys, `NodeConfig::snapshot_copy_keys`; a key changed before the copy reaches it leaves "
               "its entry for the copy, `kv/keyspace.rs`), the WAL frees the compacted log 256 slots at a time "
               "in a task of its own, and the snapshot file is written back 1 MiB at a time (`sync_file_range`, "
               "each piece on the disk before the next is written) instead of in one burst at its `fdatasync`. "
               "Three bundles of work in progress, each against 61dbe399's binary (`/tmp/pk-base`; `61dbe399-dirty` is 61dbe399 "
               "with this stop's changes as they stood when each bundle ran, not committed): `copy-shares` "
               "(the store's copy and the log's freeing in shares) p99 23.5 against 25.4 ms, lower in 3 of 5 "
               "pairs, max 48.7 against 58.8 ms; `write-back` (with the snapshot file written back in pieces) "
               "p99 16.8 against 33.2 ms, lower in 5 of 5 pairs, max 52.4 against 66.0 ms; `low-priority` (also "
               "encoding the image and writing the file on a thread at nice 19, tried and not kept: no gain over "
               "`write-back`) p99 17.6 against 28.1 ms. The newest, `landed`, measures what landed (f0c57c7d) the same "
               "way: p99 16.2 against 23.9 ms, lower in 5 of 5 pairs; p99.9 43.8 against 45.0 ms and max 53.0 "
               "against 59.2 ms, the max lower in only 2 of 5 pairs. So fewer requests wait, but the worst waits "
               "did not shrink: each snapshot's second still has a p99 of 15-50 ms (other seconds 2-3 ms), in "
               "all three nodes' snapshots alike, followers' too. With the executors' work and the encoding's "
               "CPU out of the way (the nice-19 thread changed nothing), the candidate is the one disk the three "
               "nodes share, where every node's WAL `fdatasync` also waits for the snapshot's pieces written "
               "before it. Not measured further; writing the file more slowly would shorten those waits and "
               "lengthen the time the snapshotting node's own WAL writes wait behind the file (`Wal::sync` "
               "keeps them in order).\n")


def section_slow_leader_disk(out):
    """Section 31: a leader whose disk falls behind (benches/record-slow-leader-disk.sh)."""
    bundles = section_newest_bundle(out, "slow-leader-disk", "31. A leader whose disk falls behind", "runs.txt")
    if not bundles:
        return
    out.append("Why: until stop 53 a server stopped reading every frame from its peers while its node was not "
               "accepting (its WAL more than `unsynced_bytes_max`, 64 MiB, behind), so a leader whose disk fell "
               "behind heard no follower, acks and heartbeat replies included, and stepped down "
               "(`LostMajorityContact`) an election timeout or so later, whatever its followers did. The "
               "simulator did not model that gate at all. Since dca2dac3 the node decides: it holds only the "
               "frames that bring entries to write (Accepts, catch-up replies, snapshot chunks) and steps every "
               "other one; the server stops reading its peers only once the entries held pass the same bound "
               "(`Node::reading_peers`), and the simulator's network keeps frames unread while a node says so "
               "(the scenario `a_leader_whose_disk_is_behind_keeps_hearing_its_followers` fails with the old "
               "rule). Since 37e50d57 what was held goes a share per drain once the disk catches up (256 "
               "requests, 16 peer frames), with the server's other tasks in between: an ad hoc run of the "
               "previous build, traced with `--trace-dir DIR --trace-messages-every 1`, showed the leader "
               "sending no heartbeat for about 450 ms while it proposed some 16,000 held requests (16 "
               "connections at `client_pending_max`) in one pass, and a follower timed it out.\n")
    out.append("Read the `vs-stop52` bundle (linked above): the build before (`/tmp/pk-old`, built at 3343af0a) stepped down 743-756 ms after "
               "its disk fell behind, while the disk was throttled, in every run. This build kept its leadership "
               "through the throttle in 2 of 3 runs and lost it afterwards; in run 1 a follower timed it out "
               "274 ms after it began holding (not explained: that run was not traced). Three more runs of this "
               "build, traced ad hoc, each kept its leadership through the throttle and stepped down after the "
               "lift, about 0.45, 0.9 and 7.3 s after it. In the first, the trace shows the held requests going "
               "out as Accepts in shares over 100 ms, then the leader's 64 MiB of queued writes landing on the "
               "one disk the three nodes share: the followers' fsyncs slow down, and their Accepted and heartbeat "
               "replies (a reply that reports a new horizon waits for its fsync) reach the leader in bursts "
               "200-300 ms apart. In the last, 7 s into working off the backlog on two cores, the leader sent a "
               "heartbeat every 50-100 ms instead of 10 and messages took 50-150 ms to be delivered: overload. "
               "Nodes on disks of their own would not see the first. The client errors are the requests held "
               "past their deadline while the leader's disk wrote a quarter of what the load asked: "
               "backpressure, not loss.\n")
    out.append("The newest bundle, "
               "`share-gap` (stop 54, 2 runs), checks that the driver's new step between shares of held work (a "
               "10 µs timer instead of a yield, so that the reactor runs between them; it also paces a "
               "snapshot's copy, section 30) changed nothing here: against 61dbe399's binary, each build kept its "
               "leadership through the throttle in both runs and lost it after the lift in one (7.8 and 9.6 s "
               "after it began holding). This build's run 1 had 6 step-downs and 86,310 client timeouts after "
               "the lift, against 0-42,024 timeouts in the earlier bundle's runs: two runs do not say whether "
               "that is the change or the spread.\n")
    out.append("Since stop 55 a server never stops reading its peers: once the entries a node holds pass the "
               "bound, it drops further ones (a leader re-sends an Accept nobody acked, a follower fetches what it "
               "missed of the committed log), and section 32 measures a follower whose disk falls behind.\n")
    out.append("Stop 56 makes such a leader hand its leadership over (`hand_over_after_ms`, 1 s: a leader whose "
               "disk has been behind the bound that long steps down at its next heartbeat round if both followers "
               "were heard within the shortest election timeout, and a node whose disk is behind starts no "
               "election; README, \"A leader on a slow disk hands over\"). The `hand-over` bundle measured that "
               "rule alone (7ca53607) against the session's starting binary (3395f9e1, `/tmp/pk-base56`): it "
               "handed over in every run, 1.0-1.6 s after holding, and then lost the cluster in 2 of 3 runs (6 and "
               "8 step-downs, 123,000 and 128,000 errors against 56,000-58,000 for the build before). Traced "
               "with `--trace-dir DIR --trace-messages-every 1` (ad hoc; the JSON-lines trace files summed by a script): the new "
               "leader re-sent every slot in flight to every follower that had not acked it after a fixed 30 "
               "ticks (`accept_retry_ticks`), and with 1 MiB batches and commits slower than that it sent its two "
               "followers 41-213 MB a second of re-sent Accepts beside 16-76 MB of new ones; the healthy "
               "follower's link fell 0.5-0.7 s behind, the heartbeats queued in it too, and that follower timed "
               "its leader out. With the re-send fixed, the old leader, now a follower holding the load's 16 "
               "connections, forwarded them to the new leader and again every 200 ms (`forward_retry_ticks`) "
               "while unanswered: 27,000-84,000 forwards a second for 20,000 requests, 28-89 MB a second, and "
               "the clients still saw 106,000-128,000 errors (two ad hoc runs). Since 2f9954d2 an Accept is "
               "re-sent after twice the smoothed time slots take to be chosen (at least 30 ticks), and since "
               "100a1784 a forward after twice the smoothed time forwards take to be answered (at least 200 ms, "
               "at most 800; an ad hoc run of a build that never retried a forward had no errors either). The "
               "bundle `retries` measured 2f9954d2, whose forward retries still doubled each time: a hand-over "
               "in each of 3 runs, 1.6 s after holding, no further election, 0 errors and 0 timeouts, p99 "
               "1.07-1.20 s, against the build before's 60,764-72,852 errors and p99 3.58-3.60 s (in two of its "
               "runs it lost its leadership after the lift). The doubling went (it held a session's commands "
               "past a healed partition in the simulator), and the bundle `retries-capped` measures "
               "100a1784 the same way: a hand-over in each of 3 runs, 1.6 s after holding (1 s is the rule's; "
               "the rest is not taken apart, a candidate being a backlog that dips under the bound and restarts "
               "the count), no further election, 0 errors and 0 timeouts, p99 1.12-1.23 s, against 57,784-"
               "142,560 errors and p99 3.59-5.38 s (its run 1 lost its leader after the lift: 6 step-downs, "
               "84,980 timeouts). A p99 of about a second is what the 1.6 s of holding before the hand-over "
               "leaves.\n")
    out.append("Stop 57 took the 1.6 s apart: each of those runs' logs shows a second \"holding\" about 0.6 s "
               "after the first, and the hand-over 1.0 s after the second. A completed sync took the backlog "
               "under the bound for a moment, the requests then taken filled it again, and the rule, which asked "
               "for the disk to have been behind for 1 s without a break, started counting again. Since 9a799a88 "
               "the rule asks instead whether the disk is behind the bound with an append that has waited "
               "`hand_over_after_ms` for its fsync: what the clients wait for, which no break restarts (a fast "
               "disk behind for a burst syncs its appends young and keeps its leadership). The bundle "
               "`append-age` measures 897516b0 against a build of the session's start (5ace7b8f's rules; "
               "`/tmp/pk-noinv` differs from it only in a debug-build check): this build handed over 6-8 ms after "
               "it first held in each of 3 runs (its oldest append had waited over a second by then: the disk "
               "had been throttled 3.2 s), with no further election, 0 errors and a p99 of 110-351 ms; the build "
               "before handed over 1.0-1.6 s after holding, with a p99 of 1.19-1.72 s, and in run 1 five "
               "elections and 5,635 errors followed.\n")
    out.append("Later in stop 57 the rule stopped asking for a backlog at all (c6b4e9b2): a leader whose fsyncs "
               "took 400 ms under a load too light to reach the bound kept leading in the simulator, every write "
               "waiting for its disk (scenario `a_leader_whose_fsyncs_are_slow_hands_over_under_the_bound`). "
               "Handing over more often, the simulator then found a read judged after a batch stamped before it "
               "(a leader that released a lease read and stepped down in the same step; fixed in the core by "
               "632b8b40 before the rule landed). The bundle `append-age-any` measures 7259b251 against "
               "the same build of the session's start: this build handed over before it ever held (\"held after\" "
               "is empty: the oldest append waited a second before the WAL was 64 MiB behind), and in runs 2 and 3 "
               "nothing else happened: 0 errors, p99 125 and 195 ms. In run 1 the new leader lost its followers "
               "10.5 s after the hand-over, which fell within the throttle's 10 s, so after the lift "
               "(`LostMajorityContact`, then three elections in 1.5 s), and "
               "the clients saw 16,494 errors and a p99 of 2.2 s: the old leader's backlog landing on the disk the "
               "three nodes share, the after-the-lift loss this section's earlier bundles show for every build "
               "(the build before had 5 elections after the lift in one of the `append-age` runs, none in these "
               "three).\n")
    out.append("Stop 58: the leader that hands over names its successor. It steps down, gives up its own "
               "acceptor's lease grant and sends every member a `HandOver` naming the follower it heard from with "
               "the highest commit index (Raft's TimeoutNow); every member drops the grant it made to that ballot, "
               "and the named one campaigns at once (README, \"A leader on a slow disk hands over\"). Until then "
               "the followers waited out the lease, then an election timeout, with no leader. The newest bundle, "
               "`hand-over-msg`, measures e61f35ef against the final build of stop 57 (9b85a452, "
               "`/tmp/pk-base57`), interleaved, 3 runs each. In the cluster logs, the next leader took office "
               "1, 2 and 1 ms after the hand-over with this build, against 173, 158 and 228 ms with the build "
               "before; and with the build before, in runs 2 and 3 the node on the throttled disk campaigned "
               "and won again, handed over again, and so on (6 and 3 elections; 2,650 errors in run 2), where "
               "this build had one election in each run. Client p99: 680, 160 and 80 ms against 682, 1,436 and "
               "660 ms; 0 errors against 0, 2,650 and 0. What is left of this build's p99 is not the hand-over: "
               "the load's 16 connections stay on the old leader, whose disk is still throttled, and it forwards "
               "them; in run 1 the p99 of 680 ms comes from two seconds long after the hand-over (the 12th second of "
               "the measured window, 674 ms, with the disk still throttled, and the 16th, two seconds after the "
               "throttle was lifted, 770 ms).\n")


def section_slow_follower_disk(out):
    """Section 32: a follower whose disk falls behind (benches/record-slow-leader-disk.sh --node follower)."""
    bundles = section_newest_bundle(out, "slow-follower-disk", "32. A follower whose disk falls behind", "runs.txt")
    if not bundles:
        return
    out.append("Why: until stop 55 a node whose disk was behind held the entries its peers sent up to "
               "`unsynced_bytes_max`, and past that the server stopped reading its peers altogether (TCP pushing "
               "back), heartbeats and the answers to its clients' forwarded requests included. The simulator "
               "found what that costs a follower whose disk cannot keep up with the load: its clients waited "
               "unanswered for as long as its disk was behind, over the latency checker's bound (at a drawn "
               "4 KiB bound, 10 of seeds 1..4000 of the read-window sweep and 28 of the read-index sweep failed "
               "with the latency checker's backpressure excuse taken out). Stop 54 excused those operations in "
               "the checker. Since stop 55 the node drops entries over the bound instead and the server reads "
               "on, and only a leader holds new requests while its disk is behind (a follower forwards its "
               "clients' requests, which never touch its disk, `Node::taking_requests`): the same sweeps fail "
               "on none of those seeds without the excuse, the excuse is gone, and "
               "`--inject-bug peers-unread-while-behind` (the old reading rule) fails the latency checker "
               "(`tests/sim_sweep.rs`). This section runs the same on real processes: a follower's disk "
               "throttled below what the leader's load writes, past the default 64 MiB bound, with a light "
               "load of the follower's own clients. The \"held after\" column stays empty for builds since "
               "stop 55: a follower no longer holds its clients' requests, so it never logs that it does.\n")
    out.append("The bundles, each against 721bd42a's binary (`/tmp/pk-base`, the build before stop 55), "
               "interleaved: `drop` (bfc17e9d: entries dropped over the bound, a follower's requests not held) "
               "put the follower's clients at a p99 of 1.47 s and 81 ms (169 and 0 errors) against 1.52 and "
               "1.57 s (1,991 and 1,977 errors: requests held past their 1.5 s deadline); but the dropping "
               "follower asked its leader for the log it missed every 30 ms (`catchup_retry_ticks`), and dropped "
               "each 4 MiB answer. Since then a node whose disk is behind sends no catch-up request "
               "(`Node::transmit`; the core asks again on its timer). `no-catch-up` (that rule, built on "
               "bfc17e9d before it was committed): the follower's clients at 461 and 103 ms (5 and 0 errors) "
               "against 1.80 and 1.51 s (3,426 and 2,056 errors); in its run 1 the build before lost its "
               "leader 12 times (66,425 errors for the leader's clients). Then `landed`, `landed-more` and "
               "`landed-third` (d6c20202, what is committed, and e276cb95, which adds only results; 3 runs "
               "each).\n")
    out.append("Over the 13 runs of each build in the five bundles: the follower's clients' p99 was 39-190 ms in "
               "11 of this build's runs (0-5 errors), and 1.47 and 1.84 s in the other two (169 and 2,596 errors); "
               "the build before's was 1.51-1.80 s in all 13 (1,972-3,426 errors each, its clients' requests held "
               "behind the follower's disk until their deadline). The leader's own clients: one run of each "
               "build lost its leader repeatedly, this build's while the follower's disk was throttled "
               "(`landed` run 1: 15 step-downs, `LostMajorityContact` first, 118,255 errors), the build before's "
               "after the throttle was lifted (`no-catch-up` run 1: 12 step-downs, 66,425 errors); otherwise "
               "their p99 was 34-724 ms against 46-362 ms. Why the leader lost contact with the healthy "
               "follower in that run is not known (it was not traced). The machine is saturated in both builds "
               "(`landed-third`'s `cpu-busy.txt`: 1.81-1.86 of 2 cores busy while the follower was throttled, "
               "1.85-1.90 after the lift), where the three nodes, the two load generators and the throttled "
               "node's backlog share two cores and one disk, as in section 31.\n")
    out.append("Stop 56 hunted that run's cause. 14 ad hoc runs of the same setup with every thread of the three "
               "servers sampled every 2 ms for uninterruptible sleep: no executor thread ever slept in the kernel "
               "(the glommio pool thread that writes snapshot files did, up to 60 ms at a time, as it should); 11 "
               "runs on a quiet machine kept their leader, and the 3 that lost it ran while a `cargo build` shared "
               "the two cores, each starting with the throttled follower timing its leader out. Section 31's trace then showed "
               "what turns an overloaded leader into lost leadership: fixed re-send timers, for Accepts (30 "
               "ticks) and forwards (200 ms), that re-sent whole batches and every forward while the first copies "
               "still waited in their links, until heartbeats queued behind them arrived too late. Both now wait "
               "for twice the smoothed time an answer takes (2f9954d2, 100a1784). The newest bundle, `retries`, "
               "runs 2f9954d2 (forward retries then still doubled) against 3395f9e1 (`/tmp/pk-base56`), 3 runs each: neither build lost its leader; the follower's "
               "clients saw a p99 of 75-103 ms against 37-76 ms, no errors in either, a spread that three runs "
               "do not separate.\n")


def section_nonreading(out):
    """Section 25: a client that never reads, at a follower (benches/record-nonreading-client.sh)."""
    bundles = section_newest_bundle(out, "nonreading-client", "25. A client that never reads, at a follower",
                                    "raw.txt")
    if not bundles:
        return
    out.append("Why: a hostile-client sweep (stop 40) found that one such client drove the leader to 1.4 GB and "
               "cost it its leadership. The follower forwarded every GET its connection let it read (1,024), the "
               "leader encoded every answer at once, and the peer link's one queue dropped the heartbeats behind "
               "them. Since stop 41 a node has at most 64 reads forwarded and unanswered (`forward_read_window`, a rule of "
               "the node that the simulator runs). A link queues forwarded requests and answers apart from the "
               "protocol's messages and sends them a 256 KiB slice at a time after them. The follower still holds "
               "what its client does not read, up to `client_pending_max` answers per connection, as Redis holds a "
               "client's unread replies (without a limit by default: the Redis row); a limit on a connection's "
               "unread bytes is not built. Section 22's `follower` bundle measures what the window costs pipelined "
               "commands through a follower.\n")


def section_connection_flood(out):
    """Section 26: a flood of connections at the leader (benches/record-connection-flood.sh)."""
    bundles = section_newest_bundle(out, "connection-flood", "26. A flood of connections at the leader", "raw.txt")
    if not bundles:
        return
    out.append("Why: a hostile-client sweep (stop 40) found that 9,000 connections opened at the leader within a "
               "second or two (under `clients_max`, 10,000) cost it its leadership; in stop 42 it did in 14 of 15 "
               "floods (ad hoc) and 9 of 10 in the bundle above. A shard's ticker, driver and peer links share one glommio executor and one first-in, "
               "first-out task queue with every client's tasks, and glommio polls its reactor only when that queue "
               "drains (or after its 100 ms preemption timer, which we keep long: `server/executors.rs` says "
               "why). 9,000 connections to set up, or 9,000 PINGs to answer, kept the queue full for "
               "150-400 ms: the ticker's timer did not fire, the followers' answers waited unread, and the leader "
               "stepped down (`LostMajorityContact`) or a follower took over. Since stop 42 a client task (a "
               "connection's reader before each read's commands, its writer after each write, the accept loop "
               "before each accept) steps aside for a 10 µs timer once the queue has not drained for 5 ms "
               "(`server/turns.rs`; glommio's own count of scheduler passes says when it drained, so no timer of "
               "ours runs, idle or busy), and each executor's io_uring rings have 4,096 entries instead of 128: "
               "the kernel sizes a ring's table of pending polls by it, and every timeout glommio cancels walks a "
               "bucket of that table, about 1,100 polls long with 9,000 connections at 128 entries, 35 at 4,096. "
               "Either alone left elections (the step-aside alone: 4 of 10 floods, ad hoc). The probe's worst "
               "PING is not what changed: it waits its turn among the 9,000 connections' commands (the queue stays "
               "first in, first out among clients), and the machine's two cores also run the flood's own client "
               "and the kernel's handshakes; Redis, one event loop, makes it wait about half as long. What the "
               "change costs an ordinary pipelined load is in section 22 (`drained-8`, the newest pairs bundle); "
               "an idle cluster's CPU is unchanged (section 11's newest bundle). `/tmp/pk-old` in these bundles is the "
               "build of e5009fd0, the commit before the fix.\n")


def section_write_path(out):
    """Section 27: a single client's write hop by hop across the processes, beside the floor on glommio
    (benches/record-write-path.sh)."""
    bundles = section_newest_bundle(out, "write-path", "27. A single client's write, hop by hop", "runs.txt")
    if not bundles:
        return
    out.append("Every bundle, newest last:\n")
    for d in bundles:
        text = open(os.path.join(R, "write-path", d, "README.md")).read()
        durability = re.search(r"\(durability (\w+)\)", text).group(1)
        p50s = re.search(r"paxoskv (\d+) µs .*?the floor (\d+) µs", text, re.S)
        sums = re.search(r"sum of the p50s \| ([\d.]+) \| ([\d.]+)", text)
        longest = re.search(r"against the floor's: (.*)\.", text).group(1)
        out.append(f"- [{d}](write-path/{d}/README.md): durability {durability}; untraced p50 paxoskv {p50s.group(1)} "
                   f"µs, floor {p50s.group(2)} µs; traced sums {sums.group(1)} and {sums.group(2)} µs; longest "
                   f"against the floor: {longest}.")
    out.append("")
    out.append("Why: section 9's single-client SET takes 0.2-0.28 ms here with durability none, against 0.07-0.13 "
               "ms for the floor on glommio; the latency anatomy times stages inside one node and cannot say where "
               "the rest goes between the processes. Traced the same way, the two differ less where one would "
               "guess first: a woken glommio executor makes three or four `io_uring_enter` calls (its timers "
               "cancelled and re-armed, its rings flushed) before any task reads its socket, and the floor pays "
               "most of that as paxoskv does (B: 59 against 60 µs with durability none, 51 against 42 with "
               "sync). What paxoskv adds is its own work at each hop: 10-30 µs "
               "where the floor's is 1-2 µs from the leader reading the request to its Accept (C) and from a "
               "follower reading the Accept to its answer (F; with durability sync, 85-100 µs more there: its "
               "WAL write through io_uring and the executor's passes around it, against the floor's blocking "
               "write + fdatasync), 6-13 µs more from the leader reading the answer to its reply (I), and one "
               "more `io_uring_enter` at a follower's wake-up (E), likely the cancel of the ticker's timer, which "
               "the floor does not have. A follower that answers later also finds the leader asleep rather "
               "than still in its own pass (G, when it moves). Each hop's work runs on a vCPU that has just woken "
               "with cold caches, through several of the node's tasks (a peer link's reader, the driver, a "
               "link's writer); where those microseconds go inside a node is the next thing to profile. "
               "An ad hoc copy of glommio that kept its two timers armed across passes instead of re-arming "
               "them on every pass (stop 48, not committed) lost a cluster in its first run under one client "
               "(a node stepped down, `LostMajorityContact`, and the client got no answer for minutes), the "
               "kind of lost wake-up `server/executors.rs` records for short preemption timers; and by the "
               "table above it would have cut what the floor pays as well, not paxoskv's own share.\n")
    out.append("Since stop 49 the floor's replicas are processes of their own, as paxoskv's nodes are (they were "
               "threads of one process, which made glommio's memory barrier before every sleep interrupt the "
               "other replicas). The first bundle so recorded, `none-procfloor` (3 runs, durability none), says "
               "the same in every segment: paxoskv's own work per hop C, F and I is 11, 19 and 13 µs against "
               "the floor's 2, 4 and 7; each wake-up of a paxoskv node (B, E, H) makes one `io_uring_enter` more "
               "than the floor's (3 against 2); untraced p50 215 µs against 136 µs. The floor on glommio misses "
               "the single-client goal without a disk (0.10 ms) by itself in this session (section 9).\n")
    out.append("Since stop 50 a node's ticker is woken by a thread of its own instead of a glommio timer "
               "(`src/server/alarm.rs`, section 28), so an executor holds no timer to arm before it sleeps and "
               "cancel when it wakes. The bundle `alarm` (3 runs, durability none, 96ac706a) counts the "
               "`io_uring_enter` calls of a wake-up as the floor's: B 3 against 3, E 2 against 2, H 2 against 3 "
               "(medians). paxoskv's own work per hop C, F and I: 8, 13 and 10 µs against the floor's 1, 3 and "
               "7; untraced p50 183 µs against 105 µs (a faster host than the earlier bundles': the floor's was "
               "131-136 µs). What is left between the two is paxoskv's own work at each hop (C, F, I) and a "
               "leader more often asleep when a follower's answer comes (G).\n")


def section_wal_trace(out):
    """Section 24: the WAL's writes under -P 16, the disk's time and the shard's (benches/record-wal-trace.sh)."""
    bundles = section_newest_bundle(out, "wal-trace", "24. A group commit under pipelined SETs: the disk's time and "
                                    "the shard's", "runs.txt")
    if not bundles:
        return
    out.append("How to read it: under `-P 16` SETs a record write takes the disk about as long at the leader as at "
               "a follower (the same bytes, the same disk), but the leader's syncer sees its group commit done "
               "about a millisecond later than the disk does, a follower's about 0.2 ms later. The leader's "
               "executor is busy with its clients: a write is submitted at its next pass over the reactor, its "
               "completion is seen at the pass after it completes, and the syncer then waits its turn among the "
               "tasks woken with it. Ad hoc attempts in stop 38 at shortening that wait left the `-P 16` "
               "throughput where it was: record writes on glommio's blocking thread, with the syncer in a "
               "latency-sensitive task queue so that their completion cuts the executor's pass short (the "
               "leader's group commit 1.85 → 1.46 ms, 3 pairs), and inline record writes (`--wal-writes inline`: "
               "0.71 ms, the executor blocked meanwhile). So the leader's wait alone does not bound the throughput "
               "there. What does, section 29 (stop 50) shows: the cores run about three quarters busy under this "
               "closed loop for Redis as for paxoskv, so SET/s follows the machine's CPU per SET (section 20 "
               "prices the servers' share). A zero write (section 12) runs "
               "beside about one record write in five and takes about 0.9 ms; running it in the background "
               "instead made the 10k/s tail worse (section 23).\n")


def main():
    out = ["# Results\n"]
    out.append(
        "Everything here was measured on this project's 2-core machine (loopback, one virtual disk) by the "
        "command written next to it; `python3 benches/results_readme.py` regenerates this page from the "
        "bundles. Durable results (fsync before acknowledging) and non-durable ones are labelled. The machine "
        "is shared and noisy: only ratios measured side by side in one run are compared.\n"
    )

    # 1. Profiles.
    prof = section_comparison(
        out,
        "1. paxoskv optimization profiles (durable)",
        "profiles",
        "Each profile is a flag set in `tuning/` (see `tuning/README.md`): `baseline` turns batching, "
        "pipelining, lease reads and peer write coalescing off; `all` is the default. Every measurement "
        "starts a fresh 3-node local cluster with durability `sync`. Produced by `benches/record-comparisons.sh`:",
    )
    if prof:
        r = per_repeat_ratio(prof, "all", "baseline") if any(p["name"] == "all" for p in prof["profiles"]) else None
        if r:
            out.append(
                f"**`all` vs `baseline`** (batching + pipelining + lease + coalescing): **{r[0]:.1f}x** the "
                f"sustainable throughput (per-repeat ratios {r[1]:.1f}x - {r[2]:.1f}x).\n"
            )

    # 2. Systems.
    sysc = section_comparison(
        out,
        "2. paxoskv vs etcd vs Redis (same loadgen, same workload)",
        "systems",
        "paxoskv (`benches/systems/paxoskv.toml`: all optimizations, 3 nodes, durability `sync`), etcd 3.4 "
        "(Debian's etcd-server, 3 members on loopback, fsync on, linearizable reads, driven through its gRPC "
        "API by `loadgen --features etcd`), and one unreplicated redis-server without persistence (the "
        "ceiling; not durable). Produced by `benches/record-comparisons.sh`:",
    )
    if sysc:
        names = [p["name"] for p in sysc["profiles"]]
        goals = []
        if "paxoskv" in names and "etcd" in names:
            r = per_repeat_ratio(sysc, "paxoskv", "etcd")
            if r:
                goals.append(
                    f"- paxoskv / etcd sustainable throughput at p99 <= 5 ms: **{r[0]:.1f}x** "
                    f"({r[1]:.1f}x - {r[2]:.1f}x); goal >= 20x: **{'met' if r[0] >= 20 else 'not met'}**."
                )
        if "paxoskv" in names and "redis" in names:
            r = per_repeat_ratio(sysc, "paxoskv", "redis")
            if r:
                goals.append(
                    f"- paxoskv (replicating 3 ways, fsync on) / Redis (one process, no persistence): "
                    f"**{r[0]:.0%}** ({r[1]:.0%} - {r[2]:.0%}); goal >= 20%: "
                    f"**{'met' if r[0] >= 0.2 else 'not met'}**."
                )
        if goals:
            out.append("Goals (issue 5), reported, not asserted:\n\n" + "\n".join(goals) + "\n")

    # 3. redis-benchmark.
    rb = load("redis-benchmark/summary.json")
    out.append("## 3. paxoskv vs Redis with redis-benchmark (a client no one here wrote)\n")
    if rb:
        out.append(
            "`benches/record-redis-compare.sh`: `redis-benchmark -t set,get -c 50 -n 1000000 -P 1|16` against a "
            "3-node paxoskv cluster (durability `sync`, connected to the shard leader) and a plain redis-server, "
            f"interleaved, {rb['settings']['repeats']} repeats, commit `{rb['commit']}`. Details: "
            "[redis-benchmark/README.md](redis-benchmark/README.md).\n"
        )
        out.append("| pipeline | op | paxoskv req/s | redis req/s | paxoskv / redis |\n| --- | --- | ---: | ---: | ---: |")
        for pl in ("P1", "P16"):
            for t in ("set", "get"):
                a, b = rb["summary"][f"paxoskv {pl} {t}"], rb["summary"][f"redis {pl} {t}"]
                out.append(
                    f"| -{pl} | {t.upper()} | {rate(a['rps_median'])} | {rate(b['rps_median'])} "
                    f"| {a['rps_median'] / b['rps_median']:.2f} |"
                )
        out.append("")
    else:
        out.append("(not recorded yet: `benches/record-redis-compare.sh`)\n")

    # 4. Measurement checks.
    out.append("## 4. Is the load generator trustworthy?\n")
    acc_dir = os.path.join(R, "loadgen-accuracy")
    accs = sorted(f for f in os.listdir(acc_dir) if f.endswith(".json")) if os.path.isdir(acc_dir) else []
    for name in accs:
        a = load(f"loadgen-accuracy/{name}")
        out.append(
            f"- **Not the bottleneck**: closed loop, {a['connections']} connections x {a['pipeline']} outstanding, "
            f"{a['op'].upper()} of {a['value_bytes']}-byte values against one redis-server, loadgen vs "
            f"redis-benchmark with the same settings, {a['repeats']} interleaved repeats: loadgen reaches "
            f"**{a['median_ratio']:.2f}x** redis-benchmark's throughput (per repeat: "
            f"{', '.join(f'{x:.2f}' for x in a['ratios'])}; goal >= 0.9). `benches/record-loadgen-accuracy.sh`, "
            f"commit `{a['commit']}`; raw output in `loadgen-accuracy/{name[:-5]}.txt`."
        )
    so, sc = load("stall/open/bundle.json"), load("stall/closed/bundle.json")
    if so and sc:
        o, c = so["runs"][0]["ops"]["all"], sc["runs"][0]["ops"]["all"]
        out.append(
            f"- **Coordinated omission**: the same redis-server stopped (SIGSTOP) for 1 s in the middle of an "
            f"8 s run. Open loop (20k ops/s offered, latency from the intended send time): p99 "
            f"**{ms(o['p99_us'])} ms**, p99.9 {ms(o['p999_us'])} ms. Closed loop (16 connections x 1, latency from "
            f"the send time): p99 **{ms(c['p99_us'])} ms**, p99.9 {ms(c['p999_us'])} ms — it stopped sending "
            f"while the server was stopped, so the stall hides in its max. `benches/record-stall.sh`.\n"
        )
        out.append("![stall percentiles](stall/stall-percentiles.svg)\n\n![stall timeline](stall/stall.svg)\n")
    fo = load("failover/bundle.json")
    out.append("## 5. A leader failover under load\n")
    if fo:
        run = fo["runs"][0]
        leader_events = [e for e in run["events"] if "leader" in e["what"]]
        lost = [e for e in run["events"] if "lost" in e["what"]]
        worst = max(run["timeline"], key=lambda s: s["p99_us"])
        out.append(
            f"`benches/record-failover.sh`: 10k ops/s open loop over all three nodes, the shard leader killed with "
            f"SIGKILL ({fo['labels'].get('fault', '')}). "
            + (f"Connections to it were lost at t = {lost[0]['t_s']:.2f} s; " if lost else "")
            + (f"the new leader was reported at t = {leader_events[0]['t_s']:.2f} s "
               f"(`INFO` polled every 100 ms). " if leader_events else "")
            + f"The worst second's p99 was {ms(worst['p99_us'])} ms; the seconds after it are back to "
            f"{ms(run['timeline'][-1]['p99_us'])} ms. Requests on connections to the dead node fail (red), as a "
            f"real client's would. Commit `{fo['git_commit']}`.\n"
        )
        out.append("![failover timeline](failover/timeline.svg)\n")
    else:
        out.append("(not recorded yet: `benches/record-failover.sh`)\n")
    section_comparison(
        out,
        "6. Does the pipelining window cost throughput? (durable)",
        "window-size",
        "Section 1 found `batching` (window 1) ahead of `all` (window 64). This re-measures `batching`, `all` "
        "and `window8` (all, 8 slots in flight) side by side, 3 repeats, ratios against `all`. Compare the spread "
        "between repeats (min - max) with the differences before reading a ranking into them: this machine is "
        "shared and noisy. Command:",
    )
    out.append("## 7. Earlier component benches\n")
    out.append("- [core-bench](core-bench/README.md): the consensus core alone, ns per command by batch size.")
    out.append("- [wal-bench](wal-bench/README.md): WAL group commit vs raw fdatasync on this disk.\n")
    section_core_compare(out)
    section_goals(out)
    section_faults(out)
    section_idle(out)
    section_wal_requests(out)
    section_floor(out)
    section_cpu_split(out)
    section_wal_writes(out)
    section_alloc(out)
    section_thp(out)
    section_glommio_timer(out)
    section_kv(out)
    section_p16_profile(out)
    section_allocator(out)
    section_pairs(out)
    section_wal_pairs(out)
    section_wal_trace(out)
    section_nonreading(out)
    section_connection_flood(out)
    section_write_path(out)
    section_build_pairs(out)
    section_p16_machine(out)
    section_snapshot_stall(out)
    section_slow_leader_disk(out)
    section_slow_follower_disk(out)
    with open(os.path.join(R, "README.md"), "w") as f:
        f.write("\n".join(out))
    print(f"wrote {R}/README.md")


if __name__ == "__main__":
    main()
