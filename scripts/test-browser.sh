#!/usr/bin/env bash
# Browser: the `hubbub-client` package (bindings-wasm, wasm-bindgen) built with
# `npm run build`, weighed against its size budget (bindings-wasm/size.sh), then tested in
# Debian's headless Chromium driven by playwright-core, against real hubbub processes:
# connecting, tokens (and tokens renewed by getToken), channels, data, refusals,
# unsubscribing, broadcast, direct messages, a server restart, the heartbeat, close codes,
# streams (recovery through a cutting TCP proxy, epochs, since, history, presence,
# join/leave); the admin dashboard (login, live figures, actions, a screenshot at
# target/test-admin/dashboard.png); a channel read with a plain EventSource (/sse/{channel}); the TypeScript
# declarations under tsc; a Vite bundle; the demo page in examples/browser.
#
# Installs what it needs and skips what is there: the wasm32 target, wasm-bindgen-cli of
# the exact version the crate pins, Debian's binaryen (wasm-opt) and chromium, and the npm
# packages of bindings-wasm.
source "$(dirname "$0")/lib.sh"

apt_install binaryen chromium
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "test-browser: Node.js 20 or later is needed (playwright-core, vite); found $(node --version)" >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The CLI must match the wasm-bindgen crate exactly.
WASM_BINDGEN="$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' "$ROOT/bindings-wasm/Cargo.toml")"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN (a few minutes)"
  # --locked first; should the registry lack a version the CLI's lock file names (a
  # yanked crate), let cargo resolve its dependencies afresh.
  cargo install -q wasm-bindgen-cli --version "=$WASM_BINDGEN" --locked ||
    cargo install -q wasm-bindgen-cli --version "=$WASM_BINDGEN"
fi

ensure_hubbub

cd "$ROOT/bindings-wasm"
# npm writes node_modules/.package-lock.json on every install: older than the lock file
# means the installed packages are stale.
# `npm install`, not `npm ci`: the lock file holds only this platform's entry among the
# optional per-platform packages of vite's bundler, which `npm ci` refuses as out of sync;
# `npm install` follows the lock file all the same.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing bindings-wasm's npm packages"
  npm install --no-audit --no-fund --loglevel=error
fi

say "building hubbub-client (npm run build)"
npm run --silent build

say "hubbub-client's size against its budget (gzipped)"
./size.sh

say "hubbub-client unit tests (host)"
cargo test -q -p hubbub-client

say "testing hubbub-client in headless Chromium against $HUBBUB_BIN"
npm test --silent
