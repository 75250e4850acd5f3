"""hubbub in a Django project.

Settings (every key optional)::

    HUBBUB = {
        "URL": "http://127.0.0.1:9772",      # else HUBBUB_URL, else this default
        "API_KEY": "...",                     # else HUBBUB_API_KEY, else none
        "TIMEOUT": 5.0,                       # seconds per call
        "TOKEN_SECRET": "...",                # the hub's token_secret, for connection_token()
        "TOKEN_EXPIRES_IN": 3600,             # seconds
        "PERMISSIONS": "myapp.hubbub.permissions",  # callable(user) -> {"read": [...], "write": [...]}
        "HOOK_SECRET": "...",                 # the hub's [hooks] secret, for the hook receivers
    }                                         #   (else HUBBUB_HOOKS_SECRET)

Publishing straight into the hubs' Redis (``engine = "redis"``), with no HTTP hop: a
``redis://`` URL, with the hubs' namespaces and prefix (see "Publishing through Redis" in
docs/python.md)::

    HUBBUB = {
        "URL": "redis://publisher:...@10.0.0.5:6379/0",   # the hubs' redis_url
        "NAMESPACES": [{"pattern": "room:*", "history_size": 100}],  # the hubs' namespaces
        "REDIS_PREFIX": "hubbub",                         # the hubs' redis_prefix (default)
        ...
    }

Use::

    from hubbub.django import publish_on_commit, connection_token

    with transaction.atomic():
        order = Order.objects.create(...)
        publish_on_commit(f"user:{order.user_id}", {"order": order.pk}, event="created")

    def hubbub_token(request):                     # hand the browser its token
        return JsonResponse({"token": connection_token(request.user)})

    def room(request, pk):                         # a page and its stream position, together
        position = stream_position(f"room:{pk}")   # first: then nothing after it is missed
        messages = Message.objects.filter(room=pk)
        return render(request, "room.html", {"messages": messages, "position": position})

The hub's app hooks (``[hooks]`` in its config) are received by the views of
``hubbub.django.urls`` (``path("hubbub/", include("hubbub.django.urls"))``), which call the
app's functions registered with ``@rpc(name)``, ``@on_subscribe(pattern)``,
``@on_event(name)`` and ``@on_connect``; ``hubbub.django.hooks`` describes them::

    from hubbub.django import Deny, RpcError, on_event, on_subscribe, rpc

    @rpc("rename")
    def rename(identity, data):
        if not identity.user.is_authenticated:
            raise RpcError("LOGIN_REQUIRED", "log in first")
        ...
        return {"renamed": True}

    @on_subscribe("room:*")
    def join(identity, subscription):
        return identity.user_id is not None or Deny("members only")
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Optional, TypedDict

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import transaction
from django.utils.module_loading import import_string

import hubbub

__all__ = [
    "Deny",
    "Event",
    "Identity",
    "RpcError",
    "StreamPosition",
    "Subscription",
    "async_publisher",
    "async_stream_position",
    "connect_answer",
    "connection_token",
    "default_permissions",
    "on_connect",
    "on_event",
    "on_subscribe",
    "publish_on_commit",
    "publisher",
    "rpc",
    "stream_position",
]

logger = logging.getLogger("hubbub")

_lock = threading.Lock()
_publisher: Optional[hubbub.Publisher] = None
_async_publisher: Optional[hubbub.AsyncPublisher] = None


def _settings() -> Dict[str, Any]:
    conf = getattr(settings, "HUBBUB", None) or {}
    if not isinstance(conf, dict):
        raise ImproperlyConfigured("settings.HUBBUB must be a dict")
    return conf


def _publisher_arguments() -> Dict[str, Any]:
    conf = _settings()
    return {
        "url": conf.get("URL"),
        "api_key": conf.get("API_KEY"),
        "timeout": float(conf.get("TIMEOUT", 5.0)),
        "namespaces": conf.get("NAMESPACES"),
        "redis_prefix": conf.get("REDIS_PREFIX"),
    }


def publisher() -> hubbub.Publisher:
    """The project's shared ``hubbub.Publisher``, made from ``settings.HUBBUB`` on first use.

    It is safe to use from every thread of the process.
    """
    global _publisher
    with _lock:
        if _publisher is None:
            _publisher = hubbub.Publisher(**_publisher_arguments())
        return _publisher


def async_publisher() -> hubbub.AsyncPublisher:
    """The project's shared ``hubbub.AsyncPublisher``, for async views."""
    global _async_publisher
    with _lock:
        if _async_publisher is None:
            _async_publisher = hubbub.AsyncPublisher(**_publisher_arguments())
        return _async_publisher


def _forget_publishers(*, setting: str, **kwargs: Any) -> None:
    """Drops the shared publishers when a test overrides ``settings.HUBBUB``."""
    global _publisher, _async_publisher
    if setting == "HUBBUB":
        with _lock:
            _publisher = None
            _async_publisher = None


setting_changed.connect(_forget_publishers)


def publish_on_commit(
    channel: str, data: Any, event: str = "message", *, using: Optional[str] = None
) -> None:
    """Publishes ``data`` to ``channel`` once the current transaction commits.

    Nothing is published if it rolls back (or if the savepoint around the call does).
    Outside a transaction it publishes at once. ``data`` is encoded now, so a bad value
    raises ``TypeError`` here and later changes to it are not sent. The transaction has
    already committed when the publication goes out, so a hub that cannot be reached
    then is logged on the ``hubbub`` logger rather than raised.
    """
    encoded = hubbub.Json(data)

    def send() -> None:
        try:
            publisher().publish(channel, encoded, event)
        except hubbub.HubbubError:
            logger.exception("hubbub: publishing to %r after the commit failed", channel)

    transaction.on_commit(send, using=using)


class StreamPosition(TypedDict):
    """A place in a channel's stream: what a page passes as ``since`` when it subscribes."""

    epoch: str
    offset: int


def stream_position(channel: str) -> StreamPosition:
    """The current position of ``channel``'s stream: ``{"epoch": ..., "offset": ...}``.

    A view reads it *before* it reads the state the page shows, renders both, and the page
    subscribes with ``since`` set to it: the hub then delivers everything published after
    the position, so a change made between the render and the subscription is not missed
    (a change made between reading the position and reading the state arrives twice: the
    page's updates should be idempotent). It is the channel's history with ``limit=0``, so
    the channel's namespace must keep history: ``hubbub.InvalidChannel`` otherwise, and
    ``hubbub.Unavailable`` when the hub cannot be reached.
    """
    page = publisher().history(channel, limit=0)
    return {"epoch": page["epoch"], "offset": page["offset"]}


async def async_stream_position(channel: str) -> StreamPosition:
    """``stream_position`` for async views, with the shared ``AsyncPublisher``."""
    page = await async_publisher().history(channel, limit=0)
    return {"epoch": page["epoch"], "offset": page["offset"]}


def default_permissions(user: Any) -> Dict[str, List[str]]:
    """The channels a user's token allows when ``PERMISSIONS`` is not set.

    Read: ``public:*``, the user's own ``user:<pk>``, and ``staff:*`` for staff.
    Write: nothing (browsers receive; the Django app publishes).
    """
    read = ["public:*", f"user:{user.pk}"]
    if getattr(user, "is_staff", False):
        read.append("staff:*")
    return {"read": read, "write": []}


def _permissions_function() -> Callable[[Any], Any]:
    path = _settings().get("PERMISSIONS")
    if not path:
        return default_permissions
    if callable(path):
        return path
    try:
        return import_string(path)
    except ImportError as e:
        raise ImproperlyConfigured(f"HUBBUB['PERMISSIONS'] = {path!r} cannot be imported: {e}")


def _expiry_seconds(expires_in: Any) -> Optional[float]:
    """``expires_in`` (seconds, a timedelta, or None for ``TOKEN_EXPIRES_IN``) as seconds,
    or None for no expiry."""
    if expires_in is None:
        expires_in = _settings().get("TOKEN_EXPIRES_IN", 3600)
    if expires_in is None:
        return None
    if hasattr(expires_in, "total_seconds"):
        return float(expires_in.total_seconds())
    return float(expires_in)


def _identity_of(user: Any) -> Dict[str, Any]:
    """What the hub is told of a logged-in user, by a token or a connect answer alike."""
    permissions = _permissions_function()(user) or {}
    return {
        "user": str(user.pk),
        "read": list(permissions.get("read", ())),
        "write": list(permissions.get("write", ())),
        "info": {"username": user.get_username(), "is_staff": bool(user.is_staff)},
    }


def connection_token(user: Any, *, expires_in: Optional[float] = None) -> str:
    """Mints the token a browser connects to the hub with, for a logged-in ``user``.

    Claims: ``sub`` is ``str(user.pk)``; ``info`` is ``{"username", "is_staff"}``;
    ``read`` and ``write`` come from the ``PERMISSIONS`` callable, which takes the user
    and returns ``{"read": [...], "write": [...]}`` (``default_permissions`` when unset).
    The token is signed with ``TOKEN_SECRET`` and lasts ``expires_in`` seconds (default
    ``TOKEN_EXPIRES_IN``, else one hour).
    """
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        raise ValueError("connection_token() needs an authenticated user")
    secret = _settings().get("TOKEN_SECRET")
    if not secret:
        raise ImproperlyConfigured("HUBBUB['TOKEN_SECRET'] is not set")
    identity = _identity_of(user)
    return hubbub.token(
        secret,
        identity["user"],
        read=identity["read"],
        write=identity["write"],
        info=identity["info"],
        expires_in=_expiry_seconds(expires_in),
    )


def connect_answer(user: Any, *, expires_in: Optional[float] = None) -> Dict[str, Any]:
    """The connect hook's answer for ``user``: what ``connection_token`` would put in a
    token, as ``{"user": str(pk), "read": [...], "write": [...], "info": {...},
    "expires_in": seconds}``, or ``{}`` (anonymous) for a user who is not authenticated.

    ``expires_in`` defaults to ``TOKEN_EXPIRES_IN``, else one hour; the connection's
    identity ends then (the hub closes it with 4001, and a client that reconnects is asked
    about again). The receiver's own answer also ends it with the session.
    """
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return {}
    answer = _identity_of(user)
    seconds = _expiry_seconds(expires_in)
    if seconds is not None:
        answer["expires_in"] = max(0, int(seconds))
    return answer


# The hook receivers and their registry; imported last, as they use the helpers above.
from hubbub.django.hooks import (  # noqa: E402
    Deny,
    Event,
    Identity,
    RpcError,
    Subscription,
    on_connect,
    on_event,
    on_subscribe,
    rpc,
)
