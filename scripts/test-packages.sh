#!/usr/bin/env bash
# Packages: builds every package with scripts/package.sh, then installs each in a clean
# place, not from the source tree, and uses it:
#   - the .deb with dpkg: `hubbub check-config` on the installed config, hubbub started as
#     the installed unit's ExecStart and User say (no systemd here), a publication that a
#     WebSocket client receives; then `dpkg --purge`, and nothing of it is left;
#   - the Python wheel, pip-installed into a new virtualenv, publishing to that hub;
#   - the npm tarballs, installed into a new npm project: hubbub-node publishing to that
#     hub, hubbub-client imported.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

apt_install python3-venv
ensure_venv
"$VENV/bin/python" -c "import websockets" 2>/dev/null || "$VENV/bin/pip" install -q "websockets>=13"
"$ROOT/scripts/package.sh"

SCRATCH="$(mktemp -d)"
hub_pid=""
# On failure too: no hub left running, no package left installed.
cleanup() {
  if [ -n "$hub_pid" ]; then as_root pkill -u hubbub -x hubbub 2>/dev/null || true; fi
  if dpkg-query -W -f='${Status}' hubbub 2>/dev/null | grep -q "ok installed"; then
    as_root dpkg --purge hubbub >/dev/null || true
  fi
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

deb=$(ls "$ROOT"/dist/hubbub_*.deb)
say "installing $(basename "$deb")"
as_root dpkg -i "$deb" >/dev/null
unit=$(ls /lib/systemd/system/hubbub.service /usr/lib/systemd/system/hubbub.service 2>/dev/null | head -1)
[ -n "$unit" ] || { echo "test-packages: the package installed no hubbub.service" >&2; exit 1; }
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit"
fi
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
[ "$user" = hubbub ] && getent passwd hubbub >/dev/null ||
  { echo "test-packages: the unit's user '$user' was not created" >&2; exit 1; }
as_root runuser -u "$user" -- /usr/bin/hubbub check-config /etc/hubbub/hubbub.toml

say "starting hubbub as the unit does: $exec_start (as $user)"
port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The port comes from the environment, which beats the file: the one the config names may
# be taken on this machine. The token secret too, as /etc/hubbub/secrets.env would give
# it: the packaged config lets no anonymous client read.
secret="packaged-hub-test-secret"
# shellcheck disable=SC2086
as_root runuser -u "$user" -- env HUBBUB_LISTEN="127.0.0.1:$port" HUBBUB_TOKEN_SECRET="$secret" \
  $exec_start 2>"$SCRATCH/hub.log" &
hub_pid=$!
for _ in $(seq 1 200); do
  grep -q "listening on" "$SCRATCH/hub.log" && break
  kill -0 "$hub_pid" 2>/dev/null || { cat "$SCRATCH/hub.log" >&2; exit 1; }
  sleep 0.05
done
HUB="http://127.0.0.1:$port"
token=$(/usr/bin/hubbub token --user reader --read pkg --token-secret "$secret")

# Waits for one message on channel `pkg`, then prints its data: started before each
# publisher, which publishes once it says it is subscribed.
cat >"$SCRATCH/receive.py" <<'PY'
import asyncio, json, sys
import websockets

async def main(url, token):
    async with websockets.connect(url) as ws:
        json.loads(await ws.recv())                       # the welcome
        await ws.send(json.dumps({"authenticate": {"token": token}}))
        assert "authenticated" in json.loads(await ws.recv())
        await ws.send(json.dumps({"subscribe": {"channel": "pkg"}}))
        assert json.loads(await ws.recv()) == {"subscribed": "pkg"}
        print("subscribed", flush=True)
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
        print(json.dumps(frame["message"]["data"]), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
PY
# received WHAT COMMAND...: runs COMMAND once a client is subscribed to `pkg`, then checks
# the client received WHAT.
received() {
  local want="$1"; shift
  local out="$SCRATCH/received.out"
  "$VENV/bin/python" "$SCRATCH/receive.py" "ws://127.0.0.1:$port/ws" "$token" >"$out" &
  local reader=$!
  for _ in $(seq 1 200); do grep -q subscribed "$out" && break; sleep 0.05; done
  "$@"
  wait "$reader"
  local got
  got=$(tail -1 "$out")
  [ "$got" = "$want" ] || { echo "test-packages: received $got, not $want" >&2; exit 1; }
}

say "publishing with curl to the packaged hub"
received '"from curl"' curl -sf --json '{"channel": "pkg", "data": "from curl"}' "$HUB/api/publish" -o /dev/null

say "the Python wheel in a new virtualenv"
python3 -m venv "$SCRATCH/venv"
"$SCRATCH/venv/bin/pip" install -q "$ROOT"/dist/hubbub-*.whl
received '"from the wheel"' "$SCRATCH/venv/bin/python" -c \
  "from hubbub import Publisher; Publisher('$HUB').publish('pkg', 'from the wheel')"

say "the npm tarballs in a new project"
mkdir "$SCRATCH/project"
(cd "$SCRATCH/project" && npm init -y >/dev/null &&
  npm install --no-audit --no-fund --loglevel=error "$ROOT"/dist/hubbub-node-*.tgz "$ROOT"/dist/hubbub-client-*.tgz)
received '"from hubbub-node"' node -e \
  "const { Publisher } = require('$SCRATCH/project/node_modules/hubbub-node'); new Publisher({ url: '$HUB' }).publish('pkg', 'from hubbub-node').catch((e) => { console.error(e); process.exit(1) })"
(cd "$SCRATCH/project" && node --input-type=module -e \
  "const m = await import('hubbub-client'); if (typeof m.Client !== 'function' || typeof m.default !== 'function') { console.error(Object.keys(m)); process.exit(1) }")

say "stopping the packaged hub (SIGTERM) and purging the package"
as_root kill -TERM "$(pgrep -u hubbub -x hubbub)"
wait "$hub_pid"
hub_pid=""
as_root dpkg --purge hubbub >/dev/null
for gone in /usr/bin/hubbub /etc/hubbub "$unit"; do
  [ ! -e "$gone" ] || { echo "test-packages: $gone is left after purge" >&2; exit 1; }
done
! getent passwd hubbub >/dev/null || { echo "test-packages: the hubbub user is left" >&2; exit 1; }
say "packages: installed, used and removed"
