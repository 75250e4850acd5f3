#!/usr/bin/env bash
# The weight of the built package on the wire: the .wasm and its JS glue, each gzipped at
# level 9 as a server would send them, summed. Prints the figures and fails when the sum
# exceeds the budget, so that the test command (scripts/test-browser.sh) catches growth.
#
# The goal is the weight of the JavaScript clients pages compare hubbub with (pusher-js,
# centrifuge-js, socket.io-client: 15 to 23 KB gzipped); docs/browser.md ("Size") says
# where the package stands and where its bytes go.
set -euo pipefail

# Bytes, gzipped: what the package weighs today, with a little room. Lower it whenever a
# change makes the package lighter; never raise it to let a change through.
BUDGET=37000

PKG="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pkg"
wasm=$(gzip -9c "$PKG/hubbub_client_bg.wasm" | wc -c)
js=$(gzip -9c "$PKG/hubbub_client.js" | wc -c)
total=$((wasm + js))
echo "size: hubbub_client_bg.wasm $(wc -c <"$PKG/hubbub_client_bg.wasm") B ($wasm B gzipped)," \
  "hubbub_client.js $(wc -c <"$PKG/hubbub_client.js") B ($js B gzipped):" \
  "$total B gzipped, budget $BUDGET B"
if [ "$total" -gt "$BUDGET" ]; then
  echo "size: over budget by $((total - BUDGET)) B" >&2
  exit 1
fi
