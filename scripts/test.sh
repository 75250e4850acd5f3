#!/usr/bin/env bash
# Runs every test of hubbub, installing what it needs on a fresh Debian machine first
# (and skipping what is already there, so a second run is quick):
#
#   Rust:    core unit tests, the core's wasm32 build, server integration tests
#   Python:  the `hubbub` package (PyO3) and its Django integration, with pytest
#   Node:    the `hubbub-node` publisher (napi-rs), with node --test
#   Browser: the `hubbub-client` package (wasm-bindgen) in headless Chromium
#   Django:  the chat example end to end, two browsers; its run.sh
#   Packages: the .deb, the Python wheel and the npm tarballs (scripts/package.sh), each
#            installed in a clean place and used; before Docs, whose release builds of the
#            server and of hubbub-node it leaves ready
#   Docs:    the runnable code blocks of README.md and the guides, against a real hub
#   Bench:   a few seconds of the benchmark harness against hubbub
#   Fuzz:    a few seconds of each cargo fuzz target (parsers, tokens, config)
#   Soak:    20 seconds of churn against hubbub: no lost delivery, panic or leaked descriptor
#
# Each part is its own script (scripts/test-<part>.sh) and can be run alone. To run only
# some parts: scripts/test.sh rust python
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(rust python node browser django packages docs bench fuzz soak)

started=$(date +%s)
timings=()
for part in "${parts[@]}"; do
  script="$ROOT/scripts/test-$part.sh"
  if [ ! -x "$script" ]; then
    echo "scripts/test.sh: no test part '$part' ($script)" >&2
    exit 2
  fi
  say "test part: $part"
  t0=$(date +%s)
  "$script"
  timings+=("$part $(( $(date +%s) - t0 ))s")
done

say "all tests passed in $(( $(date +%s) - started ))s"
printf '  %s\n' "${timings[@]}" >&2
