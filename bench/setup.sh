#!/usr/bin/env bash
# Installs the peers hubbub-bench compares hubbub with, from the package registries, and
# skips what is already there:
#
#   nchan       Debian's nginx and libnginx-mod-nchan
#   sockudo     cargo install sockudo (a long compile; needs protoc and its includes,
#               from protobuf-compiler and libprotobuf-dev)
#   centrifugo  a prebuilt binary in ../shared/peers/ beside the checkout, where there is
#               one (linked into ~/go/bin); else go install
#               github.com/centrifugal/centrifugo/v6@latest, where the Go module proxy
#               serves it (the run skips Centrifugo with a message where neither does)
#   django-channels  Django Channels, Daphne and channels_redis from PyPI into the project's
#               virtualenv (bench/django-channels/requirements.txt)
#
# plus redis-server for the cluster scenario (two nodes sharing one Redis) and matplotlib in
# the project's virtualenv for the charts (bench/charts.py).
# Nothing of the peers' code is kept in this repository.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

apt_install nginx libnginx-mod-nchan protobuf-compiler libprotobuf-dev util-linux python3-venv redis-server

if command -v sockudo >/dev/null || [ -x "$HOME/.cargo/bin/sockudo" ]; then
  say "sockudo is installed"
else
  say "cargo install sockudo (takes a while)"
  CARGO_TARGET_DIR="${SOCKUDO_TARGET_DIR:-/tmp/sockudo-target}" nice -n 19 \
    cargo install --locked sockudo ||
    say "cargo install sockudo failed: sockudo will be skipped"
fi

PEER_CENTRIFUGO="$ROOT/../shared/peers/centrifugo"
if command -v centrifugo >/dev/null || [ -x "$HOME/go/bin/centrifugo" ]; then
  say "centrifugo is installed"
elif [ -x "$PEER_CENTRIFUGO" ]; then
  mkdir -p "$HOME/go/bin"
  ln -sf "$(realpath "$PEER_CENTRIFUGO")" "$HOME/go/bin/centrifugo"
  say "centrifugo linked from $(realpath "$PEER_CENTRIFUGO")"
elif ! command -v go >/dev/null; then
  say "no Go toolchain: Centrifugo will be skipped"
elif ! nice -n 19 go install github.com/centrifugal/centrifugo/v6@latest; then
  say "go install of Centrifugo failed: Centrifugo will be skipped"
fi

ensure_venv
"$VENV/bin/python" -c "import matplotlib" 2>/dev/null || "$VENV/bin/pip" install -q matplotlib
"$VENV/bin/pip" install -q -r bench/django-channels/requirements.txt
say "peers ready"
