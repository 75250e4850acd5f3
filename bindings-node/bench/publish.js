'use strict'
// Publishes per second from one Publisher with a fixed number of calls in flight, against a
// real hub, next to the same requests made with Node's own http module (keep-alive agent)
// as a baseline.
//
//   node bench/publish.js [--url URL] [--count N] [--in-flight N] [--size BYTES]
//
// Without --url it starts $HUBBUB_BIN (default target/release/hubbub, else
// target/debug/hubbub) on an ephemeral port and stops it at the end.

const http = require('node:http')
const fs = require('node:fs')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { Publisher } = require('..')

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    count: { type: 'string', default: '50000' },
    'in-flight': { type: 'string', default: '64' },
    size: { type: 'string', default: '100' },
  },
})
const count = Number(opts.count)
const inFlight = Number(opts['in-flight'])
const data = { text: 'x'.repeat(Math.max(0, Number(opts.size) - 11)) } // ~size bytes of JSON

/**
 * Runs `call` `n` times with `inFlight` calls in flight; resolves with calls per second and
 * the CPU time this process spent per call, in microseconds (JavaScript and native threads
 * alike). On a busy machine the rate swings with what else runs; the CPU time much less.
 */
async function rate(n, call) {
  let next = 0
  const worker = async () => {
    while (next < n) {
      next++
      await call()
    }
  }
  const cpu = process.cpuUsage()
  const started = process.hrtime.bigint()
  await Promise.all(Array.from({ length: inFlight }, worker))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const used = process.cpuUsage(cpu)
  return { perSecond: n / seconds, cpuMicros: (used.user + used.system) / n }
}

/** The same publish with node:http and a keep-alive agent of `inFlight` sockets. */
function plainPublisher(url) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight })
  const body = JSON.stringify({ channel: 'bench', data, event: 'message' })
  const { hostname, port } = new URL(url)
  return () =>
    new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent,
          hostname,
          port,
          method: 'POST',
          path: '/api/publish',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume()
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))))
        },
      )
      req.on('error', reject)
      req.end(body)
    })
}

async function main() {
  let hub
  let url = opts.url
  if (!url) {
    const release = path.resolve(__dirname, '..', '..', 'target', 'release', 'hubbub')
    if (!process.env.HUBBUB_BIN && fs.existsSync(release)) process.env.HUBBUB_BIN = release
    // The test fixture reads HUBBUB_BIN when it loads.
    hub = await require('../test/hub.js').startHub()
    url = hub.url
  }
  const publisher = new Publisher({ url })
  const hubbubCall = () => publisher.publish('bench', data)
  const plainCall = plainPublisher(url)
  await rate(Math.min(count, 5000), hubbubCall) // warm-up: connections, JIT
  await rate(Math.min(count, 5000), plainCall)
  const ours = await rate(count, hubbubCall)
  const plain = await rate(count, plainCall)
  console.log(`hub ${url}, ${count} publishes of ~${opts.size} bytes, ${inFlight} in flight`)
  const show = (r) => `${Math.round(r.perSecond)} publishes/s, ${r.cpuMicros.toFixed(1)} µs CPU each`
  console.log(`hubbub-node Publisher: ${show(ours)}`)
  console.log(`node:http keep-alive:  ${show(plain)} (baseline)`)
  console.log(`ratio: ${(ours.perSecond / plain.perSecond).toFixed(2)} (rate), ${(plain.cpuMicros / ours.cpuMicros).toFixed(2)} (CPU)`)
  if (hub) await hub.stop()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
