"""Publisher.publish calls per second from one thread, beside requests doing the same calls.

    pip install requests          # for the comparison; without it only hubbub is measured
    python bench/publish_rate.py [--url http://127.0.0.1:9772] [--seconds 5]

Starts nothing: point it at a running hub (a release build gives the fairest figures).
Each client makes the same POST /api/publish with the same body, one call after another,
for the same time; the figures are calls per second, and the CPU time this process spent
per call (which a busy machine disturbs much less than the rate).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Dict, Tuple

import hubbub

try:
    import requests
except ImportError:  # pragma: no cover
    requests = None

DATA = {"text": "hello", "n": 1, "tags": ["a", "b"]}


def rate(call, seconds: float) -> Tuple[float, float]:
    """Calls per second, and microseconds of this process's CPU time per call."""
    for _ in range(200):  # warm up: connections, caches
        call()
    n = 0
    cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            call()
        n += 100
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start), (time.process_time() - cpu) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:9772")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    url = args.url.rstrip("/")

    publisher = hubbub.Publisher(url)
    results: Dict[str, Tuple[float, float]] = {
        "hubbub.Publisher.publish": rate(lambda: publisher.publish("bench", DATA), args.seconds)
    }
    if requests is not None:
        body = {"channel": "bench", "data": DATA, "event": "message"}

        def plain() -> None:
            r = requests.post(f"{url}/api/publish", json=body, timeout=5)
            r.raise_for_status()
            r.json()

        session = requests.Session()

        def pooled() -> None:
            r = session.post(f"{url}/api/publish", json=body, timeout=5)
            r.raise_for_status()
            r.json()

        results["requests.post"] = rate(plain, args.seconds)
        results["requests.Session().post"] = rate(pooled, args.seconds)
    else:
        print("(pip install requests to compare with requests.post)")
    base, base_cpu = results["hubbub.Publisher.publish"]
    for name, (value, cpu) in results.items():
        print(
            f"{name:28} {value:10.0f} calls/s {cpu:8.1f} µs CPU/call"
            f"   hubbub is {base / value:5.1f}x ({cpu / base_cpu:5.1f}x less CPU)"
        )
    print(json.dumps({k: [round(v), round(c, 1)] for k, (v, c) in results.items()}))


if __name__ == "__main__":
    main()
