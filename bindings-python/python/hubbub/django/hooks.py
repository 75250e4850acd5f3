"""hubbub's app hooks received by Django (PROTOCOL.md section 10): the four views the hub
posts to, and the registry of the app's functions they call.

Wire them up with ``path("hubbub/", include("hubbub.django.urls"))`` and set
``HUBBUB["HOOK_SECRET"]`` to the hub's ``[hooks] secret``. Every view checks the request's
signature first, with ``hubbub.verify_hook`` (hubbub-core's check, the code the hub signs
with): a missing or bad signature, or a timestamp more than five minutes away, is answered
403 ``{"err": "ACCESS_DENIED", "reason": ...}`` before the body is parsed. Then:

- ``connect``: the forwarded ``Cookie`` header loads the Django session and user the way
  ``AuthenticationMiddleware`` does; the answer is the user's id, their channels (the
  ``PERMISSIONS`` callable, as for ``connection_token``) and info, or ``{}`` when
  anonymous. ``@on_connect`` replaces or refines that.
- ``subscribe``: the ``@on_subscribe(pattern)`` function whose pattern matches the channel
  most specifically decides; where none matches, the subscription is refused.
- ``rpc``: the ``@rpc(name)`` function of that name answers; an unknown name answers the
  error ``METHOD_NOT_FOUND``.
- ``events``: every ``@on_event(name)`` function of that event is told.

The decorators register a function when its module is imported: import the module in
your app's ``AppConfig.ready()``. Functions may be plain or ``async def``. The views are plain Django views: under WSGI an
async function runs on an event loop of its own, under ASGI on the server's loop (Django
runs the view itself in a thread, as it runs every sync view).

An exception other than the ones described (``RpcError``, ``Deny``, Django's
``PermissionDenied``) propagates: Django answers 500 and logs it, and the hub fails closed
(the client's command answers ``UNAVAILABLE``; a connection is closed with 4503; an event
notice is posted again, up to three times). The client is told nothing of the exception.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, TypeVar, Union

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.http.cookie import parse_cookie
from django.utils.functional import SimpleLazyObject
from django.views.decorators.csrf import csrf_exempt

import hubbub
from hubbub.django import _settings, connect_answer

__all__ = [
    "EVENTS",
    "METHOD_NOT_FOUND",
    "Deny",
    "Event",
    "Identity",
    "RpcError",
    "Subscription",
    "on_connect",
    "on_event",
    "on_subscribe",
    "receive_connect",
    "receive_events",
    "receive_rpc",
    "receive_subscribe",
    "rpc",
]

logger = logging.getLogger("hubbub")

#: The events the hub tells the app of.
EVENTS = ("unsubscribe", "disconnect", "logout")

#: The error code of an rpc whose method no ``@rpc`` function answers.
METHOD_NOT_FOUND = "METHOD_NOT_FOUND"

F = TypeVar("F", bound=Callable[..., Any])


class RpcError(Exception):
    """Raised by an ``@rpc`` function: the client receives ``{"rpcResult": {"method": m,
    "error": {"code": code, "reason": reason}}}``."""

    def __init__(self, code: str, reason: Optional[str] = None) -> None:
        if not isinstance(code, str) or not code:
            raise TypeError("an RpcError's code is a non-empty str, e.g. 'NOT_ALLOWED'")
        super().__init__(code if reason is None else f"{code}: {reason}")
        self.code = code
        self.reason = reason

    def answer(self) -> Dict[str, Any]:
        """The error as the rpc answer carries it."""
        error: Dict[str, Any] = {"code": self.code}
        if self.reason is not None:
            error["reason"] = self.reason
        return error


class Deny(Exception):
    """A refusal with a reason the client sees. An ``@on_subscribe`` function returns or
    raises it (the client's subscribe answers ``ACCESS_DENIED`` with the reason); an
    ``@on_connect`` function raises it (the connection is closed with 4403)."""

    def __init__(self, reason: Optional[str] = None) -> None:
        super().__init__(reason or "denied")
        self.reason = reason


_UNLOADED: Any = object()


def _load_user(user_id: Optional[str]) -> Any:
    """The active Django user whose primary key is ``user_id``, else ``AnonymousUser``."""
    # Imported here: the auth models need the app registry, which is not ready yet when a
    # project's settings or AppConfig import hubbub.django.
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import ValidationError

    if user_id is None:
        return AnonymousUser()
    model = get_user_model()
    try:
        user = model._default_manager.get(pk=user_id)
    except (model.DoesNotExist, ValueError, TypeError, ValidationError):
        # Not a Django user: a [[users]] entry of the hub's config, a token minted for
        # something else, or a user deleted since.
        return AnonymousUser()
    # As Django's ModelBackend: a deactivated user is nobody.
    if not getattr(user, "is_active", True):
        return AnonymousUser()
    return user


class Identity:
    """Who asked: the connection (``client``), its user id as the hub knows it
    (``user_id``, ``None`` when anonymous) and its info (the connect answer's or the
    token's ``info``; ``None`` for event notices, which do not carry it).

    ``user`` is the Django user of ``user_id``, loaded on first use: ``AnonymousUser`` when
    the connection is anonymous, or the id is not an active user's primary key. Async
    functions ``await identity.auser()`` instead (the database is not used from an event
    loop).
    """

    __slots__ = ("client", "user_id", "info", "_user")

    def __init__(self, client: str, user_id: Optional[str], info: Any = None) -> None:
        self.client = client
        self.user_id = user_id
        self.info = info
        self._user = _UNLOADED

    @property
    def user(self) -> Any:
        if self._user is _UNLOADED:
            self._user = _load_user(self.user_id)
        return self._user

    async def auser(self) -> Any:
        """``user``, for async functions."""
        if self._user is _UNLOADED:
            self._user = await sync_to_async(_load_user)(self.user_id)
        return self._user

    def __repr__(self) -> str:
        return f"Identity(client={self.client!r}, user_id={self.user_id!r})"


@dataclass(frozen=True)
class Subscription:
    """The subscription an ``@on_subscribe`` function decides on: the ``channel``, the
    ``pattern`` that chose the function, and who is in the channel already (the first
    1,000 client ids, and their number)."""

    channel: str
    pattern: str
    clients_in_channel: List[str] = field(default_factory=list)
    clients_count: int = 0


@dataclass(frozen=True)
class Event:
    """An event notice: ``name`` is ``"unsubscribe"``, ``"disconnect"`` or ``"logout"``;
    ``channel`` and who is left in it for ``unsubscribe``."""

    name: str
    channel: Optional[str] = None
    clients_in_channel: List[str] = field(default_factory=list)
    clients_count: int = 0


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    """Whether ``b`` is ``a`` defined again (its module imported a second time), which
    replaces it rather than clashing with it."""
    return a is b or (
        getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
    )


def _describe(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class _Registry:
    """The app's functions, registered by the decorators when their modules are imported."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connect: Optional[Callable[..., Any]] = None
        self.rpc: Dict[str, Callable[..., Any]] = {}
        self.subscribe: List[Tuple[str, Callable[..., Any]]] = []
        self.events: Dict[str, List[Callable[..., Any]]] = {name: [] for name in EVENTS}

    def subscriber(self, channel: str) -> Optional[Tuple[str, Callable[..., Any]]]:
        """The most specific match: the pattern with the most characters other than
        ``*``; between equals, the one registered first."""
        best: Optional[Tuple[int, str, Callable[..., Any]]] = None
        for pattern, fn in self.subscribe:
            if hubbub.pattern_matches(pattern, channel):
                literal = len(pattern) - pattern.count("*")
                if best is None or literal > best[0]:
                    best = (literal, pattern, fn)
        return None if best is None else (best[1], best[2])


_registry = _Registry()


def rpc(name: str) -> Callable[[F], F]:
    """Registers ``fn(identity, data)`` as the rpc method ``name``.

    It returns the answer's data (any JSON value, as for ``publish``; ``None`` is
    ``null``) or raises ``RpcError(code, reason)``; Django's ``PermissionDenied`` is the
    error ``ACCESS_DENIED`` with its message as the reason. One function per name.
    """
    if not isinstance(name, str) or not name:
        raise TypeError("an rpc method's name is a non-empty str")

    def register(fn: F) -> F:
        with _registry.lock:
            known = _registry.rpc.get(name)
            if known is not None and not _same_function(known, fn):
                raise ValueError(f"rpc {name!r} is already {_describe(known)}")
            _registry.rpc[name] = fn
        return fn

    return register


def on_subscribe(pattern: str) -> Callable[[F], F]:
    """Registers ``fn(identity, subscription)`` to decide on subscriptions to the channels
    ``pattern`` matches (``*`` matches any run of characters, as in the hub's config).

    It returns ``True`` or ``None`` to allow; ``False``, or a ``Deny(reason)`` (returned or
    raised), or Django's ``PermissionDenied`` to refuse; or a list of messages
    (``{"event": "e", "data": X}``, ``event`` defaulting to ``"message"``) to allow and
    send them to this subscriber alone, right after its ``subscribed``. Where several
    patterns match a channel, the most specific decides: the one with the most characters
    other than ``*`` (an exact channel name beats every pattern), and between equals the
    one registered first. Where none matches, the subscription is refused.
    """
    if not isinstance(pattern, str) or not pattern:
        raise TypeError("an on_subscribe pattern is a non-empty str, e.g. 'room:*'")

    def register(fn: F) -> F:
        with _registry.lock:
            for i, (known_pattern, known) in enumerate(_registry.subscribe):
                if known_pattern == pattern:
                    if not _same_function(known, fn):
                        raise ValueError(
                            f"on_subscribe({pattern!r}) is already {_describe(known)}"
                        )
                    _registry.subscribe[i] = (pattern, fn)
                    return fn
            _registry.subscribe.append((pattern, fn))
        return fn

    return register


def on_event(name: str) -> Callable[[F], F]:
    """Registers ``fn(identity, event)`` to be told of the event ``name``
    (``"unsubscribe"``, ``"disconnect"`` or ``"logout"``). Every function registered for
    an event is called, in the order they were registered.

    The hub posts a notice again when the app failed to take it (up to three times), so a
    notice may arrive twice: make these functions idempotent.
    """
    if name not in EVENTS:
        raise ValueError(f"on_event({name!r}): the events are {', '.join(EVENTS)}")

    def register(fn: F) -> F:
        with _registry.lock:
            handlers = _registry.events[name]
            for i, known in enumerate(handlers):
                if _same_function(known, fn):
                    handlers[i] = fn
                    return fn
            handlers.append(fn)
        return fn

    return register


def on_connect(fn: F) -> F:
    """Registers ``fn(request, client)`` to answer the connect hook in the app's own way.

    ``request`` is an ``HttpRequest`` made of the forwarded headers (``request.headers``,
    ``request.COOKIES``, ``request.META["REMOTE_ADDR"]`` is the browser's address), with
    ``request.session`` and a lazy ``request.user`` as Django's middleware gives them
    (``await request.auser()`` in an async function); ``client`` is the new connection's
    id. It returns the answer (``connect_answer(user)`` makes the usual one; ``{}`` is
    anonymous), or ``None`` for the usual answer for the session's user, or raises
    ``Deny(reason)`` or ``PermissionDenied`` to refuse the connection (closed with 4403).
    One function in all.
    """
    with _registry.lock:
        known = _registry.connect
        if known is not None and not _same_function(known, fn):
            raise ValueError(f"on_connect is already {_describe(known)}")
        _registry.connect = fn
    return fn


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Calls an app function from a (sync) view, whether it is plain or async."""
    if iscoroutinefunction(fn):
        return async_to_sync(fn)(*args)
    result = fn(*args)
    if inspect.isawaitable(result):  # a plain function that hands back a coroutine
        return async_to_sync(_awaited)(result)
    return result


class _BadRequest(Exception):
    """A signed body that is not what the hub posts: answered 400."""


_REQUIRED: Any = object()


def _field(body: Dict[str, Any], name: str, kind: Any, default: Any = _REQUIRED) -> Any:
    value = body.get(name)
    if value is None:
        if default is _REQUIRED:
            raise _BadRequest(f"the body has no {name!r}")
        return default
    if not isinstance(value, kind):
        raise _BadRequest(f"the body's {name!r} has the wrong type")
    return value


def _hook_secret() -> Union[str, bytes]:
    secret = _settings().get("HOOK_SECRET") or os.environ.get("HUBBUB_HOOKS_SECRET")
    if not secret:
        raise ImproperlyConfigured(
            "HUBBUB['HOOK_SECRET'] is not set (nor HUBBUB_HOOKS_SECRET): it must be the "
            "secret of the hub's [hooks] table, which signs every hook request"
        )
    if not isinstance(secret, (str, bytes)):
        raise ImproperlyConfigured("HUBBUB['HOOK_SECRET'] must be a str or bytes")
    return secret


def _json(answer: Any, status: int = 200) -> HttpResponse:
    # hubbub's encoder, so the app's data follows the rules of publish().
    return HttpResponse(hubbub.Json(answer).text, status=status, content_type="application/json")


def _refusal(status: int, err: str, reason: Optional[str]) -> HttpResponse:
    return _json({"err": err, "reason": reason}, status=status)


Answer = Callable[[HttpRequest, Dict[str, Any]], HttpResponse]


def _receiver(answer: Answer) -> Callable[[HttpRequest], HttpResponse]:
    """A hook view: POST only, signature first, then a JSON object for ``answer``."""

    @csrf_exempt
    @functools.wraps(answer)
    def view(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        secret = _hook_secret()
        try:
            hubbub.verify_hook(
                secret,
                request.headers.get(hubbub.HOOK_TIMESTAMP_HEADER),
                request.headers.get(hubbub.HOOK_SIGNATURE_HEADER),
                request.body,
            )
        except hubbub.AccessDenied as e:
            logger.warning("hubbub: refused a hook request to %s: %s", request.path, e.reason)
            return _refusal(403, "ACCESS_DENIED", e.reason)
        try:
            body = json.loads(request.body)
        except ValueError:
            return _refusal(400, "INVALID_PAYLOAD", "the body is not JSON")
        if not isinstance(body, dict):
            return _refusal(400, "INVALID_PAYLOAD", "the body is not a JSON object")
        try:
            return answer(request, body)
        except _BadRequest as e:
            return _refusal(400, "INVALID_PAYLOAD", str(e))

    return view


def _identity(body: Dict[str, Any], with_info: bool = True) -> Identity:
    return Identity(
        _field(body, "client", str),
        _field(body, "user", str, None),
        body.get("info") if with_info else None,
    )


def _session_user(request: HttpRequest) -> Any:
    # As AuthenticationMiddleware: loaded once, on first use.
    from django.contrib import auth

    if not hasattr(request, "_cached_user"):
        request._cached_user = auth.get_user(request)  # type: ignore[attr-defined]
    return request._cached_user  # type: ignore[attr-defined]


async def _asession_user(request: HttpRequest) -> Any:
    return await sync_to_async(_session_user)(request)


def _forwarded_request(headers: Dict[str, Any], ip: str) -> HttpRequest:
    """The browser's upgrade request, as far as the hub forwarded it, with the session and
    user Django's middleware would have given it."""
    request = HttpRequest()
    request.method = "GET"
    request.META["REMOTE_ADDR"] = ip
    for name, value in headers.items():
        if not isinstance(value, str):
            raise _BadRequest("the body's 'headers' has the wrong type")
        key = name.upper().replace("-", "_")
        request.META[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    request.COOKIES = parse_cookie(headers.get("cookie", ""))
    engine = import_module(settings.SESSION_ENGINE)
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    request.session = engine.SessionStore(session_key)  # type: ignore[attr-defined]
    request.user = SimpleLazyObject(lambda: _session_user(request))  # type: ignore[attr-defined]
    request.auser = functools.partial(_asession_user, request)  # type: ignore[attr-defined]
    return request


def _session_answer(request: HttpRequest) -> Dict[str, Any]:
    """The usual connect answer: the session's user; the identity ends with the session
    (or after ``TOKEN_EXPIRES_IN``, whichever comes first)."""
    answer = connect_answer(request.user)  # type: ignore[attr-defined]
    if answer:
        left = max(0, int(request.session.get_expiry_age()))  # type: ignore[attr-defined]
        answer["expires_in"] = min(answer.get("expires_in", left), left)
    return answer


def _connect(request: HttpRequest, body: Dict[str, Any]) -> HttpResponse:
    client = _field(body, "client", str)
    forwarded = _forwarded_request(_field(body, "headers", dict, {}), _field(body, "ip", str, ""))
    answer: Optional[Dict[str, Any]] = None
    handler = _registry.connect
    if handler is not None:
        try:
            answer = _call(handler, forwarded, client)
        except Deny as e:
            return _refusal(403, "ACCESS_DENIED", e.reason)
        except PermissionDenied as e:
            return _refusal(403, "ACCESS_DENIED", str(e) or None)
        if answer is not None and not isinstance(answer, dict):
            raise TypeError(
                f"{_describe(handler)} returned {type(answer).__name__}: an on_connect "
                "function returns a dict (connect_answer(user); {} for anonymous) or None"
            )
    if answer is None:
        answer = _session_answer(forwarded)
    return _json(answer)


def _subscribe_answer(verdict: Any, handler: Callable[..., Any]) -> Dict[str, Any]:
    if verdict is None or verdict is True:
        return {"allow": True}
    if verdict is False:
        return {"allow": False}
    if isinstance(verdict, Deny):
        if verdict.reason is None:
            return {"allow": False}
        return {"allow": False, "reason": verdict.reason}
    if isinstance(verdict, (list, tuple)):
        for message in verdict:
            if (
                not isinstance(message, dict)
                or "data" not in message
                or not set(message) <= {"event", "data"}
                or not isinstance(message.get("event", ""), str)
            ):
                raise TypeError(
                    f"{_describe(handler)} returned the message {message!r}: a message is "
                    '{"event": str, "data": X} (event optional)'
                )
        return {"allow": True, "messages": list(verdict)}
    raise TypeError(
        f"{_describe(handler)} returned {type(verdict).__name__}: an on_subscribe function "
        "returns True or None (allow), False or a Deny (refuse), or a list of messages"
    )


def _subscribe(request: HttpRequest, body: Dict[str, Any]) -> HttpResponse:
    identity = _identity(body)
    channel = _field(body, "channel", str)
    found = _registry.subscriber(channel)
    if found is None:
        # Fail closed: a channel the app wrote no function for is nobody's.
        logger.warning("hubbub: no on_subscribe function matches %r: refused", channel)
        reason = f"no subscribe handler for {json.dumps(channel)}"
        return _json({"allow": False, "reason": reason})
    pattern, handler = found
    subscription = Subscription(
        channel=channel,
        pattern=pattern,
        clients_in_channel=_field(body, "clients_in_channel", list, []),
        clients_count=_field(body, "clients_count", int, 0),
    )
    try:
        verdict = _call(handler, identity, subscription)
    except Deny as e:
        verdict = e
    except PermissionDenied as e:
        verdict = Deny(str(e) or None)
    return _json(_subscribe_answer(verdict, handler))


def _rpc(request: HttpRequest, body: Dict[str, Any]) -> HttpResponse:
    identity = _identity(body)
    method = _field(body, "method", str)
    handler = _registry.rpc.get(method)
    if handler is None:
        reason = f"no rpc method {json.dumps(method, ensure_ascii=False)}"
        return _json({"error": {"code": METHOD_NOT_FOUND, "reason": reason}})
    try:
        data = _call(handler, identity, body.get("data"))
    except RpcError as e:
        return _json({"error": e.answer()})
    except PermissionDenied as e:
        return _json({"error": RpcError("ACCESS_DENIED", str(e) or None).answer()})
    return _json({"data": data})


def _events(request: HttpRequest, body: Dict[str, Any]) -> HttpResponse:
    identity = _identity(body, with_info=False)
    event = Event(
        name=_field(body, "event", str),
        channel=_field(body, "channel", str, None),
        clients_in_channel=_field(body, "clients_in_channel", list, []),
        clients_count=_field(body, "clients_count", int, 0),
    )
    # An event this version does not know (a newer hub's) is taken and ignored.
    for handler in list(_registry.events.get(event.name, ())):
        _call(handler, identity, event)
    return HttpResponse(status=204)


#: The four views; ``hubbub.django.urls`` routes ``connect``, ``subscribe``, ``rpc`` and
#: ``events`` to them.
receive_connect = _receiver(_connect)
receive_subscribe = _receiver(_subscribe)
receive_rpc = _receiver(_rpc)
receive_events = _receiver(_events)
