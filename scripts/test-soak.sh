#!/usr/bin/env bash
# Soak: 20 seconds of `hubbub-bench soak` against the test command's hubbub build (see
# scripts/soak.sh for the real thing). It fails on any delivery lost to a live
# subscriber, any panic in the server's log, and any descriptor not given back after the
# clients leave.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_hubbub
cargo build -q -p hubbub-bench
report="$(mktemp -d)/soak.json"
say "soak smoke (20s) against $HUBBUB_BIN"
"$ROOT/target/debug/hubbub-bench" soak --duration 20s --sample-every 1s \
  --churners 20 --recoverers 3 --slow-readers 2 \
  --hubbub-bin "$HUBBUB_BIN" --json "$report"
