"""What the hub's hooks call in this project: rpc methods, subscription decisions, event
listeners and a connect hook, plain and async, the way a Django app writes them."""

import asyncio
import queue

import hubbub
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied

from hubbub.django import (
    Deny,
    RpcError,
    connect_answer,
    on_connect,
    on_event,
    on_subscribe,
    rpc,
)

#: Every event notice the app was told of, as (event, client, user id, channel), for the
#: tests to wait on.
NOTICES: "queue.Queue[tuple]" = queue.Queue()

#: The hub of the tests, for the functions that call its API from inside a hook (set by
#: the tests).
HUB_URL = ""


@on_connect
async def connect(request, client):
    """The usual answer (the session's user), except for a few test user agents."""
    agent = request.headers.get("User-Agent", "")
    if agent == "banned":
        raise Deny("this agent is banned")
    if agent == "guest-pass":
        return {"user": "guest", "read": ["public:*"], "info": {"via": "guest pass"}}
    if agent == "who-am-i":
        user = await request.auser()
        answer = await sync_to_async(connect_answer)(user, expires_in=600)
        if answer:
            answer["info"] = {"via": "on_connect", "username": user.get_username()}
        return answer
    return None


@rpc("echo")
def echo(identity, data):
    user = identity.user
    return {
        "client": identity.client,
        "user": identity.user_id,
        "username": user.get_username() if user.is_authenticated else None,
        "info": identity.info,
        "sent": data,
    }


@rpc("look-around")
def look_around(identity, data):
    # Publishes and reads the hub's figures from inside an rpc.
    hub = hubbub.Publisher(HUB_URL)
    published = hub.publish(data["channel"], "from the rpc")
    channels = hub.channels()
    return {
        "published": published["published"],
        "subscribers": channels["channels"][data["channel"]]["subscribers"],
    }


@rpc("refuse")
def refuse(identity, data):
    raise RpcError("NOT_ALLOWED", "no")


@rpc("nothing")
def nothing(identity, data):
    return None


@rpc("whoami")
async def whoami(identity, data):
    user = await identity.auser()
    await asyncio.sleep(0)  # a real await on the event loop
    return {"username": user.get_username() if user.is_authenticated else None}


@rpc("async-refuse")
async def async_refuse(identity, data):
    raise RpcError("LATER", "not now")


@rpc("staff-only")
def staff_only(identity, data):
    if not identity.user.is_staff:
        raise PermissionDenied("staff only")
    return "welcome"


@rpc("boom")
def boom(identity, data):
    raise RuntimeError("the app broke")


@rpc("not-json")
def not_json(identity, data):
    return {1, 2}


@on_subscribe("room:*")
def any_room(identity, subscription):
    return None


@on_subscribe("room:members")
def members(identity, subscription):
    return identity.user_id is not None or Deny("members only")


@on_subscribe("room:closed")
def closed(identity, subscription):
    return False


@on_subscribe("room:staff")
def staff(identity, subscription):
    if not identity.user.is_staff:
        raise PermissionDenied("staff only")
    return True


@on_subscribe("room:busy")
def busy(identity, subscription):
    # The hub waits for this answer while the app calls its HTTP API: no deadlock.
    hubbub.Publisher(HUB_URL).publish("room:lobby", "from the subscribe hook")
    return True


@on_subscribe("room:welcome-*")
def welcome(identity, subscription):
    return [
        {
            "event": "welcome",
            "data": {"to": subscription.channel, "before": subscription.clients_count},
        },
        {"data": [1, 2]},
    ]


@on_subscribe("room:async-*")
async def async_room(identity, subscription):
    user = await identity.auser()
    if subscription.channel.endswith("-deny"):
        return Deny("async says no")
    name = user.get_username() if user.is_authenticated else "anonymous"
    return [{"data": f"async welcome, {name}"}]


@on_subscribe("room:bad-answer")
def bad_answer(identity, subscription):
    return "yes"


@on_event("unsubscribe")
def unsubscribed(identity, event):
    NOTICES.put((event.name, identity.client, identity.user_id, event.channel))


@on_event("logout")
def logged_out(identity, event):
    NOTICES.put((event.name, identity.client, identity.user_id, event.channel))


@on_event("disconnect")
async def disconnected(identity, event):
    await asyncio.sleep(0)
    NOTICES.put((event.name, identity.client, identity.user_id, event.channel))
