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
#
# Where things listen (change them when the ports are taken, e.g. by another hub):
#   HUBBUB_LISTEN    the hub (default: hubbub.toml's listen, 127.0.0.1:9772); hubbub reads it
#   CHAT_HUBBUB_URL  the hub as Django calls it (default: http://$HUBBUB_LISTEN)
#   CHAT_ADDR        Django's development server (default: 127.0.0.1:8000); the hub's hook
#                    URLs follow it (HUBBUB_HOOKS_CONNECT_URL, HUBBUB_HOOKS_SUBSCRIBE_URL and
#                    HUBBUB_HOOKS_RPC_URL, which hubbub reads, default to
#                    http://$CHAT_ADDR/hubbub/connect, .../subscribe and .../rpc)
# HUBBUB_HOOKS_SECRET and HUBBUB_API_KEYS, where set, replace the development secrets of
# hubbub.toml and chat_site/settings.py for both at once.
# HUBBUB_BIN runs another hubbub binary (default: target/release/hubbub, which
# `cargo build --release -p hubbub-server` brings up to date first).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CHAT_ADDR="${CHAT_ADDR:-127.0.0.1:8000}"
HUB_ADDR="${HUBBUB_LISTEN:-$(sed -n 's/^listen = "\(.*\)"$/\1/p' "$HERE/hubbub.toml")}"
export CHAT_HUBBUB_URL="${CHAT_HUBBUB_URL:-http://$HUB_ADDR}"
# The hub asks Django who connects, who joins a room, and what an rpc answers: at Django's
# address, wherever CHAT_ADDR put it (hubbub.toml names the default one).
export HUBBUB_HOOKS_CONNECT_URL="${HUBBUB_HOOKS_CONNECT_URL:-http://$CHAT_ADDR/hubbub/connect}"
export HUBBUB_HOOKS_SUBSCRIBE_URL="${HUBBUB_HOOKS_SUBSCRIBE_URL:-http://$CHAT_ADDR/hubbub/subscribe}"
export HUBBUB_HOOKS_RPC_URL="${HUBBUB_HOOKS_RPC_URL:-http://$CHAT_ADDR/hubbub/rpc}"
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

if [ -n "${VIRTUAL_ENV:-}" ]; then
  PY="$VIRTUAL_ENV/bin/python"
else
  PY="$ROOT/.venv/bin/python"
  if [ ! -x "$PY" ]; then
    say "creating the virtualenv $ROOT/.venv"
    python3 -m venv "$ROOT/.venv"
  fi
fi

# hubbub.django with its hook receivers (a package installed before them is replaced).
if ! "$PY" -c 'import django; from hubbub.django import rpc, on_subscribe' 2>/dev/null; then
  say "installing Django and the hubbub Python package (from bindings-python)"
  "$PY" -m pip install -q "django>=4.2" "$ROOT/bindings-python"
fi

cd "$HERE"
# Every manage.py command, `demo` included, needs the tables: migrate first.
"$PY" manage.py migrate --noinput -v 0
if [ "${1:-}" = manage ]; then
  shift
  exec "$PY" manage.py "$@"
fi

# Whether HOST:PORT is free to listen on (the check binds it, as the servers will).
can_listen() {
  "$PY" - "$1" <<'PY'
import socket, sys
host, _, port = sys.argv[1].rpartition(":")
host = host.strip("[]")
family = socket.AF_INET6 if ":" in host else socket.AF_INET
with socket.socket(family) as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, int(port)))
    except OSError as e:
        sys.exit(f"{e.strerror}")
PY
}
busy() {
  printf 'run.sh: cannot listen on %s for %s: %s.\n' "$1" "$2" "$3" >&2
  printf 'Stop what holds it (another hub, the quick start'"'"'s?) or move the chat with\n' >&2
  printf 'HUBBUB_LISTEN (the hub) and CHAT_ADDR (Django), e.g.\n' >&2
  printf '  HUBBUB_LISTEN=127.0.0.1:9773 CHAT_ADDR=127.0.0.1:8001 %s\n' "$0" >&2
  exit 1
}
why="$(can_listen "$HUB_ADDR" 2>&1)" || busy "$HUB_ADDR" "the hub" "$why"
why="$(can_listen "$CHAT_ADDR" 2>&1)" || busy "$CHAT_ADDR" "Django" "$why"

if [ -z "${HUBBUB_BIN:-}" ]; then
  say "building hubbub (cargo build --release -p hubbub-server)"
  (cd "$ROOT" && cargo build -q --release -p hubbub-server)
  HUBBUB_BIN="$ROOT/target/release/hubbub"
fi

# The browser package, built when it is missing or older than its sources (the page calls
# client.rpc, which a package built before it lacks).
pkg="$ROOT/bindings-wasm/pkg/hubbub_client.js"
if [ ! -f "$pkg" ] || [ -n "$(find "$ROOT/bindings-wasm/src" "$ROOT/core/src" "$ROOT/bindings-wasm/Cargo.toml" -newer "$pkg" -print -quit)" ]; then
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

hub=
web=
# Stops both (Ctrl-C, or one of them exited) and waits for them to finish. Django runs in
# a process group of its own (its autoreloader serves from a child process).
stop() {
  trap - EXIT INT TERM
  [ -z "$web" ] || kill -TERM -- "-$web" 2>/dev/null || true
  [ -z "$hub" ] || kill -TERM "$hub" 2>/dev/null || true
  wait 2>/dev/null || true
  # The autoreloader's child is not ours to wait for: give it a few seconds to go.
  for _ in $(seq 50); do
    if [ -z "$web" ] || ! kill -0 -- "-$web" 2>/dev/null; then break; fi
    sleep 0.1
  done
  exit "$1"
}
trap 'stop $?' EXIT
trap 'stop 130' INT
trap 'stop 143' TERM

say "starting hubbub on $HUB_ADDR ($HUBBUB_BIN --config hubbub.toml)"
HUBBUB_LISTEN="$HUB_ADDR" "$HUBBUB_BIN" --config "$HERE/hubbub.toml" &
hub=$!

# Waits until `url` answers, as long as process `pid` runs.
await_answer() {
  local url=$1 pid=$2 name=$3
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || die "$name exited (see its message above)"
    "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  die "$name does not answer at $url"
}
# Django publishes to the hub from its first request: wait until the hub answers.
await_answer "${CHAT_HUBBUB_URL%/}/health" "$hub" "hubbub"

say "starting Django's development server on $CHAT_ADDR (hub: $CHAT_HUBBUB_URL)"
setsid "$PY" manage.py runserver "$CHAT_ADDR" &
web=$!
await_answer "http://$CHAT_ADDR/login/" "$web" "Django's development server"

say "the chat is at http://$CHAT_ADDR/ (demo users: $0 manage demo). Ctrl-C stops it."
# Until either exits, or Ctrl-C.
set +e
wait -n "$hub" "$web"
status=$?
kill -0 "$hub" 2>/dev/null || say "hubbub exited"
kill -0 "$web" 2>/dev/null || say "Django's development server exited"
exit $((status == 0 ? 1 : status))
