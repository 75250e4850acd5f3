#!/usr/bin/env bash
# Fuzzes hubbub's parsers with cargo fuzz (libFuzzer):
#
#   scripts/fuzz.sh [seconds] [target...]     (0 seconds: run the corpus only)
#
# runs each target (all of fuzz/fuzz_targets/ by default) for `seconds` (60 by default),
# one after another, on one core. Each target starts from its small committed seeds
# (fuzz/seeds/<target>) and the corpus of earlier runs (fuzz/corpus/<target>, not
# committed), where it keeps what it finds. At the end it prints, per target, the
# executions, the corpus size and the coverage: libFuzzer's own figures (`cov`: edges,
# `ft`: features), and with FUZZ_COVERAGE=1 the line coverage of the sources each target
# is about, from `cargo fuzz coverage` and llvm-cov (Debian's llvm-N of rustc's LLVM
# version N, installed when missing).
# A crash or a failed assertion keeps its input under fuzz/artifacts/<target>/ and makes
# the script fail (after the other targets have run).
#
# cargo fuzz needs nightly features; the stable toolchain gets them through
# RUSTC_BOOTSTRAP=1, so nothing but cargo-fuzz itself is installed (ensure_cargo_fuzz).
source "$(dirname "$0")/lib.sh"
cd "$ROOT/fuzz"

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls fuzz_targets | sed 's/\.rs$//'))

ensure_cargo_fuzz
export RUSTC_BOOTSTRAP=1

say "building fuzz targets: ${targets[*]}"
for t in "${targets[@]}"; do
  cargo fuzz build -O "$t" 2>&1 | grep -v '^\s*Compiling' >&2 || true
done

# llvm-cov and llvm-profdata of rustc's own LLVM version (profiles differ between versions).
llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
llvm_bin="/usr/lib/llvm-$llvm_major/bin"
coverage=no
if [ "${FUZZ_COVERAGE:-0}" = 1 ]; then
  apt_install "llvm-$llvm_major"
  coverage=yes
fi
# The sources each target is about: its line coverage is measured on these.
declare -A COVERED=(
  [frame]="core/src/protocol.rs core/src/channel.rs"
  [token]="core/src/auth.rs"
  [api]="core/src/api.rs core/src/protocol.rs core/src/channel.rs"
  [config]="server/src/config.rs"
)

failed=()
summary=()
for t in "${targets[@]}"; do
  corpus="corpus/$t"
  mkdir -p "$corpus" "artifacts/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  log="$(mktemp)"
  say "fuzzing $t for ${seconds}s (log: $log)"
  # The first directory receives new inputs; the seeds are only read. -timeout makes a hang
  # a finding; -print_final_stats gives the executions.
  # 0 seconds: only run the corpus (for its figures and coverage), no new inputs.
  if [ "$seconds" = 0 ]; then budget=(-runs=0); else budget=(-max_total_time="$seconds"); fi
  if cargo fuzz run -O "$t" "$corpus" "${seeds[@]}" -- \
      "${budget[@]}" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -20 >&2 || true
    cp "$log" "artifacts/$t/last-run.log"
    echo "the whole log: fuzz/artifacts/$t/last-run.log" >&2
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  files=$(find "$corpus" -type f | wc -l)
  bytes=$(( $(du -sb "$corpus" | cut -f1) / 1024 ))
  line="$t: ${seconds}s, ${execs:-?} executions, corpus $files files (${bytes} KiB), libFuzzer cov ${cov:-?} edges / ft ${ft:-?} features, $status"
  if [ "$coverage" = yes ]; then
    say "coverage of $t (cargo fuzz coverage + llvm-cov $llvm_major)"
    if cargo fuzz coverage -O --llvm-path "$llvm_bin" "$t" "$corpus" >/dev/null 2>&1; then
      bin=$(find target -path "*/coverage/*/release/$t" -type f | head -1)
      files=()
      for f in ${COVERED[$t]:-}; do files+=("$ROOT/$f"); done
      lines=$("$llvm_bin/llvm-cov" report "$bin" -instr-profile="coverage/$t/coverage.profdata" \
        "${files[@]}" 2>/dev/null | awk '/^TOTAL/ {print $10}')
      line="$line; lines covered in ${COVERED[$t]:-all}: ${lines:-?}"
    else
      line="$line; cargo fuzz coverage failed"
    fi
  fi
  summary+=("$line")
  rm -f "$log"
done

if [ "$coverage" = yes ]; then
  say "fuzz summary (coverage: libFuzzer's cov/ft, and llvm-cov's line coverage)"
else
  say "fuzz summary (coverage: libFuzzer's cov = edges reached, ft = features; FUZZ_COVERAGE=1 for llvm-cov)"
fi
printf '  %s\n' "${summary[@]}" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found failures in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
