#!/usr/bin/env bash
# Is loadgen's closed loop as fast a client as redis-benchmark? Against one
# redis-server, side by side (A, B, A, B ...), with the same connections,
# pipeline depth, key space, value size and operation (SET: loadgen
# --read-ratio 0; GET: --read-ratio 1). Prints each pair and the median
# ratio loadgen / redis-benchmark. The goal is >= 0.9.
#
# Writes results/loadgen-accuracy/<op>-<value bytes>B.{txt,json}.
#
#   benches/record-loadgen-accuracy.sh
#   REPEATS=5 OP=get VALUE_BYTES=3 benches/record-loadgen-accuracy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${REPEATS:-3}
op=${OP:-set}
value_bytes=${VALUE_BYTES:-100}
connections=${CONNECTIONS:-50}
pipeline=${PIPELINE:-16}
requests=${REQUESTS:-4000000}
duration_s=${DURATION_S:-5}
port=${PORT:-6399}
case $op in
    set) read_ratio=0 ;;
    get) read_ratio=1 ;;
    *) echo "OP must be set or get" >&2; exit 2 ;;
esac
# shellcheck source=benches/lib.sh
source benches/lib.sh
require_tools redis-server redis-benchmark redis-cli
cargo build --release -p loadgen
out=results/loadgen-accuracy
mkdir -p "$out"
name="$out/$op-${value_bytes}B"
exec > >(tee "$name.txt")
scratch=$(mktemp -d)
redis-server --port "$port" --save "" --appendonly no --daemonize no >"$scratch/redis.log" 2>&1 &
redis_pid=$!
cleanup() {
    kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "redis-benchmark -p $port -t $op -c $connections -P $pipeline -n $requests -r 100000 -d $value_bytes -q"
echo "loadgen run --target resp://127.0.0.1:$port --closed --connections $connections --pipeline $pipeline" \
    "--read-ratio $read_ratio --value-bytes $value_bytes --warmup-s 1 --duration-s $duration_s"
ratios=()
for repeat in $(seq "$repeats"); do
    benchmark=$(redis-benchmark -p "$port" -t "$op" -c "$connections" -P "$pipeline" -n "$requests" -r 100000 \
        -d "$value_bytes" -q 2>/dev/null | tr '\r' '\n' | grep -oE "[0-9.]+ requests per second" | grep -oE "^[0-9.]+")
    loadgen=$(./target/release/loadgen run --target "resp://127.0.0.1:$port" --closed --connections "$connections" \
        --pipeline "$pipeline" --read-ratio "$read_ratio" --value-bytes "$value_bytes" --warmup-s 1 \
        --duration-s "$duration_s" --out "$scratch/bundle-$repeat" 2>/dev/null |
        grep -oE "^closed [0-9x]+: achieved [0-9.]+" | grep -oE "[0-9.]+$")
    ratio=$(awk -v a="$loadgen" -v b="$benchmark" 'BEGIN { printf "%.3f", a / b }')
    ratios+=("$ratio")
    echo "repeat $repeat: redis-benchmark $benchmark ops/s, loadgen $loadgen ops/s, ratio $ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
spread=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n '1p;$p' | paste -sd' ')
echo "median ratio loadgen / redis-benchmark ($op, ${value_bytes}-byte values): $median (min, max: $spread)"
commit=$(git rev-parse --short HEAD)$([[ -n $(git status --porcelain --untracked-files=no) ]] && echo -dirty)
printf '{"op": "%s", "value_bytes": %s, "connections": %s, "pipeline": %s, "repeats": %s, "ratios": [%s], "median_ratio": %s, "commit": "%s", "cores": %s, "kernel": "%s"}\n' \
    "$op" "$value_bytes" "$connections" "$pipeline" "$repeats" "$(IFS=,; echo "${ratios[*]}")" "$median" "$commit" \
    "$(nproc)" "$(uname -r)" >"$name.json"
