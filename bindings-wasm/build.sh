#!/usr/bin/env bash
# Builds the npm package `hubbub-client` into pkg/ (what `npm run build` runs):
#   1. the crate for wasm32-unknown-unknown with the size-optimised `wasm-release` profile,
#      then wasm-opt -Oz (to convergence) where binaryen is installed;
#   2. wasm-bindgen (--target web: an ES module that loads its .wasm through
#      `new URL(..., import.meta.url)`, which a plain <script type="module"> and bundlers
#      such as Vite both understand);
#   3. the JS glue minified with esbuild (a dev dependency): wasm-bindgen writes it readable,
#      with the doc comments of every method, which weighed about 40 % of it gzipped;
#   4. pkg/package.json and the package's README.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PKG="$HERE/pkg"

# The CLI must be the exact version of the wasm-bindgen crate the client links.
WANT="$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' "$HERE/Cargo.toml")"
HAVE="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$HAVE" != "$WANT" ]; then
  echo "build: wasm-bindgen-cli $WANT is needed (found '${HAVE:-none}'):" >&2
  echo "  cargo install wasm-bindgen-cli --version =$WANT" >&2
  exit 1
fi

cargo build --manifest-path "$HERE/Cargo.toml" -p hubbub-client \
  --target wasm32-unknown-unknown --profile wasm-release
TARGET_DIR="$(cargo metadata --manifest-path "$HERE/Cargo.toml" --format-version 1 --no-deps \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"

WASM="$TARGET_DIR/wasm32-unknown-unknown/wasm-release/hubbub_client.wasm"
# wasm-opt runs on rustc's output, before wasm-bindgen: binaryen up to at least version
# 108 (Debian 12's) writes the wrong table index into the export of the second table
# (the externref table wasm-bindgen adds), which breaks the package at load time.
if command -v wasm-opt >/dev/null; then
  # --converge: -Oz again until it stops shrinking the module (a few hundred bytes more).
  wasm-opt -Oz --converge --strip-debug --strip-producers -o "$WASM.opt" "$WASM"
  WASM="$WASM.opt"
else
  echo "build: wasm-opt not found (Debian package binaryen): the .wasm is not size-optimised" >&2
fi

rm -rf "$PKG"
wasm-bindgen --target web --out-dir "$PKG" --out-name hubbub_client \
  --remove-name-section --remove-producers-section "$WASM"

# The declarations (hubbub_client.d.ts) keep the docs. The banner is the comment that points
# Deno and JSR at them, which minifying would drop.
GLUE="$PKG/hubbub_client.js"
if [ -x "$HERE/node_modules/.bin/esbuild" ]; then
  "$HERE/node_modules/.bin/esbuild" "$GLUE" --minify --format=esm --log-level=warning \
    --banner:js='/* @ts-self-types="./hubbub_client.d.ts" */' --outfile="$GLUE.min"
  mv "$GLUE.min" "$GLUE"
else
  echo "build: esbuild not found (npm install): the JS glue is not minified" >&2
fi

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)"
cp "$HERE/README.md" "$PKG/README.md"
node - "$PKG/package.json" "$VERSION" <<'JS'
const [file, version] = process.argv.slice(2);
const pkg = {
  name: 'hubbub-client',
  version,
  description: "hubbub's browser client: WebSocket subscriptions with reconnection, in WebAssembly",
  license: 'MIT',
  repository: { type: 'git', url: 'https://github.com/hubbub-rs/hubbub' },
  type: 'module',
  main: './hubbub_client.js',
  module: './hubbub_client.js',
  types: './hubbub_client.d.ts',
  exports: {
    '.': { types: './hubbub_client.d.ts', default: './hubbub_client.js' },
    './hubbub_client_bg.wasm': './hubbub_client_bg.wasm',
    './package.json': './package.json',
  },
  files: ['hubbub_client.js', 'hubbub_client.d.ts', 'hubbub_client_bg.wasm', 'hubbub_client_bg.wasm.d.ts', 'README.md'],
  sideEffects: false,
  keywords: ['websocket', 'realtime', 'pubsub', 'hubbub', 'wasm'],
};
require('fs').writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
JS

# The size that matters on the wire (the test command fails above its budget).
"$HERE/size.sh" >&2 || true
