#!/usr/bin/env bash
# The Node publisher (bindings-node, npm package hubbub-node): installs its npm packages
# when they are missing or stale, builds the native module (a debug build: from scratch it
# takes about half the time of a release build, and the suite runs as fast), and runs
# its `node --test` suite against a real hubbub process.
source "$(dirname "$0")/lib.sh"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi
apt_install redis-server   # the Redis the Redis publisher's tests publish into
ensure_hubbub

cd "$ROOT/bindings-node"
# npm writes node_modules/.package-lock.json on every install: older than package.json or
# the lock file means the installed packages are stale. (`npm install` rather than `npm ci`:
# the lock file holds @napi-rs/cli's platform packages for this platform only, which
# `npm ci` refuses.)
if [ ! -f node_modules/.package-lock.json ] ||
  [ package.json -nt node_modules/.package-lock.json ] ||
  [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing hubbub-node's npm packages"
  npm install --no-audit --no-fund --loglevel=error
fi

say "building hubbub-node"
npm run --silent build:debug

say "testing hubbub-node against $HUBBUB_BIN"
npm test --silent
