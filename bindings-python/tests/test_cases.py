"""The table of publisher cases shared with the Rust and Node suites
(``publisher/tests/cases.json``), run through ``Publisher`` and ``AsyncPublisher`` against
real ``hubbub`` processes and real sockets."""

from __future__ import annotations

import asyncio
import http.server
import json
import re
import socket
import threading
from typing import Any, Dict, Iterator

import pytest

import hubbub
from conftest import ROOT, Hub

TABLE = json.loads((ROOT / "publisher" / "tests" / "cases.json").read_text())
CASES = [c for c in TABLE["cases"] if "python" in c.get("only", ["python"])]


class OtherService(http.server.BaseHTTPRequestHandler):
    """Not a hub: answers every request with the status of its first path segment."""

    def answer(self) -> None:
        status = int(self.path.strip("/").split("/")[0])
        body = b"<html>not a hub</html>"
        if self.headers.get("Content-Length"):
            self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def servers() -> Iterator[Dict[str, str]]:
    """Every server the table names, by name, as a base URL."""
    urls: Dict[str, str] = {}
    hubs = []
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # never accepted: the kernel completes the handshakes, nobody reads
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OtherService)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        for name, server in TABLE["servers"].items():
            if isinstance(server, list):
                hubs.append(Hub(*server))
                urls[name] = hubs[-1].url
            elif server == "unreachable":
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                urls[name] = f"http://127.0.0.1:{s.getsockname()[1]}"
                s.close()
            elif server == "silent":
                urls[name] = f"http://127.0.0.1:{silent.getsockname()[1]}"
            elif server == "other":
                urls[name] = f"http://127.0.0.1:{other.server_address[1]}"
            else:
                raise ValueError(f"unknown server {server!r}")
        yield urls
    finally:
        for h in hubs:
            h.stop()
        other.shutdown()
        other.server_close()
        silent.close()


def fill(text: str, servers: Dict[str, str]) -> str:
    for name, url in servers.items():
        text = text.replace("{" + name + "}", url)
    return text


def call(publisher: Any, c: Dict[str, Any]) -> Any:
    """The table's call on a Publisher or an AsyncPublisher (then a coroutine)."""
    event = c.get("event", "message")
    data = "x" * c["data_bytes"] if "data_bytes" in c else c.get("data")
    method = c["method"]
    if method == "publish":
        return publisher.publish(c["channel"], data, event=event)
    if method == "broadcast":
        return publisher.broadcast(c["channels"], data, event=event)
    if method == "direct":
        return publisher.direct(data, client=c.get("client"), user=c.get("user"), event=event)
    if method == "disconnect":
        return publisher.disconnect(client=c.get("client"), user=c.get("user"))
    if method in ("channels", "info"):
        return getattr(publisher, method)()
    if method == "history":
        return publisher.history(c["channel"], limit=c.get("limit"), since=c.get("since"))
    if method in ("presence", "presence_stats"):
        return getattr(publisher, method)(c["channel"])
    raise ValueError(f"unknown method {method}")


def check(expect: Dict[str, Any], outcome: Any) -> None:
    if isinstance(outcome, BaseException):
        err = outcome
        assert "error" in expect, f"failed with {err!r}, expected {expect}"
        assert isinstance(err, hubbub.HubbubError), repr(err)
        assert err.code == expect["error"], str(err)
        assert isinstance(err, hubbub.Unavailable) == (err.code == "UNAVAILABLE"), repr(err)
        if "status" in expect:
            assert err.status == expect["status"], str(err)
        if "timeout" in expect:
            assert isinstance(err, hubbub.Timeout) == expect["timeout"], repr(err)
        assert err.url and err.url in str(err)
    elif "answer" in expect:
        assert outcome == expect["answer"]
    else:
        assert sorted(outcome) == expect["answer_keys"], outcome


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: Dict[str, Any], servers: Dict[str, str], monkeypatch: Any) -> None:
    monkeypatch.delenv("HUBBUB_URL", raising=False)
    monkeypatch.delenv("HUBBUB_API_KEY", raising=False)
    for name, value in case.get("env", {}).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, fill(value, servers))
    options = case.get("options", {})
    arguments: Dict[str, Any] = {}
    if "url" in options:
        arguments["url"] = fill(options["url"], servers)
    if "api_key" in options:
        arguments["api_key"] = options["api_key"]
    if "timeout_ms" in options:
        arguments["timeout"] = options["timeout_ms"] / 1000
    if "namespaces" in options:
        arguments["namespaces"] = options["namespaces"]
    if "redis_prefix" in options:
        arguments["redis_prefix"] = options["redis_prefix"]
    expect = case["expect"]
    if "config_error" in expect:
        for cls in (hubbub.Publisher, hubbub.AsyncPublisher):
            with pytest.raises(ValueError, match=re.escape(expect["config_error"])):
                cls(**arguments)
        return
    blocking = hubbub.Publisher(**arguments)
    asynchronous = hubbub.AsyncPublisher(**arguments)
    if case["call"]["method"] == "construct":
        assert blocking.url == asynchronous.url == fill(expect["url"], servers)
        return
    try:
        outcome = call(blocking, case["call"])
    except hubbub.HubbubError as e:
        outcome = e
    check(expect, outcome)

    async def run() -> Any:
        try:
            return await call(asynchronous, case["call"])
        except hubbub.HubbubError as e:
            return e

    check(expect, asyncio.run(run()))
