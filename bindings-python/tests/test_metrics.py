"""`GET /metrics` after known traffic, read with Prometheus' own Python parser."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any, Dict, Tuple

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from hubbub import Publisher

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def scrape(hub: Any) -> Samples:
    with urllib.request.urlopen(f"{hub.url}/metrics", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("application/openmetrics-text")
        text = answer.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_what_the_hub_did(start_hub: Any, ws: Any) -> None:
    hub = start_hub()
    readers = [ws(hub.ws_url) for _ in range(3)]
    for r in readers:
        r.subscribe("metrics")
    idle = ws(hub.ws_url)
    idle.send({"frobnicate": True})
    assert idle.recv()["err"] == "UNKNOWN_COMMAND"
    p = Publisher(hub.url)
    for n in range(5):
        p.publish("metrics", {"n": n})
    for r in readers:
        for n in range(5):
            assert r.recv()["message"]["data"] == {"n": n}
    # A refused API call is counted with its status.
    try:
        urllib.request.urlopen(
            urllib.request.Request(f"{hub.url}/api/publish", data=b"{}", method="POST"),
            timeout=10,
        )
    except urllib.error.HTTPError as e:
        assert e.code == 415
    else:
        raise AssertionError("a publish without a JSON body was accepted")

    m = scrape(hub)
    assert value(m, "hubbub_connections") == 4
    assert value(m, "hubbub_connections_opened_total") == 4
    assert value(m, "hubbub_subscriptions") == 3
    assert value(m, "hubbub_channels") == 1
    assert value(m, "hubbub_publications_total", kind="api") == 5
    assert value(m, "hubbub_frames_out_total", kind="message") == 15
    assert value(m, "hubbub_commands_total", command="subscribe") == 3
    assert value(m, "hubbub_commands_total", command="unknown") == 1
    assert value(m, "hubbub_errors_total", error="UNKNOWN_COMMAND") == 1
    assert value(m, "hubbub_frames_in_total") == 4
    assert value(m, "hubbub_http_requests_total", endpoint="publish", status="200") == 5
    assert value(m, "hubbub_http_requests_total", endpoint="publish", status="415") == 1
    assert value(m, "hubbub_http_request_duration_seconds_count", endpoint="publish") == 6
    # Three answers to subscribe and one error: four answers.
    assert value(m, "hubbub_frames_out_total", kind="answer") == 4

    # A client the application disconnects: its close code is counted.
    urllib.request.urlopen(
        urllib.request.Request(
            f"{hub.url}/api/disconnect",
            data=f'{{"client": "{idle.client_id}"}}'.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        ),
        timeout=10,
    )
    try:
        while True:
            idle.recv()
    except Exception:
        pass
    m = scrape(hub)
    assert value(m, "hubbub_closes_total", code="4000") == 1
    assert value(m, "hubbub_connections") == 3


def test_metrics_answer_only_the_listed_addresses(start_hub: Any) -> None:
    hub = start_hub("--metrics-allowed-ips", "10.0.0.0/8")
    try:
        urllib.request.urlopen(f"{hub.url}/metrics", timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 403
        assert b"ACCESS_DENIED" in e.read()
    else:
        raise AssertionError("a scrape from an address not listed was answered")
    off = start_hub("--metrics", "false")
    try:
        urllib.request.urlopen(f"{off.url}/metrics", timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 404
    else:
        raise AssertionError("/metrics answered with metrics = false")
