'use strict'
// Publishing straight into the Redis engine (`new Publisher({ url: 'redis://...' })`): a
// real redis-server, real hubbub nodes with engine = "redis" sharing it, and real WebSocket
// subscribers on them. The publisher is hubbub-publisher's Redis transport: what it writes
// is what a node writes.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { startHub, startRedis, Client } = require('./hub.js')
const { Publisher, HubbubError, Unavailable } = require('..')

const NAMESPACES = [{ pattern: 'room:*', history_size: 10, history_ttl: '5m' }]
// The same namespaces as the nodes' --namespaces flag writes them.
const NAMESPACES_TOML = '[{pattern="room:*", history_size=10, history_ttl="5m"}]'
const PREFIX = `node-${process.pid}`

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof HubbubError, `not a HubbubError: ${err}`)
    assert.equal(err.code, code, err.message)
    assert.equal(err instanceof Unavailable, code === 'UNAVAILABLE')
    return true
  })
  return promise.catch((err) => err)
}

describe('publishing through Redis', () => {
  let redis
  let a
  let b
  let publisher
  const clients = []
  const connect = async (hub) => {
    const c = await Client.connect(hub.wsUrl)
    clients.push(c)
    return c
  }

  before(async () => {
    redis = await startRedis()
    const args = ['--engine', 'redis', '--redis-url', redis.url, '--redis-prefix', PREFIX]
    ;[a, b] = await Promise.all([0, 1].map(() => startHub([...args, '--namespaces', NAMESPACES_TOML])))
    publisher = new Publisher({ url: redis.url, namespaces: NAMESPACES, redisPrefix: PREFIX })
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await Promise.all([a.stop(), b.stop()])
    await redis.stop()
  })

  it('reaches subscribers on every node, with the offset a node gives', async () => {
    assert.equal(publisher.url, redis.url)
    const onA = await connect(a)
    const onB = await connect(b)
    for (const c of [onA, onB]) {
      await c.subscribe('room:1')
      await c.subscribe('plain')
    }
    const first = await publisher.publish('room:1', { text: 'hi' }, { event: 'chat' })
    assert.equal(first.published, 'room:1')
    assert.equal(first.offset, 1)
    assert.equal(typeof first.epoch, 'string')
    for (const c of [onA, onB]) {
      assert.deepEqual(await c.next('message'), {
        channel: 'room:1',
        event: 'chat',
        data: { text: 'hi' },
        offset: 1,
      })
    }
    // A publication through a node comes next in the same stream.
    const second = await new Publisher({ url: b.url }).publish('room:1', 2)
    assert.deepEqual({ ...second }, { published: 'room:1', offset: 2, epoch: first.epoch })

    // A node's history lists it, as does the history read through Redis.
    const history = await new Publisher({ url: a.url }).history('room:1')
    assert.deepEqual(
      { ...history, messages: history.messages.map((m) => ({ ...m })) },
      {
        channel: 'room:1',
        epoch: first.epoch,
        offset: 2,
        messages: [
          { channel: 'room:1', event: 'chat', data: { text: 'hi' }, offset: 1 },
          { channel: 'room:1', event: 'message', data: 2, offset: 2 },
        ],
      },
    )
    const throughRedis = await publisher.history('room:1', { limit: 1 })
    assert.equal(throughRedis.offset, 2)
    assert.deepEqual(
      throughRedis.messages.map((m) => m.offset),
      [2],
    )

    // A channel without history: no offset.
    const plain = await publisher.publish('plain', 'x')
    assert.equal(plain.offset, undefined)
    assert.equal(plain.epoch, undefined)
    for (const c of [onA, onB]) {
      assert.equal((await c.next('message')).offset, 2)
      assert.deepEqual(await c.next('message'), { channel: 'plain', event: 'message', data: 'x' })
    }
    await rejectsWith(publisher.history('plain'), 'INVALID_CHANNEL')
  })

  it('sends direct messages to connections on any node', async () => {
    const c = await connect(b)
    const sent = await publisher.direct('psst', { client: c.id })
    assert.deepEqual({ ...sent }, { directSent: c.id, delivered: 1 })
    assert.deepEqual(await c.next('directMessage'), { event: 'message', data: 'psst' })
    await rejectsWith(publisher.direct(1, { user: 'nobody' }), 'INVALID_CLIENT')
    const err = await rejectsWith(publisher.info(), 'UNKNOWN_COMMAND')
    assert.match(err.message, /not available through Redis/)
  })

  it('is UNAVAILABLE at once where no Redis listens', async () => {
    const port = await new Promise((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address()
        probe.close(() => resolve(port))
      })
    })
    const url = `redis://127.0.0.1:${port}/0`
    const p = new Publisher({ url, namespaces: NAMESPACES })
    const started = Date.now()
    for (const channel of ['room:1', 'plain']) {
      const err = await rejectsWith(p.publish(channel, 1), 'UNAVAILABLE')
      assert.match(err.message, /cannot reach the Redis at redis:\/\/127\.0\.0\.1/)
    }
    assert.ok(Date.now() - started < 2000)
  })

  it('refuses options that cannot publish through Redis', () => {
    const refused = (options, says) =>
      assert.throws(
        () => new Publisher({ url: 'redis://127.0.0.1:1/0', ...options }),
        (err) => !(err instanceof HubbubError) && err.message.includes(says),
      )
    refused({}, "needs the hubs' namespaces")
    refused({ namespaces: [{ pattern: 'a', history_sise: 1 }] }, 'unknown field `history_sise`')
    refused({ namespaces: [{ pattern: 'a', history_ttl: 'soon' }] }, 'namespaces[0].history_ttl')
    refused({ namespaces: [], redisPrefix: 'a b' }, 'bad redis_prefix')
    const p = new Publisher({ url: 'redis://:hunter2@127.0.0.1:1/0', namespaces: [] })
    assert.equal(p.url, 'redis://:***@127.0.0.1:1/0')
  })
})
