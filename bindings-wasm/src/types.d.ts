
/** The state of a client's connection, as `client.state` and `onStateChange` report it. */
export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/** The error names of the hubbub protocol: why the server refused a command. */
export type ProtocolErrorCode = 'INVALID_PAYLOAD' | 'UNKNOWN_COMMAND' | 'INVALID_CREDENTIALS' | 'INVALID_USER' | 'TOKEN_EXPIRED' | 'ACCESS_DENIED' | 'INVALID_CHANNEL' | 'INVALID_CLIENT' | 'LIMIT_EXCEEDED' | 'RATE_LIMITED' | 'UNAVAILABLE';

/**
 * The client's own codes: `DISCONNECTED` when a command found no connection or lost it
 * before the answer (and, with `closeCode` 4000, when the application disconnected the
 * client), `CLOSED` after `close()`.
 */
export type ClientErrorCode = 'DISCONNECTED' | 'CLOSED';

export type ErrorCode = ProtocolErrorCode | ClientErrorCode;

/** What every promise of the client rejects with, and what `onError` receives. */
export interface HubbubError extends Error {
  name: 'HubbubError';
  code: ErrorCode;
  /** The server's explanation, where it gave one. */
  reason?: string;
  /** The channel concerned, for refused subscriptions. */
  channel?: string;
  /**
   * The hub's close code, where the hub closed the connection with one of its own:
   * 4000 (the application disconnected the client), 4403 (access denied, e.g. the page's
   * origin), 4503 (the app behind the hub is unavailable).
   */
  closeCode?: number;
}

/**
 * What `client.rpc()` rejects with: where the app answered with an error of its own, `code`
 * and `reason` are the app's (any code it chose); otherwise an `ErrorCode`
 * (`UNKNOWN_COMMAND` where the hub has no rpc hook, `UNAVAILABLE` where the app failed,
 * `DISCONNECTED` where the connection was not there or dropped before the answer).
 */
export interface RpcError extends Omit<HubbubError, 'code'> {
  code: ErrorCode | (string & {});
}

export interface Client {
  /**
   * Calls one of the app's own commands through the hub's rpc hook: resolves with the
   * `data` the app answered (`null` where it answered none), as `T` (not checked: assert
   * what your app sends); rejects with an `RpcError`. `data` is any value JSON can
   * express; left out, `null` is sent. Answers come in the order of the calls. An rpc is
   * never resent: offline, or when the connection drops before the answer, it rejects with
   * `DISCONNECTED`, since the app may have carried it out.
   */
  rpc<T = unknown>(method: string, data?: unknown): Promise<T>;
}

/** Any value JSON can express: what `data` holds on arrival. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A JSON object: what a token's `info` claim holds. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * A place in a channel's stream: the epoch (which changes when the stream is lost or
 * recreated) and the offset of a message in it. The app's server can render one into a
 * page (the channel's current position, from `GET /api/history/{channel}?limit=0`) for the
 * page to subscribe `since` it.
 */
export interface StreamPosition {
  epoch: string;
  offset: number;
}

/** The third argument of `client.subscribe(channel, onMessage, options)`. */
export interface SubscribeOptions {
  /**
   * Where to start: after a position (the messages published since are delivered first),
   * or `'latest'` (the default) for from now on.
   */
  since?: StreamPosition | 'latest';
  /**
   * Called after every resubscription (each reconnection, and the first subscription where
   * `since` is a position) with whether the gap was filled. `recovered: false` means
   * messages may be missing: reload the state from the app's server.
   */
  onRecover?: (recovery: Recovery) => void;
  /** Called when another connection subscribes, on channels with join/leave events. */
  onJoin?: (join: JoinEvent) => void;
  /** Called when another connection leaves, on channels with join/leave events. */
  onLeave?: (leave: LeaveEvent) => void;
}

/** What `onRecover` hears: whether the missed messages were delivered, and where the subscription now stands. */
export interface Recovery extends StreamPosition {
  recovered: boolean;
}

/** Someone subscribed to the channel. */
export interface JoinEvent {
  channel: string;
  /** The connection's client id. */
  client: string;
  /** Its user (token `sub` or configured user), `null` when anonymous. */
  user: string | null;
  /** The token's `info` claim, where it has one. */
  info?: JsonObject;
}

/** Someone unsubscribed from the channel, or disconnected. */
export interface LeaveEvent {
  channel: string;
  client: string;
  user: string | null;
}

/** The argument of `sub.history()`. */
export interface HistoryOptions {
  /** At most this many messages, the newest; 0 for just the position. Default: all kept. */
  limit?: number;
  /** Only messages after this offset. */
  since?: number;
}

/** What `sub.history()` resolves to: messages oldest first, and the channel's current position. */
export interface HistoryPage extends StreamPosition {
  channel: string;
  messages: Message[];
}

/** One connection subscribed to a channel. */
export interface PresentClient {
  client: string;
  user: string | null;
  info?: JsonObject;
}

/** What `sub.presence()` resolves to. */
export interface Presence {
  channel: string;
  clients: PresentClient[];
}

/** A publication on a subscribed channel. */
export interface Message {
  channel: string;
  event: string;
  /** The publisher's data, decoded. */
  data: JsonValue;
  /** Its place in the channel's history, where the channel keeps one. */
  offset?: number;
  /** The sender, where a client (not the HTTP API) broadcast it. */
  from?: string;
}

/** A message sent to this client alone. */
export interface DirectMessage {
  event: string;
  data: JsonValue;
  /** The sender, where a client (not the HTTP API) sent it. */
  from?: string;
}

/** Bounds of the delay between reconnection attempts; each failed attempt doubles it. */
export interface ReconnectOptions {
  /** The first delay lies between this and twice this. Default 500. */
  minDelayMs?: number;
  /** No delay is longer. Default 30000. */
  maxDelayMs?: number;
}

/** The second argument of `new Client(url, options)`. */
export interface ClientOptions {
  /** A token (JWT) minted by the application's server. */
  token?: string;
  /**
   * Gets a token from the application's server (e.g. `async () => (await fetch('/token')).text()`):
   * called before connecting where the client holds no fresh token, again before the
   * token's `exp` (the new token is sent on the open connection: no reconnection), and
   * after the hub answers `TOKEN_EXPIRED`. A rejection is reported through `onError` as
   * `UNAVAILABLE` and counts as a failed connection attempt.
   */
  getToken?: () => Promise<string> | string;
  /** A user configured on the hub, with `secret`. */
  user?: string;
  secret?: string;
  /**
   * More WebSocket URLs of the same hub: the other nodes of a cluster. A new connection
   * after a lost one (or a failed attempt) goes to the next URL in turn, starting with the
   * constructor's; subscriptions resubscribe with their positions and recover there.
   */
  urls?: string[];
  /** `false` to never reconnect. Default: reconnect with the default delays. */
  reconnect?: ReconnectOptions | boolean;
  /** A connection silent for this long is dropped and replaced; 0 turns this off. Default 30000. */
  heartbeatMs?: number;
  /** Called on every change of `client.state`. */
  onStateChange?: (state: ConnectionState) => void;
  /** Called with errors that answer no promise, e.g. a subscription refused on resubscribing. */
  onError?: (error: HubbubError) => void;
}
