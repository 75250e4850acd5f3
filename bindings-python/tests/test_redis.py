"""Publishing straight into the Redis engine (``Publisher("redis://...")``): a real
``redis-server``, real ``hubbub`` nodes with ``engine = "redis"`` sharing it, and real
WebSocket subscribers on them. The publisher is hubbub-publisher's Redis transport: what
it writes is what a node writes."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time

import pytest

import hubbub
from conftest import TOKEN_SECRET, Redis

NAMESPACES = [{"pattern": "room:*", "history_size": 10, "history_ttl": "5m"}]
# The same namespaces as the nodes' --namespaces flag writes them.
NAMESPACES_TOML = '[{pattern="room:*", history_size=10, history_ttl="5m"}]'
_prefixes = itertools.count()


@pytest.fixture
def cluster(redis, start_hub):
    """Two nodes sharing the Redis under a prefix of this test's own, and the arguments of
    a publisher that writes into it as they do."""
    prefix = f"py-{os.getpid()}-{next(_prefixes)}"
    args = ["--token-secret", TOKEN_SECRET, "--engine", "redis", "--redis-url", redis.url]
    args += ["--redis-prefix", prefix, "--namespaces", NAMESPACES_TOML]
    nodes = (start_hub(*args), start_hub(*args))
    options = {"namespaces": NAMESPACES, "redis_prefix": prefix}
    return nodes, options


def test_subscribers_on_every_node_receive_what_is_published_through_redis(redis, cluster, ws):
    (a, b), options = cluster
    on_a, on_b = ws(a.ws_url), ws(b.ws_url)
    for browser in (on_a, on_b):
        browser.subscribe("room:1")
        browser.subscribe("plain")
    p = hubbub.Publisher(redis.url, **options)
    assert p.url == redis.url

    first = p.publish("room:1", {"text": "hi"}, event="chat")
    assert set(first) == {"published", "offset", "epoch"}
    assert (first["published"], first["offset"]) == ("room:1", 1)
    for browser in (on_a, on_b):
        assert browser.recv() == {
            "message": {"channel": "room:1", "event": "chat", "data": {"text": "hi"}, "offset": 1}
        }
    # A publication through a node comes next in the same stream.
    second = hubbub.Publisher(b.url).publish("room:1", 2)
    assert second == {"published": "room:1", "offset": 2, "epoch": first["epoch"]}
    for browser in (on_a, on_b):
        assert browser.recv()["message"]["offset"] == 2

    # A node's history lists it, as does the history read through Redis.
    history = hubbub.Publisher(a.url).history("room:1")
    assert history == {
        "channel": "room:1",
        "epoch": first["epoch"],
        "offset": 2,
        "messages": [
            {"channel": "room:1", "event": "chat", "data": {"text": "hi"}, "offset": 1},
            {"channel": "room:1", "event": "message", "data": 2, "offset": 2},
        ],
    }
    assert p.history("room:1") == history
    assert p.history("room:1", limit=0)["messages"] == []

    # A channel without history: no offset.
    assert p.publish("plain", "x") == {"published": "plain"}
    for browser in (on_a, on_b):
        assert browser.recv() == {
            "message": {"channel": "plain", "event": "message", "data": "x"}
        }
    with pytest.raises(hubbub.InvalidChannel):
        p.history("plain")

    assert p.broadcast(["room:1", "plain"], [1]) == {"published": ["room:1", "plain"]}
    for browser in (on_a, on_b):
        assert browser.recv()["message"]["offset"] == 3
        assert browser.recv()["message"] == {"channel": "plain", "event": "message", "data": [1]}


def test_async_publisher_through_redis(redis, cluster, ws):
    (a, _), options = cluster
    browser = ws(a.ws_url)
    browser.subscribe("room:async")

    async def run():
        async with hubbub.AsyncPublisher(redis.url, **options) as p:
            published = await asyncio.gather(*(p.publish("room:async", n) for n in range(5)))
            page = await p.history("room:async", limit=2)
            return published, page

    published, page = asyncio.run(run())
    assert sorted(x["offset"] for x in published) == [1, 2, 3, 4, 5]
    assert [m["offset"] for m in page["messages"]] == [4, 5]
    # Subscribers see the offsets in order.
    assert [browser.recv()["message"]["offset"] for _ in range(5)] == [1, 2, 3, 4, 5]


def test_direct_and_disconnect_reach_the_nodes(redis, cluster, ws):
    (a, b), options = cluster
    on_b = ws(b.ws_url)
    on_b.subscribe("room:direct")
    p = hubbub.Publisher(redis.url, **options)
    assert p.channels() == {"channels": {"room:direct": {"subscribers": 1}}}
    assert p.direct("psst", client=on_b.client_id) == {
        "directSent": on_b.client_id,
        "delivered": 1,
    }
    assert on_b.recv() == {"directMessage": {"event": "message", "data": "psst"}}
    with pytest.raises(hubbub.InvalidClient):
        p.direct("x", user="nobody")
    assert p.disconnect(client=on_b.client_id) == {"disconnected": 1}
    # What Redis cannot answer is refused by name.
    for call in (p.info, lambda: p.presence("room:direct")):
        with pytest.raises(hubbub.HubbubError) as e:
            call()
        assert e.value.code == "UNKNOWN_COMMAND"
        assert "not available through Redis" in str(e.value)


def test_a_redis_that_cannot_be_reached_is_unavailable_at_once():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    url = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    s.close()
    p = hubbub.Publisher(url, namespaces=NAMESPACES)
    started = time.monotonic()
    for call in (lambda: p.publish("room:1", 1), lambda: p.publish("plain", 1)):
        with pytest.raises(hubbub.Unavailable) as e:
            call()
        assert not isinstance(e.value, hubbub.Timeout)
        assert e.value.code == "UNAVAILABLE" and e.value.url == url
        assert "cannot reach the Redis" in str(e.value)

    async def run():
        with pytest.raises(hubbub.Unavailable):
            await hubbub.AsyncPublisher(url, namespaces=[]).publish("c", 1)

    asyncio.run(run())
    assert time.monotonic() - started < 2


def test_a_wrong_password_is_unavailable_and_never_shown():
    guarded = Redis("--requirepass", "right")
    try:
        url = guarded.url.replace("redis://", "redis://:wrong@")
        p = hubbub.Publisher(url, namespaces=[])
        assert p.url == guarded.url.replace("redis://", "redis://:***@")
        assert "wrong" not in repr(p)
        with pytest.raises(hubbub.Unavailable) as e:
            p.publish("c", 1)
        assert "WRONGPASS" in str(e.value) and "wrong@" not in str(e.value)
        good = hubbub.Publisher(guarded.url.replace("redis://", "redis://:right@"), namespaces=[])
        assert good.publish("c", 1) == {"published": "c"}
    finally:
        guarded.stop()


def test_options_that_cannot_publish_through_redis():
    for cls in (hubbub.Publisher, hubbub.AsyncPublisher):
        with pytest.raises(ValueError, match="needs the hubs' namespaces"):
            cls("redis://127.0.0.1:1/0")
        with pytest.raises(ValueError, match="unknown field `history_sise`"):
            cls("redis://127.0.0.1:1/0", namespaces=[{"pattern": "a", "history_sise": 1}])
        with pytest.raises(ValueError, match=r"namespaces\[0\]\.history_ttl"):
            cls("redis://127.0.0.1:1/0", namespaces=[{"pattern": "a", "history_ttl": "soon"}])
        with pytest.raises(TypeError, match="a list of dicts"):
            cls("redis://127.0.0.1:1/0", namespaces=NAMESPACES_TOML)
        with pytest.raises(ValueError, match="bad redis_prefix"):
            cls("redis://127.0.0.1:1/0", namespaces=[], redis_prefix="a b")
    # An HTTP URL leaves the Redis options unused.
    assert hubbub.Publisher("http://h", namespaces=[], redis_prefix="x").url == "http://h"
