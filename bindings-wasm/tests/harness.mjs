// What the browser tests run against: a real hubbub process, a static file server for the
// package and the pages, and Debian's Chromium driven by playwright-core.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
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
// `public:*` only, so that everything else needs a token's permission.
const CONFIG_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-browser-'));
const CONFIG = path.join(CONFIG_DIR, 'hubbub.toml');
process.on('exit', () => fs.rmSync(CONFIG_DIR, { recursive: true, force: true }));
fs.writeFileSync(
  CONFIG,
  `token_secret = "${SECRET}"\napi_keys = ["${API_KEY}"]\n\n[anonymous]\nread = ["public:*"]\n`,
);

/** A running hubbub process. */
export class Hub {
  constructor(proc, port, log) {
    this.proc = proc;
    this.port = port;
    this.log = log;
    this.exited = new Promise((resolve) => proc.once('exit', resolve));
  }

  /** Starts a hub on `port` (0: an ephemeral one); resolves once it listens. */
  static start(port = 0) {
    const proc = spawn(HUBBUB_BIN, ['--config', CONFIG, '--listen', `127.0.0.1:${port}`], {
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
  token(user, { read = [], write = [] } = {}) {
    const args = ['token', '--config', CONFIG, '--user', user, '--ttl', '1h'];
    for (const p of read) args.push('--read', p);
    for (const p of write) args.push('--write', p);
    return execFileSync(HUBBUB_BIN, args, { encoding: 'utf8' }).trim();
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
 * A fresh page with the package loaded (`window.hubbub = {Client, Recorder}`). Uncaught
 * errors and console errors of the page are collected in `page.problems`.
 */
export async function openTestPage(browser, files) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // Chromium logs every failed WebSocket connection itself; reconnecting makes those.
    if (m.type() === 'error' && !/^WebSocket connection to .* failed/.test(m.text())) {
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
