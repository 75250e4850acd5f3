#!/usr/bin/env bash
# Bench: the load generator's unit tests, then a few seconds of every scenario against a
# real hubbub process (smoke mode, hubbub only; the cluster scenario runs two hubbub nodes
# sharing a redis-server it starts), so the harness cannot rot. The smoke run
# fails on any lost message, dropped connection or publish error; the JSON report must hold
# every scenario.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

command -v taskset >/dev/null || apt_install util-linux
command -v redis-server >/dev/null || apt_install redis-server   # the cluster scenario
ensure_hubbub

say "hubbub-bench unit tests"
cargo test -q -p hubbub-bench

say "hubbub-bench smoke run against $HUBBUB_BIN"
cargo build -q -p hubbub-bench
report="$(mktemp -d)/smoke.json"
"$ROOT/target/debug/hubbub-bench" smoke --hubbub-bin "$HUBBUB_BIN" --json "$report"

python3 - "$report" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
runs = report["runs"]
scenarios = sorted(r["scenario"] for r in runs if r["metrics"])
assert scenarios == ["channels", "cluster", "connect", "connect-pipelined", "fanout", "idle", "publish"], scenarios
assert not report["skipped"], report["skipped"]
for r in runs:
    m = r["metrics"]
    assert m["delivered"] > 0 and m["lost"] == 0, (r["scenario"], m)
    if r["scenario"] in ("fanout", "channels", "publish", "cluster"):
        ramp = m["ramp"]
        assert len(ramp["steps"]) == 2 and ramp["ceiling_step"] == 1, (r["scenario"], ramp)
print(f"bench smoke report: {len(runs)} scenarios, 0 lost")
PY
