// Types of hubbub-node. The Publisher, token, verifyToken, verifyHook and signHook types come
// from native.d.ts, which `napi build` generates from the Rust source; this file adds
// HubbubError and the hook receiver (hooks.js).

import * as native from './native'

export type {
  BroadcastPublished,
  Channels,
  ChannelStats,
  DirectDelivered,
  DirectOptions,
  Disconnected,
  DisconnectOptions,
  HistoryMessage,
  HistoryOptions,
  HistoryPage,
  Info,
  Namespace,
  NodeInfo,
  Presence,
  PresenceStats,
  PresentClient,
  Published,
  PublisherOptions,
  PublishOptions,
  TokenClaims,
  TokenOptions,
  VerifyOptions,
} from './native'

/**
 * A refusal from the hub or from hubbub-core, or a hub that cannot be reached. Every
 * Promise of a Publisher rejects with one, and token/verifyToken throw one.
 */
export declare class HubbubError extends Error {
  constructor(code: string, reason?: string)
  readonly name: 'HubbubError' | 'Unavailable'
  /**
   * The protocol's error name ('INVALID_PAYLOAD', 'INVALID_CREDENTIALS', 'ACCESS_DENIED',
   * 'INVALID_CLIENT', 'INVALID_CHANNEL', 'TOKEN_EXPIRED', 'LIMIT_EXCEEDED', ...), or
   * 'UNAVAILABLE' when the hub cannot be reached, does not answer in time, or something
   * that is not a hub answers.
   */
  readonly code: string
  /** The reason the hub or core gave, if any. */
  readonly reason?: string
}

/**
 * The hub cannot be reached (refused, timed out, connection lost), or something that is not
 * a hub answered. Its `code` is 'UNAVAILABLE'.
 */
export declare class Unavailable extends HubbubError {
  constructor(reason?: string)
  readonly name: 'Unavailable'
  readonly code: 'UNAVAILABLE'
}

/**
 * Publishes to a hubbub hub over its HTTP API, or (a `redis://` URL) straight into the
 * Redis the hubs share. Rejections are HubbubErrors.
 */
export declare class Publisher extends native.Publisher {}

/** Mints a token for `options.user`, signed with `secret`. Throws HubbubError. */
export declare const token: typeof native.token

/**
 * Checks a token against `secret` the way a hub does and returns its claims. Throws
 * HubbubError: a token without `exp` is INVALID_CREDENTIALS unless `options.requireExp` is
 * false.
 */
export declare const verifyToken: typeof native.verifyToken

/**
 * Checks a hook request as the receiver got it: the values of its `X-Hubbub-Timestamp` and
 * `X-Hubbub-Signature` headers (undefined where missing) and its raw body (the exact bytes),
 * against the hub's `[hooks] secret` and the clock (`now`, seconds since the Unix epoch;
 * default the system clock). Throws a HubbubError `ACCESS_DENIED`, with the reason, for a
 * missing header, a bad signature, or a timestamp more than 300 seconds from `now`.
 */
export declare const verifyHook: typeof native.verifyHook

/** The `X-Hubbub-Signature` value the hub sends with `body` at `timestamp`: for testing a receiver. */
export declare const signHook: typeof native.signHook

/** An error of the app's own, thrown by an rpc method: the client receives `{code, reason}`. */
export declare class RpcError extends Error {
  constructor(code: string, reason?: string)
  readonly name: 'RpcError'
  /** The app's error code, e.g. 'NOT_FOUND'. */
  readonly code: string
  /** Passed to the client as it is. */
  readonly reason?: string
}

/** Any value JSON can express. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** What the hub posts to the connect hook: the new connection and its upgrade request's forwarded headers. */
export interface ConnectRequest {
  client: string
  ip: string
  /** The hub's `forward_headers`, names in lower case: `cookie`, `user-agent`, ... */
  headers: Record<string, string>
}

/** Who a connection is, as the connect hook answers it (the claims a token would carry). */
export interface Identity {
  /** The connection's user (a number is sent as its decimal string). */
  user?: string | number
  /** Channel patterns it may subscribe to. */
  read?: string[]
  /** Channel patterns it may broadcast to. */
  write?: string[]
  /** Shown to others in presence. */
  info?: { [key: string]: JsonValue }
  /** Seconds until the session ends (closed with 4001), like a token's exp. */
  expiresIn?: number
}

/** What the hub posts to the subscribe hook. */
export interface SubscribeRequest {
  client: string
  /** `null` for an anonymous connection. */
  user: string | null
  info?: { [key: string]: JsonValue }
  channel: string
  /** The first 1,000 clients already in the channel. */
  clients_in_channel: string[]
  clients_count: number
}

/** A message for the new subscriber alone, delivered right after `subscribed`. */
export interface InitialMessage {
  /** Default 'message'. */
  event?: string
  data: unknown
}

/**
 * A subscribe handler's verdict: `true`, an array of messages for the new subscriber (which
 * allows), `{ allow: true, messages? }`, or `false` / `{ allow: false, reason? }` (the
 * client gets ACCESS_DENIED with the reason). `undefined` refuses.
 */
export type SubscribeVerdict =
  | boolean
  | InitialMessage[]
  | { allow: true; messages?: InitialMessage[] }
  | { allow: false; reason?: string }
  | null
  | undefined

export type SubscribeHandler = (request: SubscribeRequest) => SubscribeVerdict | Promise<SubscribeVerdict>

/** What the hub posts to the rpc hook. */
export interface RpcRequest {
  client: string
  user: string | null
  info?: { [key: string]: JsonValue }
  method: string
  data: JsonValue
}

/**
 * One rpc method: called with the client's `data` (as JSON gave it; annotate it with your
 * own type) and the whole request; what it returns (or resolves to) is the client's answer.
 * Throw an RpcError for an answer of the app's own error.
 */
export type RpcMethod = (data: any, request: RpcRequest) => unknown

/** What the hub posts to the events hook, after an unsubscribe, a logout or a disconnect. */
export interface EventNotice {
  event: 'unsubscribe' | 'logout' | 'disconnect'
  client: string
  user: string | null
  /** For `unsubscribe`: the channel, and who is still in it. */
  channel?: string
  clients_in_channel?: string[]
  clients_count: number
}

export type HookName = 'connect' | 'subscribe' | 'rpc' | 'events'

export interface HookHandlerOptions {
  /** The hub's `[hooks] secret`. */
  secret: string
  /**
   * Who a new connection is, from its forwarded headers (the session cookie): an identity,
   * `null`/`undefined` (or `{}`) for an anonymous connection, or `false` to refuse it (the
   * hub closes it with 4403).
   */
  connect?: (request: ConnectRequest) => Identity | false | null | undefined | Promise<Identity | false | null | undefined>
  /**
   * Subscriptions in the namespaces with `subscribe_hook = true`: one function for every
   * channel, or `{ pattern: function }` where `*` matches any run of characters and the
   * first matching pattern decides. A channel no pattern matches is refused.
   */
  subscribe?: SubscribeHandler | { [pattern: string]: SubscribeHandler }
  /** The app's own commands, by method name. An unknown method answers METHOD_NOT_FOUND. */
  rpc?: { [method: string]: RpcMethod }
  /** Unsubscribe, logout and disconnect notices. */
  events?: (notice: EventNotice) => unknown
  /**
   * Called with what a hook function threw (other than an RpcError), or a setup mistake;
   * the hub hears 500 and its client UNAVAILABLE. Default: console.error.
   */
  onError?: (error: unknown, hook: HookName) => void
  /** The largest body read, in bytes (413 beyond). Default 1 MiB. */
  limit?: number
}

/**
 * Node's `http.IncomingMessage` (or Express's request), as far as types go: pass the real
 * one, whose body the handler reads as a stream unless `body` holds it already.
 */
export interface HookIncomingMessage {
  method?: string
  url?: string
  headers: { [name: string]: string | string[] | undefined }
  /** Set by Express's `express.raw()`: the raw body, a Buffer. */
  body?: unknown
}

/** The part of Node's `http.ServerResponse` the handler uses. */
export interface HookServerResponse {
  statusCode: number
  readonly headersSent: boolean
  setHeader(name: string, value: string): unknown
  end(chunk?: string): unknown
}

/**
 * A Node request handler for the hub's hooks, routed by the path's last segment
 * (`/connect`, `/subscribe`, `/rpc`, `/events`): `http.createServer(handler)`, or an
 * Express route or middleware (with `express.raw({ type: 'application/json' })` before it,
 * so that the raw body is there to check; where `next` is given, other paths go on to it).
 */
export type HookHandler = (req: HookIncomingMessage, res: HookServerResponse, next?: (err?: unknown) => void) => void

/** The receiver of the hub's app hooks. Throws a TypeError at once for a missing secret or a misplaced option. */
export declare function createHookHandler(options: HookHandlerOptions): HookHandler
