#!/usr/bin/env python3
"""Picks the few fuzz inputs worth committing after a run.

    benches/fuzz_corpus_min.py [--max N] TARGET [TARGET...]

For each target, asks libFuzzer (a merge with coverage counters off) which
edges every input of fuzz/corpus/TARGET and fuzz/work/TARGET reaches, then
greedily takes the work input that adds the most edges not yet covered by
the committed corpus or an earlier pick, until none adds any or N (default
40) are taken. The picks are copied into fuzz/corpus/TARGET under their
SHA-1. libFuzzer's own merge keeps every input that adds any feature,
hundreds per target; the committed corpus stays at tens of files, and it
says how many edges the inputs left out would have added.

Run after benches/fuzz.sh (which builds the targets and fills fuzz/work).
"""

import hashlib
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
BINARIES = FUZZ / "target" / "x86_64-unknown-linux-gnu" / "release"


def edges_per_input(target, tmp):
    """{path: set of edge features} for every corpus and work input."""
    control = tmp / "control"
    out = tmp / "out"
    out.mkdir()
    subprocess.run(
        [str(BINARIES / target), "-merge=1", "-use_counters=0", f"-merge_control_file={control}",
         "-rss_limit_mb=2048", str(out), str(FUZZ / "corpus" / target), str(FUZZ / "work" / target)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = control.read_text().splitlines()
    count = int(lines[0])
    files = lines[2:2 + count]
    edges = {}
    for line in lines[2 + count:]:
        if line.startswith("FT "):
            index, *features = line.split()[1:]
            edges[pathlib.Path(files[int(index)])] = set(features)
    return edges


def pick(target, picks_max):
    with tempfile.TemporaryDirectory() as tmp:
        edges = edges_per_input(target, pathlib.Path(tmp))
    corpus = FUZZ / "corpus" / target
    covered = set().union(*(e for path, e in edges.items() if path.parent == corpus))
    candidates = {path: e - covered for path, e in edges.items() if path.parent != corpus}
    picks = []
    while candidates and len(picks) < picks_max:
        path, new = max(candidates.items(), key=lambda item: (len(item[1]), -item[0].stat().st_size))
        if not new:
            break
        picks.append(path)
        covered |= new
        candidates = {p: e - new for p, e in candidates.items() if p != path}
    for path in picks:
        data = path.read_bytes()
        shutil.copyfile(path, corpus / hashlib.sha1(data).hexdigest())
    size = sum(p.stat().st_size for p in picks)
    missed = len(set().union(set(), *candidates.values()) - covered)
    print(f"{target}: {len(picks)} inputs ({size} bytes) added, {len(covered)} edges covered, {missed} left out")


if __name__ == "__main__":
    args = sys.argv[1:]
    picks_max = 40
    if args[:1] == ["--max"]:
        picks_max, args = int(args[1]), args[2:]
    if not args:
        sys.exit(__doc__)
    for name in args:
        pick(name, picks_max)
