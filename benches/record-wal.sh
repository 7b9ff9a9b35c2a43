#!/usr/bin/env bash
# Run the WAL bench on this machine's disk and write a result bundle to
# results/wal-bench/: the bench's JSON (every round's raw figures, medians,
# machine, commit), its printed table, and a README.md generated from the
# JSON. Durability mode: sync. Takes about a minute (plus the build).
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/wal-bench
mkdir -p "$out"
command="WAL_BENCH_OUT=$out/summary.json cargo bench --bench wal"
WAL_BENCH_OUT="$out/summary.json" cargo bench --bench wal | tee "$out/bench.txt"
python3 - "$out" "$command" <<'PY'
import json, sys
out, command = sys.argv[1], sys.argv[2]
d = json.load(open(f"{out}/summary.json"))
m, goals, machine, settings = d["medians"], d["goals"], d["machine"], d["settings"]

def fmt(x, decimals):
    return f"{x:,.{decimals}f}"

with open(f"{out}/README.md", "w") as f:
    f.write("# WAL bench: raw fdatasync vs WAL group commit, on this machine's disk\n\n")
    f.write("Produced by `benches/record-wal.sh`, which ran:\n\n")
    f.write(f"```\n{command}\n```\n\n")
    f.write(f"Durability mode: **{d['durability']}** (fdatasync before `sync` returns). ")
    f.write(f"{settings['rounds']} interleaved rounds, each running "
            f"{', '.join(settings['order_within_round'])} in that order, side by side in one process ")
    f.write(f"(one glommio executor); each I/O measurement discards a {settings['warmup_ms']} ms warm-up and counts "
            f"a {settings['window_ms']} ms window, in a fresh data directory under `{settings['data_dir']}`.\n\n")
    f.write(f"- raw: one glommio DMA file, write one {settings['raw_block_bytes']}-byte aligned block, fdatasync, "
            "repeat; `append` writes each block after the last (the file grows), `overwrite` rewrites block 0.\n")
    f.write(f"- wal-N: N glommio tasks each looping `seq = wal.append(&[op]); wal.sync(seq).await` with op = "
            f"{settings['record']}; slots cycle over {settings['slots_cycle']}. Payload MB/s counts the command "
            "bytes; log MB/s counts the encoded records (framing included).\n")
    f.write("- encode: `encode_ops` (record encoding + CRC32C) of the same records in a tight loop, no I/O; "
            "`crc alone` breaks it down.\n\n")
    f.write("Spread = (max - min) / median across rounds.\n\n")
    f.write("| figure | median | min - max | spread |\n| --- | ---: | ---: | ---: |\n")
    for key, fig in m.items():
        if key == "encode_share_at_256":
            continue
        s, dec = fig["spread"], fig["decimals"]
        f.write(f"| {fig['label']} | {fmt(s['median'], dec)} | {fmt(s['min'], dec)} - {fmt(s['max'], dec)} "
                f"| {s['spread_percent']:.1f}% |\n")
    ratio = goals["wal_256_records_per_s_over_faster_raw_fsyncs_per_s"]
    share = goals["encode_share_at_256"]
    own = goals["also_wal_256_records_per_own_fsync"]
    def met(g):
        return "met" if g["met"] else "**not met**"
    f.write("\n## Goals (issue 3), reported, not asserted\n\n")
    f.write(f"- WAL records/s at 256 appenders / raw fsyncs/s (the faster raw pattern, same round), median of "
            f"per-round ratios: **{ratio['median']:.1f}x** (goal >= {ratio['min']:g}x: {met(ratio)}).\n")
    f.write(f"- Encoding + CRC share of the WAL's time per record at 256 appenders "
            f"(encode ns/record / (1e9 / WAL records/s)), median of per-round shares: "
            f"**{share['median'] * 100:.2f}%** (goal < {share['max'] * 100:g}%: {met(share)}).\n")
    f.write(f"- The same goal read against the WAL's own fsyncs (records per fsync at 256 appenders): "
            f"**{own['median']:.1f}** (>= {own['min']:g}: {met(own)}).\n\n")
    f.write("## Per round\n\n")
    f.write("| round | raw append fsyncs/s | raw overwrite fsyncs/s | "
            + " | ".join(f"wal-{w['appenders']} records/s" for w in d["rounds"][0]["wal"])
            + " | encode ns/record | ratio | encode share |\n")
    f.write("| --- " * (6 + len(d["rounds"][0]["wal"])) + "|\n")
    for r in d["rounds"]:
        f.write(f"| {r['round']} | {r['raw_append']['fsyncs_per_s']:,.0f} | {r['raw_overwrite']['fsyncs_per_s']:,.0f} | "
                + " | ".join(f"{w['records_per_s']:,.0f}" for w in r["wal"])
                + f" | {r['encode']['ns_per_record']:.1f} "
                f"| {r['ratio_wal_256_records_per_s_to_faster_raw_fsyncs_per_s']:.1f}x "
                f"| {r['encode_share_at_256'] * 100:.2f}% |\n")
    f.write("\n## What produced it\n\n```\n")
    f.write(f"command: {command}\n")
    f.write(f"binary: {' '.join(d['command_line'])}\n")
    f.write(f"commit: {d['git_commit']}{' (dirty)' if d['git_dirty'] else ''}\n")
    f.write(f"profile: {d['profile']}\n")
    f.write(f"cores (nproc): {machine['nproc']}\n")
    f.write(f"kernel: {machine['kernel']}\n")
    f.write(f"cpu: {machine['cpu_model']}\n")
    f.write(f"filesystem (stat -f): {machine['filesystem']}\n")
    f.write(f"rustc: {machine['rustc']}\n")
    f.write("```\n\nRaw figures of every round: `summary.json`; the bench's printed table: `bench.txt`.\n")
PY
cat "$out/README.md"
