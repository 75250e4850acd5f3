#!/usr/bin/env bash
# A soak of hubbub: `hubbub-bench soak` runs a release hubbub under churn for the given
# time (30m by default): clients that connect, subscribe, publish over HTTP, unsubscribe,
# drop without a close (TCP reset or FIN), resubscribe with `since` on channels with
# history, and read too slowly. It checks every delivery, samples the server's RSS and
# descriptors, and greps its log for panics; it fails on any lost delivery, panic or
# descriptor not returned.
#
#   scripts/soak.sh [duration] [hubbub-bench soak flags...]
#
# The JSON report goes to bench/results/soak.json and the chart to
# docs/reliability/soak-rss.png (SOAK_CHART=path to put it elsewhere, SOAK_CHART=none for
# no chart). See docs/reliability.md.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

duration="${1:-30m}"
shift || true
json="${SOAK_JSON:-$ROOT/bench/results/soak.json}"
chart="${SOAK_CHART:-$ROOT/docs/reliability/soak-rss.png}"

say "building hubbub and hubbub-bench (release)"
cargo build -q --release -p hubbub-server -p hubbub-bench

say "soak: $duration"
status=0
"$ROOT/target/release/hubbub-bench" soak --duration "$duration" \
  --hubbub-bin "$ROOT/target/release/hubbub" --json "$json" "$@" || status=$?

if [ "$chart" != none ] && [ -f "$json" ]; then
  ensure_venv
  "$VENV/bin/python" -c "import matplotlib" 2>/dev/null || "$VENV/bin/pip" install -q matplotlib
  "$VENV/bin/python" "$ROOT/bench/soak_chart.py" "$json" "$chart"
fi
exit "$status"
