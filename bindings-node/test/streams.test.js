'use strict'
// History, positions and presence through the Publisher, against a real hub whose room:*
// channels keep history (their last 10 messages) and presence, with real WebSocket clients.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { startHub, Client } = require('./hub.js')
const { Publisher, HubbubError, Unavailable, token } = require('..')

const SECRET = 'streams-test-secret'
const NAMESPACES = '[{pattern="room:*", history_size=10, presence=true}]'

/** Asserts that `promise` rejects with a HubbubError of `code`. */
async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof HubbubError, `not a HubbubError: ${err}`)
    assert.equal(err.code, code, err.message)
    assert.equal(err instanceof Unavailable, code === 'UNAVAILABLE')
    return true
  })
}

describe('history and presence', () => {
  let hub
  let plain
  let publisher
  const clients = []
  const connect = async (url = hub.wsUrl) => {
    const c = await Client.connect(url)
    clients.push(c)
    return c
  }

  before(async () => {
    ;[hub, plain] = await Promise.all([
      startHub(['--namespaces', NAMESPACES, '--token-secret', SECRET]),
      startHub([]),
    ])
    publisher = new Publisher({ url: hub.url })
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await Promise.all([hub.stop(), plain.stop()])
  })

  it('publish() answers the offset and epoch where the channel keeps history', async () => {
    const c = await connect()
    await c.subscribe('room:position')
    const first = await publisher.publish('room:position', { n: 1 }, { event: 'chat' })
    assert.deepEqual(Object.keys(first).sort(), ['epoch', 'offset', 'published'])
    assert.equal(first.published, 'room:position')
    assert.equal(first.offset, 1)
    assert.ok(typeof first.epoch === 'string' && first.epoch.length > 0, first.epoch)
    assert.deepEqual(await publisher.publish('room:position', { n: 2 }), {
      published: 'room:position',
      offset: 2,
      epoch: first.epoch,
    })
    // Subscribers see the same offsets on their message frames.
    assert.deepEqual(await c.next('message'), {
      channel: 'room:position',
      event: 'chat',
      data: { n: 1 },
      offset: 1,
    })
    assert.equal((await c.next('message')).offset, 2)
    // A channel that keeps no history answers as ever, without a position.
    assert.deepEqual({ ...(await publisher.publish('plain:position', 1)) }, { published: 'plain:position' })
  })

  it('history() pages through what a channel keeps', async () => {
    let epoch
    for (let n = 1; n <= 5; n++) epoch = (await publisher.publish('room:pages', { n }, { event: `e${n}` })).epoch
    const page = await publisher.history('room:pages')
    assert.equal(page.channel, 'room:pages')
    assert.deepEqual([page.epoch, page.offset], [epoch, 5])
    assert.deepEqual({ ...page.messages[0] }, { channel: 'room:pages', event: 'e1', data: { n: 1 }, offset: 1 })
    const offsets = async (options) => (await publisher.history('room:pages', options)).messages.map((m) => m.offset)
    assert.deepEqual(await offsets(), [1, 2, 3, 4, 5])
    assert.deepEqual(await offsets({ limit: 2 }), [4, 5]) // the newest two
    assert.deepEqual(await offsets({ since: 2 }), [3, 4, 5]) // everything after offset 2
    assert.deepEqual(await offsets({ since: 2, limit: 2 }), [3, 4]) // the first two after it
    assert.deepEqual(await offsets({ since: 5 }), [])
    assert.deepEqual(await offsets({}), [1, 2, 3, 4, 5])
    // limit: 0 is the position alone.
    assert.deepEqual(
      { ...(await publisher.history('room:pages', { limit: 0 })) },
      { channel: 'room:pages', epoch, offset: 5, messages: [] },
    )
  })

  it('history() of a channel never published to has a position its first message keeps', async () => {
    const fresh = await publisher.history('room:fresh')
    assert.deepEqual([fresh.channel, fresh.offset, fresh.messages], ['room:fresh', 0, []])
    assert.equal((await publisher.publish('room:fresh', 1)).epoch, fresh.epoch)
  })

  it('history() keeps the newest history_size messages', async () => {
    for (let n = 1; n <= 15; n++) await publisher.publish('room:trimmed', n)
    const page = await publisher.history('room:trimmed')
    assert.equal(page.offset, 15)
    assert.deepEqual(
      page.messages.map((m) => m.data),
      Array.from({ length: 10 }, (_, i) => i + 6),
    )
  })

  it('history() gives data back as JSON.parse reads the frame a subscriber gets', async () => {
    const c = await connect()
    await c.subscribe('room:exact')
    const values = [
      { text: 'hi', n: [1, 2.5, null, true], é: 'ünïcødé ✓ "q"\n' },
      [],
      {},
      'plain',
      0,
      -0.5,
      0.1 + 0.2,
      1e300,
      5e-324,
      Number.MAX_SAFE_INTEGER,
      2 ** 64, // beyond 64 bits once written: 18446744073709552000
      -(2 ** 63),
      null,
      false,
    ]
    for (const data of values) {
      await publisher.publish('room:exact', data)
      const [message] = (await publisher.history('room:exact', { limit: 1 })).messages
      const frame = await c.next('message')
      assert.deepEqual(message.data, frame.data)
      assert.deepEqual(message.data, JSON.parse(JSON.stringify(data)))
    }
  })

  it('history() tells which client broadcast a message', async () => {
    const ann = await connect()
    const t = token(SECRET, { user: 'ann', read: ['room:*'], write: ['room:*'] })
    assert.deepEqual(await ann.command({ authenticate: { token: t } }), { authenticated: 'ann' })
    await ann.subscribe('room:broadcast')
    assert.deepEqual(
      await ann.command({ broadcast: { event: 'chat', channel: 'room:broadcast', data: 'hi' } }),
      { broadcasted: 'room:broadcast' },
    )
    const { messages } = await publisher.history('room:broadcast')
    assert.deepEqual(
      messages.map((m) => ({ ...m })),
      [{ channel: 'room:broadcast', event: 'chat', data: 'hi', offset: 1, from: 'ann' }],
    )
  })

  it('history() of a channel with a / in its name', async () => {
    const channel = 'room:user@example.com/inbox'
    assert.equal((await publisher.publish(channel, 'mail')).offset, 1)
    const page = await publisher.history(channel)
    assert.equal(page.channel, channel)
    assert.deepEqual(page.messages.map((m) => m.data), ['mail'])
  })

  it('presence() and presenceStats() list the connections subscribed', async () => {
    assert.deepEqual({ ...(await publisher.presence('room:presence')) }, { channel: 'room:presence', clients: [] })
    const anonymous = await connect()
    const t = token(SECRET, { user: 'ann', read: ['room:*'], info: { name: 'Ann' } })
    const tabs = [await connect(), await connect()]
    for (const tab of tabs) {
      assert.deepEqual(await tab.command({ authenticate: { token: t } }), { authenticated: 'ann' })
    }
    for (const c of [anonymous, ...tabs]) await c.subscribe('room:presence')

    const presence = await publisher.presence('room:presence')
    assert.equal(presence.channel, 'room:presence')
    const byId = (a, b) => a.client.localeCompare(b.client)
    assert.deepEqual(
      presence.clients.map((c) => ({ ...c })).sort(byId),
      [
        { client: anonymous.id, user: null },
        ...tabs.map((tab) => ({ client: tab.id, user: 'ann', info: { name: 'Ann' } })),
      ].sort(byId),
    )
    // Anonymous connections are not users; two tabs of one user are one user.
    assert.deepEqual(
      { ...(await publisher.presenceStats('room:presence')) },
      { channel: 'room:presence', clients: 3, users: 1 },
    )
    // An unsubscribe is answered once the hub has forgotten the subscription.
    assert.deepEqual(await anonymous.command({ unsubscribe: { channel: 'room:presence' } }), {
      unsubscribed: 'room:presence',
    })
    assert.equal((await publisher.presenceStats('room:presence')).clients, 2)
  })

  it('rejects with INVALID_CHANNEL where the channel keeps no history or presence', async () => {
    // A channel outside the namespaces, and a hub without namespaces.
    for (const [url, channel] of [
      [hub.url, 'plain:1'],
      [plain.url, 'room:1'],
    ]) {
      const p = new Publisher({ url })
      await rejectsWith(p.history(channel, { limit: 5 }), 'INVALID_CHANNEL')
      await rejectsWith(p.presence(channel), 'INVALID_CHANNEL')
      await rejectsWith(p.presenceStats(channel), 'INVALID_CHANNEL')
    }
  })

  it('refuses a limit or since that is not a whole number of 0 or more, sending nothing', async () => {
    for (const options of [{ limit: -1 }, { since: 1.5 }, { limit: NaN }, { since: Infinity }, { limit: 2 ** 60 }]) {
      await assert.rejects(publisher.history('room:1', options), (err) => {
        assert.ok(!(err instanceof HubbubError), `${err}`)
        assert.match(err.message, /whole number of 0 or more/)
        return true
      })
    }
    await assert.rejects(publisher.history('room:1', { limit: '10' }), (err) => !(err instanceof HubbubError))
    await assert.rejects(publisher.presence(42), (err) => !(err instanceof HubbubError))
  })
})

describe('history and presence of a hub that cannot be reached', () => {
  it('rejects with UNAVAILABLE', async () => {
    const closed = net.createServer()
    await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const { port } = closed.address()
    await new Promise((resolve) => closed.close(resolve))
    const p = new Publisher({ url: `http://127.0.0.1:${port}` })
    await rejectsWith(p.history('room:1'), 'UNAVAILABLE')
    await rejectsWith(p.presence('room:1'), 'UNAVAILABLE')
    await rejectsWith(p.presenceStats('room:1'), 'UNAVAILABLE')
  })
})
