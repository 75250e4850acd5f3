#!/usr/bin/env bash
# The chat example (examples/django_chat) end to end: a real hubbub with the example's
# config, the Django project on its development server, and two headless Chromium pages
# (playwright-core driving Debian's chromium), one staff user and one non-staff user; and
# examples/django_chat/run.sh itself (moved ports, taken ports, Ctrl-C, the demo data).
#
# Reuses what the Python and browser parts installed and built when they ran first, and
# installs or builds what is missing otherwise, so it also runs alone.
source "$(dirname "$0")/lib.sh"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "test-django: Node.js 20 or later is needed (playwright-core); found $(node --version)" >&2
  exit 1
fi
apt_install chromium
ensure_hubbub

# Django and the `hubbub` Python package (with hubbub.django) in the shared virtualenv.
ensure_venv
if ! "$VENV/bin/python" -c 'import django' 2>/dev/null; then
  say "installing Django"
  "$VENV/bin/pip" install -q "django>=4.2"
fi
if ! "$VENV/bin/python" -c 'import hubbub.django' 2>/dev/null; then
  say "installing the hubbub Python package"
  "$VENV/bin/pip" install -q "$ROOT/bindings-python"
fi

# The browser package hubbub-client, built into bindings-wasm/pkg.
if [ ! -f "$ROOT/bindings-wasm/pkg/hubbub_client.js" ]; then
  say "building the browser package hubbub-client"
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
  fi
  want="$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' "$ROOT/bindings-wasm/Cargo.toml")"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    cargo install -q wasm-bindgen-cli --version "=$want" --locked ||
      cargo install -q wasm-bindgen-cli --version "=$want"
  fi
  (cd "$ROOT/bindings-wasm" && npm run --silent build)
fi

# playwright-core, for the test.
cd "$ROOT/tests/django_chat"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing the test's npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

say "chat example end to end: hubbub, Django, two Chromium pages; run.sh"
PYTHON="$VENV/bin/python" node --test --test-concurrency=1 chat.test.mjs run.test.mjs
