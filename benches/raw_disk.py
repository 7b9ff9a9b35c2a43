"""The disk's floor for a WAL sync: three processes, each an O_DIRECT 4 KiB
overwrite + fdatasync loop on its own file in DIR, for 5 s. Prints the p50
and p99 of each write + sync (µs) and the sample count, one `key value` per
line. Used by benches/record-goals.sh and benches/record-wal-writes.sh.

    python3 benches/raw_disk.py DIR
"""
import mmap
import multiprocessing as mp
import os
import queue
import sys
import time


def loop(path, q):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
    buf = mmap.mmap(-1, 4096)
    os.pwrite(fd, buf, 0)
    os.fdatasync(fd)
    lat, end = [], time.monotonic() + 5
    while time.monotonic() < end:
        t = time.perf_counter_ns()
        os.pwrite(fd, buf, 0)
        os.fdatasync(fd)
        lat.append(time.perf_counter_ns() - t)
    os.close(fd)
    os.unlink(path)
    q.put(lat)


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit(__doc__.strip() + "\n\nDIR must be an existing directory on the disk to measure.")
    q = mp.Queue()
    ps = [mp.Process(target=loop, args=(os.path.join(sys.argv[1], f"raw-{i}"), q)) for i in range(3)]
    for p in ps:
        p.start()
    # A loop that failed (its file could not be opened) puts nothing:
    # stop rather than wait for it forever.
    results = []
    while len(results) < len(ps):
        try:
            results.append(q.get(timeout=1))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in ps):
                sys.exit("a write loop failed; see its error above")
    lat = sorted(sum(results, []))
    for p in ps:
        p.join()
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000
    print(f"raw_disk_p50_us {pct(0.5):.1f}\nraw_disk_p99_us {pct(0.99):.1f}\nraw_disk_samples {len(lat)}")


if __name__ == "__main__":
    main()
