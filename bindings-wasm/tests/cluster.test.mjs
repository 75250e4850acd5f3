// A cluster in headless Chromium: two hubbub nodes sharing one redis-server (the Redis
// engine), and a client given both nodes' URLs (`urls`). One node is killed with SIGKILL
// while publications go on through the other: the client connects to the other node by
// itself, resubscribes with its position and recovers what went by, losing nothing.
//
// Needs `redis-server` (scripts/test-rust.sh installs it); skipped with a message where it
// is missing.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Hub, launchChromium, openTestPage, ROOT, serveFiles } from './harness.mjs';

function hasRedis() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server on a free port, keeping nothing on disk; resolves once it answers. */
async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const deadline = Date.now() + 10000;
  for (;;) {
    const up = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.write('PING\r\n');
        socket.once('data', (d) => {
          socket.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
      });
      socket.once('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `redis://127.0.0.1:${port}/0`,
    async stop() {
      proc.kill('SIGKILL');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

let files;
let browser;
let redis;

before(async () => {
  if (!hasRedis()) return;
  [files, browser, redis] = await Promise.all([serveFiles(ROOT), launchChromium(), startRedis()]);
});

after(async () => {
  await browser?.close();
  await files?.close();
  await redis?.stop();
});

test('a node killed: the client moves to the next URL and recovers everything', async (t) => {
  if (!redis) {
    t.skip('redis-server is not installed');
    return;
  }
  const engine = ['--engine', 'redis', '--redis-url', redis.url, '--redis-prefix', 'browser-cluster'];
  const [a, b] = await Promise.all([Hub.start(0, engine), Hub.start(0, engine)]);
  const page = await openTestPage(browser, files);
  try {
    await page.evaluate(async ([first, second]) => {
      const { Client, Recorder } = window.hubbub;
      window.messages = new Recorder();
      window.recoveries = new Recorder();
      window.client = new Client(first, {
        urls: [second],
        reconnect: { minDelayMs: 50, maxDelayMs: 400 },
      });
      await window.client.connect();
      window.sub = await window.client.subscribe('stream:nodes', window.messages.push, {
        onRecover: window.recoveries.push,
      });
    }, [a.ws, b.ws]);
    const N = 100;
    for (let n = 1; n <= N / 2; n++) await b.publish('stream:nodes', n);
    await page.evaluate((n) => window.messages.count(n, `${n} messages`), N / 2);
    a.proc.kill('SIGKILL');
    await a.exited;
    for (let n = N / 2 + 1; n <= N; n++) await b.publish('stream:nodes', n);

    const r = await page.evaluate(async (n) => {
      await window.messages.count(n, `${n} messages`, 20000);
      await window.recoveries.count(1, 'a recovery on the other node', 20000);
      const result = {
        data: window.messages.items.map((m) => m.data),
        recoveries: window.recoveries.items,
        position: window.sub.position,
      };
      window.client.close();
      return result;
    }, N);
    assert.deepEqual(r.data, Array.from({ length: N }, (_, i) => i + 1), 'every message, in order, none twice');
    assert.equal(r.recoveries.length, 1, JSON.stringify(r.recoveries));
    assert.equal(r.recoveries[0].recovered, true, JSON.stringify(r.recoveries));
    assert.deepEqual(r.position, { epoch: r.recoveries[0].epoch, offset: N });
    // The first socket went to the first URL; the ones after the kill, in turn, to the
    // second (and possibly back to the dead first, refused, before the second again).
    assert.equal(page.sockets[0], a.ws);
    assert.equal(page.sockets.at(-1), b.ws);
  } finally {
    const problems = page.problems;
    await page.context().close();
    await Promise.all([a.stop(), b.stop()]);
    assert.deepEqual(problems, [], 'the page logged no error');
  }
});
