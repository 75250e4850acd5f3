"""Publisher against a real hub: every method, what subscribers receive, the arguments."""

from __future__ import annotations

import importlib.metadata
import inspect
import re
from pathlib import Path

import pytest

import hubbub
from conftest import ROOT, TOKEN_SECRET


def workspace_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    section = text[text.index("[workspace.package]") :]
    return re.search(r'^version\s*=\s*"([^"]+)"', section, re.M).group(1)


def test_version_is_the_crate_version(hub):
    assert hubbub.__version__ == workspace_version()
    assert importlib.metadata.version("hubbub") == hubbub.__version__
    assert hubbub.Publisher(hub.url).info()["version"] == hubbub.__version__


def test_quick_start(hub, ws, monkeypatch):
    browser = ws(hub.ws_url)
    browser.subscribe("hello")
    monkeypatch.setenv("HUBBUB_URL", hub.url)
    assert hubbub.Publisher().publish("hello", {"hello": "world"}) == {"published": "hello"}
    assert browser.recv() == {
        "message": {"channel": "hello", "event": "message", "data": {"hello": "world"}}
    }


def test_defaults(monkeypatch):
    monkeypatch.delenv("HUBBUB_URL", raising=False)
    monkeypatch.delenv("HUBBUB_API_KEY", raising=False)
    p = hubbub.Publisher()
    assert p.url == "http://127.0.0.1:9772"
    assert p.timeout == 5.0
    monkeypatch.setenv("HUBBUB_URL", "http://hub.example:1234/")
    assert hubbub.Publisher().url == "http://hub.example:1234"
    assert hubbub.Publisher("http://other:1").url == "http://other:1"
    assert repr(hubbub.Publisher("http://other:1", api_key="secret")) == (
        "Publisher(url='http://other:1')"
    )
    assert repr(hubbub.AsyncPublisher("http://other:1")) == "AsyncPublisher(url='http://other:1')"


def test_publish_delivers_data_exactly(hub, ws):
    browser = ws(hub.ws_url)
    browser.subscribe("exact")
    p = hubbub.Publisher(hub.url)
    cases = [
        ({"a": [1, 2.5, -3, True, False, None, "é ✓ \n \"q\""]}, None),
        ((1, (2, 3)), [1, [2, 3]]),
        ([], None),
        ({}, None),
        ("just a string", None),
        (0, None),
        (2**63 - 1, None),
        (2**64 - 1, None),
        (-(2**63), None),
        (1e300, None),
        (True, None),
        (None, None),
        ({"nested": hubbub.Json({"pre": "encoded"})}, {"nested": {"pre": "encoded"}}),
        (hubbub.Json.from_text('{"raw" : [1,2]}'), {"raw": [1, 2]}),
    ]
    for data, expected in cases:
        assert p.publish("exact", data) == {"published": "exact"}
        got = browser.recv()["message"]["data"]
        want = data if expected is None else expected
        assert got == want and type(got) is type(want), (data, got)


def test_publish_event(hub, ws):
    browser = ws(hub.ws_url)
    browser.subscribe("events")
    hubbub.Publisher(hub.url).publish("events", {"text": "hi"}, event="chat")
    assert browser.recv() == {"message": {"channel": "events", "event": "chat", "data": {"text": "hi"}}}
    hubbub.Publisher(hub.url).publish("events", 1, "positional")
    assert browser.recv()["message"]["event"] == "positional"


def test_broadcast(hub, ws):
    a, b = ws(hub.ws_url), ws(hub.ws_url)
    a.subscribe("bc:a")
    b.subscribe("bc:b")
    p = hubbub.Publisher(hub.url)
    assert p.broadcast(["bc:a", "bc:b"], {"n": 1}, event="tick") == {"published": ["bc:a", "bc:b"]}
    assert a.recv() == {"message": {"channel": "bc:a", "event": "tick", "data": {"n": 1}}}
    assert b.recv() == {"message": {"channel": "bc:b", "event": "tick", "data": {"n": 1}}}
    assert p.broadcast(("bc:a",), 2) == {"published": ["bc:a"]}
    assert a.recv()["message"]["data"] == 2


def test_direct_to_a_client(hub, ws):
    browser = ws(hub.ws_url)
    p = hubbub.Publisher(hub.url)
    answer = p.direct({"secret": 1}, client=browser.client_id, event="note")
    assert answer == {"directSent": browser.client_id, "delivered": 1}
    assert browser.recv() == {"directMessage": {"event": "note", "data": {"secret": 1}}}


def test_direct_to_a_user(hub, ws):
    t = hubbub.token(TOKEN_SECRET, "direct-user")
    first, second = ws(hub.ws_url), ws(hub.ws_url)
    for c in (first, second):
        assert c.authenticate(t) == {"authenticated": "direct-user"}
    answer = hubbub.Publisher(hub.url).direct([1, 2], user="direct-user")
    assert answer == {"directSent": "direct-user", "delivered": 2}
    for c in (first, second):
        assert c.recv() == {"directMessage": {"event": "message", "data": [1, 2]}}


def test_disconnect(hub, ws):
    p = hubbub.Publisher(hub.url)
    browser = ws(hub.ws_url)
    assert p.disconnect(client=browser.client_id) == {"disconnected": 1}
    with pytest.raises(Exception) as closed:
        browser.recv()
    assert "ConnectionClosed" in type(closed.value).__name__

    t = hubbub.token(TOKEN_SECRET, "leaving-user")
    tabs = [ws(hub.ws_url) for _ in range(3)]
    for tab in tabs:
        tab.authenticate(t)
    assert p.disconnect(user="leaving-user") == {"disconnected": 3}
    for tab in tabs:
        with pytest.raises(Exception) as closed:
            tab.recv()
        assert "ConnectionClosed" in type(closed.value).__name__


def test_channels_and_info(hub, ws):
    p = hubbub.Publisher(hub.url)
    clients = [ws(hub.ws_url) for _ in range(3)]
    for c in clients:
        c.subscribe("counted:1")
    clients[0].subscribe("counted:2")
    channels = p.channels()["channels"]
    assert channels["counted:1"] == {"subscribers": 3}
    assert channels["counted:2"] == {"subscribers": 1}
    info = p.info()
    assert set(info) == {"version", "connections", "channels", "uptime_s", "nodes"}
    assert info["connections"] >= 3 and info["channels"] >= 2
    # One node, this one, with the embedded engine.
    [node] = info["nodes"]
    assert set(node) == {"id", "connections", "uptime_s"}
    assert node["connections"] == info["connections"]


def test_data_that_is_not_json(hub):
    p = hubbub.Publisher(hub.url)
    for bad, name in [
        ({1, 2}, "set"),
        (object(), "object"),
        (b"bytes", "bytes"),
        ({"when": __import__("datetime").date(2024, 1, 1)}, "date"),
        ([1, [2, {"deep": 1j}]], "complex"),
    ]:
        with pytest.raises(TypeError, match=name):
            p.publish("x", bad)
    with pytest.raises(TypeError, match="keys must be str.*int"):
        p.publish("x", {1: "one"})
    for bad in [float("nan"), float("inf"), [float("-inf")], 2**64, -(2**63) - 1]:
        with pytest.raises(ValueError):
            p.publish("x", bad)
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="deeper"):
        p.publish("x", loop)
    with pytest.raises(ValueError):
        hubbub.Json.from_text("{nope")


def test_argument_errors(hub):
    p = hubbub.Publisher(hub.url)
    with pytest.raises(TypeError):
        p.direct(1)
    with pytest.raises(TypeError):
        p.direct(1, client="a", user="b")
    with pytest.raises(TypeError):
        p.disconnect()
    with pytest.raises(TypeError, match="not one str"):
        p.broadcast("room", 1)
    with pytest.raises(TypeError):
        p.direct(1, "positional-client")
    for url in ["not a url", "ftp://host"]:
        with pytest.raises(ValueError):
            hubbub.Publisher(url)
    for timeout in [0, -1, float("nan")]:
        with pytest.raises(ValueError):
            hubbub.Publisher(hub.url, timeout=timeout)


def test_every_public_name_has_a_docstring():
    names = list(hubbub.__all__)
    assert {"Publisher", "AsyncPublisher", "token", "verify_token", "HubbubError"} <= set(names)
    for name in names:
        if name == "__version__":
            continue
        obj = getattr(hubbub, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and callable(getattr(obj, attr, None)):
                    assert member.__doc__, f"{name}.{attr}"
    import hubbub.django as hd

    for name in hd.__all__:
        assert getattr(hd, name).__doc__, name
    installed = Path(hubbub.__file__).parent
    assert (installed / "py.typed").exists() and (installed / "_native.pyi").exists()
