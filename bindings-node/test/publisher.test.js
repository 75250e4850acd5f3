'use strict'
// The Publisher against a real hub in development mode: every method, the errors the hub
// and core give, and hubs that cannot be reached.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const net = require('node:net')
const { startHub, Client } = require('./hub.js')
const { Publisher, HubbubError, Unavailable } = require('..')

/** Asserts that `promise` rejects with a HubbubError of `code`. */
async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof HubbubError, `not a HubbubError: ${err}`)
    assert.ok(err instanceof Error)
    assert.equal(err.code, code, err.message)
    // A hub that cannot be reached is the subclass Unavailable; refusals are HubbubError.
    assert.equal(err instanceof Unavailable, code === 'UNAVAILABLE')
    assert.equal(err.name, code === 'UNAVAILABLE' ? 'Unavailable' : 'HubbubError')
    return true
  })
}

/**
 * Resolves with a listening server's port and a function that closes it, dropping the
 * connections it still has (the publisher keeps its connections alive).
 */
function listen(server) {
  const sockets = new Set()
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  const close = () =>
    new Promise((resolve) => {
      server.close(resolve)
      for (const s of sockets) s.destroy()
    })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ port: server.address().port, close }))
  })
}

describe('Publisher against a development-mode hub', () => {
  let hub
  let publisher
  const clients = []
  const connect = async () => {
    const c = await Client.connect(hub.wsUrl)
    clients.push(c)
    return c
  }

  before(async () => {
    hub = await startHub()
    publisher = new Publisher({ url: hub.url })
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    assert.deepEqual(await hub.stop(), { code: 0, signal: null })
  })

  it('info() gives the version, counts and uptime', async () => {
    const c = await connect()
    await c.subscribe('info:1')
    const info = await publisher.info()
    assert.match(info.version, /^\d+\.\d+\.\d+/)
    assert.ok(info.connections >= 1, JSON.stringify(info))
    assert.ok(info.channels >= 1, JSON.stringify(info))
    assert.equal(typeof info.uptime_s, 'number')
    assert.equal(publisher.url, hub.url)
  })

  it('publish() delivers any JSON value with the default or a given event', async () => {
    const c = await connect()
    await c.subscribe('room:1')
    const values = [{ text: 'hi', n: [1, 2.5, null], ok: true }, [1, 'two'], 'plain', 42, null, false, 'ünïcødé ✓']
    for (const data of values) {
      assert.deepEqual(await publisher.publish('room:1', data), { published: 'room:1' })
      assert.deepEqual(await c.next('message'), { channel: 'room:1', event: 'message', data })
    }
    assert.deepEqual(await publisher.publish('room:1', { x: 1 }, { event: 'chat' }), {
      published: 'room:1',
    })
    assert.deepEqual(await c.next('message'), { channel: 'room:1', event: 'chat', data: { x: 1 } })
  })

  it('publish() encodes data as JSON.stringify does, when it is called', async () => {
    const c = await connect()
    await c.subscribe('json')
    const data = {
      at: new Date(0),
      gone: undefined,
      nan: NaN,
      custom: { toJSON: () => 'custom form' },
      list: [undefined, () => 1],
    }
    const sent = publisher.publish('json', data)
    data.at = 'changed after the call'
    await sent
    assert.deepEqual(await c.next('message'), {
      channel: 'json',
      event: 'message',
      data: { at: '1970-01-01T00:00:00.000Z', nan: null, custom: 'custom form', list: [null, null] },
    })
  })

  it('publish() to a channel nobody is subscribed to succeeds', async () => {
    assert.deepEqual(await publisher.publish('nobody:here', 1), { published: 'nobody:here' })
  })

  it('broadcast() publishes on every channel given', async () => {
    const c = await connect()
    await c.subscribe('b:1')
    await c.subscribe('b:2')
    const answer = await publisher.broadcast(['b:1', 'b:2'], { all: true }, { event: 'news' })
    assert.deepEqual(answer, { published: ['b:1', 'b:2'] })
    const got = [await c.next('message'), await c.next('message')]
    assert.deepEqual(
      got.sort((a, b) => a.channel.localeCompare(b.channel)),
      ['b:1', 'b:2'].map((channel) => ({ channel, event: 'news', data: { all: true } })),
    )
  })

  it('channels() lists the channels with their subscriber counts', async () => {
    const a = await connect()
    const b = await connect()
    await a.subscribe('count:1')
    await b.subscribe('count:1')
    await b.subscribe('count:2')
    const { channels } = await publisher.channels()
    assert.deepEqual(channels['count:1'], { subscribers: 2 })
    assert.deepEqual(channels['count:2'], { subscribers: 1 })
    assert.equal(channels['count:3'], undefined)
  })

  it('direct() reaches one client by its id', async () => {
    const c = await connect()
    const answer = await publisher.direct({ secret: 1 }, { client: c.id, event: 'psst' })
    assert.deepEqual(answer, { directSent: c.id, delivered: 1 })
    assert.deepEqual(await c.next('directMessage'), { event: 'psst', data: { secret: 1 } })
    await publisher.direct('default event', { client: c.id })
    assert.deepEqual(await c.next('directMessage'), { event: 'message', data: 'default event' })
  })

  it('disconnect() closes a client', async () => {
    const c = await connect()
    assert.deepEqual(await publisher.disconnect({ client: c.id }), { disconnected: 1 })
    const { code } = await c.closed
    assert.equal(code, 4000)
    assert.deepEqual(await publisher.disconnect({ client: c.id }), { disconnected: 0 })
  })

  it('rejects bad requests with INVALID_PAYLOAD', async () => {
    await rejectsWith(publisher.publish('bad channel name', 1), 'INVALID_PAYLOAD')
    await rejectsWith(publisher.publish('', 1), 'INVALID_PAYLOAD')
    await rejectsWith(publisher.broadcast([], 1), 'INVALID_PAYLOAD')
    await rejectsWith(publisher.broadcast(['ok', 'not ok'], 1), 'INVALID_PAYLOAD')
    await rejectsWith(publisher.direct(1, {}), 'INVALID_PAYLOAD')
    await rejectsWith(publisher.direct(1, { client: 'a', user: 'b' }), 'INVALID_PAYLOAD')
    await rejectsWith(publisher.disconnect({}), 'INVALID_PAYLOAD')
  })

  it('rejects a direct message nobody receives with INVALID_CLIENT', async () => {
    await rejectsWith(publisher.direct(1, { client: 'no-such-client' }), 'INVALID_CLIENT')
    await rejectsWith(publisher.direct(1, { user: 'no-such-user' }), 'INVALID_CLIENT')
  })

  it('rejects a body over max_message_size with LIMIT_EXCEEDED', async () => {
    await rejectsWith(publisher.publish('big', 'x'.repeat(70 * 1024)), 'LIMIT_EXCEEDED')
  })

  it('rejects arguments of the wrong type without calling the hub', async () => {
    await assert.rejects(publisher.publish(42, 1), (err) => !(err instanceof HubbubError))
    await assert.rejects(publisher.direct(1), (err) => !(err instanceof HubbubError))
    for (const data of [undefined, () => 1, Symbol('s'), 10n]) {
      await assert.rejects(publisher.publish('c', data), (err) => !(err instanceof HubbubError))
    }
    const cycle = {}
    cycle.self = cycle
    await assert.rejects(publisher.publish('c', cycle), /circular/)
  })

  it('keeps many publishes in flight at once on kept-alive connections', async () => {
    // A TCP relay in front of the hub counts the connections the publisher opens.
    let opened = 0
    const relay = await listen(
      net.createServer((socket) => {
        opened++
        const upstream = net.connect(hub.port, '127.0.0.1')
        socket.setNoDelay(true)
        upstream.setNoDelay(true)
        socket.pipe(upstream).pipe(socket)
        socket.on('close', () => upstream.destroy())
        upstream.on('close', () => socket.destroy())
      }),
    )
    try {
      const relayed = new Publisher({ url: `http://127.0.0.1:${relay.port}` })
      const c = await connect()
      await c.subscribe('flight')
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(
          Array.from({ length: 64 }, (_, i) => relayed.publish('flight', { round, i })),
        )
        assert.equal(answers.length, 64)
        const got = []
        for (let i = 0; i < 64; i++) got.push((await c.next('message')).data)
        assert.deepEqual(
          got.filter((d) => d.round === round).map((d) => d.i).sort((a, b) => a - b),
          Array.from({ length: 64 }, (_, i) => i),
        )
      }
      // 192 calls, at most 64 at a time: connections were reused, not opened per call.
      assert.ok(opened >= 1 && opened <= 64, `${opened} connections for 192 calls`)
      const before = opened
      for (let i = 0; i < 10; i++) await relayed.publish('flight', i)
      assert.equal(opened, before, 'one call after another reuses a pooled connection')
    } finally {
      await relay.close()
    }
  })
})

describe('Publisher and a hub that cannot be reached', () => {
  it('rejects with UNAVAILABLE when nothing listens', async () => {
    const closed = await listen(net.createServer())
    await closed.close()
    const publisher = new Publisher({ url: `http://127.0.0.1:${closed.port}` })
    for (const call of [
      () => publisher.publish('c', 1),
      () => publisher.broadcast(['c'], 1),
      () => publisher.direct(1, { client: 'x' }),
      () => publisher.disconnect({ user: 'u' }),
      () => publisher.channels(),
      () => publisher.info(),
    ]) {
      await rejectsWith(call(), 'UNAVAILABLE')
    }
  })

  it('rejects with UNAVAILABLE when the hub does not answer within the timeout', async () => {
    const sockets = []
    const silent = await listen(net.createServer((s) => sockets.push(s)))
    try {
      const publisher = new Publisher({ url: `http://127.0.0.1:${silent.port}`, timeout: 300 })
      const started = Date.now()
      await rejectsWith(publisher.publish('c', 1), 'UNAVAILABLE')
      assert.ok(Date.now() - started >= 250, 'gave up before the timeout')
      assert.equal(sockets.length, 1)
    } finally {
      await silent.close()
    }
  })

  it('rejects with UNAVAILABLE when something else answers', async () => {
    const other = await listen(
      http.createServer((req, res) => {
        res.writeHead(req.url === '/api/info' ? 200 : 502, { 'content-type': 'text/html' })
        res.end('<html>not a hub</html>')
      }),
    )
    try {
      const publisher = new Publisher({ url: `http://127.0.0.1:${other.port}` })
      await rejectsWith(publisher.info(), 'UNAVAILABLE')
      await rejectsWith(publisher.publish('c', 1), 'UNAVAILABLE')
    } finally {
      await other.close()
    }
  })

  it('refuses a URL that is not http(s) at construction', () => {
    assert.throws(() => new Publisher({ url: 'ftp://example' }), /http:\/\/ or https:\/\//)
    assert.throws(() => new Publisher({ url: 'not a url' }), /bad hub URL/)
    assert.throws(() => new Publisher({ url: 'http://h', timeout: 0 }), /timeout/)
  })
})
