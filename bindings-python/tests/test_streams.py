"""History, positions and presence through Publisher and AsyncPublisher, against a real hub
whose room:* channels keep history (10 messages) and presence (the `streams_hub` fixture),
with real WebSocket clients subscribed."""

from __future__ import annotations

import asyncio
import json

import pytest

import hubbub
from conftest import TOKEN_SECRET


def test_publish_answers_the_position_where_the_channel_keeps_history(streams_hub, ws):
    browser = ws(streams_hub.ws_url)
    browser.subscribe("room:position")
    p = hubbub.Publisher(streams_hub.url)
    first = p.publish("room:position", {"n": 1}, event="chat")
    assert set(first) == {"published", "offset", "epoch"}
    assert first["published"] == "room:position" and first["offset"] == 1
    assert isinstance(first["epoch"], str) and first["epoch"]
    second = p.publish("room:position", {"n": 2})
    assert second == {"published": "room:position", "offset": 2, "epoch": first["epoch"]}
    # Subscribers see the same offsets on their message frames.
    assert browser.recv() == {
        "message": {"channel": "room:position", "event": "chat", "data": {"n": 1}, "offset": 1}
    }
    assert browser.recv()["message"]["offset"] == 2
    # A channel that keeps no history answers as ever, without a position.
    assert p.publish("plain:position", 1) == {"published": "plain:position"}
    assert hubbub.Publisher(streams_hub.url).broadcast(["room:position"], 3) == {
        "published": ["room:position"]
    }
    assert p.history("room:position", limit=0)["offset"] == 3


def test_history_pages(streams_hub):
    p = hubbub.Publisher(streams_hub.url)
    epoch = ""
    for n in range(1, 6):
        epoch = p.publish("room:pages", {"n": n}, event=f"e{n}")["epoch"]

    page = p.history("room:pages")
    assert page["channel"] == "room:pages"
    assert (page["epoch"], page["offset"]) == (epoch, 5)
    assert page["messages"][0] == {
        "channel": "room:pages",
        "event": "e1",
        "data": {"n": 1},
        "offset": 1,
    }
    assert [m["offset"] for m in page["messages"]] == [1, 2, 3, 4, 5]

    def offsets(**kwargs):
        return [m["offset"] for m in p.history("room:pages", **kwargs)["messages"]]

    assert offsets(limit=2) == [4, 5]  # the newest two
    assert offsets(since=2) == [3, 4, 5]  # everything after offset 2
    assert offsets(since=2, limit=2) == [3, 4]  # the first two after offset 2
    assert offsets(since=5) == []
    assert [m["offset"] for m in p.history("room:pages", 1, 3)["messages"]] == [4]  # positional
    # limit=0: the position alone, how a view learns where the stream stands.
    assert p.history("room:pages", limit=0) == {
        "channel": "room:pages",
        "epoch": epoch,
        "offset": 5,
        "messages": [],
    }


def test_history_of_a_channel_never_published_to(streams_hub):
    p = hubbub.Publisher(streams_hub.url)
    fresh = p.history("room:fresh")
    assert (fresh["channel"], fresh["offset"], fresh["messages"]) == ("room:fresh", 0, [])
    # The epoch handed out before the first publication stays good for it, so a page
    # rendered at offset 0 recovers the channel's first messages.
    assert p.publish("room:fresh", 1)["epoch"] == fresh["epoch"]


def test_history_keeps_the_newest_history_size_messages(streams_hub):
    p = hubbub.Publisher(streams_hub.url)
    for n in range(1, 16):
        p.publish("room:trimmed", n)
    page = p.history("room:trimmed")
    assert page["offset"] == 15
    assert [m["data"] for m in page["messages"]] == list(range(6, 16))
    assert [m["offset"] for m in page["messages"]] == list(range(6, 16))


def test_history_gives_data_back_exactly(streams_hub, ws):
    browser = ws(streams_hub.ws_url)
    browser.subscribe("room:exact")
    p = hubbub.Publisher(streams_hub.url)
    texts = [
        '{"a": [1, 2.5, -3, true, false, null, "\\u00e9 \\u2713 \\n \\"q\\""]}',
        "[]",
        "{}",
        '"just a string"',
        "0",
        "9223372036854775807",
        "18446744073709551615",
        "123456789012345678901234567890",  # beyond 64 bits: another publisher may send it
        "-9223372036854775808",
        "0.1",
        "0.30000000000000004",
        "1e300",
        "5e-324",
        "1.7976931348623157e308",
        "true",
        "null",
    ]
    for text in texts:
        p.publish("room:exact", hubbub.Json.from_text(text))
        [message] = p.history("room:exact", limit=1)["messages"]
        got, frame, want = message["data"], browser.recv()["message"]["data"], json.loads(text)
        # What json.loads makes of the text is what a subscriber decodes from its frame.
        assert got == want == frame and type(got) is type(want), (text, got)


def test_history_tells_who_broadcast(streams_hub, ws):
    ann = ws(streams_hub.ws_url)
    token = hubbub.token(TOKEN_SECRET, "ann", read=["room:*"], write=["room:*"])
    assert ann.authenticate(token) == {"authenticated": "ann"}
    ann.subscribe("room:broadcast")
    ann.send({"broadcast": {"event": "chat", "channel": "room:broadcast", "data": "hi"}})
    assert ann.recv()["message"]["from"] == "ann"
    assert ann.recv() == {"broadcasted": "room:broadcast"}
    [message] = hubbub.Publisher(streams_hub.url).history("room:broadcast")["messages"]
    assert message == {
        "channel": "room:broadcast",
        "event": "chat",
        "data": "hi",
        "offset": 1,
        "from": "ann",
    }


def test_channel_names_with_a_slash(streams_hub):
    p = hubbub.Publisher(streams_hub.url)
    channel = "room:user@example.com/inbox"
    assert p.publish(channel, "mail")["offset"] == 1
    page = p.history(channel)
    assert page["channel"] == channel and [m["data"] for m in page["messages"]] == ["mail"]


def test_presence(streams_hub, ws):
    p = hubbub.Publisher(streams_hub.url)
    assert p.presence("room:presence") == {"channel": "room:presence", "clients": []}
    anonymous = ws(streams_hub.ws_url)
    token = hubbub.token(TOKEN_SECRET, "ann", read=["room:*"], info={"name": "Ann"})
    tabs = [ws(streams_hub.ws_url) for _ in range(2)]
    for tab in tabs:
        assert tab.authenticate(token) == {"authenticated": "ann"}
    for c in [anonymous, *tabs]:
        c.subscribe("room:presence")

    presence = p.presence("room:presence")
    assert presence["channel"] == "room:presence"
    clients = sorted(presence["clients"], key=lambda c: c["client"])
    want = [{"client": anonymous.client_id, "user": None}] + [
        {"client": tab.client_id, "user": "ann", "info": {"name": "Ann"}} for tab in tabs
    ]
    assert clients == sorted(want, key=lambda c: c["client"])
    # Anonymous connections are not users; two tabs of one user are one user.
    assert p.presence_stats("room:presence") == {
        "channel": "room:presence",
        "clients": 3,
        "users": 1,
    }
    # An unsubscribe is answered once the hub has forgotten the subscription.
    assert anonymous.command({"unsubscribe": {"channel": "room:presence"}}) == {
        "unsubscribed": "room:presence"
    }
    assert p.presence_stats("room:presence")["clients"] == 2
    assert {c["client"] for c in p.presence("room:presence")["clients"]} == {
        tab.client_id for tab in tabs
    }


def test_channels_that_keep_nothing(streams_hub, hub):
    calls = {
        "history": lambda p, c: p.history(c, limit=5),
        "presence": lambda p, c: p.presence(c),
        "presence_stats": lambda p, c: p.presence_stats(c),
    }
    # A channel outside the namespaces, and a hub without namespaces.
    for url, channel in [(streams_hub.url, "plain:1"), (hub.url, "room:1")]:
        p = hubbub.Publisher(url)
        for name, call in calls.items():
            with pytest.raises(hubbub.InvalidChannel) as e:
                call(p, channel)
            assert type(e.value) is hubbub.InvalidChannel
            assert (e.value.code, e.value.status) == ("INVALID_CHANNEL", 404)
            route = "/api/history/" if name == "history" else "/api/presence/"
            assert route in e.value.url and e.value.url.startswith(url)
            assert "INVALID_CHANNEL" in str(e.value)


def test_wrong_arguments_are_refused_before_anything_is_sent(unused_url):
    p = hubbub.Publisher(unused_url)  # nothing listens: a call that went out would fail so
    with pytest.raises(OverflowError):
        p.history("room:1", limit=-1)
    with pytest.raises(OverflowError):
        p.history("room:1", since=-1)
    with pytest.raises(TypeError):
        p.history("room:1", limit="10")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        p.history("room:1", since=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        p.presence(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        p.history("room:1", 1, 2, 3)  # type: ignore[call-arg]


def test_unreachable_and_silent_hubs(unused_url, silent_url):
    p = hubbub.Publisher(unused_url)
    for call in [lambda: p.history("room:1"), lambda: p.presence("room:1"),
                 lambda: p.presence_stats("room:1")]:
        with pytest.raises(hubbub.Unavailable) as e:
            call()
        assert type(e.value) is hubbub.Unavailable and unused_url in str(e.value)
    with pytest.raises(hubbub.Timeout):
        hubbub.Publisher(silent_url, timeout=0.3).history("room:1", limit=0)


def test_async_publisher(streams_hub, ws):
    browser = ws(streams_hub.ws_url)
    browser.subscribe("room:async")
    user = ws(streams_hub.ws_url)
    user.authenticate(hubbub.token(TOKEN_SECRET, "bob", read=["room:*"], info={"n": 1}))
    user.subscribe("room:async")

    async def main():
        async with hubbub.AsyncPublisher(streams_hub.url) as p:
            answers = await asyncio.gather(*(p.publish("room:async", i) for i in range(5)))
            assert sorted(a["offset"] for a in answers) == [1, 2, 3, 4, 5]
            assert len({a["epoch"] for a in answers}) == 1
            page = await p.history("room:async", limit=2)
            assert page["epoch"] == answers[0]["epoch"] and page["offset"] == 5
            assert [m["offset"] for m in page["messages"]] == [4, 5]
            since = await p.history("room:async", since=3)
            assert [m["offset"] for m in since["messages"]] == [4, 5]
            assert (await p.history("room:async", 0))["messages"] == []
            presence = await p.presence("room:async")
            assert sorted(presence["clients"], key=lambda c: c["user"] or "") == [
                {"client": browser.client_id, "user": None},
                {"client": user.client_id, "user": "bob", "info": {"n": 1}},
            ]
            assert await p.presence_stats("room:async") == {
                "channel": "room:async",
                "clients": 2,
                "users": 1,
            }
            with pytest.raises(hubbub.InvalidChannel):
                await p.history("plain:async")
            with pytest.raises(hubbub.InvalidChannel):
                await p.presence_stats("plain:async")
            with pytest.raises(OverflowError):
                await p.history("room:async", limit=-1)

    asyncio.run(main())
    # Published concurrently, delivered in the order of their offsets.
    assert [browser.recv()["message"]["offset"] for _ in range(5)] == [1, 2, 3, 4, 5]
