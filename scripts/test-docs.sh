#!/usr/bin/env bash
# The documentation, run: every code block of README.md, the guides (docs/) and the
# examples' READMEs that is marked runnable (```sh runnable, ```python runnable,
# ```js runnable, ```js runnable browser, ```toml runnable, ```sh hub, and the proxy and
# systemd configs of docs/production.md) is extracted and run in order against a real hub,
# the way a newcomer would paste it: shell commands from the repository's root, Python in a
# clean virtualenv, JavaScript in a scratch npm project (Node) or in headless Chromium
# (browser), nginx's config in a real nginx in front of the hub.
# tests/docs/docs.test.mjs explains the marks.
#
#   scripts/test-docs.sh                 # every file
#   scripts/test-docs.sh docs/python.md  # the files whose path contains this
#
# The blocks build what the docs tell a newcomer to build (the release hub, the Python
# package, hubbub-node, hubbub-client): the first run takes as long as those builds, later
# runs reuse them. The virtualenv and the npm project (target/test-docs) are made afresh on
# every run.
source "$(dirname "$0")/lib.sh"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "test-docs: Node.js 20 or later is needed (playwright-core); found $(node --version)" >&2
  exit 1
fi
apt_install binaryen chromium python3-venv nginx caddy openssl
ensure_hubbub
ensure_wasm_tools

cd "$ROOT/tests/docs"
# npm writes node_modules/.package-lock.json on every install: older than the lock file
# means the installed packages are stale.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing the docs test's npm packages"
  npm install --no-audit --no-fund --loglevel=error
fi

# A newcomer's clean slate: a new virtualenv (activated for every block) and an empty npm
# project.
SCRATCH="$ROOT/target/test-docs"
if [ -e "$SCRATCH" ]; then
  # The last run's files go in the background: a virtualenv takes a while to delete.
  mv "$SCRATCH" "$SCRATCH.old.$$"
  rm -rf "$SCRATCH.old.$$" &
fi
mkdir -p "$SCRATCH/project"
python3 -m venv "$SCRATCH/venv"
(cd "$SCRATCH/project" && npm init -y >/dev/null)

say "running the documentation's runnable blocks (log: target/test-docs/docs.log)"
HUBBUB_DOCS_SCRATCH="$SCRATCH" HUBBUB_DOCS_ONLY="${1:-}" node --test --test-concurrency=1 docs.test.mjs
