"""AsyncPublisher under asyncio, against a real hub."""

from __future__ import annotations

import asyncio
import time

import pytest

import hubbub
from conftest import TOKEN_SECRET


def test_every_method(hub, ws):
    browser = ws(hub.ws_url)
    browser.subscribe("async:1")
    user = ws(hub.ws_url)
    user.authenticate(hubbub.token(TOKEN_SECRET, "async-user"))

    async def main():
        async with hubbub.AsyncPublisher(hub.url) as p:
            assert p.url == hub.url and p.timeout == 5.0
            assert await p.publish("async:1", {"a": 1}) == {"published": "async:1"}
            assert await p.publish("async:1", 2, event="e") == {"published": "async:1"}
            assert await p.broadcast(["async:1", "async:2"], 3) == {"published": ["async:1", "async:2"]}
            assert await p.direct("hi", client=browser.client_id) == {
                "directSent": browser.client_id,
                "delivered": 1,
            }
            assert (await p.channels())["channels"]["async:1"] == {"subscribers": 1}
            assert (await p.info())["version"] == hubbub.__version__
            assert await p.disconnect(user="async-user") == {"disconnected": 1}

    asyncio.run(main())
    assert browser.recv() == {"message": {"channel": "async:1", "event": "message", "data": {"a": 1}}}
    assert browser.recv()["message"] == {"channel": "async:1", "event": "e", "data": 2}
    assert browser.recv()["message"]["data"] == 3
    assert browser.recv() == {"directMessage": {"event": "message", "data": "hi"}}


def test_many_at_once_and_across_event_loops(hub, ws):
    browser = ws(hub.ws_url)
    browser.subscribe("async:many")
    p = hubbub.AsyncPublisher(hub.url)

    async def burst(tag: str):
        tasks = [asyncio.create_task(p.publish("async:many", [tag, i])) for i in range(200)]
        return await asyncio.gather(*tasks)

    # One instance, two event loops one after the other.
    for tag in ("first", "second"):
        answers = asyncio.run(burst(tag))
        assert answers == [{"published": "async:many"}] * 200
    got = sorted(tuple(browser.recv()["message"]["data"]) for _ in range(400))
    assert got == sorted([(t, i) for t in ("first", "second") for i in range(200)])


def test_errors(hub, unused_url):
    async def main():
        with pytest.raises(hubbub.InvalidPayload) as e:
            await hubbub.AsyncPublisher(hub.url).publish("bad channel", 1)
        assert e.value.status == 400
        with pytest.raises(hubbub.InvalidClient):
            await hubbub.AsyncPublisher(hub.url).direct(1, client="nobody")
        with pytest.raises(hubbub.Unavailable) as e:
            await hubbub.AsyncPublisher(unused_url).publish("c", 1)
        assert unused_url in str(e.value)
        with pytest.raises(TypeError, match="set"):
            await hubbub.AsyncPublisher(hub.url).publish("c", {1, 2})
        with pytest.raises(TypeError):
            await hubbub.AsyncPublisher(hub.url).disconnect()

    asyncio.run(main())


def test_timeout_without_blocking_the_loop(silent_url):
    async def main():
        p = hubbub.AsyncPublisher(silent_url, timeout=0.5)
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        with pytest.raises(hubbub.Timeout):
            await p.publish("c", 1)
        elapsed = time.monotonic() - started
        ticker.cancel()
        assert 0.45 <= elapsed < 3.0
        # The loop kept running while the call waited.
        assert ticks >= 10, ticks

    asyncio.run(main())


def test_cancelling_a_call(silent_url, hub):
    async def main():
        slow = hubbub.AsyncPublisher(silent_url, timeout=5.0)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(slow.publish("c", 1), timeout=0.2)
        # The loop and the publishers go on working.
        assert await hubbub.AsyncPublisher(hub.url).publish("c", 1) == {"published": "c"}

    asyncio.run(main())
