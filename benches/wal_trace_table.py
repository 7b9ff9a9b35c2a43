"""The tables of benches/record-wal-trace.sh.

    perf script -F pid,tid,time,event,trace ... | wal_trace_table.py writes ROLE RUN
        one process's io_uring tracepoints -> a line per kind of write (records,
        zeros): ROLE RUN KIND COUNT MEAN_BYTES MEAN_US P50_US P90_US
    wal_trace_table.py table OUT COMMAND COMMIT SECONDS
        OUT/runs.txt -> OUT/README.md (medians over the runs)
"""
import os
import re
import statistics
import sys

# A write this large is a top-up of the zeros ahead of the records
# (src/storage/wal.rs: ZERO_CHUNK_BYTES and up); group commits under the
# benchmark are far smaller.
ZERO_BYTES_MIN = 256 << 10
LINE = re.compile(r"([\d.]+):\s+io_uring:(io_uring_submit_req|io_uring_complete): (.*)")


def writes(role, run):
    submitted = {}
    kinds = {"records": [], "zeros": []}
    for line in sys.stdin:
        m = LINE.search(line)
        if not m:
            continue
        at, event, rest = float(m.group(1)), m.group(2), m.group(3)
        req = re.search(r"req (0x[0-9a-f]+)", rest)
        if not req:
            continue
        if event == "io_uring_submit_req":
            op = re.search(r"opcode (\w+)", rest)
            if op and op.group(1) in ("WRITE", "WRITE_FIXED"):
                submitted[req.group(1)] = at
            else:
                submitted.pop(req.group(1), None)
        elif req.group(1) in submitted:
            start = submitted.pop(req.group(1))
            result = int(re.search(r"result (-?\d+)", rest).group(1))
            # The WAL's writes are whole 512-byte sectors at least; other
            # writes (the runtime's eventfd) are 8 bytes or fail.
            if result > 0 and result % 512 == 0:
                kind = "zeros" if result >= ZERO_BYTES_MIN else "records"
                kinds[kind].append(((at - start) * 1e6, result))
    print("# role run kind count mean_bytes mean_us p50_us p90_us")
    for kind, v in kinds.items():
        if not v:
            print(f"{role} {run} {kind} 0 - - - -")
            continue
        us = sorted(x[0] for x in v)
        print(f"{role} {run} {kind} {len(v)} {statistics.mean(x[1] for x in v):.0f} {statistics.mean(us):.0f} "
              f"{us[len(us) // 2]:.0f} {us[int(0.9 * (len(us) - 1))]:.0f}")


def table(out, command, commit, seconds):
    seconds = float(seconds)
    per = {}  # (role, name) -> [values per run]
    runs = set()
    for line in open(os.path.join(out, "runs.txt")):
        f = line.split()
        role, run = f[0], f[1]
        runs.add(run)
        if f[2] == "wal_sync":
            count, total = int(f[3]), int(f[4])
            per.setdefault((role, "syncs/s"), []).append(count / seconds)
            if count:
                per.setdefault((role, "sync_mean"), []).append(total / count)
        elif f[3] != "0":
            kind = f[2]
            per.setdefault((role, f"{kind}/s"), []).append(int(f[3]) / seconds)
            for i, name in enumerate(["bytes", "mean", "p50", "p90"]):
                per.setdefault((role, f"{kind}_{name}"), []).append(float(f[4 + i]))

    def med(role, name):
        v = per.get((role, name))
        return statistics.median(v) if v else None

    def fmt(v):
        return "-" if v is None else f"{v:,.0f}"

    lines = [
        f"# The WAL's writes under pipelined SETs: the disk's time and the shard's ({os.path.basename(out)}, "
        f"commit {commit})",
        "",
        f"Command: `{command}`. `redis-benchmark -c 50 -P 16 -t set -d 100 -r 100000` at the leader of a fresh "
        f"local 3-node cluster (durability sync); meanwhile {seconds:g} s of io_uring's tracepoints on the whole "
        f"machine, split by node. Medians over {len(runs)} runs (followers: over both, every run); every figure "
        f"in `runs.txt`.",
        "",
        "- *group commit, the shard's view*: the mean of `wal_sync` (INFO latency) over the traced seconds: the "
        "syncer's time from starting a group commit's write until it runs again once the write is durable.",
        "- *record write, the disk's view*: each block-aligned WRITE/WRITE_FIXED from its submission to the "
        "kernel until its completion (io_uring_submit_req to io_uring_complete): an O_DSYNC write, which on a "
        "disk without FUA a kernel worker thread makes and waits for. Writes of 256 KiB and more are counted "
        "as the zeros written ahead of the records (section 12), not as records.",
        "- *waiting for the executor*: the first minus the second (means). A group commit's write is submitted "
        "at the executor's next pass over its reactor, and its completion is seen at the pass after it "
        "completes, then the syncer waits its turn among the tasks woken with it.",
        "",
        "| process | group commits/s | group commit, the shard's view (µs, mean) | record writes/s | record "
        "write bytes (mean) | record write, the disk's view (µs, mean / p50 / p90) | zero writes/s | zero write "
        "(µs, mean) | waiting for the executor (µs, mean) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for role in ["leader", "follower"]:
        sync, rec = med(role, "sync_mean"), med(role, "records_mean")
        wait = None if sync is None or rec is None else sync - rec
        lines.append(
            f"| {role} | {fmt(med(role, 'syncs/s'))} | {fmt(sync)} | {fmt(med(role, 'records/s'))} "
            f"| {fmt(med(role, 'records_bytes'))} | {fmt(rec)} / {fmt(med(role, 'records_p50'))} / "
            f"{fmt(med(role, 'records_p90'))} | {fmt(med(role, 'zeros/s'))} | {fmt(med(role, 'zeros_mean'))} "
            f"| {fmt(wait)} |"
        )
    open(os.path.join(out, "README.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1] == "writes":
        writes(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "table":
        table(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
