#!/usr/bin/env bash
# Builds what a sysadmin or a developer installs, into dist/:
#
#   hubbub_<version>_<arch>.deb   the binary, a systemd unit running it as the hubbub user,
#                                 /etc/hubbub/hubbub.toml (cargo-deb; packaging/)
#   hubbub-<version>-...abi3...whl  the Python package (maturin, release)
#   hubbub-node-<version>.tgz     the Node package (napi-rs, release; npm pack)
#   hubbub-client-<version>.tgz   the browser package (wasm-bindgen; npm pack of pkg/)
#
#   scripts/package.sh [deb|wheel|node|client ...]    (all four by default)
#
# Installs what building needs where it is missing (cargo-deb, maturin in the project's
# virtualenv, the npm packages and wasm tools of the bindings).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

what=("$@")
[ ${#what[@]} -gt 0 ] || what=(deb wheel node client)
DIST="$ROOT/dist"
mkdir -p "$DIST"

npm_deps() {
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm install --no-audit --no-fund --loglevel=error
  fi
}

for w in "${what[@]}"; do
  case "$w" in
    deb)
      if ! cargo deb --version >/dev/null 2>&1; then
        say "installing cargo-deb"
        cargo install -q --locked cargo-deb || cargo install -q cargo-deb
      fi
      say "building the Debian package"
      cargo deb -q -p hubbub-server --output "$DIST/"
      ;;
    wheel)
      ensure_venv
      [ -x "$VENV/bin/maturin" ] || "$VENV/bin/pip" install -q "maturin>=1.9.4,<2"
      say "building the Python wheel"
      "$VENV/bin/maturin" build --quiet --release -m bindings-python/Cargo.toml --out "$DIST"
      ;;
    node)
      say "building the Node package"
      (cd bindings-node && npm_deps && npm run --silent build && npm pack --silent --pack-destination "$DIST" >/dev/null)
      ;;
    client)
      ensure_wasm_tools
      say "building the browser package"
      (cd bindings-wasm && npm_deps && ./build.sh >/dev/null && cd pkg && npm pack --silent --pack-destination "$DIST" >/dev/null)
      ;;
    *)
      echo "scripts/package.sh: no package '$w' (deb, wheel, node, client)" >&2
      exit 2
      ;;
  esac
done
say "packages in dist/:"
ls -1 "$DIST" >&2
