'use strict'
// The receiving end of the hub's app hooks (docs/protocol.md, "App hooks"):
// `createHookHandler` makes one Node `(req, res, next?)` handler for the four hooks, which
// works with `http.createServer` as it is and as an Express route or middleware.
//
// Everything the hub relies on is checked by hubbub-core through the native module (the
// signature and its age: `verifyHook`); this file only routes a checked request to the
// app's function and writes its answer in the shape the hub reads. It fails closed where
// the app did not say yes: a subscription no handler matches is refused, and a function
// that throws is answered 500, which the hub turns into UNAVAILABLE for the client.

const native = require('./native.js')

const HOOK_PATH = /\/(connect|subscribe|rpc|events)\/?$/
// Larger than anything the hub posts under its default limits (an rpc's data is bounded
// by max_message_size, 64 KiB by default; a subscribe lists at most 1,000 client ids).
const DEFAULT_LIMIT = 1024 * 1024

/** An error of the app's own, thrown by an rpc method: the client receives its code and reason. */
class RpcError extends Error {
  constructor(code, reason) {
    if (typeof code !== 'string' || code === '') throw new TypeError('RpcError needs a code (a non-empty string)')
    if (reason !== undefined && reason !== null && typeof reason !== 'string') {
      throw new TypeError('RpcError: reason must be a string')
    }
    super(reason ? `${code}: ${reason}` : code)
    this.name = 'RpcError'
    /** The app's error code, e.g. 'NOT_FOUND'. */
    this.code = code
    /** Said to the client as it is: write it for the user, not for the logs. */
    this.reason = reason ?? undefined
  }
}

/** A mistake in how the handler is used (a body already parsed as JSON), told to the developer. */
class SetupError extends Error {}

/** A request the handler answers with a status of its own before the app sees it. */
class Refusal {
  constructor(status, err, reason) {
    this.status = status
    this.body = { err, reason }
  }
}

function isFunction(value) {
  return typeof value === 'function'
}

/** Own, enumerable entries of a plain object: never `toString` and the like from its prototype. */
function table(value, what) {
  if (value === undefined || value === null) return []
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`createHookHandler: ${what} must be an object of functions`)
  }
  const entries = Object.entries(value)
  for (const [name, fn] of entries) {
    if (!isFunction(fn)) throw new TypeError(`createHookHandler: ${what}[${JSON.stringify(name)}] is not a function`)
  }
  return entries
}

function optionalFunction(value, what) {
  if (value !== undefined && value !== null && !isFunction(value)) {
    throw new TypeError(`createHookHandler: ${what} must be a function`)
  }
  return value ?? undefined
}

/**
 * The handler for the hub's hooks. `options`: `secret` (the hub's `[hooks] secret`),
 * `connect`, `subscribe` (a function, or `{ pattern: function }`), `rpc` (`{ method:
 * function }`), `events`, `onError` and `limit`; see docs/node.md.
 */
function createHookHandler(options) {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('createHookHandler needs an options object with at least the secret')
  }
  const { secret } = options
  if (typeof secret !== 'string' || secret === '') {
    throw new TypeError(
      'createHookHandler: the hooks secret is missing or empty: pass the hub\'s [hooks] secret, ' +
        'e.g. process.env.HUBBUB_HOOKS_SECRET, and check that it is set',
    )
  }
  const connect = optionalFunction(options.connect, 'connect')
  const events = optionalFunction(options.events, 'events')
  const onError = optionalFunction(options.onError, 'onError') ?? defaultOnError
  const subscribe = isFunction(options.subscribe) ? options.subscribe : undefined
  const patterns = subscribe ? [] : table(options.subscribe, 'subscribe')
  const methods = new Map(table(options.rpc, 'rpc'))
  const limit = options.limit ?? DEFAULT_LIMIT
  if (!Number.isSafeInteger(limit) || limit <= 0) {
    throw new TypeError('createHookHandler: limit must be a whole number of bytes, more than zero')
  }
  const given = (value) => value !== undefined && value !== null
  // A hook the options leave out answers 404; one given as an empty table answers (it
  // refuses every subscription, or has no method).
  const hooks = {
    connect: connect && ((request) => answerConnect(connect, request)),
    subscribe: given(options.subscribe) ? (request) => answerSubscribe(subscribe, patterns, request) : undefined,
    rpc: given(options.rpc) ? (request) => answerRpc(methods, request) : undefined,
    events: events && ((request) => answerEvents(events, request)),
  }

  return function hubbubHooks(req, res, next) {
    const path = (req.url || '').split('?', 1)[0]
    const match = HOOK_PATH.exec(path)
    if (!match) {
      // Mounted as Express middleware, what is not a hook is someone else's route.
      if (isFunction(next)) return next()
      return send(res, 404, {
        err: 'UNKNOWN_COMMAND',
        reason: 'not a hook: the path ends in /connect, /subscribe, /rpc or /events',
      })
    }
    const hook = match[1]
    handle(hook, hooks[hook], req, res, secret, limit).catch((err) => {
      if (err instanceof Refusal) return send(res, err.status, err.body)
      try {
        onError(err, hook)
      } catch (thrown) {
        console.error('hubbub-node: onError threw:', thrown)
      }
      // The reason stays in the app's logs: the hub passes what it hears on to clients.
      send(res, 500, { err: 'UNAVAILABLE', reason: `the app's ${hook} hook failed` })
    })
  }
}

async function handle(hook, answer, req, res, secret, limit) {
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST')
    throw new Refusal(405, 'UNKNOWN_COMMAND', 'hook requests are POSTs')
  }
  const body = await rawBody(req, limit)
  try {
    native.verifyHook(secret, header(req, 'x-hubbub-timestamp'), header(req, 'x-hubbub-signature'), body)
  } catch (err) {
    if (err && err.code === 'ACCESS_DENIED') throw new Refusal(403, 'ACCESS_DENIED', err.reason)
    throw err
  }
  // Only after the signature: a request nobody signed learns nothing of the app's hooks.
  if (!answer) throw new Refusal(404, 'UNKNOWN_COMMAND', `no ${hook} hook here`)
  let request
  try {
    request = JSON.parse(body.toString('utf8'))
  } catch {
    throw new Refusal(400, 'INVALID_PAYLOAD', 'the body is not JSON')
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    throw new Refusal(400, 'INVALID_PAYLOAD', 'the body is not a JSON object')
  }
  const [status, json] = await answer(request)
  send(res, status, json)
}

/** One header's value; a missing (or repeated, hence suspicious) header is none. */
function header(req, name) {
  const value = req.headers[name]
  return typeof value === 'string' ? value : undefined
}

/**
 * The exact bytes the hub signed. Express's `express.raw()` leaves them in `req.body` (a
 * Buffer); a body already parsed (`express.json()`) has lost them, and no signature can be
 * checked over a re-serialisation.
 */
function rawBody(req, limit) {
  if (Buffer.isBuffer(req.body)) return Promise.resolve(req.body)
  if (typeof req.body === 'string') return Promise.resolve(Buffer.from(req.body, 'utf8'))
  // body-parser marks a body it has read with `_body`; an ended stream was read by someone.
  if (req._body || req.readableEnded) {
    return Promise.reject(
      new SetupError(
        'the hook request\'s body was already read and parsed (express.json()?): the signature ' +
          'is over the raw bytes. Give the hook handler express.raw({ type: \'application/json\' }), ' +
          'or mount it before express.json()',
      ),
    )
  }
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    const onData = (chunk) => {
      size += chunk.length
      if (size > limit) {
        req.off('data', onData)
        // Drain the rest without keeping it; the answer goes out now.
        req.resume()
        reject(new Refusal(413, 'LIMIT_EXCEEDED', `the body is larger than ${limit} bytes`))
        return
      }
      chunks.push(chunk)
    }
    req.on('data', onData)
    req.once('end', () => resolve(Buffer.concat(chunks, size)))
    req.once('error', reject)
  })
}

async function answerConnect(connect, request) {
  const identity = await connect(request)
  if (identity === false) return [403, { err: 'ACCESS_DENIED', reason: 'refused by the app' }]
  if (identity === undefined || identity === null) return [200, {}]
  if (typeof identity !== 'object' || Array.isArray(identity)) {
    throw new TypeError(
      `connect returned ${typeof identity}: return an identity ({ user, read, write, info, expiresIn }), ` +
        'null for an anonymous connection, or false to refuse it',
    )
  }
  // The fields the hub reads, by the names it reads; expiresIn as token() spells it.
  const answer = {}
  if (identity.user !== undefined && identity.user !== null) answer.user = String(identity.user)
  if (identity.read !== undefined) answer.read = identity.read
  if (identity.write !== undefined) answer.write = identity.write
  if (identity.info !== undefined) answer.info = identity.info
  const expires = identity.expiresIn ?? identity.expires_in
  if (expires !== undefined && expires !== null) answer.expires_in = expires
  return [200, answer]
}

async function answerSubscribe(subscribe, patterns, request) {
  const channel = String(request.channel)
  let decide = subscribe
  if (!decide) {
    // The first pattern that matches, in the order the object lists them.
    const found = patterns.find(([pattern]) => native.channelMatches(pattern, channel))
    // No handler for this channel: refused, as a missing permission is.
    if (!found) return [200, { allow: false, reason: 'not allowed' }]
    decide = found[1]
  }
  const verdict = await decide(request)
  if (verdict === true) return [200, { allow: true }]
  // undefined too: a handler that forgot to answer has not said yes.
  if (verdict === false || verdict === undefined || verdict === null) return [200, { allow: false }]
  if (Array.isArray(verdict)) return [200, { allow: true, messages: messages(verdict, channel) }]
  if (typeof verdict === 'object' && typeof verdict.allow === 'boolean') {
    if (!verdict.allow) {
      return [200, typeof verdict.reason === 'string' ? { allow: false, reason: verdict.reason } : { allow: false }]
    }
    return [200, { allow: true, messages: messages(verdict.messages ?? [], channel) }]
  }
  throw new TypeError(
    `the subscribe handler for ${JSON.stringify(channel)} returned ${typeof verdict}: return true, false, ` +
      '{ allow: false, reason }, or an array of messages ({ event?, data }) for the new subscriber',
  )
}

/** The initial messages, checked here so that a slip is named in the app's log rather than the hub's. */
function messages(list, channel) {
  if (!Array.isArray(list)) throw new TypeError(`the subscribe handler for ${JSON.stringify(channel)}: messages must be an array`)
  return list.map((m) => {
    if (m === null || typeof m !== 'object' || m.data === undefined) {
      throw new TypeError(`the subscribe handler for ${JSON.stringify(channel)}: each message is { event?, data }`)
    }
    return m.event === undefined ? { data: m.data } : { event: String(m.event), data: m.data }
  })
}

async function answerRpc(methods, request) {
  const method = String(request.method)
  const fn = methods.get(method)
  if (!fn) return [200, { error: { code: 'METHOD_NOT_FOUND', reason: `no method ${JSON.stringify(method)}` } }]
  try {
    const data = await fn(request.data, request)
    return [200, { data: data === undefined ? null : data }]
  } catch (err) {
    if (err instanceof RpcError) {
      const error = { code: err.code }
      if (err.reason) error.reason = err.reason
      return [200, { error }]
    }
    throw err
  }
}

async function answerEvents(events, request) {
  await events(request)
  return [204, undefined]
}

function send(res, status, body) {
  if (res.headersSent) return
  // JSON.stringify throws on what JSON cannot hold (a BigInt, a cycle): before anything is
  // set on the response, so that the failure is still answered as one.
  const text = body === undefined ? undefined : JSON.stringify(body)
  res.statusCode = status
  if (text !== undefined) res.setHeader('content-type', 'application/json')
  res.end(text)
}

function defaultOnError(err, hook) {
  console.error(`hubbub-node: the ${hook} hook failed:`, err)
}

module.exports = { createHookHandler, RpcError }
