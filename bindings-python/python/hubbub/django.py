"""hubbub in a Django project.

Settings (every key optional)::

    HUBBUB = {
        "URL": "http://127.0.0.1:9772",      # else HUBBUB_URL, else this default
        "API_KEY": "...",                     # else HUBBUB_API_KEY, else none
        "TIMEOUT": 5.0,                       # seconds per call
        "TOKEN_SECRET": "...",                # the hub's token_secret, for connection_token()
        "TOKEN_EXPIRES_IN": 3600,             # seconds
        "PERMISSIONS": "myapp.hubbub.permissions",  # callable(user) -> {"read": [...], "write": [...]}
    }

Use::

    from hubbub.django import publish_on_commit, connection_token

    with transaction.atomic():
        order = Order.objects.create(...)
        publish_on_commit(f"user:{order.user_id}", {"order": order.pk}, event="created")

    def hubbub_token(request):                     # hand the browser its token
        return JsonResponse({"token": connection_token(request.user)})
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Optional

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import transaction
from django.utils.module_loading import import_string

import hubbub

__all__ = [
    "async_publisher",
    "connection_token",
    "default_permissions",
    "publish_on_commit",
    "publisher",
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
    conf = _settings()
    secret = conf.get("TOKEN_SECRET")
    if not secret:
        raise ImproperlyConfigured("HUBBUB['TOKEN_SECRET'] is not set")
    permissions = _permissions_function()(user) or {}
    if expires_in is None:
        expires_in = conf.get("TOKEN_EXPIRES_IN", 3600)
    return hubbub.token(
        secret,
        str(user.pk),
        read=list(permissions.get("read", ())),
        write=list(permissions.get("write", ())),
        info={"username": user.get_username(), "is_staff": bool(user.is_staff)},
        expires_in=expires_in,
    )
