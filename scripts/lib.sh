# Shared helpers for the test scripts. Source it; do not run it.
# Every installer here checks first and does nothing when the thing is already there, so a
# second run of the test command is quick.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

say() { printf '\n==> %s\n' "$*" >&2; }

# Runs a command as root (directly when we are root, through sudo otherwise).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PKG...: installs the Debian packages that are missing, running
# `apt-get update` at most once per test run.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  if [ ! -f "${TMPDIR:-/tmp}/hubbub-apt-updated" ]; then
    as_root apt-get update -qq
    touch "${TMPDIR:-/tmp}/hubbub-apt-updated"
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The Python virtualenv shared by the Python suites and the examples.
VENV="$ROOT/.venv"
export VENV
ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtualenv $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
  fi
}

# The hubbub binary the non-Rust suites run: built once by the test command.
HUBBUB_BIN="${HUBBUB_BIN:-$ROOT/target/debug/hubbub}"
export HUBBUB_BIN
ensure_hubbub() {
  if [ ! -x "$HUBBUB_BIN" ] || [ -n "${HUBBUB_REBUILD:-}" ]; then
    say "building hubbub"
    (cd "$ROOT" && cargo build -q -p hubbub-server)
  fi
}

# What building the browser package (bindings-wasm, `npm run build`) needs: the wasm32
# target, wasm-bindgen-cli of the exact version the crate pins, and binaryen's wasm-opt.
ensure_wasm_tools() {
  apt_install binaryen
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  local want
  want="$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' "$ROOT/bindings-wasm/Cargo.toml")"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    say "installing wasm-bindgen-cli $want (a few minutes)"
    # --locked first; should the registry lack a version the CLI's lock file names (a
    # yanked crate), let cargo resolve its dependencies afresh.
    cargo install -q wasm-bindgen-cli --version "=$want" --locked ||
      cargo install -q wasm-bindgen-cli --version "=$want"
  fi
}

# cargo-fuzz (for scripts/fuzz.sh), from crates.io when missing.
ensure_cargo_fuzz() {
  if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install -q --locked cargo-fuzz
  fi
}
