#!/usr/bin/env python3
"""What each WAL write of a segment held: for every segment file given,
the number of writes (one per group commit) by the set of record kinds in
them, e.g. `accept+commit` or `commit` (a write that held only commit-index
records). Reads the on-disk format of src/storage/write.rs and record.rs
(write header: magic "PXWR", epoch u64, seq u64, body_len u32, body_crc u32,
header_crc u32; frames: len u32, crc u32, then the kind byte); checks no
CRC, so run it on a stopped node's files.

Usage: benches/wal_write_kinds.py SEGMENT...   (DATA_DIR/node-N/shard-S/wal-*.log)"""
import collections
import struct
import sys

KINDS = {1: "promise", 2: "accept", 3: "chosen", 4: "commit", 5: "snapshot-marker", 6: "recovery-begun",
         7: "recovery-done", 8: "horizon"}
WRITE_HEADER = 32
FRAME_HEADER = 8

for path in sys.argv[1:]:
    data = open(path, "rb").read()
    offset, writes = 0, collections.Counter()
    while offset + WRITE_HEADER <= len(data) and data[offset:offset + 4] == b"PXWR":
        body_len = struct.unpack_from("<I", data, offset + 20)[0]
        body = data[offset + WRITE_HEADER:offset + WRITE_HEADER + body_len]
        kinds, p = set(), 0
        while p + FRAME_HEADER < len(body):
            frame_len = struct.unpack_from("<I", body, p)[0]
            kinds.add(KINDS.get(body[p + FRAME_HEADER], "unknown"))
            p += FRAME_HEADER + frame_len
        writes["+".join(sorted(kinds))] += 1
        offset += WRITE_HEADER + body_len
    print(f"{path}: {sum(writes.values())} writes")
    for kinds, count in writes.most_common():
        print(f"  {count:8d} {kinds}")
