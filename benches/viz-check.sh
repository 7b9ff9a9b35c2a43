#!/usr/bin/env bash
# Check `paxoskv viz` in a real browser: render TRACE... to one page, open it
# in headless Chromium with two different URL fragments, and fail if
#   - the page logs anything to the console (an error, an uncaught exception),
#   - its script did not run to the end (the toolbar stays empty),
#   - a screenshot is missing, or the two screenshots are the same (the
#     fragment, which sets the zoom window and filters, changed nothing).
#
# Usage: benches/viz-check.sh [TRACE...] [--out-dir DIR] [--keep DIR]
#   TRACE      trace files (default: results/viz/synthetic.jsonl)
#   --out-dir  where the page, screenshots and browser logs go (default: target/viz-check)
#   --keep     also copy the page and the all-kinds screenshot to DIR/<name>.{html,png}
#              (this is how results/viz/synthetic.{html,png} are made)
# Env: VIEW_A / VIEW_B override the two fragments; PAXOSKV a prebuilt binary.
#
# Installs nothing. Needs Debian's chromium: apt-get install chromium
set -euo pipefail
cd "$(dirname "$0")/.."

traces=()
out_dir=target/viz-check
keep=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out-dir) out_dir="$2"; shift 2 ;;
        --keep) keep="$2"; shift 2 ;;
        *) traces+=("$1"); shift ;;
    esac
done
[ ${#traces[@]} -gt 0 ] || traces=(results/viz/synthetic.jsonl)

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "viz-check: chromium not found; install it with: apt-get install chromium" >&2
    exit 2
fi

if [ -z "${PAXOSKV:-}" ]; then
    cargo build --release --quiet --bin paxoskv
    PAXOSKV=target/release/paxoskv
fi
mkdir -p "$out_dir"
page="$(realpath "$out_dir")/page.html"
"$PAXOSKV" viz "${traces[@]}" --out "$page"

# The default view (every kind) against the Accept messages alone.
view_a="${VIEW_A:-#kinds=all}"
view_b="${VIEW_B:-#kinds=accept}"

failed=0
fail() {
    echo "viz-check: FAIL: $*" >&2
    failed=1
}

# chromium_run LOG ARGS...: one headless run, its log in LOG.
chromium_run() {
    local log="$1" profile
    shift
    profile=$(mktemp -d)
    # The Debian wrapper script prints a harmless shell warning; the log keeps it.
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --enable-logging=stderr --v=0 "$@" 2>"$log" || true
    rm -rf "$profile"
}

# shot NAME FRAGMENT: screenshot the page with FRAGMENT into NAME.png.
shot() {
    local name="$1" fragment="$2" png="$out_dir/$1.png" log="$out_dir/$1.log"
    rm -f "$png"
    chromium_run "$log" --screenshot="$png" --window-size=1600,900 "file://$page$fragment"
    # Chromium logs every console message of the page as ":CONSOLE"; the page
    # itself logs nothing, so any such line is an error or an uncaught exception.
    if grep -q ':CONSOLE' "$log"; then
        fail "console messages with $fragment:"
        grep ':CONSOLE' "$log" >&2
    fi
    [ -s "$png" ] || fail "no screenshot for $fragment (see $log)"
    echo "  $png ($fragment)"
}

echo "viz-check: $page"
shot all "$view_a"
shot filtered "$view_b"

# The script fills the toolbar's summary last thing before drawing: empty
# means it failed before the diagram was drawn.
chromium_run "$out_dir/dom.log" --dump-dom "file://$page" >"$out_dir/dom.html"
grep -q 'id="info"[^>]*>[^<]*messages' "$out_dir/dom.html" || fail "the page's script did not fill the toolbar"

if [ -s "$out_dir/all.png" ] && [ -s "$out_dir/filtered.png" ]; then
    if [ "$(sha256sum <"$out_dir/all.png")" = "$(sha256sum <"$out_dir/filtered.png")" ]; then
        fail "the screenshots for $view_a and $view_b are identical"
    fi
fi

if [ -n "$keep" ] && [ $failed -eq 0 ]; then
    name=$(basename "${traces[0]}" .jsonl)
    mkdir -p "$keep"
    cp "$page" "$keep/$name.html"
    cp "$out_dir/all.png" "$keep/$name.png"
    echo "  kept $keep/$name.html and $keep/$name.png"
fi

if [ $failed -ne 0 ]; then
    exit 1
fi
echo "viz-check: ok (no console messages, toolbar filled, the two views differ)"
