#!/usr/bin/env python3
"""Instructions per committed command for every row of a core-compare
bundle, counted by valgrind (cachegrind, no cache simulation): the same
work gives the same count on every run, whatever else the machine does,
where the bundle's nanoseconds move by 2x between runs on a noisy host.

Each library and shape runs twice with a fixed number of rounds per
sample (`core-compare --rounds N`, one warm-up sample and one measured
one) at N1 and N2 rounds; everything but the rounds (building the group,
the election, the allocation count, settling) is the same in both runs,
so (I(N2) - I(N1)) / (2 (N2 - N1) commands per round) counts only the
rounds. N2 - N1 rounds hold 2048 entries: two log trims per sample in
every library, so each one's share of trimming is in its count.

Instructions are not time: a cache miss or a mispredicted branch costs
no more instructions than a hit. They are the deterministic half of the
comparison, next to the interleaved timings.

Usage: core_compare_instructions.py BUNDLE_DIR BINARY [--label NAME --library LIB]
  Writes BUNDLE_DIR/instructions.json (or merges NAME's rows into it:
  with --label, BINARY is another build, e.g. an earlier commit's core,
  counted for LIB only and stored under the library name NAME)."""
import argparse
import json
import os
import re
import subprocess
import sys


def instructions(binary, library, entries, commands, rounds):
    """Instructions of one whole run of the binary (valgrind's I refs)."""
    cmd = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        binary, "--library", library, "--entries-per-round", str(entries),
        "--commands-per-entry", str(commands), "--repeats", "1", "--rounds", str(rounds),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    match = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    if not match:
        sys.exit(f"no instruction count in valgrind's output of {' '.join(cmd)}:\n{run.stderr}")
    return int(match.group(1).replace(",", ""))


def per_command(binary, library, entries, commands):
    entries_counted = 2048
    n1 = max(1, 1024 // entries)
    n2 = n1 + entries_counted // entries
    i1 = instructions(binary, library, entries, commands, n1)
    i2 = instructions(binary, library, entries, commands, n2)
    # Two samples (the warm-up and the measured one) of N rounds each.
    counted = 2 * (n2 - n1) * entries * commands
    return {
        "library": library,
        "entries_per_round": entries,
        "commands_per_entry": commands,
        "rounds": [n1, n2],
        "instructions": [i1, i2],
        "commands_counted": counted,
        "instructions_per_command": (i2 - i1) / counted,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle")
    parser.add_argument("binary")
    parser.add_argument("--label", help="store the rows under this library name (another build)")
    parser.add_argument("--library", default="paxoskv", help="with --label: the library to count")
    args = parser.parse_args()
    rows = json.load(open(os.path.join(args.bundle, "results.json")))["rows"]
    shapes = sorted({(r["entries_per_round"], r["commands_per_entry"]) for r in rows})
    libraries = [args.library] if args.label else list(dict.fromkeys(r["library"] for r in rows))
    path = os.path.join(args.bundle, "instructions.json")
    doc = json.load(open(path)) if os.path.exists(path) else {"tool": "valgrind --tool=cachegrind --cache-sim=no", "rows": []}
    version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    doc["valgrind"] = version
    for library in libraries:
        for entries, commands in shapes:
            row = per_command(args.binary, library, entries, commands)
            if args.label:
                row["library"] = args.label
            doc["rows"] = [r for r in doc["rows"] if (r["library"], r["entries_per_round"], r["commands_per_entry"])
                           != (row["library"], entries, commands)]
            doc["rows"].append(row)
            print(f"{entries:>7} {commands:>7} {row['library']:<24} {row['instructions_per_command']:>12,.1f} instructions per command")
    json.dump(doc, open(path, "w"), indent=2)


if __name__ == "__main__":
    main()
