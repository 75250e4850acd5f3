"""hubbub: publish realtime events to a hubbub hub from Python.

Quick start, against ``hubbub`` running in zero-config mode on this machine::

    >>> from hubbub import Publisher
    >>> Publisher().publish("hello", {"hello": "world"})
    {'published': 'hello'}

``Publisher`` blocks (releasing the GIL), ``AsyncPublisher`` has the same methods as
coroutines (publishing, and reading a channel's history and presence), ``token()`` mints
the tokens browsers connect with, ``verify_hook()`` checks the signature of a request the
hub posts to the app's hooks (``sign_hook()`` makes one, for tests), and ``hubbub.django``
wires it all into a Django project, the hook receivers included. The HTTP calls, the JSON
encoding, the tokens and the hook signatures are done in Rust, by hubbub-publisher (the
one publisher client of hubbub, under the Node package and Rust apps too) and hubbub's own
core, the code the hub itself runs.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, cast

from hubbub._native import (
    HOOK_MAX_AGE,
    HOOK_SIGNATURE_HEADER,
    HOOK_TIMESTAMP_HEADER,
    AccessDenied,
    CallbackPublisher as _CallbackPublisher,
    HubbubError,
    InvalidChannel,
    InvalidClient,
    InvalidCredentials,
    InvalidPayload,
    Json,
    LimitExceeded,
    Publisher,
    Timeout,
    TokenExpired,
    Unavailable,
    __version__,
    pattern_matches,
    sign_hook,
    token,
    verify_hook,
    verify_token,
)

if TYPE_CHECKING:
    from hubbub._native import (
        BroadcastPublished,
        Channels,
        DirectDelivered,
        Disconnected,
        HistoryPage,
        Info,
        Namespace,
        Presence,
        PresenceStats,
        Published,
    )

__all__ = [
    "HOOK_MAX_AGE",
    "HOOK_SIGNATURE_HEADER",
    "HOOK_TIMESTAMP_HEADER",
    "AccessDenied",
    "AsyncPublisher",
    "HubbubError",
    "InvalidChannel",
    "InvalidClient",
    "InvalidCredentials",
    "InvalidPayload",
    "Json",
    "LimitExceeded",
    "Publisher",
    "Timeout",
    "TokenExpired",
    "Unavailable",
    "__version__",
    "pattern_matches",
    "sign_hook",
    "token",
    "verify_hook",
    "verify_token",
]


def _settle(future: "asyncio.Future[Any]", answer: Any, error: Optional[BaseException]) -> None:
    if future.done():  # cancelled while the call was on its way
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(answer)


class AsyncPublisher:
    """Publishes to a hubbub hub from asyncio code (Django async views included).

    ``AsyncPublisher(url=None, api_key=None, timeout=5.0, *, namespaces=None,
    redis_prefix=None)`` takes the arguments of ``Publisher`` (a ``redis://`` URL publishes
    straight into the hubs' Redis) and has the same methods, as coroutines. The requests run on hubbub's
    own I/O thread, so awaiting one never blocks the event loop, and one instance may be
    used from any number of tasks and event loops. ``async with AsyncPublisher() as p:``
    works too; the connection pool is shared by the whole process, so there is nothing to
    close on the way out.
    """

    __slots__ = ("_native",)

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        timeout: float = 5.0,
        *,
        namespaces: Optional[Sequence[Namespace]] = None,
        redis_prefix: Optional[str] = None,
    ) -> None:
        self._native = _CallbackPublisher(
            url, api_key, timeout, namespaces=namespaces, redis_prefix=redis_prefix
        )

    @property
    def url(self) -> str:
        """The hub's base URL (a Redis URL without its password)."""
        return self._native.url

    @property
    def timeout(self) -> float:
        """The time limit of each call, in seconds."""
        return self._native.timeout

    def __repr__(self) -> str:
        return f"AsyncPublisher(url={self.url!r})"

    async def __aenter__(self) -> "AsyncPublisher":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def _call(self, start: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def done(answer: Any, error: Optional[BaseException]) -> None:
            # Called on hubbub's I/O thread.
            try:
                loop.call_soon_threadsafe(_settle, future, answer, error)
            except RuntimeError:  # the event loop was closed meanwhile
                pass

        pending = start(done, *args)
        try:
            return await future
        except asyncio.CancelledError:
            pending.cancel()
            raise

    async def publish(self, channel: str, data: Any, event: str = "message") -> Published:
        """Publishes ``data`` (any JSON value) to every subscriber of ``channel``."""
        return cast("Published", await self._call(self._native.publish, channel, data, event))

    async def broadcast(
        self, channels: Sequence[str], data: Any, event: str = "message"
    ) -> BroadcastPublished:
        """Publishes ``data`` to every subscriber of each of ``channels``."""
        return cast(
            "BroadcastPublished",
            await self._call(self._native.broadcast, channels, data, event),
        )

    async def direct(
        self,
        data: Any,
        *,
        client: Optional[str] = None,
        user: Optional[str] = None,
        event: str = "message",
    ) -> DirectDelivered:
        """Sends ``data`` to one connection (``client=``) or every connection of a user
        (``user=``); raises ``InvalidClient`` when nobody matched."""
        return cast(
            "DirectDelivered", await self._call(self._native.direct, data, client, user, event)
        )

    async def disconnect(
        self, *, client: Optional[str] = None, user: Optional[str] = None
    ) -> Disconnected:
        """Closes one connection (``client=``) or every connection of a user (``user=``)."""
        return cast("Disconnected", await self._call(self._native.disconnect, client, user))

    async def channels(self) -> Channels:
        """The channels that have subscribers, with their subscriber counts."""
        return cast("Channels", await self._call(self._native.channels))

    async def info(self) -> Info:
        """The hub's version and counters."""
        return cast("Info", await self._call(self._native.info))

    async def history(
        self, channel: str, limit: Optional[int] = None, since: Optional[int] = None
    ) -> HistoryPage:
        """The channel's position and the messages it keeps, oldest first (``limit=0``:
        just the position); raises ``InvalidChannel`` where it keeps no history."""
        return cast(
            "HistoryPage", await self._call(self._native.history, channel, limit, since)
        )

    async def presence(self, channel: str) -> Presence:
        """Every connection subscribed to ``channel``, with its user and info; raises
        ``InvalidChannel`` where the channel has no presence."""
        return cast("Presence", await self._call(self._native.presence, channel))

    async def presence_stats(self, channel: str) -> PresenceStats:
        """How many connections and distinct users are subscribed to ``channel``."""
        return cast("PresenceStats", await self._call(self._native.presence_stats, channel))
