"""Typed use of hubbub, checked by mypy --strict in test_stubs.py (never run)."""

from typing import Dict, Optional

import hubbub

p = hubbub.Publisher("http://127.0.0.1:9772", api_key="k", timeout=2.0)
a: str = p.publish("c", {"x": 1})["published"]
n: int = p.direct(1, user="u")["delivered"]
subs: int = p.channels()["channels"]["c"]["subscribers"]
published = p.publish("room:1", "hi")
where: int = published.get("offset", 0)
epoch: str = published.get("epoch", "")
node: str = p.info()["nodes"][0]["id"]
page = p.history("room:1", limit=10, since=where)
last: int = page["offset"]
for message in p.history("room:1")["messages"]:
    data: object = message["data"]
    event: str = message["event"]
    offset: int = message.get("offset", 0)
    sender: str = message.get("from", "the app")
position = p.history("room:1", 0)
for present in p.presence("room:1")["clients"]:
    client_id: str = present["client"]
    user: Optional[str] = present["user"]
    name: object = present.get("info", {}).get("name")
users: int = p.presence_stats("room:1")["users"]
through_redis = hubbub.Publisher(
    "redis://127.0.0.1:6379/0",
    namespaces=[{"pattern": "room:*", "history_size": 100, "history_ttl": "10m"}],
    redis_prefix="hubbub",
)
async_through_redis = hubbub.AsyncPublisher("redis://127.0.0.1:6379/0", namespaces=[])
t: str = hubbub.token("s", 42, read=["a"], expires_in=None)
claims = hubbub.verify_token("s", t)
sub: str = claims["sub"]
signature: str = hubbub.sign_hook("s", 1700000000, b"{}")
hubbub.verify_hook(b"s", "1700000000", signature, b"{}", now=1700000000)
hubbub.verify_hook("s", None, None, "{}")
header: str = hubbub.HOOK_SIGNATURE_HEADER
matches: bool = hubbub.pattern_matches("room:*", "room:1")
try:
    p.info()
except hubbub.Unavailable as e:
    code = e.code
except hubbub.InvalidChannel as e:
    status: Optional[int] = e.status


async def main() -> None:
    async with hubbub.AsyncPublisher() as ap:
        r: str = (await ap.publish("c", [1, 2]))["published"]
        info: int = (await ap.info())["uptime_s"]
        at: int = (await ap.history("room:1", limit=0))["offset"]
        who: str = (await ap.presence("room:1"))["clients"][0]["client"]
        count: int = (await ap.presence_stats("room:1"))["clients"]


def render(channel: str) -> Dict[str, object]:
    from hubbub.django import StreamPosition, stream_position

    position: StreamPosition = stream_position(channel)
    return {"epoch": position["epoch"], "offset": position["offset"]}


async def render_async(channel: str) -> int:
    from hubbub.django import async_stream_position

    return (await async_stream_position(channel))["offset"]



def hook_functions() -> None:
    from hubbub.django import (
        Deny,
        Event,
        Identity,
        RpcError,
        Subscription,
        on_event,
        on_subscribe,
        rpc,
    )

    @rpc("rename")
    def rename(identity: Identity, data: Dict[str, str]) -> Dict[str, bool]:
        if identity.user_id is None:
            raise RpcError("LOGIN_REQUIRED", "log in first")
        return {"renamed": True}

    @on_subscribe("room:*")
    async def join(identity: Identity, subscription: Subscription) -> "bool | Deny":
        user = await identity.auser()
        count: int = subscription.clients_count
        return bool(user.is_authenticated and count < 100) or Deny("the room is full")

    @on_event("disconnect")
    def gone(identity: Identity, event: Event) -> None:
        channel: Optional[str] = event.channel
        client: str = identity.client

    renamed: Dict[str, bool] = rename(Identity("c", "42"), {"name": "x"})
