#!/usr/bin/env bash
# Rust: core unit tests, the core's wasm32 build, the server's integration tests (a real
# hubbub process on ephemeral ports, real WebSocket and HTTP clients), and the Rust
# publisher's tests (the table of cases in publisher/tests/cases.json against real hubbub
# processes and sockets, and its doc examples).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

say "hubbub-core builds for wasm32-unknown-unknown"
cargo build -q -p hubbub-core --target wasm32-unknown-unknown
cargo build -q -p hubbub-core --no-default-features --target wasm32-unknown-unknown

apt_install redis-server   # the Redis engine's tests start their own redis-server

say "Rust tests: hubbub-core, hubbub-server, hubbub-publisher"
# One cargo invocation builds every test target, and with the server's the `hubbub`
# binary the publisher's tests start (target/debug/hubbub), before running any.
cargo test -q -p hubbub-core -p hubbub-server -p hubbub-publisher
