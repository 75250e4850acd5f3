"""Publisher.publish calls per second from one thread, beside requests doing the same calls.

    python bench/publish_rate.py [--url http://127.0.0.1:9772] [--seconds 5]

Starts nothing: point it at a running hub (a release build gives the fairest figures).
Each client makes the same POST /api/publish with the same body, one call after another,
for the same time; the figures are calls per second.
"""

from __future__ import annotations

import argparse
import json
import time

import hubbub

try:
    import requests
except ImportError:  # pragma: no cover
    requests = None

DATA = {"text": "hello", "n": 1, "tags": ["a", "b"]}


def rate(call, seconds: float) -> float:
    for _ in range(200):  # warm up: connections, caches
        call()
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            call()
        n += 100
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:9772")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    url = args.url.rstrip("/")

    publisher = hubbub.Publisher(url)
    results = {"hubbub.Publisher.publish": rate(lambda: publisher.publish("bench", DATA), args.seconds)}
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
    base = results["hubbub.Publisher.publish"]
    for name, value in results.items():
        print(f"{name:28} {value:10.0f} calls/s   hubbub is {base / value:5.1f}x")
    print(json.dumps({k: round(v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
