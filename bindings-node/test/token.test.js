'use strict'
// Tokens and API keys against a real hub with a config file: a token from token()
// authenticates a WebSocket client that then receives what the Publisher publishes.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { startHub, Client } = require('./hub.js')
const { Publisher, HubbubError, token, verifyToken } = require('..')

const SECRET = 'node-test-token-secret'
const API_KEY = 'node-test-api-key'

/** Asserts that `fn` throws, or the promise it returns rejects with, a HubbubError of `code`. */
async function failsWith(fn, code) {
  const check = (err) => {
    assert.ok(err instanceof HubbubError, `not a HubbubError: ${err}`)
    assert.equal(err.code, code, err.message)
    return true
  }
  let result
  try {
    result = fn()
  } catch (err) {
    return check(err)
  }
  await assert.rejects(result, check)
}

/** An HS256 JWT made with Node's own crypto, to check that tokens interoperate. */
function jwt(claims, { secret = SECRET, alg = 'HS256' } = {}) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url')
  const head = `${b64({ alg, typ: 'JWT' })}.${b64(claims)}`
  if (alg === 'none') return `${head}.`
  return `${head}.${crypto.createHmac('sha256', secret).update(head).digest('base64url')}`
}

const now = () => Math.floor(Date.now() / 1000)

describe('token() and verifyToken()', () => {
  it('sign claims that verifyToken() reads back', () => {
    const t = token(SECRET, {
      user: 'ann',
      read: ['room:*'],
      write: ['room:1'],
      info: { name: 'Ann', staff: true },
      expiresIn: 60,
    })
    const claims = verifyToken(SECRET, t)
    assert.equal(claims.sub, 'ann')
    assert.deepEqual(claims.read, ['room:*'])
    assert.deepEqual(claims.write, ['room:1'])
    assert.deepEqual(claims.info, { name: 'Ann', staff: true })
    assert.equal(claims.exp - claims.iat, 60)
    assert.ok(Math.abs(claims.iat - now()) <= 5)
  })

  it('expire in an hour by default, with empty permissions', () => {
    const claims = verifyToken(SECRET, token(SECRET, { user: '42' }))
    assert.equal(claims.exp - claims.iat, 3600)
    assert.deepEqual([claims.read, claims.write, claims.info], [[], [], undefined])
  })

  it('read standard HS256 JWTs, and refuse bad ones with the protocol error names', async () => {
    assert.equal(verifyToken(SECRET, jwt({ sub: 'x', exp: now() + 60 })).sub, 'x')
    // Like a hub (token_require_exp = true by default), a token without exp is refused...
    await failsWith(() => verifyToken(SECRET, jwt({ sub: 'no-exp' })), 'INVALID_CREDENTIALS')
    // ...unless told otherwise, as a hub with token_require_exp = false accepts it.
    assert.equal(verifyToken(SECRET, jwt({ sub: 'no-exp' }), { requireExp: false }).exp, undefined)
    assert.equal(verifyToken(SECRET, jwt({ sub: 'x', exp: now() + 60 }), { requireExp: false }).sub, 'x')
    await failsWith(() => verifyToken(SECRET, jwt({ sub: 'x', exp: now() - 10 })), 'TOKEN_EXPIRED')
    await failsWith(() => verifyToken('another secret', token(SECRET, { user: 'x' })), 'INVALID_CREDENTIALS')
    await failsWith(() => verifyToken(SECRET, jwt({ sub: 'x', exp: now() + 60 }, { alg: 'none' })), 'INVALID_CREDENTIALS')
    await failsWith(() => verifyToken(SECRET, 'not.a.token'), 'INVALID_CREDENTIALS')
    await failsWith(() => token(SECRET, { user: '' }), 'INVALID_PAYLOAD')
  })

  it('say plainly that the secret is missing, as when HUBBUB_TOKEN_SECRET is not set', () => {
    for (const secret of [undefined, null]) {
      assert.throws(
        () => token(secret, { user: '42' }),
        (err) => !(err instanceof HubbubError) && /token secret is missing/.test(err.message),
      )
      assert.throws(() => verifyToken(secret, 'a.b.c'), /token secret is missing/)
    }
    assert.throws(() => token('', { user: '42' }), /token secret is empty/)
    // A missing user is a wrong argument, not a refusal.
    assert.throws(() => token(SECRET, {}), (err) => !(err instanceof HubbubError))
  })
})

describe('a hub with a token secret and API keys', () => {
  let hub
  let publisher
  const clients = []
  const connect = async () => {
    const c = await Client.connect(hub.wsUrl)
    clients.push(c)
    return c
  }
  const login = async (t) => (await connect()).command({ authenticate: { token: t } })

  before(async () => {
    hub = await startHub(
      [
        `token_secret = "${SECRET}"`,
        `api_keys = ["${API_KEY}"]`,
        '[anonymous]',
        'read = ["public:*"]',
      ].join('\n'),
    )
    publisher = new Publisher({ url: hub.url, apiKey: API_KEY })
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    assert.deepEqual(await hub.stop(), { code: 0, signal: null })
  })

  it('lets a token from token() authenticate a client that receives publications', async () => {
    const c = await connect()
    const t = token(SECRET, { user: 'ann', read: ['room:*'], write: ['room:*'] })
    assert.deepEqual(await c.command({ authenticate: { token: t } }), { authenticated: 'ann' })
    await c.subscribe('room:7')
    assert.equal((await c.command({ subscribe: { channel: 'staff:1' } })).err, 'ACCESS_DENIED')
    await publisher.publish('room:7', { text: 'hello ann' }, { event: 'chat' })
    assert.deepEqual(await c.next('message'), {
      channel: 'room:7',
      event: 'chat',
      data: { text: 'hello ann' },
    })
    // The token's write patterns let the client broadcast too.
    assert.deepEqual(
      await c.command({ broadcast: { channel: 'room:7', event: 'chat', data: 'from ann' } }),
      { broadcasted: 'room:7' },
    )
    assert.deepEqual((await c.next('message')).data, 'from ann')
  })

  it('reaches and disconnects every connection of a user', async () => {
    const t = token(SECRET, { user: 'bob', read: ['room:*'] })
    const [a, b] = [await connect(), await connect()]
    for (const c of [a, b]) {
      assert.deepEqual(await c.command({ authenticate: { token: t } }), { authenticated: 'bob' })
    }
    assert.deepEqual(await publisher.direct({ hi: 'bob' }, { user: 'bob', event: 'dm' }), {
      directSent: 'bob',
      delivered: 2,
    })
    for (const c of [a, b]) assert.deepEqual(await c.next('directMessage'), { event: 'dm', data: { hi: 'bob' } })
    assert.deepEqual(await publisher.disconnect({ user: 'bob' }), { disconnected: 2 })
    for (const c of [a, b]) assert.equal((await c.closed).code, 4000)
  })

  it('refuses tokens the hub did not sign, or that expired', async () => {
    const other = token('not the hub secret', { user: 'eve', read: ['*'] })
    assert.equal((await login(other)).err, 'INVALID_CREDENTIALS')
    const expired = jwt({ sub: 'old', exp: now() - 10, read: ['*'] })
    assert.equal((await login(expired)).err, 'TOKEN_EXPIRED')
  })

  it('rejects calls without the API key, or with a wrong one, with INVALID_CREDENTIALS', async () => {
    for (const p of [new Publisher({ url: hub.url }), new Publisher({ url: hub.url, apiKey: 'wrong' })]) {
      await failsWith(() => p.publish('room:1', 1), 'INVALID_CREDENTIALS')
      await failsWith(() => p.info(), 'INVALID_CREDENTIALS')
    }
  })

  it('takes the URL and the API key from HUBBUB_URL and HUBBUB_API_KEY', async () => {
    const saved = { url: process.env.HUBBUB_URL, key: process.env.HUBBUB_API_KEY }
    process.env.HUBBUB_URL = hub.url
    process.env.HUBBUB_API_KEY = API_KEY
    try {
      const p = new Publisher()
      assert.equal(p.url, hub.url)
      assert.deepEqual(await p.publish('public:env', 1), { published: 'public:env' })
      // Options beat the environment.
      await failsWith(() => new Publisher({ apiKey: 'wrong' }).info(), 'INVALID_CREDENTIALS')
    } finally {
      for (const [k, v] of [['HUBBUB_URL', saved.url], ['HUBBUB_API_KEY', saved.key]]) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
    }
    assert.equal(new Publisher().url, 'http://127.0.0.1:9772')
  })
})

describe('a hub that only allows other addresses', () => {
  let hub
  before(async () => {
    hub = await startHub('allowed_ips = ["192.0.2.0/24"]')
  })
  after(async () => {
    await hub.stop()
  })

  it('rejects the publisher with ACCESS_DENIED', async () => {
    const p = new Publisher({ url: hub.url })
    await failsWith(() => p.publish('c', 1), 'ACCESS_DENIED')
    await failsWith(() => p.channels(), 'ACCESS_DENIED')
  })
})
