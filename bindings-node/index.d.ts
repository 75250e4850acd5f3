// Types of hubbub-node. The Publisher, token and verifyToken types come from native.d.ts,
// which `napi build` generates from the Rust source; this file adds HubbubError.

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

/** Publishes to a hubbub hub over its HTTP API. Rejections are HubbubErrors. */
export declare class Publisher extends native.Publisher {}

/** Mints a token for `options.user`, signed with `secret`. Throws HubbubError. */
export declare const token: typeof native.token

/**
 * Checks a token against `secret` the way a hub does and returns its claims. Throws
 * HubbubError: a token without `exp` is INVALID_CREDENTIALS unless `options.requireExp` is
 * false.
 */
export declare const verifyToken: typeof native.verifyToken
