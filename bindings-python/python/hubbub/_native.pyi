"""Type stubs of hubbub's compiled module (``hubbub._native``)."""

from datetime import timedelta
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    TypedDict,
    Union,
    final,
    type_check_only,
)

__version__: str
__all__ = [
    "__version__",
    "Publisher",
    "CallbackPublisher",
    "PendingCall",
    "Json",
    "token",
    "verify_token",
    "verify_hook",
    "sign_hook",
    "pattern_matches",
    "HOOK_TIMESTAMP_HEADER",
    "HOOK_SIGNATURE_HEADER",
    "HOOK_MAX_AGE",
    "HubbubError",
    "InvalidPayload",
    "InvalidCredentials",
    "TokenExpired",
    "AccessDenied",
    "InvalidClient",
    "InvalidChannel",
    "LimitExceeded",
    "Unavailable",
    "Timeout",
]

_JSONValue = Any
"""Any JSON value built from dict (str keys), list, tuple, str, int, float, bool, None and Json."""

@type_check_only
class _PublishedOffset(TypedDict, total=False):
    # Where the channel keeps history: the publication's place in the channel's stream.
    offset: int
    epoch: str

@type_check_only
class Published(_PublishedOffset):
    published: str

@type_check_only
class BroadcastPublished(TypedDict):
    published: List[str]

@type_check_only
class DirectDelivered(TypedDict):
    directSent: str
    delivered: int

@type_check_only
class Disconnected(TypedDict):
    disconnected: int

@type_check_only
class ChannelStats(TypedDict):
    subscribers: int

@type_check_only
class Channels(TypedDict):
    channels: Dict[str, ChannelStats]

@type_check_only
class NodeInfo(TypedDict):
    id: str
    connections: int
    uptime_s: int

@type_check_only
class Info(TypedDict):
    version: str
    connections: int
    channels: int
    uptime_s: int
    nodes: List[NodeInfo]

# "from" is a Python keyword, hence the functional form.
_MessageExtras = TypedDict("_MessageExtras", {"offset": int, "from": str}, total=False)

@type_check_only
class HistoryMessage(_MessageExtras):
    """A message as its ``message`` frame has it (``offset`` where the channel keeps
    history, ``from`` where a client broadcast it)."""

    channel: str
    event: str
    data: Any

@type_check_only
class HistoryPage(TypedDict):
    channel: str
    epoch: str
    offset: int
    messages: List[HistoryMessage]

@type_check_only
class _PresentInfo(TypedDict, total=False):
    # The token's or configured user's info, where the connection has one.
    info: Dict[str, Any]

@type_check_only
class PresentClient(_PresentInfo):
    client: str
    user: Optional[str]

@type_check_only
class Presence(TypedDict):
    channel: str
    clients: List[PresentClient]

@type_check_only
class PresenceStats(TypedDict):
    channel: str
    clients: int
    users: int

@type_check_only
class _NamespaceKeys(TypedDict, total=False):
    history_size: int
    history_ttl: str
    recover: bool
    presence: bool
    join_leave: bool
    subscribe_hook: bool

@type_check_only
class Namespace(_NamespaceKeys):
    """One of the hubs' namespaces, as their config writes it (for a ``redis://`` URL)."""

    pattern: str

@type_check_only
class Claims(TypedDict, total=False):
    sub: str
    exp: int
    iat: int
    read: List[str]
    write: List[str]
    info: Dict[str, Any]

@final
class Publisher:
    """Publishes to a hubbub hub over its HTTP API, or straight into the hubs' Redis
    (blocking; releases the GIL)."""

    def __new__(
        cls,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        timeout: float = 5.0,
        *,
        namespaces: Optional[Sequence[Namespace]] = None,
        redis_prefix: Optional[str] = None,
    ) -> "Publisher": ...
    @property
    def url(self) -> str:
        """The hub's base URL (a Redis URL without its password)."""
    @property
    def timeout(self) -> float:
        """The time limit of each call, in seconds."""
    def publish(self, channel: str, data: _JSONValue, event: str = "message") -> Published:
        """Publishes ``data`` to every subscriber of ``channel``."""
    def broadcast(
        self, channels: Sequence[str], data: _JSONValue, event: str = "message"
    ) -> BroadcastPublished:
        """Publishes ``data`` to every subscriber of each of ``channels``."""
    def direct(
        self,
        data: _JSONValue,
        *,
        client: Optional[str] = None,
        user: Optional[str] = None,
        event: str = "message",
    ) -> DirectDelivered:
        """Sends ``data`` to one connection or every connection of a user."""
    def disconnect(
        self, *, client: Optional[str] = None, user: Optional[str] = None
    ) -> Disconnected:
        """Closes one connection or every connection of a user."""
    def channels(self) -> Channels:
        """The channels that have subscribers."""
    def info(self) -> Info:
        """The hub's version and counters."""
    def history(
        self, channel: str, limit: Optional[int] = None, since: Optional[int] = None
    ) -> HistoryPage:
        """The channel's position and the messages it keeps, oldest first."""
    def presence(self, channel: str) -> Presence:
        """Every connection subscribed to ``channel``."""
    def presence_stats(self, channel: str) -> PresenceStats:
        """How many connections and distinct users are subscribed to ``channel``."""

@final
class PendingCall:
    """A call started by ``CallbackPublisher``."""

    def cancel(self) -> None:
        """Abandons the call: ``done`` will not be called."""

_Done = Callable[[Any, Optional[BaseException]], None]

@final
class CallbackPublisher:
    """The engine under ``AsyncPublisher``: calls finish by calling ``done``."""

    def __new__(
        cls,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        timeout: float = 5.0,
        *,
        namespaces: Optional[Sequence[Namespace]] = None,
        redis_prefix: Optional[str] = None,
    ) -> "CallbackPublisher": ...
    @property
    def url(self) -> str:
        """The hub's base URL (a Redis URL without its password)."""
    @property
    def timeout(self) -> float:
        """The time limit of each call, in seconds."""
    def publish(self, done: _Done, channel: str, data: _JSONValue, event: str) -> PendingCall:
        """``Publisher.publish``, answering through ``done``."""
    def broadcast(
        self, done: _Done, channels: Sequence[str], data: _JSONValue, event: str
    ) -> PendingCall:
        """``Publisher.broadcast``, answering through ``done``."""
    def direct(
        self, done: _Done, data: _JSONValue, client: Optional[str], user: Optional[str], event: str
    ) -> PendingCall:
        """``Publisher.direct``, answering through ``done``."""
    def disconnect(self, done: _Done, client: Optional[str], user: Optional[str]) -> PendingCall:
        """``Publisher.disconnect``, answering through ``done``."""
    def channels(self, done: _Done) -> PendingCall:
        """``Publisher.channels``, answering through ``done``."""
    def info(self, done: _Done) -> PendingCall:
        """``Publisher.info``, answering through ``done``."""
    def history(
        self, done: _Done, channel: str, limit: Optional[int], since: Optional[int]
    ) -> PendingCall:
        """``Publisher.history``, answering through ``done``."""
    def presence(self, done: _Done, channel: str) -> PendingCall:
        """``Publisher.presence``, answering through ``done``."""
    def presence_stats(self, done: _Done, channel: str) -> PendingCall:
        """``Publisher.presence_stats``, answering through ``done``."""

@final
class Json:
    """Data already encoded as JSON text; may stand anywhere in a publisher's ``data``."""

    def __new__(cls, data: _JSONValue) -> "Json": ...
    @staticmethod
    def from_text(text: str) -> "Json":
        """Wraps JSON text after checking that it is one valid JSON value."""
    @property
    def text(self) -> str:
        """The JSON text."""
    def decode(self) -> Any:
        """Decodes the JSON text to Python values."""

def token(
    secret: Union[str, bytes],
    user: Union[str, int],
    *,
    read: Sequence[str] = (),
    write: Sequence[str] = (),
    info: Optional[Dict[str, Any]] = None,
    expires_in: Union[int, float, timedelta, None] = 3600,
) -> str:
    """Mints an HS256 token for ``user`` with the given permissions."""

def verify_token(secret: Union[str, bytes], token: str, *, require_exp: bool = True) -> Claims:
    """Checks a token and returns its claims."""

HOOK_TIMESTAMP_HEADER: str
"""``"X-Hubbub-Timestamp"``: the header of a hook request's time, in Unix seconds."""
HOOK_SIGNATURE_HEADER: str
"""``"X-Hubbub-Signature"``: the header of a hook request's signature, ``sha256=<hex>``."""
HOOK_MAX_AGE: int
"""How many seconds a hook request's timestamp may be away from the receiver's clock."""

def verify_hook(
    secret: Union[str, bytes],
    timestamp: Optional[str],
    signature: Optional[str],
    body: Union[bytes, bytearray, str],
    now: Optional[float] = None,
) -> None:
    """Checks a hook request's signature and timestamp; raises ``AccessDenied`` if they do
    not hold."""

def sign_hook(secret: Union[str, bytes], timestamp: int, body: Union[bytes, bytearray, str]) -> str:
    """The ``X-Hubbub-Signature`` value of ``body`` sent at ``timestamp``."""

def pattern_matches(pattern: str, channel: str) -> bool:
    """Whether ``channel`` matches ``pattern`` (``*`` matches any run of characters)."""

class HubbubError(Exception):
    """Base class of every error hubbub raises for a refused or unanswered call.

    ``code`` is the protocol's error name (``"ACCESS_DENIED"``, ...) or ``"UNAVAILABLE"``.
    """

    code: Optional[str]
    reason: Optional[str]
    status: Optional[int]
    url: Optional[str]

class InvalidPayload(HubbubError):
    """INVALID_PAYLOAD: the hub refused the request body."""

class InvalidCredentials(HubbubError):
    """INVALID_CREDENTIALS: missing or wrong API key, or a bad token."""

class TokenExpired(HubbubError):
    """TOKEN_EXPIRED: the token's ``exp`` is past."""

class AccessDenied(HubbubError):
    """ACCESS_DENIED: the caller's address is not allowed, or a hook request's signature
    or timestamp does not hold."""

class InvalidClient(HubbubError):
    """INVALID_CLIENT: a direct message that matched nobody."""

class InvalidChannel(HubbubError):
    """INVALID_CHANNEL: the history or presence of a channel whose namespace keeps none."""

class LimitExceeded(HubbubError):
    """LIMIT_EXCEEDED: a body over the hub's size limit."""

class Unavailable(HubbubError):
    """UNAVAILABLE: the hub cannot be reached, did not answer in time, or something that is
    not a hub answered; the message names the URL."""

class Timeout(Unavailable):
    """UNAVAILABLE because the hub did not answer within the timeout."""
