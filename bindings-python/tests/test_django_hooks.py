"""hubbub.django's hook receivers: the test project (tests/djangoproject, its functions in
shop/hooks.py) served on a real port to a real hub whose [hooks] point at it, with
`websockets` clients; and the receivers called directly, signed or not, over WSGI and ASGI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

os.environ["DJANGO_SETTINGS_MODULE"] = "djangoproject.settings"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402
from django.urls import reverse  # noqa: E402

import hubbub  # noqa: E402
import hubbub.django as hd  # noqa: E402
from conftest import WAIT, Hub  # noqa: E402
from djangoproject.shop.hooks import NOTICES  # noqa: E402

HOOK_SECRET = "django-hook-secret"
PERMISSIONS = "djangoproject.permissions.for_user"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class DjangoServer:
    """The test project on an ephemeral port: Django's threaded WSGI server (what
    runserver runs), in a thread of this process, sharing its database and settings."""

    def __init__(self) -> None:
        self.httpd = ThreadedWSGIServer(("127.0.0.1", 0), _Quiet)
        self.httpd.set_app(get_wsgi_application())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def app() -> Iterator[DjangoServer]:
    call_command("migrate", run_syncdb=True, verbosity=0)
    server = DjangoServer()
    yield server
    server.stop()


@pytest.fixture(scope="module", autouse=True)
def project() -> Iterator[None]:
    """The project's settings for these tests. The hub is stopped before they are undone,
    so a notice the hub posts late is still checked against HOOK_SECRET."""
    with override_settings(HUBBUB={"PERMISSIONS": PERMISSIONS, "HOOK_SECRET": HOOK_SECRET}):
        yield


@pytest.fixture(scope="module")
def hooks_hub(
    app: DjangoServer, project: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    """A hub whose hooks are the project's receivers; room:* and gated:* ask the app who
    may subscribe (the project has on_subscribe functions for room:* only)."""
    config = Path(tmp_path_factory.mktemp("hooks")) / "hubbub.toml"
    hooks = app.url + "/hubbub"
    config.write_text(
        f"""
[anonymous]
read = ["public:*"]

[[namespaces]]
pattern = "room:*"
subscribe_hook = true

[[namespaces]]
pattern = "gated:*"
subscribe_hook = true

[hooks]
connect_url = "{hooks}/connect"
subscribe_url = "{hooks}/subscribe"
rpc_url = "{hooks}/rpc"
events_url = "{hooks}/events"
secret = "{HOOK_SECRET}"
timeout = "5s"
"""
    )
    h = Hub("--config", str(config))
    yield h
    h.stop()


def user(name: str, staff: bool = False) -> User:
    return User.objects.create_user(name, password="pw", is_staff=staff)


def session_cookie(u: User) -> str:
    """The Cookie header of a browser where ``u`` has logged in."""
    client = Client()
    client.force_login(u)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def next_notice(client_id: str, event: str) -> Any:
    """The next event notice the app was told of for this client (notices of other tests'
    clients may arrive meanwhile, and are passed over)."""
    deadline = time.monotonic() + WAIT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {event} notice for {client_id} within {WAIT}s")
        try:
            notice = NOTICES.get(timeout=left)
        except queue.Empty:
            continue
        if notice[1] == client_id and notice[0] == event:
            return notice


# With the real hub: the hub posts, Django answers.


def test_a_session_cookie_identifies_the_user(hooks_hub, ws):
    ann = user("hook-ann")
    browser = ws(hooks_hub.ws_url, additional_headers={"Cookie": session_cookie(ann)})
    assert browser.hello["connected"]["user"] == str(ann.pk)
    # The PERMISSIONS callable decided the channels, as for a token: user:<pk> and room:*,
    # and not the anonymous public:*.
    browser.subscribe(f"user:{ann.pk}")
    assert browser.command({"subscribe": {"channel": "public:news"}})["err"] == "ACCESS_DENIED"
    # The app sees the user, and the info of connect_answer, in later hooks.
    answer = browser.command({"rpc": {"method": "echo", "data": {"x": [1, "two"]}}})
    assert answer == {
        "rpcResult": {
            "method": "echo",
            "data": {
                "client": browser.client_id,
                "user": str(ann.pk),
                "username": "hook-ann",
                "info": {"username": "hook-ann", "is_staff": False},
                "sent": {"x": [1, "two"]},
            },
        }
    }


def test_anonymous_connections(hooks_hub, ws):
    loser = user("hook-logged-out")
    client = Client()
    client.force_login(loser)
    stale = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    client.logout()
    for headers in [{}, {"Cookie": "sessionid=no-such-session; other=1"}, {"Cookie": stale}]:
        browser = ws(hooks_hub.ws_url, additional_headers=headers)
        assert "user" not in browser.hello["connected"], headers
        browser.subscribe("public:news")  # the hub's [anonymous] permissions
        answer = browser.command({"rpc": {"method": "whoami", "data": None}})
        assert answer == {"rpcResult": {"method": "whoami", "data": {"username": None}}}


def test_on_connect_refuses_and_answers_its_own_way(hooks_hub, ws):
    with connect(hooks_hub.ws_url, user_agent_header="banned", open_timeout=WAIT) as refused:
        with pytest.raises(ConnectionClosed) as closed:
            refused.recv(timeout=WAIT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403

    guest = ws(hooks_hub.ws_url, user_agent_header="guest-pass")
    assert guest.hello["connected"]["user"] == "guest"
    echoed = guest.command({"rpc": {"method": "echo", "data": 1}})["rpcResult"]["data"]
    # Not a Django user: identity.user is anonymous, the hub's user id is kept.
    assert echoed["user"] == "guest" and echoed["username"] is None
    assert echoed["info"] == {"via": "guest pass"}

    bea = user("hook-bea")
    browser = ws(
        hooks_hub.ws_url,
        additional_headers={"Cookie": session_cookie(bea)},
        user_agent_header="who-am-i",
    )
    assert browser.hello["connected"]["user"] == str(bea.pk)
    echoed = browser.command({"rpc": {"method": "echo", "data": 1}})["rpcResult"]["data"]
    assert echoed["info"] == {"via": "on_connect", "username": "hook-bea"}


def test_the_app_decides_subscriptions(hooks_hub, ws):
    cy = user("hook-cy")
    dee = user("hook-dee", staff=True)
    anon = ws(hooks_hub.ws_url)
    member = ws(hooks_hub.ws_url, additional_headers={"Cookie": session_cookie(cy)})
    staff = ws(hooks_hub.ws_url, additional_headers={"Cookie": session_cookie(dee)})

    anon.subscribe("room:lobby")  # room:* allows everyone
    denied = anon.command({"subscribe": {"channel": "room:members"}})
    assert denied == {"err": "ACCESS_DENIED", "reason": "members only"}
    member.subscribe("room:members")  # the exact name beats room:*

    closed = member.command({"subscribe": {"channel": "room:closed"}})
    assert closed == {"err": "ACCESS_DENIED", "reason": 'the app refused "room:closed"'}
    assert member.command({"subscribe": {"channel": "room:staff"}}) == {
        "err": "ACCESS_DENIED",
        "reason": "staff only",
    }
    staff.subscribe("room:staff")

    # Allowed with messages for this subscriber alone, right after its answer.
    anon.subscribe("room:welcome-1")
    assert anon.recv() == {
        "message": {
            "channel": "room:welcome-1",
            "event": "welcome",
            "data": {"to": "room:welcome-1", "before": 0},
        }
    }
    assert anon.recv() == {
        "message": {"channel": "room:welcome-1", "event": "message", "data": [1, 2]}
    }
    member.subscribe("room:welcome-1")
    assert member.recv()["message"]["data"] == {"to": "room:welcome-1", "before": 1}
    assert member.recv()["message"]["data"] == [1, 2]

    # Async functions decide the same way.
    member.subscribe("room:async-1")
    assert member.recv()["message"]["data"] == "async welcome, hook-cy"
    assert anon.command({"subscribe": {"channel": "room:async-deny"}}) == {
        "err": "ACCESS_DENIED",
        "reason": "async says no",
    }

    # No function for the channel: refused (fail closed).
    assert anon.command({"subscribe": {"channel": "gated:1"}}) == {
        "err": "ACCESS_DENIED",
        "reason": 'no subscribe handler for "gated:1"',
    }
    # A function that answers nonsense: the app failed, the hub fails closed.
    broken = anon.command({"subscribe": {"channel": "room:bad-answer"}})
    assert broken["err"] == "UNAVAILABLE"
    # The others were not held up: what is published reaches the allowed subscribers.
    hubbub.Publisher(hooks_hub.url).publish("room:lobby", "still here")
    assert anon.recv()["message"] == {
        "channel": "room:lobby",
        "event": "message",
        "data": "still here",
    }


def test_hooks_may_call_the_hub(hooks_hub, ws):
    """A subscribe hook and an rpc that call the hub's HTTP API while the hub waits for
    their answer: no deadlock, and the others are served meanwhile."""
    from djangoproject.shop import hooks

    hooks.HUB_URL = hooks_hub.url
    flo = user("hook-flo")
    watcher = ws(hooks_hub.ws_url)
    watcher.subscribe("room:lobby")
    member = ws(hooks_hub.ws_url, additional_headers={"Cookie": session_cookie(flo)})
    member.subscribe("room:busy")
    assert watcher.recv()["message"]["data"] == "from the subscribe hook"
    answer = member.command({"rpc": {"method": "look-around", "data": {"channel": "room:lobby"}}})
    assert answer == {
        "rpcResult": {
            "method": "look-around",
            "data": {"published": "room:lobby", "subscribers": 1},
        }
    }
    assert watcher.recv()["message"]["data"] == "from the rpc"


def test_rpc(hooks_hub, ws):
    eve = user("hook-eve")
    browser = ws(hooks_hub.ws_url, additional_headers={"Cookie": session_cookie(eve)})

    def rpc(method: str, data: Any = None) -> Any:
        return browser.command({"rpc": {"method": method, "data": data}})

    assert rpc("whoami") == {"rpcResult": {"method": "whoami", "data": {"username": "hook-eve"}}}
    assert rpc("refuse") == {
        "rpcResult": {"method": "refuse", "error": {"code": "NOT_ALLOWED", "reason": "no"}}
    }
    assert rpc("async-refuse") == {
        "rpcResult": {"method": "async-refuse", "error": {"code": "LATER", "reason": "not now"}}
    }
    assert rpc("no-such-method") == {
        "rpcResult": {
            "method": "no-such-method",
            "error": {"code": "METHOD_NOT_FOUND", "reason": 'no rpc method "no-such-method"'},
        }
    }
    assert rpc("staff-only") == {
        "rpcResult": {
            "method": "staff-only",
            "error": {"code": "ACCESS_DENIED", "reason": "staff only"},
        }
    }
    # None is the data null.
    assert rpc("nothing") == {"rpcResult": {"method": "nothing", "data": None}}
    # The app failed: the client is told the app is unavailable, and nothing of the error.
    for method in ("boom", "not-json"):
        failed = rpc(method)
        assert failed["err"] == "UNAVAILABLE", failed
        assert "broke" not in failed["reason"] and "RuntimeError" not in failed["reason"], failed
    assert rpc("echo", 7)["rpcResult"]["data"]["sent"] == 7


def test_the_app_hears_of_unsubscribes_logouts_and_disconnects(hooks_hub, ws):
    fay = user("hook-fay")
    browser = ws(hooks_hub.ws_url, additional_headers={"Cookie": session_cookie(fay)})
    browser.subscribe("room:lobby")
    left = browser.command({"unsubscribe": {"channel": "room:lobby"}})
    assert left == {"unsubscribed": "room:lobby"}
    assert next_notice(browser.client_id, "unsubscribe") == (
        "unsubscribe",
        browser.client_id,
        str(fay.pk),
        "room:lobby",
    )
    assert browser.command({"logout": True}) == {"loggedOut": True}
    logout = next_notice(browser.client_id, "logout")
    assert logout == ("logout", browser.client_id, str(fay.pk), None)
    browser.close()  # an async function hears of this one
    assert next_notice(browser.client_id, "disconnect")[:2] == ("disconnect", browser.client_id)


# The receivers called directly: what they refuse, over WSGI and ASGI.


def signed(body: Any, *, secret: str = HOOK_SECRET, at: Optional[int] = None) -> Dict[str, Any]:
    """Keyword arguments of a test client's post: the body, signed as the hub signs it."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = int(time.time()) if at is None else at
    return {
        "data": raw,
        "content_type": "application/json",
        "headers": {
            "X-Hubbub-Timestamp": str(timestamp),
            "X-Hubbub-Signature": hubbub.sign_hook(secret, timestamp, raw),
        },
    }


RPC = {"client": "c1", "user": None, "method": "echo", "data": [1]}


def test_urls():
    assert reverse("hubbub:connect") == "/hubbub/connect"
    assert reverse("hubbub:events") == "/hubbub/events"
    # A trailing slash in the hub's config works too.
    assert Client().post("/hubbub/rpc/", **signed(RPC)).status_code == 200


def test_signed_requests_are_answered():
    response = Client().post("/hubbub/rpc", **signed(RPC))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["data"]["sent"] == [1]
    # Within five minutes of this machine's clock, either way.
    for drift in (-290, 290):
        drifted = signed(RPC, at=int(time.time()) + drift)
        assert Client().post("/hubbub/rpc", **drifted).status_code == 200


def refused(response: Any, reason: str) -> None:
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"err": "ACCESS_DENIED", "reason": reason}


def test_bad_signatures_are_refused(caplog):
    client = Client()
    good = signed(RPC)
    for path in ("/hubbub/connect", "/hubbub/subscribe", "/hubbub/rpc", "/hubbub/events"):
        tampered = dict(good, data=good["data"].replace(b"echo", b"boom"))
        refused(client.post(path, **tampered), "bad signature")
    wrong_secret = signed(RPC, secret="not-the-secret")
    refused(client.post("/hubbub/rpc", **wrong_secret), "bad signature")
    zeros = {"X-Hubbub-Signature": "sha256=" + "0" * 64}
    forged = dict(good, headers=dict(good["headers"], **zeros))
    refused(client.post("/hubbub/rpc", **forged), "bad signature")
    # A replay: a request signed more than five minutes ago, its signature good.
    old = signed(RPC, at=int(time.time()) - 600)
    response = client.post("/hubbub/rpc", **old)
    assert response.status_code == 403
    assert "away from now" in response.json()["reason"]
    # Missing headers.
    bare = {"data": good["data"], "content_type": "application/json"}
    refused(client.post("/hubbub/rpc", **bare), "no X-Hubbub-Timestamp header")
    only_time = dict(bare, headers={"X-Hubbub-Timestamp": good["headers"]["X-Hubbub-Timestamp"]})
    refused(client.post("/hubbub/rpc", **only_time), "no X-Hubbub-Signature header")
    # Nothing ran: no refusal reached a function (echo would have answered 200).
    with caplog.at_level(logging.WARNING, logger="hubbub"):
        refused(client.post("/hubbub/events", **bare), "no X-Hubbub-Timestamp header")
    assert any("no X-Hubbub-Timestamp header" in r.getMessage() for r in caplog.records)


def test_methods_and_bodies():
    client = Client()
    for path in ("/hubbub/connect", "/hubbub/subscribe", "/hubbub/rpc", "/hubbub/events"):
        response = client.get(path)
        assert response.status_code == 405
        assert response["Allow"] == "POST"
    response = client.post("/hubbub/rpc", **signed(b"{not json"))
    assert response.status_code == 400
    assert response.json() == {"err": "INVALID_PAYLOAD", "reason": "the body is not JSON"}
    response = client.post("/hubbub/rpc", **signed([1, 2]))
    assert response.json() == {"err": "INVALID_PAYLOAD", "reason": "the body is not a JSON object"}
    response = client.post("/hubbub/rpc", **signed({"client": "c", "data": 1}))
    assert response.status_code == 400
    assert response.json()["reason"] == "the body has no 'method'"
    response = client.post("/hubbub/subscribe", **signed({"client": 1, "channel": "room:1"}))
    assert response.json()["reason"] == "the body's 'client' has the wrong type"


def test_csrf_does_not_apply():
    # The hub has no CSRF token: the receivers are exempt (the project has the middleware).
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/hubbub/rpc", **signed(RPC)).status_code == 200
    assert strict.post("/orders/", {"item": "teapot"}).status_code == 403


def test_the_secret_must_be_set(monkeypatch):
    monkeypatch.delenv("HUBBUB_HOOKS_SECRET", raising=False)
    with override_settings(HUBBUB={"PERMISSIONS": PERMISSIONS}):
        with pytest.raises(ImproperlyConfigured, match="HOOK_SECRET"):
            Client().post("/hubbub/rpc", **signed(RPC))
        # The hub's own variable will do, for a project that exports it for both.
        monkeypatch.setenv("HUBBUB_HOOKS_SECRET", HOOK_SECRET)
        assert Client().post("/hubbub/rpc", **signed(RPC)).status_code == 200


def test_the_connect_answer_ends_with_the_session():
    gil = user("hook-gil", staff=True)
    cookie = session_cookie(gil)
    body = {"client": "c2", "ip": "203.0.113.9", "headers": {"cookie": cookie, "user-agent": "x"}}
    answer = Client().post("/hubbub/connect", **signed(body)).json()
    assert answer == {
        "user": str(gil.pk),
        "read": [f"user:{gil.pk}", "room:*", "staff:*"],
        "write": ["room:*"],
        "info": {"username": "hook-gil", "is_staff": True},
        "expires_in": 3600,
    }
    session = SessionStore(cookie.split("=", 1)[1])
    session.set_expiry(120)
    session.save()
    answer = Client().post("/hubbub/connect", **signed(body)).json()
    assert 110 <= answer["expires_in"] <= 120
    anonymous = dict(body, headers={})
    assert Client().post("/hubbub/connect", **signed(anonymous)).json() == {}


def test_connect_answer():
    hal = user("hook-hal")
    assert hd.connect_answer(hal, expires_in=60) == {
        "user": str(hal.pk),
        "read": [f"user:{hal.pk}", "room:*"],
        "write": ["room:*"],
        "info": {"username": "hook-hal", "is_staff": False},
        "expires_in": 60,
    }
    from django.contrib.auth.models import AnonymousUser

    assert hd.connect_answer(AnonymousUser()) == {}
    with override_settings(HUBBUB={"TOKEN_EXPIRES_IN": None}):
        assert "expires_in" not in hd.connect_answer(hal)


def test_the_receivers_under_asgi():
    ivy = user("hook-ivy")
    cookie = session_cookie(ivy)

    async def requests() -> Any:
        client = AsyncClient()
        connect = {"client": "a1", "ip": "::1", "headers": {"cookie": cookie}}
        connected = await client.post("/hubbub/connect", **signed(connect))
        user_id = connected.json()["user"]
        sync_rpc = await client.post("/hubbub/rpc", **signed(dict(RPC, user=user_id)))
        whoami = {"client": "a1", "user": user_id, "method": "whoami", "data": None}
        async_rpc = await client.post("/hubbub/rpc", **signed(whoami))
        subscribe = {"client": "a1", "user": user_id, "channel": "room:async-2", "clients_count": 0}
        subscribed = await client.post("/hubbub/subscribe", **signed(subscribe))
        notice = await client.post(
            "/hubbub/events", **signed({"event": "logout", "client": "a1", "user": user_id})
        )
        forged = await client.post("/hubbub/rpc", **dict(signed(RPC), data=b"{}"))
        return connected, sync_rpc, async_rpc, subscribed, notice, forged

    connected, sync_rpc, async_rpc, subscribed, notice, forged = asyncio.run(requests())
    assert connected.json()["user"] == str(ivy.pk)
    assert sync_rpc.json()["data"]["username"] == "hook-ivy"
    assert async_rpc.json() == {"data": {"username": "hook-ivy"}}
    assert subscribed.json() == {"allow": True, "messages": [{"data": "async welcome, hook-ivy"}]}
    assert notice.status_code == 204
    assert next_notice("a1", "logout") == ("logout", "a1", str(ivy.pk), None)
    assert forged.status_code == 403


# The registry.


def test_registrations_do_not_clash_silently():
    def echo(identity, data):  # another function under a taken name
        return data

    with pytest.raises(ValueError, match="rpc 'echo' is already djangoproject.shop.hooks.echo"):
        hd.rpc("echo")(echo)
    with pytest.raises(ValueError, match="on_subscribe"):
        hd.on_subscribe("room:*")(echo)
    with pytest.raises(ValueError, match="on_connect"):
        hd.on_connect(echo)
    with pytest.raises(ValueError, match="the events are unsubscribe, disconnect, logout"):
        hd.on_event("connect")
    with pytest.raises(TypeError):
        hd.rpc("")
    with pytest.raises(TypeError):
        hd.RpcError("")


def test_the_most_specific_pattern_decides():
    from hubbub.django.hooks import _Registry

    registry = _Registry()

    def fn(name: str) -> Any:
        def decide(identity: Any, subscription: Any) -> str:
            return name

        return decide

    for pattern in ["*", "room:*", "*:1", "room:1", "room:*:x", "room:a*"]:
        registry.subscribe.append((pattern, fn(pattern)))
    channels = ["room:1", "room:2", "room:a:x", "room:ab", "hall:1", "x"]
    chosen = {c: registry.subscriber(c)[0] for c in channels}
    assert chosen == {
        "room:1": "room:1",
        "room:2": "room:*",
        "room:a:x": "room:*:x",
        "room:ab": "room:a*",
        "hall:1": "*:1",
        "x": "*",
    }
    # Between equals, the first registered.
    registry.subscribe[:] = [("a:*", fn("first")), ("*:b", fn("second"))]
    assert registry.subscriber("a:b")[0] == "a:*"
    assert _Registry().subscriber("room:1") is None
