
/** The state of a client's connection, as `client.state` and `onStateChange` report it. */
export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/** The error names of the hubbub protocol: why the server refused a command. */
export type ProtocolErrorCode = 'INVALID_PAYLOAD' | 'UNKNOWN_COMMAND' | 'INVALID_CREDENTIALS' | 'INVALID_USER' | 'TOKEN_EXPIRED' | 'ACCESS_DENIED' | 'INVALID_CHANNEL' | 'INVALID_CLIENT' | 'LIMIT_EXCEEDED' | 'RATE_LIMITED';

/**
 * The client's own codes: `DISCONNECTED` when a command found no connection or lost it
 * before the answer, `CLOSED` after `close()` or refused credentials.
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
}

/** Any value JSON can express: what `data` holds on arrival. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

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
  /** A user configured on the hub, with `secret`. */
  user?: string;
  secret?: string;
  /** `false` to never reconnect. Default: reconnect with the default delays. */
  reconnect?: ReconnectOptions | boolean;
  /** A connection silent for this long is dropped and replaced; 0 turns this off. Default 30000. */
  heartbeatMs?: number;
  /** Called on every change of `client.state`. */
  onStateChange?: (state: ConnectionState) => void;
  /** Called with errors that answer no promise, e.g. a subscription refused on resubscribing. */
  onError?: (error: HubbubError) => void;
}
