'use strict'
// The receiver of the hub's app hooks (createHookHandler) against a real hub whose [hooks]
// point at it, with real WebSocket clients: connections identified by their cookie,
// subscriptions allowed, refused and greeted, rpc answers and errors, event notices. Then
// the handler alone, over HTTP: what it refuses (a bad, missing or stale signature, a GET,
// bad JSON, a body too large) and how it takes a body Express has read.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const WebSocket = require('ws')
const { startHub, Client } = require('./hub.js')
const { createHookHandler, RpcError, signHook, verifyHook, HubbubError } = require('..')

const SECRET = 'node-test-hooks-secret'
const now = () => Math.floor(Date.now() / 1000)

/** Serves `handler` on an ephemeral port; resolves with its base URL and a close function. */
function serve(handler) {
  const server = http.createServer(handler)
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        close: () => new Promise((done) => server.close(done)),
      })
    })
  })
}

/** Resolves once `check()` returns something truthy (polled), with that value. */
async function eventually(check, what) {
  const deadline = Date.now() + 5000
  for (;;) {
    const value = check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A POST the way the hub makes one: JSON, timestamped and signed (unless told otherwise). */
function post(url, body, { timestamp = now(), secret = SECRET, headers } = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  return fetch(url, {
    method: 'POST',
    headers: headers ?? {
      'content-type': 'application/json',
      'x-hubbub-timestamp': String(timestamp),
      'x-hubbub-signature': signHook(secret, timestamp, text),
    },
    body: text,
  })
}

describe('verifyHook() and signHook()', () => {
  it('make and check the documented signature', () => {
    const sig = signHook('secret', 1700000000, '{}')
    assert.equal(sig, 'sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163')
    assert.equal(signHook('secret', 1700000000, Buffer.from('{}')), sig)
    assert.equal(verifyHook('secret', '1700000000', sig, Buffer.from('{}'), 1700000000), undefined)
    assert.equal(verifyHook('secret', '1700000000', sig, '{}', 1700000000 + 300), undefined)
    // Against the system clock by default.
    const t = now()
    verifyHook('secret', String(t), signHook('secret', t, 'x'), 'x')
  })

  it('throw ACCESS_DENIED HubbubErrors with the reason', () => {
    const sig = signHook('secret', 1700000000, '{}')
    const cases = [
      [['1700000000', sig, '{"x":1}', 1700000000], 'bad signature'],
      [['1700000000', signHook('other', 1700000000, '{}'), '{}', 1700000000], 'bad signature'],
      [['1700000000', sig, '{}', 1700000301], /away from now/],
      [['1700000000', sig, '{}'], /replayed, or a clock is wrong/],
      [[undefined, sig, '{}', 1700000000], 'no X-Hubbub-Timestamp header'],
      [['1700000000', null, '{}', 1700000000], 'no X-Hubbub-Signature header'],
      [['1700000000', sig.slice(7), '{}', 1700000000], 'the signature is not sha256=<hex>'],
    ]
    for (const [args, reason] of cases) {
      assert.throws(
        () => verifyHook('secret', ...args),
        (err) => {
          assert.ok(err instanceof HubbubError, String(err))
          assert.equal(err.code, 'ACCESS_DENIED')
          if (reason instanceof RegExp) assert.match(err.reason, reason)
          else assert.equal(err.reason, reason)
          return true
        },
      )
    }
  })

  it('say plainly that the secret is missing', () => {
    for (const secret of [undefined, null, '']) {
      assert.throws(
        () => verifyHook(secret, '1', 'sha256=00', '{}'),
        (err) => !(err instanceof HubbubError) && /the hooks secret is (missing|empty)/.test(err.message),
      )
      assert.throws(() => signHook(secret, 1, '{}'), /the hooks secret is (missing|empty)/)
    }
    assert.throws(() => signHook('s', -1, '{}'), /whole number of seconds/)
    assert.throws(() => signHook('s', 1.5, '{}'), /whole number of seconds/)
  })
})

describe('createHookHandler()', () => {
  it('refuses a missing secret and misplaced options at once', () => {
    assert.throws(() => createHookHandler(), TypeError)
    assert.throws(() => createHookHandler({}), /secret is missing or empty/)
    assert.throws(() => createHookHandler({ secret: '' }), /secret is missing or empty/)
    assert.throws(() => createHookHandler({ secret: 's', rpc: { echo: 'no' } }), /rpc\["echo"\] is not a function/)
    assert.throws(() => createHookHandler({ secret: 's', subscribe: [] }), /subscribe must be an object/)
    assert.throws(() => createHookHandler({ secret: 's', connect: {} }), /connect must be a function/)
    assert.throws(() => createHookHandler({ secret: 's', limit: 0 }), /limit/)
    assert.throws(() => new RpcError(''), TypeError)
    const err = new RpcError('NOT_FOUND', 'no such room')
    assert.deepEqual([err.name, err.code, err.reason, err.message], ['RpcError', 'NOT_FOUND', 'no such room', 'NOT_FOUND: no such room'])
    assert.ok(err instanceof Error)
  })
})

describe('the hooks of a real hub, answered by createHookHandler', () => {
  let app
  let hub
  const requests = [] // [hook, body] as the app's functions got them
  const notices = []
  const errors = [] // [hook, error] from onError

  before(async () => {
    const handler = createHookHandler({
      secret: SECRET,
      connect(request) {
        requests.push(['connect', request])
        switch (request.headers.cookie) {
          case 'session=ann':
            return { user: 'ann', read: ['room:*', 'gated:*'], write: ['room:*'], info: { name: 'Ann' }, expiresIn: 3600 }
          case 'session=42':
            return { user: 42 }
          case 'session=banned':
            return false
          case 'session=boom':
            throw new Error('the session store is down')
          default:
            return null
        }
      },
      subscribe: {
        'gated:open': (request) => {
          requests.push(['subscribe', request])
          return [{ event: 'welcome', data: { to: request.channel } }, { data: [1, 2] }]
        },
        'gated:closed': () => ({ allow: false, reason: 'members only' }),
        'gated:yes': async () => true,
        'gated:no': async () => false,
        'gated:forgot': () => {},
        'gated:staff:*': (request) => request.user === 'ann',
        'gated:broken': () => 'yes',
      },
      rpc: {
        async echo(data, request) {
          requests.push(['rpc', request])
          return { you: request.user, sent: data }
        },
        async slow() {
          await new Promise((resolve) => setTimeout(resolve, 300))
          return 'late'
        },
        nothing() {},
        refuse() {
          throw new RpcError('NOT_ALLOWED', 'no')
        },
        bare() {
          throw new RpcError('BARE')
        },
        boom() {
          throw new Error('secret detail of the app')
        },
      },
      events(notice) {
        notices.push(notice)
      },
      onError(error, hook) {
        errors.push([hook, error])
      },
    })
    app = await serve(handler)
    hub = await startHub(`
[anonymous]
read = ["public:*"]

[[namespaces]]
pattern = "gated:*"
subscribe_hook = true

[hooks]
connect_url = "${app.url}/hubbub/connect"
subscribe_url = "${app.url}/hubbub/subscribe"
rpc_url = "${app.url}/hubbub/rpc"
events_url = "${app.url}/hubbub/events"
secret = "${SECRET}"
timeout = "3s"
`)
  })

  after(async () => {
    await hub?.stop()
    await app?.close()
  })

  /** A raw socket's close code, for connections the hub closes before its welcome. */
  async function closeCode(cookie) {
    const client = new Client(new WebSocket(hub.wsUrl, { headers: { Cookie: cookie } }))
    return (await client.closed).code
  }

  it('identify a connection by its forwarded cookie', async () => {
    const ann = await Client.connect(hub.wsUrl, { headers: { Cookie: 'session=ann' } })
    assert.equal(ann.user, 'ann')
    const [, request] = requests.find(([hook, r]) => hook === 'connect' && r.client === ann.id)
    assert.equal(request.headers.cookie, 'session=ann')
    assert.equal(request.ip, '127.0.0.1')
    // The identity's permissions hold, without a token.
    await ann.subscribe('room:1')
    assert.deepEqual((await ann.command({ subscribe: { channel: 'public:x' } })).err, 'ACCESS_DENIED')
    await ann.close()

    const numbered = await Client.connect(hub.wsUrl, { headers: { Cookie: 'session=42' } })
    assert.equal(numbered.user, '42')
    await numbered.close()
    const anonymous = await Client.connect(hub.wsUrl)
    assert.equal(anonymous.user, undefined)
    await anonymous.close()
  })

  it('refuse a connection (4403), and fail closed when connect throws (4503)', async () => {
    assert.equal(await closeCode('session=banned'), 4403)
    const before = errors.length
    assert.equal(await closeCode('session=boom'), 4503)
    const [hook, error] = await eventually(() => errors[before], 'onError')
    assert.equal(hook, 'connect')
    assert.equal(error.message, 'the session store is down')
  })

  it('allow, greet and refuse subscriptions by pattern; refuse what no pattern matches', async () => {
    const anon = await Client.connect(hub.wsUrl)
    assert.deepEqual(await anon.command({ subscribe: { channel: 'gated:open' } }), { subscribed: 'gated:open' })
    assert.deepEqual(await anon.next('message'), { channel: 'gated:open', event: 'welcome', data: { to: 'gated:open' } })
    assert.deepEqual(await anon.next('message'), { channel: 'gated:open', event: 'message', data: [1, 2] })
    const [, asked] = requests.find(([hook, r]) => hook === 'subscribe' && r.client === anon.id)
    assert.deepEqual(
      [asked.user, asked.channel, asked.clients_count, asked.clients_in_channel],
      [null, 'gated:open', 0, []],
    )
    await anon.subscribe('gated:yes')
    // Without a reason of the app's, the hub gives one.
    const refusals = [
      ['gated:closed', 'members only'],
      ['gated:no', 'the app refused "gated:no"'],
      ['gated:forgot', 'the app refused "gated:forgot"'],
      ['gated:nobody-wrote-a-handler', 'not allowed'],
      ['gated:staff:1', 'the app refused "gated:staff:1"'],
    ]
    for (const [channel, reason] of refusals) {
      const answer = await anon.command({ subscribe: { channel } })
      assert.equal(answer.err, 'ACCESS_DENIED', channel)
      assert.equal(answer.reason, reason, channel)
    }
    const ann = await Client.connect(hub.wsUrl, { headers: { Cookie: 'session=ann' } })
    await ann.subscribe('gated:staff:1')
    // A verdict that is none of the documented ones is the app's mistake: UNAVAILABLE for
    // the client, the reason in the app's onError.
    const before = errors.length
    assert.equal((await ann.command({ subscribe: { channel: 'gated:broken' } })).err, 'UNAVAILABLE')
    const [hook, error] = await eventually(() => errors[before], 'onError')
    assert.equal(hook, 'subscribe')
    assert.match(error.message, /returned string/)
    await anon.close()
    await ann.close()
  })

  it('answer rpcs with data or the app error, in order', async () => {
    const ann = await Client.connect(hub.wsUrl, { headers: { Cookie: 'session=ann' } })
    ann.send({ rpc: { method: 'slow', data: null } })
    ann.send({ rpc: { method: 'echo', data: { x: 1 } } })
    assert.deepEqual(await ann.next('rpcResult'), { method: 'slow', data: 'late' })
    assert.deepEqual(await ann.next('rpcResult'), { method: 'echo', data: { you: 'ann', sent: { x: 1 } } })
    const [, request] = requests.find(([hook]) => hook === 'rpc')
    assert.deepEqual(request, { client: ann.id, user: 'ann', info: { name: 'Ann' }, method: 'echo', data: { x: 1 } })
    const answers = {
      nothing: { rpcResult: { method: 'nothing', data: null } },
      refuse: { rpcResult: { method: 'refuse', error: { code: 'NOT_ALLOWED', reason: 'no' } } },
      bare: { rpcResult: { method: 'bare', error: { code: 'BARE' } } },
      missing: { rpcResult: { method: 'missing', error: { code: 'METHOD_NOT_FOUND', reason: 'no method "missing"' } } },
      // Not a method of the app's, though every object has it.
      toString: { rpcResult: { method: 'toString', error: { code: 'METHOD_NOT_FOUND', reason: 'no method "toString"' } } },
    }
    for (const [method, answer] of Object.entries(answers)) {
      assert.deepEqual(await ann.command({ rpc: { method, data: 1 } }), answer, method)
    }
    // A method that throws: the client learns that the app failed, not why.
    const before = errors.length
    const failed = await ann.command({ rpc: { method: 'boom', data: null } })
    assert.equal(failed.err, 'UNAVAILABLE')
    assert.doesNotMatch(failed.reason, /secret detail/)
    const [hook, error] = await eventually(() => errors[before], 'onError')
    assert.equal(hook, 'rpc')
    assert.equal(error.message, 'secret detail of the app')
    await ann.close()
  })

  it('pass on unsubscribe and disconnect notices', async () => {
    const ann = await Client.connect(hub.wsUrl, { headers: { Cookie: 'session=ann' } })
    await ann.subscribe('room:notices')
    assert.deepEqual(await ann.command({ unsubscribe: { channel: 'room:notices' } }), { unsubscribed: 'room:notices' })
    const unsubscribe = await eventually(
      () => notices.find((n) => n.client === ann.id && n.event === 'unsubscribe'),
      'the unsubscribe notice',
    )
    assert.deepEqual(unsubscribe, { event: 'unsubscribe', client: ann.id, user: 'ann', channel: 'room:notices', clients_count: 0 })
    await ann.close()
    const disconnect = await eventually(
      () => notices.find((n) => n.client === ann.id && n.event === 'disconnect'),
      'the disconnect notice',
    )
    assert.equal(disconnect.user, 'ann')
  })
})

describe('the handler over HTTP', () => {
  let app
  const errors = []
  const handler = createHookHandler({
    secret: SECRET,
    rpc: { echo: (data) => data },
    onError: (error, hook) => errors.push([hook, error]),
    limit: 1024,
  })
  const rpcRequest = { client: 'c', user: null, method: 'echo', data: { n: 1 } }

  before(async () => {
    app = await serve(handler)
  })

  after(() => app?.close())

  async function json(response) {
    assert.equal(response.headers.get('content-type'), 'application/json')
    return [response.status, await response.json()]
  }

  it('answers a signed request', async () => {
    assert.deepEqual(await json(await post(`${app.url}/hooks/rpc`, rpcRequest)), [200, { data: { n: 1 } }])
    // Routed by the path's last segment, wherever the handler is mounted; a query is ignored.
    assert.deepEqual(await json(await post(`${app.url}/rpc/?x=1`, rpcRequest)), [200, { data: { n: 1 } }])
  })

  it('refuses a tampered body, another secret, a missing header and a replay with 403', async () => {
    const timestamp = now()
    const signed = JSON.stringify(rpcRequest)
    const tampered = await fetch(`${app.url}/hooks/rpc`, {
      method: 'POST',
      headers: {
        'x-hubbub-timestamp': String(timestamp),
        'x-hubbub-signature': signHook(SECRET, timestamp, signed),
      },
      body: signed.replace('"n":1', '"n":2'),
    })
    assert.deepEqual(await json(tampered), [403, { err: 'ACCESS_DENIED', reason: 'bad signature' }])
    assert.deepEqual(await json(await post(`${app.url}/hooks/rpc`, rpcRequest, { secret: 'guess' })), [
      403,
      { err: 'ACCESS_DENIED', reason: 'bad signature' },
    ])
    const unsigned = await post(`${app.url}/hooks/rpc`, rpcRequest, { headers: { 'content-type': 'application/json' } })
    assert.deepEqual(await json(unsigned), [403, { err: 'ACCESS_DENIED', reason: 'no X-Hubbub-Timestamp header' }])
    const noSignature = await post(`${app.url}/hooks/rpc`, rpcRequest, { headers: { 'x-hubbub-timestamp': String(now()) } })
    assert.deepEqual(await json(noSignature), [403, { err: 'ACCESS_DENIED', reason: 'no X-Hubbub-Signature header' }])
    // Rightly signed ten minutes ago: a replay.
    const [status, body] = await json(await post(`${app.url}/hooks/rpc`, rpcRequest, { timestamp: now() - 600 }))
    assert.equal(status, 403)
    assert.equal(body.err, 'ACCESS_DENIED')
    assert.match(body.reason, /replayed, or a clock is wrong/)
    // Unsigned requests learn nothing of which hooks the app answers.
    const unknownHook = await post(`${app.url}/hooks/connect`, {}, { headers: {} })
    assert.equal(unknownHook.status, 403)
  })

  it('answers a GET with 405, bad JSON with 400, a large body with 413', async () => {
    const get = await fetch(`${app.url}/hooks/rpc`)
    assert.equal(get.headers.get('allow'), 'POST')
    assert.deepEqual(await json(get), [405, { err: 'UNKNOWN_COMMAND', reason: 'hook requests are POSTs' }])
    assert.deepEqual(await json(await post(`${app.url}/hooks/rpc`, '{"client":')), [
      400,
      { err: 'INVALID_PAYLOAD', reason: 'the body is not JSON' },
    ])
    assert.deepEqual(await json(await post(`${app.url}/hooks/rpc`, '[1]')), [
      400,
      { err: 'INVALID_PAYLOAD', reason: 'the body is not a JSON object' },
    ])
    const large = { ...rpcRequest, data: 'x'.repeat(2000) }
    assert.deepEqual(await json(await post(`${app.url}/hooks/rpc`, large)), [
      413,
      { err: 'LIMIT_EXCEEDED', reason: 'the body is larger than 1024 bytes' },
    ])
    // Hooks the options leave out, and paths that are no hook.
    assert.deepEqual(await json(await post(`${app.url}/hooks/connect`, {})), [
      404,
      { err: 'UNKNOWN_COMMAND', reason: 'no connect hook here' },
    ])
    const other = await post(`${app.url}/hooks/other`, {})
    assert.equal(other.status, 404)
  })

  it('hands other paths to next(), as Express middleware', () => {
    let nexted = false
    handler({ method: 'POST', url: '/static/app.js', headers: {} }, {}, () => {
      nexted = true
    })
    assert.ok(nexted)
  })

  it("takes the raw body from express.raw() and names express.json()'s mistake", async () => {
    // The way Express's routes hand the handler a request whose body its parsers read.
    const expressLike = (parse) => (req, res) => {
      const chunks = []
      req.on('data', (c) => chunks.push(c))
      req.on('end', () => {
        const raw = Buffer.concat(chunks)
        if (parse) {
          req.body = JSON.parse(raw)
          req._body = true
        } else {
          req.body = raw
        }
        handler(req, res, () => res.writeHead(404).end())
      })
    }
    const raw = await serve(expressLike(false))
    const parsed = await serve(expressLike(true))
    try {
      assert.deepEqual(await json(await post(`${raw.url}/hubbub/rpc`, rpcRequest)), [200, { data: { n: 1 } }])
      const before = errors.length
      const [status, body] = await json(await post(`${parsed.url}/hubbub/rpc`, rpcRequest))
      assert.deepEqual([status, body.err], [500, 'UNAVAILABLE'])
      const [hook, error] = errors[before]
      assert.equal(hook, 'rpc')
      assert.match(error.message, /express\.raw\(\{ type: 'application\/json' \}\)/)
    } finally {
      await raw.close()
      await parsed.close()
    }
  })
})
