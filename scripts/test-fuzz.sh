#!/usr/bin/env bash
# Fuzz: a few seconds of each cargo fuzz target (scripts/fuzz.sh), from the committed
# seeds and whatever corpus earlier runs left, so that the targets keep building and the
# parsers keep holding their properties. The long runs are scripts/fuzz.sh SECONDS.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/fuzz.sh" "${FUZZ_SMOKE_SECONDS:-5}"
