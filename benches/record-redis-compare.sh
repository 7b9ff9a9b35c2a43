#!/usr/bin/env bash
# paxoskv (3-node local cluster, durability sync) vs an unreplicated
# redis-server, measured side by side with redis-benchmark, a client no one
# here wrote. Writes a result bundle to results/redis-benchmark/:
# every run's CSV, summary.json (medians, ratios, machine, commit) and a
# README.md generated from it.
#
#   benches/record-redis-compare.sh            # 3 interleaved repeats, -n 1000000
#   REPEATS=1 REQUESTS=200000 benches/record-redis-compare.sh   # quicker
#
# Needs redis-server and redis-benchmark: benches/install-deps.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${REPEATS:-3}
requests=${REQUESTS:-1000000}
clients=${CLIENTS:-50}
shards=${SHARDS:-1}
redis_port=6390
base_port=7000
out=results/redis-benchmark
data=$(mktemp -d /var/tmp/paxoskv-bench.XXXXXX)  # a real disk: fsync must mean something
# shellcheck source=benches/lib.sh
source benches/lib.sh
require_tools redis-server redis-benchmark redis-cli
cargo build --release --bin paxoskv
rm -rf "$out/runs"
mkdir -p "$out/runs"

cleanup() {
    [[ -n "${cluster_pid:-}" ]] && kill "$cluster_pid" 2>/dev/null && wait "$cluster_pid" 2>/dev/null || true
    [[ -n "${redis_pid:-}" ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

redis-server --port $redis_port --save "" --appendonly no --daemonize no >"$data/redis.log" 2>&1 &
redis_pid=$!
./target/release/paxoskv cluster --data-dir "$data/cluster" --fresh --base-port $base_port --shards "$shards" \
    --durability sync >"$data/cluster.log" 2>&1 &
cluster_pid=$!
for _ in $(seq 100); do
    grep -q '^ready:' "$data/cluster.log" && redis-cli -p $redis_port ping >/dev/null 2>&1 && break
    sleep 0.2
done
grep -q '^ready:' "$data/cluster.log" || { cat "$data/cluster.log"; echo "cluster did not start" >&2; exit 1; }
leader=$(sed -n 's/^  shard 0: leader node \([0-9]*\)$/\1/p' "$data/cluster.log")
paxos_port=$((base_port + leader))
echo "redis-server on $redis_port; paxoskv shard 0 leader: node $leader (port $paxos_port)"

for repeat in $(seq "$repeats"); do
    for pipeline in 1 16; do
        for target in redis paxoskv; do
            port=$redis_port
            [[ $target == paxoskv ]] && port=$paxos_port
            file="$out/runs/$target-P$pipeline-r$repeat.csv"
            echo "repeat $repeat: $target -P $pipeline"
            redis-benchmark -p "$port" -t set,get -c "$clients" -n "$requests" -P "$pipeline" -r 100000 --csv \
                2>/dev/null >"$file"
            cat "$file"
        done
    done
done
redis-cli -p "$paxos_port" info replication >"$out/paxoskv-info.txt"
grep -E 'avg_batch|total_' <(redis-cli -p "$paxos_port" info stats) >>"$out/paxoskv-info.txt" || true

python3 - "$out" "$repeats" "$requests" "$clients" "$shards" "$leader" <<'PY'
import csv, glob, json, os, platform, statistics, subprocess, sys
out, repeats, requests, clients, shards, leader = sys.argv[1], *map(int, sys.argv[2:])
runs = {}
for path in sorted(glob.glob(f"{out}/runs/*.csv")):
    target, pipeline, _ = os.path.basename(path)[:-4].split("-")
    for row in csv.DictReader(open(path)):
        test = row["test"].lower()
        runs.setdefault((target, pipeline, test), []).append({k: float(v) for k, v in row.items() if k != "test"})
def med(xs): return statistics.median(xs)
summary = {}
for (target, pipeline, test), rows in sorted(runs.items()):
    rps = [r["rps"] for r in rows]
    summary[f"{target} {pipeline} {test}"] = {
        "rps_median": med(rps), "rps_min": min(rps), "rps_max": max(rps),
        "p50_ms_median": med([r["p50_latency_ms"] for r in rows]),
        "p99_ms_median": med([r["p99_latency_ms"] for r in rows]),
        "repeats": len(rows)}
def ratio(pipeline, test):
    a, b = summary.get(f"paxoskv {pipeline} {test}"), summary.get(f"redis {pipeline} {test}")
    return a["rps_median"] / b["rps_median"] if a and b else None
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
machine = {"cores": os.cpu_count(), "kernel": platform.release(),
           "redis": subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()}
goals = {"set_P16_paxoskv_rps_at_least_150k": summary["paxoskv P16 set"]["rps_median"] >= 150_000,
         "set_P16_ratio_at_least_0.20": ratio("P16", "set") >= 0.20,
         "get_P16_ratio_at_least_0.50": ratio("P16", "get") >= 0.50}
data = {"command": "benches/record-redis-compare.sh", "commit": commit + ("-dirty" if dirty else ""),
        "machine": machine, "settings": {"repeats": repeats, "requests": requests, "clients": clients,
        "paxoskv": f"3 nodes on loopback, {shards} shard(s), durability sync, defaults otherwise; "
                   f"redis-benchmark talks to the shard leader (node {leader})",
        "redis": "redis-server --save '' --appendonly no (no persistence, no replication)",
        "keyspace": "-r 100000", "order": "per repeat: P1 redis, P1 paxoskv, P16 redis, P16 paxoskv"},
        "summary": summary, "ratios": {f"{p} {t}": ratio(p, t) for p in ("P1", "P16") for t in ("set", "get")},
        "goals": goals}
json.dump(data, open(f"{out}/summary.json", "w"), indent=2)
with open(f"{out}/README.md", "w") as f:
    f.write("# paxoskv vs Redis, with redis-benchmark\n\n")
    f.write("Produced by `benches/record-redis-compare.sh` (commit `%s`, %d cores, kernel %s, %s).\n\n"
            % (data["commit"], machine["cores"], machine["kernel"], machine["redis"]))
    f.write(f"`redis-benchmark -t set,get -c {clients} -n {requests} -P <1|16> -r 100000`, against:\n\n")
    f.write(f"- **paxoskv**: a 3-node local cluster (`paxoskv cluster`), {shards} shard(s) per node, "
            "**durability sync** (every acknowledged write is fdatasynced on a majority), lease reads; "
            f"the benchmark connects to the shard leader (node {leader}).\n")
    f.write("- **redis**: one `redis-server` with no persistence and no replication (the ceiling).\n\n")
    f.write(f"Both run side by side in one invocation, interleaved, {repeats} repeat(s); medians, "
            "with min - max across repeats. Both share this machine's 2 cores with redis-benchmark.\n\n")
    f.write("| pipeline | op | paxoskv req/s | redis req/s | paxoskv / redis | paxoskv p50 / p99 ms | redis p50 / p99 ms |\n")
    f.write("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
    for p in ("P1", "P16"):
        for t in ("set", "get"):
            a, b = summary[f"paxoskv {p} {t}"], summary[f"redis {p} {t}"]
            f.write(f"| -{p} | {t.upper()} | {a['rps_median']:,.0f} ({a['rps_min']:,.0f} - {a['rps_max']:,.0f}) "
                    f"| {b['rps_median']:,.0f} ({b['rps_min']:,.0f} - {b['rps_max']:,.0f}) | {ratio(p, t):.2f} "
                    f"| {a['p50_ms_median']:.2f} / {a['p99_ms_median']:.2f} | {b['p50_ms_median']:.2f} / {b['p99_ms_median']:.2f} |\n")
    f.write("\n## Goals (issue 4), reported, not asserted\n\n")
    f.write(f"- replicated durable SET with -P 16 >= 150k/s: **{summary['paxoskv P16 set']['rps_median']:,.0f}/s**, "
            f"{'met' if goals['set_P16_paxoskv_rps_at_least_150k'] else 'not met'}\n")
    f.write(f"- ... and >= 20% of Redis's: **{ratio('P16', 'set'):.0%}**, "
            f"{'met' if goals['set_P16_ratio_at_least_0.20'] else 'not met'}\n")
    f.write(f"- GET (lease reads) with -P 16 >= 50% of Redis's: **{ratio('P16', 'get'):.0%}**, "
            f"{'met' if goals['get_P16_ratio_at_least_0.50'] else 'not met'}\n\n")
    f.write("Raw CSV per run in `runs/`; the leader's `INFO replication` and batch statistics after the runs in "
            "`paxoskv-info.txt`.\n")
print(open(f"{out}/README.md").read())
PY
