'use strict'
// The table of publisher cases shared with the Rust and Python suites
// (publisher/tests/cases.json), run against real hubbub processes and real sockets.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const path = require('node:path')
const { startHub } = require('./hub.js')
const { Publisher, HubbubError, Unavailable } = require('..')

const table = JSON.parse(
  fs.readFileSync(path.resolve(__dirname, '..', '..', 'publisher', 'tests', 'cases.json'), 'utf8'),
)
const cases = table.cases.filter((c) => !c.only || c.only.includes('node'))

/** Resolves with the port of a listening server. */
function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)))
}

/** The table's call on a Publisher. */
function call(publisher, c) {
  const data = c.data_bytes !== undefined ? 'x'.repeat(c.data_bytes) : c.data
  const options = c.event !== undefined ? { event: c.event } : undefined
  switch (c.method) {
    case 'publish':
      return publisher.publish(c.channel, data, options)
    case 'broadcast':
      return publisher.broadcast(c.channels, data, options)
    case 'direct':
      return publisher.direct(data, { client: c.client, user: c.user, event: c.event })
    case 'disconnect':
      return publisher.disconnect({ client: c.client, user: c.user })
    case 'channels':
      return publisher.channels()
    case 'info':
      return publisher.info()
    case 'history':
      return publisher.history(c.channel, { limit: c.limit, since: c.since })
    case 'presence':
      return publisher.presence(c.channel)
    case 'presence_stats':
      return publisher.presenceStats(c.channel)
    default:
      throw new Error(`unknown method ${c.method}`)
  }
}

describe('the table of publisher cases', () => {
  const urls = {}
  const hubs = []
  const sockets = []
  let silent
  let other
  const fill = (text) => Object.entries(urls).reduce((t, [name, url]) => t.replaceAll(`{${name}}`, url), text)

  before(async () => {
    // Accepts connections and never answers (the sockets are kept, never read).
    silent = net.createServer((s) => sockets.push(s))
    const silentPort = await listen(silent)
    // Not a hub: every request gets the status of its first path segment.
    other = http.createServer((req, res) => {
      req.resume()
      res.writeHead(Number(req.url.split('/')[1]) || 404, { 'content-type': 'text/html' })
      res.end('<html>not a hub</html>')
    })
    const otherPort = await listen(other)
    for (const [name, server] of Object.entries(table.servers)) {
      if (Array.isArray(server)) {
        const hub = await startHub(server)
        hubs.push(hub)
        urls[name] = hub.url
      } else if (server === 'unreachable') {
        const closed = net.createServer()
        const port = await listen(closed)
        await new Promise((resolve) => closed.close(resolve))
        urls[name] = `http://127.0.0.1:${port}`
      } else if (server === 'silent') {
        urls[name] = `http://127.0.0.1:${silentPort}`
      } else if (server === 'other') {
        urls[name] = `http://127.0.0.1:${otherPort}`
      } else {
        throw new Error(`unknown server ${server}`)
      }
    }
  })

  after(async () => {
    await Promise.all(hubs.map((h) => h.stop()))
    for (const s of sockets) s.destroy()
    other.closeAllConnections()
    await Promise.all([silent, other].map((s) => new Promise((resolve) => s.close(resolve))))
  })

  for (const c of cases) {
    it(c.name, async () => {
      const saved = { HUBBUB_URL: process.env.HUBBUB_URL, HUBBUB_API_KEY: process.env.HUBBUB_API_KEY }
      delete process.env.HUBBUB_URL
      delete process.env.HUBBUB_API_KEY
      for (const [name, value] of Object.entries(c.env || {})) {
        if (value === null) delete process.env[name]
        else process.env[name] = fill(value)
      }
      try {
        const o = c.options || {}
        const options = {}
        if (o.url !== undefined) options.url = fill(o.url)
        if (o.api_key !== undefined) options.apiKey = o.api_key
        if (o.timeout_ms !== undefined) options.timeout = o.timeout_ms
        if (o.namespaces !== undefined) options.namespaces = o.namespaces
        if (o.redis_prefix !== undefined) options.redisPrefix = o.redis_prefix
        const expect = c.expect
        if (expect.config_error !== undefined) {
          assert.throws(
            () => new Publisher(options),
            (err) => !(err instanceof HubbubError) && err.message.includes(expect.config_error),
          )
          return
        }
        const publisher = new Publisher(options)
        if (c.call.method === 'construct') {
          assert.equal(publisher.url, fill(expect.url))
          return
        }
        const pending = call(publisher, c.call)
        if (expect.error !== undefined) {
          await assert.rejects(pending, (err) => {
            assert.ok(err instanceof HubbubError, `not a HubbubError: ${err}`)
            assert.equal(err.code, expect.error, err.message)
            assert.equal(err instanceof Unavailable, expect.error === 'UNAVAILABLE')
            if (expect.timeout !== undefined) {
              assert.equal(/did not answer within/.test(err.message), expect.timeout, err.message)
            }
            return true
          })
        } else if (expect.answer !== undefined) {
          assert.deepEqual({ ...(await pending) }, expect.answer)
        } else {
          assert.deepEqual(Object.keys(await pending).sort(), expect.answer_keys)
        }
      } finally {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k]
          else process.env[k] = v
        }
      }
    })
  }
})
