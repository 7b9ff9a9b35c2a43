#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after the
# other, and records executions, coverage, corpus size and crashes in
# results/fuzz/<label>-<UTC time>/ (summary.csv, summary.md, one log per
# target).
#
#   benches/fuzz.sh [--install] [--label NAME] SECONDS [TARGET...]
#
# --install   install cargo-fuzz (`cargo install cargo-fuzz --locked`) if it
#             is missing; without it the script installs nothing.
# --label     names the run in results/fuzz/ (default: run; `smoke` for a
#             short check).
#
# Runs on stable Rust: `-s none` builds without a sanitizer, which needs no
# nightly flag. Without a sanitizer libFuzzer cannot hook malloc, so
# `-malloc_limit_mb` alone would never fire: the targets link an allocator
# (fuzz/src/lib.rs) that aborts on one allocation over 64 MiB, and
# `-rss_limit_mb` catches growth. Each target fuzzes in fuzz/work/<target>/
# (not committed) starting from the committed fuzz/corpus/<target>/ and
# fuzz/regressions/<target>/, which it only reads; crashes land in
# fuzz/artifacts/<target>/. Exit status: 0 if no target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="benches/fuzz.sh $*"

install=false
label=run
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
        --install) install=true ;;
        --label) label=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: benches/fuzz.sh [--install] [--label NAME] SECONDS [TARGET...]" >&2
    exit 2
fi
seconds=$1
shift

if ! cargo fuzz --version >/dev/null 2>&1; then
    if $install; then
        cargo install cargo-fuzz --locked
    else
        echo "cargo-fuzz is missing. Install it with:" >&2
        echo "    cargo install cargo-fuzz --locked" >&2
        echo "or run this script with --install." >&2
        exit 2
    fi
fi

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^paxoskv-fuzz$')
fi

# Small inputs keep each execution fast; -timeout makes a slow input (say, a
# quadratic scan) a crash instead of a stall.
libfuzzer_flags=(-rss_limit_mb=2048 -malloc_limit_mb=64 -timeout=10 -print_final_stats=1)
out="results/fuzz/$label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
echo "building the fuzz targets (stable, -s none)..."
(cd fuzz && nice -n 10 cargo +stable fuzz build -s none)

echo "target,seconds,execs,execs_per_s,cov,ft,corpus_units,corpus_bytes,crashes" >"$out/summary.csv"
crashed=0
for target in "${targets[@]}"; do
    mkdir -p "fuzz/work/$target" "fuzz/artifacts/$target"
    seeds=("corpus/$target")
    [[ -d "fuzz/regressions/$target" ]] && seeds+=("regressions/$target")
    artifacts_before=$(ls "fuzz/artifacts/$target" | wc -l)
    run=(cargo +stable fuzz run -s none "$target" "work/$target" "${seeds[@]}" --
        "-max_total_time=$seconds" "${libfuzzer_flags[@]}")
    echo "== $target: ${run[*]}"
    status=0
    full_log="fuzz/work/$target.log"
    (cd fuzz && nice -n 10 "${run[@]}") >"$full_log" 2>&1 || status=$?
    # The committed log leaves out the per-input NEW/REDUCE/pulse lines but
    # the last few; the whole one stays in fuzz/work/.
    { grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$full_log" || true
      echo "... last status lines:"; grep -E '^#[0-9]+' "$full_log" | tail -n 5 || true; } >"$out/$target.log"
    crashes=$(($(ls "fuzz/artifacts/$target" | wc -l) - artifacts_before))
    if [[ $status -ne 0 && $crashes -eq 0 ]]; then crashes=1; fi # died without an artifact
    [[ $crashes -gt 0 ]] && crashed=1
    # The last status line: "#N DONE cov: C ft: F corp: U/B ..." (or the
    # last pulse before a crash).
    last=$(grep -E '^#[0-9]+' "$full_log" | tail -n 1 || true)
    field() { sed -n "s/.* $1: \([^ ]*\).*/\1/p" <<<"$last"; }
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$full_log")
    execs=${execs:-$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")}
    corp=$(field corp)
    units=${corp%%/*}
    bytes=${corp##*/}
    echo "$target,$seconds,${execs:-0},$((${execs:-0} / seconds)),$(field cov),$(field ft),$units,$bytes,$crashes" \
        >>"$out/summary.csv"
    echo "   execs ${execs:-?}  cov $(field cov)  ft $(field ft)  corpus $corp  crashes $crashes"
done

{
    echo "# Fuzz run: $label"
    echo
    echo "- command: \`$command_line\`"
    echo "- per target: \`cd fuzz && cargo +stable fuzz run -s none TARGET work/TARGET corpus/TARGET" \
        "[regressions/TARGET] -- -max_total_time=$seconds ${libfuzzer_flags[*]}\`"
    echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src fuzz || echo ' (with local changes)')"
    echo "- machine: $(nproc) cores, $(rustc --version), cargo-fuzz $(cargo fuzz --version | awk '{print $2}')"
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "cov: edges covered (libFuzzer \`cov\`); ft: coverage features (\`ft\`); corpus: units and bytes (as"
    echo "libFuzzer prints them) of the working corpus at the end, seeds included; crashes: new files in"
    echo "fuzz/artifacts/TARGET."
    echo
    echo "| target | seconds | execs | execs/s | cov | ft | corpus units | corpus bytes | crashes |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    tail -n +2 "$out/summary.csv" | awk -F, '{ row = "|"; for (i = 1; i <= NF; i++) row = row " " $i " |"; print row }'
} >"$out/summary.md"
echo "summary: $out/summary.md"
exit $crashed
