#!/usr/bin/env bash
# Runs the chat example: hubbub with hubbub.toml, and Django's development server on
# http://127.0.0.1:8000/. Builds and installs what is missing first (the hubbub binary,
# the browser package, Django and the `hubbub` Python package), and migrates the database.
# Ctrl-C stops both.
#
#   examples/django_chat/run.sh                 # start everything
#   examples/django_chat/run.sh manage demo     # any manage.py command, e.g. the demo data
#
# Python: the active virtualenv, or else the repository's .venv (created when missing).
# CHAT_ADDR (default 127.0.0.1:8000) is where Django listens; HUBBUB_BIN overrides the
# hubbub binary (default: target/debug/hubbub, built when missing).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
HUBBUB_BIN="${HUBBUB_BIN:-$ROOT/target/debug/hubbub}"
CHAT_ADDR="${CHAT_ADDR:-127.0.0.1:8000}"
say() { printf '==> %s\n' "$*" >&2; }

if [ -n "${VIRTUAL_ENV:-}" ]; then
  PY="$VIRTUAL_ENV/bin/python"
else
  PY="$ROOT/.venv/bin/python"
  if [ ! -x "$PY" ]; then
    say "creating the virtualenv $ROOT/.venv"
    python3 -m venv "$ROOT/.venv"
  fi
fi

if ! "$PY" -c 'import django, hubbub.django' 2>/dev/null; then
  say "installing Django and the hubbub Python package (from bindings-python)"
  "$PY" -m pip install -q "django>=4.2" "$ROOT/bindings-python"
fi

cd "$HERE"
if [ "${1:-}" = manage ]; then
  shift
  exec "$PY" manage.py "$@"
fi

if [ ! -x "$HUBBUB_BIN" ]; then
  say "building hubbub"
  (cd "$ROOT" && cargo build -q -p hubbub-server)
fi

if [ ! -f "$ROOT/bindings-wasm/pkg/hubbub_client.js" ]; then
  say "building the browser package hubbub-client (bindings-wasm/pkg)"
  rustup target list --installed | grep -qx wasm32-unknown-unknown ||
    rustup target add wasm32-unknown-unknown
  want="$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' "$ROOT/bindings-wasm/Cargo.toml")"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    say "installing wasm-bindgen-cli $want (a few minutes, once)"
    cargo install -q wasm-bindgen-cli --version "=$want" --locked
  fi
  (cd "$ROOT/bindings-wasm" && npm run --silent build)
fi

"$PY" manage.py migrate --noinput -v 0

say "starting hubbub ($HUBBUB_BIN --config hubbub.toml)"
"$HUBBUB_BIN" --config "$HERE/hubbub.toml" &
hub=$!
web=
# Stops both (Ctrl-C, or one of them exited) and waits for them to finish.
stop() {
  trap - EXIT INT TERM
  kill -TERM $hub $web 2>/dev/null || true
  wait 2>/dev/null || true
  exit "$1"
}
trap 'stop $?' EXIT
trap 'stop 130' INT
trap 'stop 143' TERM

# Django publishes to the hub from its first request: wait until the hub answers.
health="$("$PY" -c 'from chat_site import settings; print(settings.HUBBUB["URL"].rstrip("/") + "/health")')"
probe() { "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$health" 2>/dev/null; }
for _ in $(seq 100); do
  probe && break
  kill -0 "$hub" 2>/dev/null || { echo "hubbub exited (see its message above)" >&2; exit 1; }
  sleep 0.1
done
probe || { echo "hubbub does not answer at $health" >&2; exit 1; }

say "the chat is at http://$CHAT_ADDR/ (demo users: $0 manage demo). Ctrl-C stops it."
"$PY" manage.py runserver "$CHAT_ADDR" &
web=$!
# Until either exits, or Ctrl-C.
wait -n "$hub" "$web"
