#!/usr/bin/env bash
# The Python publisher's suite: builds and installs bindings-python (the `hubbub`
# distribution) into the shared virtualenv, then runs its pytest suite against real
# `hubbub` processes (WebSocket clients, a small Django project, threads, fork, asyncio).
#
#   scripts/test-python.sh [pytest arguments]
source "$(dirname "$0")/lib.sh"

apt_install openssl redis-server   # test certificates for the https test; the Redis the Redis publisher tests publish into
ensure_hubbub
ensure_venv

PY="$VENV/bin/python"
if ! "$PY" -c "import pytest, websockets, django, requests, mypy, prometheus_client" 2>/dev/null || [ ! -x "$VENV/bin/maturin" ]; then
  say "installing the Python test tools into $VENV"
  # prometheus_client: its parser reads the hub's /metrics in test_metrics.py.
  "$VENV/bin/pip" install -q "maturin>=1.9.4,<2" pytest "websockets>=13" "django>=4.2" requests mypy prometheus_client
fi

# pip builds the extension with maturin (cargo, release profile, incremental in target/).
# The venv's maturin builds it, so a rebuild needs nothing from the network.
say "building and installing bindings-python"
started=$(date +%s)
PATH="$VENV/bin:$PATH" "$VENV/bin/pip" install -q --no-build-isolation --force-reinstall --no-deps "$ROOT/bindings-python"
say "bindings-python installed in $(( $(date +%s) - started ))s"

say "running the Python suite against $HUBBUB_BIN"
cd "$ROOT/bindings-python"
"$PY" -m pytest -q -p no:cacheprovider tests "$@"
