#!/usr/bin/env bash
# The chat example (examples/django_chat): its answers to the hub's hooks with Django's test
# runner; then end to end, a real hubbub with the example's config and its hooks pointing at
# the Django project on its development server, and two headless Chromium pages
# (playwright-core driving Debian's chromium), one staff user and one non-staff user,
# logged in to Django only; and examples/django_chat/run.sh itself (moved ports, taken
# ports, Ctrl-C, the demo data, the hooks following Django's address).
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
# (hubbub.django with its hook receivers: a package installed before them is replaced)
if ! "$VENV/bin/python" -c 'from hubbub.django import rpc, on_subscribe' 2>/dev/null; then
  say "installing the hubbub Python package"
  "$VENV/bin/pip" install -q "$ROOT/bindings-python"
fi

# The browser package hubbub-client, built into bindings-wasm/pkg when it is missing or
# older than its sources (the chat page calls client.rpc, which an older package lacks).
pkg="$ROOT/bindings-wasm/pkg/hubbub_client.js"
if [ ! -f "$pkg" ] || [ -n "$(find "$ROOT/bindings-wasm/src" "$ROOT/core/src" "$ROOT/bindings-wasm/Cargo.toml" -newer "$pkg" -print -quit)" ]; then
  say "building the browser package hubbub-client"
  ensure_wasm_tools
  (cd "$ROOT/bindings-wasm" && npm run --silent build)
fi

# playwright-core, for the test.
cd "$ROOT/tests/django_chat"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing the test's npm packages"
  npm install --no-audit --no-fund --loglevel=error
fi

say "the chat's answers to the hub's hooks (python manage.py test chat)"
(cd "$ROOT/examples/django_chat" && "$VENV/bin/python" manage.py test chat -v 1)

say "chat example end to end: hubbub, Django, two Chromium pages; run.sh"
PYTHON="$VENV/bin/python" node --test --test-concurrency=1 chat.test.mjs run.test.mjs
