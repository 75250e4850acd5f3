'use strict'
// Test fixtures: a real `hubbub` process on an ephemeral port, and a WebSocket client that
// speaks the protocol's frames.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const WebSocket = require('ws')

const HUBBUB_BIN =
  process.env.HUBBUB_BIN || path.resolve(__dirname, '..', '..', 'target', 'debug', 'hubbub')
// Frames the hub sends of its own accord, between the answers to commands.
const DELIVERIES = ['message', 'directMessage', 'join', 'leave']
const LISTENING = /listening on http:\/\/([0-9.]+):([0-9]+)/

/**
 * Starts `hubbub --listen 127.0.0.1:0`, with `config` as its config file when it is TOML
 * text, or as more command-line arguments when it is an array, and resolves once it says
 * where it listens.
 */
async function startHub(config) {
  const args = ['--listen', '127.0.0.1:0']
  let dir
  if (Array.isArray(config)) {
    args.push(...config)
  } else if (config !== undefined) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-node-'))
    const file = path.join(dir, 'hubbub.toml')
    fs.writeFileSync(file, config)
    args.push('--config', file)
  }
  const env = { ...process.env }
  for (const key of Object.keys(env)) if (key.startsWith('HUBBUB_')) delete env[key]
  const child = spawn(HUBBUB_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'], env })
  let log = ''
  const address = await new Promise((resolve, reject) => {
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk) => {
      log += chunk
      const m = LISTENING.exec(log)
      if (m) resolve({ host: m[1], port: Number(m[2]) })
    })
    child.on('error', reject)
    child.on('exit', (code) => reject(new Error(`hubbub exited with ${code} before listening:\n${log}`)))
  })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const base = `${address.host}:${address.port}`
  return {
    url: `http://${base}`,
    wsUrl: `ws://${base}/ws`,
    port: address.port,
    log: () => log,
    /** Stops the hub with SIGTERM and resolves with its exit status. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const status = await exited
      if (dir) fs.rmSync(dir, { recursive: true, force: true })
      return status
    },
  }
}

/** A WebSocket client of the hub: frames arrive in a queue, and `next` takes from it. */
class Client {
  constructor(ws) {
    this.ws = ws
    this.frames = []
    this.waiters = []
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() })
        for (const w of this.waiters.splice(0)) w.reject(new Error(`socket closed (${code})`))
      })
    })
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()))
      this.deliver()
    })
  }

  /**
   * Connects and waits for the `connected` frame; `.id` is the client id, `.user` the user
   * the hub named in it (where the app's connect hook identified the connection).
   * `options` go to the `ws` constructor (e.g. `{ headers: { Cookie: '...' } }`).
   */
  static async connect(url, options) {
    const ws = new WebSocket(url, options)
    const client = new Client(ws)
    await new Promise((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    const connected = await client.next('connected')
    client.id = connected.client
    client.user = connected.user
    return client
  }

  deliver() {
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i]
      const at = this.frames.findIndex(w.wants)
      if (at >= 0) {
        const [frame] = this.frames.splice(at, 1)
        this.waiters.splice(i--, 1)
        w.resolve(frame)
      }
    }
  }

  take(wants) {
    return new Promise((resolve, reject) => {
      this.waiters.push({ wants, resolve, reject })
      this.deliver()
    })
  }

  /** Resolves with the argument of the first queued frame of `kind` ('message', ...). */
  async next(kind) {
    return (await this.take((f) => kind in f))[kind]
  }

  /** Sends a command and resolves with its answer: the next frame that is no delivery. */
  command(frame) {
    this.send(frame)
    return this.take((f) => !DELIVERIES.some((kind) => kind in f))
  }

  send(frame) {
    this.ws.send(JSON.stringify(frame))
  }

  async subscribe(channel) {
    const answer = await this.command({ subscribe: { channel } })
    if (answer.subscribed !== channel) throw new Error(`subscribe: ${JSON.stringify(answer)}`)
  }

  close() {
    this.ws.close()
    return this.closed
  }
}

/**
 * Starts a `redis-server` on a free loopback port (with more `args`, e.g. `--requirepass`)
 * and resolves once it accepts connections; `.stop()` ends it.
 */
async function startRedis(args = []) {
  const net = require('node:net')
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args],
    { stdio: 'ignore' },
  )
  const exited = new Promise((resolve) => child.on('exit', resolve))
  const deadline = Date.now() + 10000
  for (;;) {
    const up = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (up) break
    if (Date.now() > deadline) throw new Error('redis-server did not start')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}

module.exports = { startHub, startRedis, Client, HUBBUB_BIN }
