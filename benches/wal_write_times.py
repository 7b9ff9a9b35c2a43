"""The kernel's part of the WAL's writes, from `perf script` output of the
io_uring:io_uring_submit_req and io_uring:io_uring_complete tracepoints on
stdin: each DMA write (WRITE_FIXED: glommio's DmaFile writes, the WAL's
records and its zeros written ahead) from its submission to io_uring until
its completion was posted, matched by ring and request. Writes of 256 KiB
and more count as zeros written ahead (`ZERO_CHUNK_BYTES` in
src/storage/wal.rs is their least size). Prints `key value` pairs on one
line, for benches/record-wal-requests.sh:

    writes N write_mean_us M write_p50_us P record_write_mean_us R zero_writes Z
"""
import re
import statistics
import sys

ZERO_CHUNK_BYTES = 256 << 10
EVENT = re.compile(r" (\d+\.\d+):\s+io_uring:(io_uring_submit_req|io_uring_complete): ring (\S+), req (\S+),")
RESULT = re.compile(r"result (-?\d+)")


def main():
    submitted, writes = {}, []
    for line in sys.stdin:
        m = EVENT.search(line)
        if not m:
            continue
        at, event, key = float(m.group(1)), m.group(2), (m.group(3), m.group(4))
        if event == "io_uring_submit_req":
            if "opcode WRITE_FIXED" in line:
                submitted[key] = at
        elif key in submitted:
            result = RESULT.search(line)
            writes.append(((at - submitted.pop(key)) * 1e6, int(result.group(1)) if result else 0))
    took = [us for us, _ in writes]
    records = [us for us, size in writes if size < ZERO_CHUNK_BYTES]
    zeros = len(writes) - len(records)
    mean = lambda xs: statistics.mean(xs) if xs else 0.0
    median = lambda xs: statistics.median(xs) if xs else 0.0
    print(f"writes {len(writes)} write_mean_us {mean(took):.0f} write_p50_us {median(took):.0f} "
          f"record_write_mean_us {mean(records):.0f} zero_writes {zeros}")


if __name__ == "__main__":
    main()
