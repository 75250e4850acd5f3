// What the browser tests run against: a real hubbub process, a static file server for the
// package and the pages, and Debian's Chromium driven by playwright-core.

import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const TESTS = path.dirname(fileURLToPath(import.meta.url));
export const PACKAGE = path.resolve(TESTS, '..');
export const ROOT = path.resolve(PACKAGE, '..');
export const HUBBUB_BIN = process.env.HUBBUB_BIN || path.join(ROOT, 'target/debug/hubbub');

const SECRET = 'browser-tests-token-secret';
const API_KEY = 'browser-tests-api-key';
const LISTENING = /listening on http:\/\/([0-9.]+):([0-9]+)/;

// One config for every hub of the suite: tokens, an API key, and anonymous reading of
// `public:*` and `stream:*` only, so that everything else needs a token's permission.
// `stream:*` channels keep history (recovery, `history`), with presence and join/leave;
// `brief:*` ones keep only 3 messages, so that a gap can outgrow them.
const CONFIG_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-browser-'));
const CONFIG = path.join(CONFIG_DIR, 'hubbub.toml');
process.on('exit', () => fs.rmSync(CONFIG_DIR, { recursive: true, force: true }));
fs.writeFileSync(
  CONFIG,
  `token_secret = "${SECRET}"
api_keys = ["${API_KEY}"]

[anonymous]
read = ["public:*", "stream:*", "brief:*"]

[[namespaces]]
pattern = "stream:*"
history_size = 1000
presence = true
join_leave = true

[[namespaces]]
pattern = "brief:*"
history_size = 3
`,
);

/** A running hubbub process. */
export class Hub {
  constructor(proc, port, log) {
    this.proc = proc;
    this.port = port;
    this.log = log;
    this.exited = new Promise((resolve) => proc.once('exit', resolve));
  }

  /**
   * Starts a hub on `port` (0: an ephemeral one), with `args` added to its command line;
   * resolves once it listens.
   */
  static start(port = 0, args = []) {
    const proc = spawn(HUBBUB_BIN, ['--config', CONFIG, '--listen', `127.0.0.1:${port}`, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const log = [];
    proc.stderr.setEncoding('utf8');
    return new Promise((resolve, reject) => {
      let seen = '';
      let started = false;
      proc.stderr.on('data', (chunk) => {
        // Keep reading for the whole run: a full pipe would stall the hub's logging.
        log.push(chunk);
        if (started) return;
        seen += chunk;
        const m = LISTENING.exec(seen);
        if (m) {
          started = true;
          resolve(new Hub(proc, Number(m[2]), log));
        }
      });
      proc.once('error', reject);
      proc.once('exit', (code, signal) => {
        if (!started) reject(new Error(`hubbub exited (${code ?? signal}) before listening:\n${seen}`));
      });
    });
  }

  get ws() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get http() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Calls the HTTP API; resolves to the JSON answer, throws on an error status. */
  async api(method, route, body) {
    const res = await fetch(this.http + route, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await res.json();
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(answer)}`);
    return answer;
  }

  publish(channel, data, event) {
    return this.api('POST', '/api/publish', { channel, data, ...(event ? { event } : {}) });
  }

  /** A token signed with the hub's secret, minted by `hubbub token`. */
  token(user, { read = [], write = [], info, ttl = '1h' } = {}) {
    const args = ['token', '--config', CONFIG, '--user', user, '--ttl', ttl];
    for (const p of read) args.push('--read', p);
    for (const p of write) args.push('--write', p);
    if (info !== undefined) args.push('--info', JSON.stringify(info));
    return execFileSync(HUBBUB_BIN, args, { encoding: 'utf8' }).trim();
  }

  /** A token signed with the hub's secret whose `exp` is past: `hubbub token` mints none. */
  expiredToken(user) {
    const part = (json) => Buffer.from(JSON.stringify(json)).toString('base64url');
    const exp = Math.floor(Date.now() / 1000) - 60;
    const signed = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: user, exp })}`;
    return `${signed}.${crypto.createHmac('sha256', SECRET).update(signed).digest('base64url')}`;
  }

  /** SIGTERM, and wait for the process to end. */
  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    await this.exited;
  }

  /** Freezes the process: its sockets stay open but nothing answers. */
  pause() {
    this.proc.kill('SIGSTOP');
  }

  resume() {
    this.proc.kill('SIGCONT');
  }
}

/**
 * A TCP proxy in front of a hub: the page connects through it, and `cut()` kills the
 * connections it carries with a reset on both sides, the way a dropped network or a killed
 * peer ends them: no close frame, no FIN. New connections keep being accepted.
 */
export class Proxy {
  constructor(server, target) {
    this.server = server;
    this.target = target;
    this.sockets = new Set();
    this.accepted = 0;
  }

  static start(target) {
    const proxy = new Proxy(null, target);
    proxy.server = net.createServer((downstream) => {
      proxy.accepted += 1;
      const upstream = net.connect(proxy.target, '127.0.0.1');
      for (const [from, to] of [
        [downstream, upstream],
        [upstream, downstream],
      ]) {
        proxy.sockets.add(from);
        from.pipe(to);
        // A reset on one side ends the other too; errors are how cut connections end.
        from.on('error', () => to.destroy());
        from.on('close', () => {
          proxy.sockets.delete(from);
          to.destroy();
        });
      }
    });
    return new Promise((resolve) => {
      proxy.server.listen(0, '127.0.0.1', () => resolve(proxy));
    });
  }

  get port() {
    return this.server.address().port;
  }

  get ws() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Resets every connection through the proxy; returns how many there were. */
  cut() {
    const n = this.sockets.size / 2;
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
    return n;
  }

  close() {
    this.cut();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
};

/** Serves the files under `root` over HTTP on an ephemeral port. */
export function serveFiles(root) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    let file = path.join(root, decodeURIComponent(url.pathname));
    if (!file.startsWith(root + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    fs.readFile(file, (err, body) => {
      if (err) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        close: () => new Promise((done) => server.close(done)),
      });
    });
  });
}

/** Debian's Chromium, headless: Playwright cannot download a browser of its own here. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A fresh page with the package loaded (`window.hubbub = {Client, Recorder}`), `init` run
 * first where given. Uncaught errors and console errors of the page are collected in
 * `page.problems`.
 */
export async function openTestPage(browser, files, init) {
  const context = await browser.newContext();
  // Runs in the page before anything else (e.g. to take WebSocket away).
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // Chromium logs every failed WebSocket connection itself, and every failed load of an
    // event stream (the client's fallback where no WebSocket got through); reconnecting
    // makes those.
    const failed = /^WebSocket connection to .* failed|^Failed to load resource: net::ERR_/;
    if (m.type() === 'error' && !failed.test(m.text())) {
      page.problems.push(`console.error: ${m.text()}`);
    }
  });
  page.sockets = [];
  page.on('websocket', (ws) => page.sockets.push(ws.url()));
  await page.goto(`${files.url}/bindings-wasm/tests/page.html`);
  await page.waitForFunction(() => window.hubbub !== undefined);
  return page;
}

/**
 * Makes the built package importable as `hubbub-client` from the tests (for tsc and Vite),
 * the way an application's node_modules would hold it.
 */
export function linkPackage() {
  const link = path.join(TESTS, 'node_modules', 'hubbub-client');
  if (!fs.existsSync(link)) {
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.join(PACKAGE, 'pkg'), link, 'dir');
  }
}
