"""hubbub.django in the small project under tests/djangoproject, against a real hub."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from typing import Any

import pytest

os.environ["DJANGO_SETTINGS_MODULE"] = "djangoproject.settings"

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import AnonymousUser, User  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402

import hubbub  # noqa: E402
import hubbub.django as hd  # noqa: E402
from conftest import TOKEN_SECRET  # noqa: E402
from djangoproject.shop.models import Order  # noqa: E402
from djangoproject.shop.views import BOARD, add_to_board  # noqa: E402

PERMISSIONS = "djangoproject.permissions.for_user"


@pytest.fixture(scope="module", autouse=True)
def project(hub):
    """The project's database, and its HUBBUB settings pointing at the test hub."""
    call_command("migrate", run_syncdb=True, verbosity=0)
    settings = {"URL": hub.url, "TOKEN_SECRET": TOKEN_SECRET, "PERMISSIONS": PERMISSIONS}
    with override_settings(HUBBUB=settings):
        yield


def user(name: str, staff: bool = False) -> User:
    return User.objects.create_user(name, password="pw", is_staff=staff)


def test_shared_publisher(hub):
    assert hd.publisher() is hd.publisher()
    assert hd.publisher().url == hub.url
    assert hd.async_publisher() is hd.async_publisher()
    with override_settings(HUBBUB={"URL": "http://127.0.0.1:1", "TIMEOUT": 2}):
        assert hd.publisher().url == "http://127.0.0.1:1"
        assert hd.publisher().timeout == 2.0
    assert hd.publisher().url == hub.url


def test_shared_publisher_through_redis(redis, start_hub, ws):
    namespaces = [{"pattern": "room:*", "history_size": 5}]
    node = start_hub(
        "--engine", "redis", "--redis-url", redis.url, "--redis-prefix", "django",
        "--namespaces", '[{pattern="room:*", history_size=5}]',
    )  # fmt: skip
    browser = ws(node.ws_url)
    browser.subscribe("room:django")
    conf = {"URL": redis.url, "NAMESPACES": namespaces, "REDIS_PREFIX": "django"}
    with override_settings(HUBBUB=conf):
        assert hd.publisher().url == redis.url
        with transaction.atomic():
            hd.publish_on_commit("room:django", {"n": 1})
        assert browser.recv()["message"] == {
            "channel": "room:django", "event": "message", "data": {"n": 1}, "offset": 1,
        }  # fmt: skip
        assert hd.stream_position("room:django")["offset"] == 1
    with override_settings(HUBBUB={"URL": redis.url}):
        with pytest.raises(ValueError, match="needs the hubs' namespaces"):
            hd.publisher()


def test_publish_on_commit_in_a_view(hub, ws):
    browser = ws(hub.ws_url)
    browser.subscribe("orders")
    client = Client()

    created = client.post("/orders/", {"item": "teapot"})
    assert created.status_code == 200
    order_id = created.json()["id"]
    message = browser.recv()["message"]
    assert message == {
        "channel": "orders",
        "event": "created",
        "data": {"id": order_id, "item": "teapot"},
    }
    assert Order.objects.filter(pk=order_id, item="teapot").exists()

    refused = client.post("/orders/", {"item": "unobtainium"})
    assert refused.status_code == 409
    assert not Order.objects.filter(item="unobtainium").exists()
    # Nothing was published for the rolled-back order: the next frame is the next order.
    again = client.post("/orders/", {"item": "kettle"}).json()["id"]
    assert browser.recv()["message"]["data"] == {"id": again, "item": "kettle"}


def test_publish_on_commit_waits_for_the_commit(hub, ws):
    browser = ws(hub.ws_url)
    browser.subscribe("commit")
    with transaction.atomic():
        hd.publish_on_commit("commit", "after the commit")
        # Published directly, inside the transaction: it must arrive first.
        hd.publisher().publish("commit", "inside the transaction")
    assert browser.recv()["message"]["data"] == "inside the transaction"
    assert browser.recv()["message"]["data"] == "after the commit"


def test_publish_on_commit_and_rollbacks(hub, ws):
    browser = ws(hub.ws_url)
    browser.subscribe("rollback")
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            hd.publish_on_commit("rollback", "rolled back")
            raise RuntimeError("roll back")
    with transaction.atomic():
        hd.publish_on_commit("rollback", "outer, kept")
        try:
            with transaction.atomic():  # a savepoint
                hd.publish_on_commit("rollback", "savepoint, rolled back")
                raise RuntimeError("roll back the savepoint")
        except RuntimeError:
            pass
    hd.publisher().publish("rollback", "marker")
    assert browser.recv()["message"]["data"] == "outer, kept"
    assert browser.recv()["message"]["data"] == "marker"


def test_publish_on_commit_details(hub, ws, unused_url, caplog):
    browser = ws(hub.ws_url)
    browser.subscribe("details")
    # Outside a transaction (autocommit) it publishes at once.
    hd.publish_on_commit("details", 1, event="now")
    assert browser.recv()["message"] == {"channel": "details", "event": "now", "data": 1}
    # The data is encoded at the call: bad data fails there, later changes are not sent.
    with pytest.raises(TypeError):
        hd.publish_on_commit("details", {"bad": {1, 2}})
    data = {"n": 1}
    with transaction.atomic():
        hd.publish_on_commit("details", data)
        data["n"] = 2
    assert browser.recv()["message"]["data"] == {"n": 1}
    # After the commit, an unreachable hub is logged, not raised into the request.
    with override_settings(HUBBUB={"URL": unused_url}):
        with caplog.at_level(logging.ERROR, logger="hubbub"):
            with transaction.atomic():
                hd.publish_on_commit("details", "lost")
    assert any("details" in r.getMessage() and r.exc_info for r in caplog.records)


def test_connection_token(hub, ws):
    alice = user("alice", staff=True)
    client = Client()
    assert client.get("/hubbub/token/").status_code == 302  # anonymous: log in first
    client.force_login(alice)
    token = client.get("/hubbub/token/").json()["token"]
    claims = hubbub.verify_token(TOKEN_SECRET, token)
    assert claims["sub"] == str(alice.pk)
    assert claims["info"] == {"username": "alice", "is_staff": True}
    assert claims["read"] == [f"user:{alice.pk}", "room:*", "staff:*"]
    assert claims["write"] == ["room:*"]
    assert claims["exp"] - claims["iat"] == 3600

    # The browser connects with it and receives what the app publishes for Alice.
    browser = ws(hub.ws_url)
    assert browser.authenticate(token) == {"authenticated": str(alice.pk)}
    browser.subscribe(f"user:{alice.pk}")
    browser.subscribe("staff:alerts")
    with transaction.atomic():
        hd.publish_on_commit(f"user:{alice.pk}", {"hello": "alice"})
    assert browser.recv()["message"]["data"] == {"hello": "alice"}


def test_connection_token_defaults_and_refusals(hub, ws):
    bob = user("bob")
    with override_settings(HUBBUB={"URL": hub.url, "TOKEN_SECRET": TOKEN_SECRET}):
        claims = hubbub.verify_token(TOKEN_SECRET, hd.connection_token(bob, expires_in=60))
        assert claims["read"] == ["public:*", f"user:{bob.pk}"]
        assert claims["write"] == []
        assert claims["info"] == {"username": "bob", "is_staff": False}
        assert claims["exp"] - claims["iat"] == 60
        browser = ws(hub.ws_url)
        browser.authenticate(hd.connection_token(bob))
        answer = browser.command({"subscribe": {"channel": "staff:alerts"}})
        assert answer["err"] == "ACCESS_DENIED"
    with pytest.raises(ValueError):
        hd.connection_token(AnonymousUser())
    with override_settings(HUBBUB={"URL": hub.url}):
        with pytest.raises(ImproperlyConfigured):
            hd.connection_token(bob)
    with override_settings(HUBBUB={"TOKEN_SECRET": "s", "PERMISSIONS": "no.such.function"}):
        with pytest.raises(ImproperlyConfigured):
            hd.connection_token(bob)


def test_async_view(hub, ws):
    browser = ws(hub.ws_url)
    browser.subscribe("announcements")

    async def request():
        return await AsyncClient().get("/announce/", {"text": "sale"})

    response = asyncio.run(request())
    assert response.status_code == 200
    assert response.json() == {"published": "announcements"}
    assert browser.recv()["message"]["data"] == {"text": "sale"}


def board_of(html: str) -> Any:
    """The state and position a board page was rendered with (its json_script)."""
    found = re.search(r'<script id="board" type="application/json">(.*?)</script>', html, re.S)
    assert found, html
    return json.loads(found.group(1))


def test_stream_position_makes_a_page_miss_nothing(streams_hub, ws):
    with override_settings(HUBBUB={"URL": streams_hub.url}):
        assert hd.stream_position(BOARD) == hd.stream_position(BOARD)  # reading changes nothing
        add_to_board("before the render")
        response = Client().get("/board/")
        assert response.status_code == 200
        board = board_of(response.content.decode())
        epoch, offset = board["position"]["epoch"], board["position"]["offset"]
        assert board["position"] == {"epoch": epoch, "offset": offset}
        assert isinstance(epoch, str) and offset >= 1
        assert board["orders"][-1]["item"] == "before the render"

        # Orders placed after the render, before the page's script has subscribed.
        missed = [add_to_board(f"after the render {n}") for n in range(3)]

        # The page subscribes since its position, as the browser client's
        # subscribe(channel, handler, { since: position }) does.
        page = ws(streams_hub.ws_url)
        page.send({"subscribe": {"channel": BOARD, "since": board["position"]}})
        recovered = [page.recv()["message"] for _ in missed]
        assert [m["data"] for m in recovered] == [{"id": o.pk, "item": o.item} for o in missed]
        assert [m["offset"] for m in recovered] == [offset + 1, offset + 2, offset + 3]
        assert page.recv() == {
            "resubscribed": {
                "channel": BOARD,
                "recovered": True,
                "epoch": epoch,
                "offset": offset + 3,
            }
        }
        # Then the live ones, and the page has seen every order exactly once.
        live = add_to_board("live")
        assert page.recv()["message"]["data"] == {"id": live.pk, "item": "live"}
        seen = [o["id"] for o in board["orders"]] + [m["data"]["id"] for m in recovered] + [live.pk]
        assert seen == list(Order.objects.order_by("pk").values_list("pk", flat=True))


def test_a_position_that_cannot_be_recovered(streams_hub, ws):
    with override_settings(HUBBUB={"URL": streams_hub.url}):
        add_to_board("one")
        current = hd.stream_position(BOARD)
        # A position from another epoch (a restarted hub, an expired stream): nothing is
        # delivered, and the answer says so, with the current position.
        page = ws(streams_hub.ws_url)
        stale = {"epoch": "an-old-epoch", "offset": 1}
        assert page.command({"subscribe": {"channel": BOARD, "since": stale}}) == {
            "resubscribed": {"channel": BOARD, "recovered": False, **current}
        }
        # The app reloads its state from its own database: the page again, with the
        # state and a position that go together.
        board = board_of(Client().get("/board/").content.decode())
        assert board["position"] == current
        assert [o["id"] for o in board["orders"]] == list(
            Order.objects.order_by("pk").values_list("pk", flat=True)
        )


def test_stream_position_in_an_async_view(streams_hub):
    with override_settings(HUBBUB={"URL": streams_hub.url}):
        add_to_board("async")

        async def request():
            return await AsyncClient().get("/board/position/")

        response = asyncio.run(request())
        assert response.status_code == 200
        assert response.json() == hd.stream_position(BOARD)


def test_stream_position_of_a_channel_without_history(hub, streams_hub):
    # The session's plain hub keeps no history anywhere; the streams hub none outside room:*.
    for url, channel in [(hub.url, BOARD), (streams_hub.url, "orders")]:
        with override_settings(HUBBUB={"URL": url}):
            with pytest.raises(hubbub.InvalidChannel):
                hd.stream_position(channel)
