// The client where WebSocket cannot be used: it falls back to the hub's Server-Sent Events
// session (EventSource for the frames, POSTs for the commands), and everything works the
// same: subscriptions, answers in command order, recovery after a cut connection.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, afterEach, before, test } from 'node:test';
import { Hub, launchChromium, openTestPage, Proxy, ROOT, serveFiles } from './harness.mjs';

let hub;
let files;
let browser;
let page;

before(async () => {
  [hub, files, browser] = await Promise.all([Hub.start(), serveFiles(ROOT), launchChromium()]);
});

after(async () => {
  await browser?.close();
  await files?.close();
  await hub?.stop();
});

afterEach(async () => {
  const problems = page.problems;
  await page.context().close();
  assert.deepEqual(problems, [], 'the page logged no error');
});

/** Every WebSocket the page makes fails to connect, as behind a proxy that blocks them. */
function blockWebSockets() {
  const Real = window.WebSocket;
  window.WebSocket = class extends Real {
    constructor() {
      super('ws://127.0.0.1:9/blocked');
    }
  };
}

/** Resolves once the hub counts `n` connections. */
async function connections(n) {
  for (let i = 0; i < 100; i += 1) {
    if ((await hub.api('GET', '/api/info')).connections === n) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`the hub still counts ${(await hub.api('GET', '/api/info')).connections} connections, not ${n}`);
}

test('WebSocket blocked: subscriptions, deliveries and answers in command order over SSE', async () => {
  page = await openTestPage(browser, files, blockWebSockets);
  const token = hub.token('ida', { read: ['stream:*', 'room:*'], write: ['stream:*'] });
  const r = await page.evaluate(
    async ({ url, token }) => {
      const { Client, Recorder } = window.hubbub;
      const messages = new Recorder();
      const states = new Recorder();
      const client = new Client(url, { token, onStateChange: states.push });
      await client.connect();
      const sub = await client.subscribe('stream:fallback', messages.push);
      // Fired together: the answers still match their commands.
      const answers = await Promise.all([
        client.broadcast('stream:fallback', 'e', 1).then(() => 'ok'),
        client.broadcast('room:fallback', 'e', 2).catch((e) => e.code),
        client.broadcast('stream:fallback', 'e', 3).then(() => 'ok'),
        sub.history({ limit: 0 }).then((h) => h.offset),
        client.subscribe('room:nobody-writes', () => {}).then((s) => s.channel),
      ]);
      await messages.count(2);
      const id = client.clientId;
      client.close();
      return { answers, data: messages.items.map((m) => m.data), states: states.items, id };
    },
    { url: hub.ws, token },
  );
  assert.deepEqual(r.answers, ['ok', 'ACCESS_DENIED', 'ok', 2, 'room:nobody-writes']);
  assert.deepEqual(r.data, [1, 3]);
  assert.deepEqual(r.states, ['connecting', 'connected', 'closed']);
  assert.match(r.id, /^[A-Za-z0-9_-]+$/);
  await connections(0);
});

test('over SSE, commands beyond what one request carries go in the next ones', async () => {
  page = await openTestPage(browser, files, blockWebSockets);
  const channels = await page.evaluate(async (url) => {
    const client = new window.hubbub.Client(url);
    await client.connect();
    const subs = await Promise.all(
      Array.from({ length: 100 }, (_, i) => client.subscribe(`public:many-${i}`, () => {})),
    );
    client.close();
    return subs.map((s) => s.channel);
  }, hub.ws);
  assert.deepEqual(
    channels,
    Array.from({ length: 100 }, (_, i) => `public:many-${i}`),
  );
});

test('a WebSocket that stalls in its opening gives way to SSE within heartbeatMs', { timeout: 20000 }, async () => {
  // A proxy that takes the connection and never answers the upgrade.
  const held = new Set();
  const stall = net.createServer((socket) => held.add(socket));
  await new Promise((resolve) => stall.listen(0, '127.0.0.1', resolve));
  try {
    const port = stall.address().port;
    page = await openTestPage(browser, files, {
      content: `{
        const Real = window.WebSocket;
        window.WebSocket = class extends Real {
          constructor() { super('ws://127.0.0.1:${port}/ws'); }
        };
      }`,
    });
    const state = await page.evaluate(async (url) => {
      const client = new window.hubbub.Client(url, { heartbeatMs: 1000 });
      await client.connect();
      await client.subscribe('public:stalled', () => {});
      const state = client.state;
      client.close();
      return state;
    }, hub.ws);
    assert.equal(state, 'connected');
    assert.ok(held.size >= 1, 'the WebSocket was tried first');
  } finally {
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => stall.close(resolve));
  }
});

test('a page without WebSocket connects over SSE', async () => {
  page = await openTestPage(browser, files, () => {
    window.WebSocket = undefined;
  });
  const promise = page.evaluate(async (url) => {
    const { Client, Recorder } = window.hubbub;
    const messages = new Recorder();
    const client = new Client(url);
    await client.connect();
    await client.subscribe('public:no-ws', messages.push);
    window.step = 'subscribed';
    const [m] = await messages.count(1);
    client.close();
    return m;
  }, hub.ws);
  await page.waitForFunction(() => window.step === 'subscribed');
  await hub.publish('public:no-ws', { hello: 'sse' });
  assert.deepEqual(await promise, { channel: 'public:no-ws', event: 'message', data: { hello: 'sse' } });
});

test('over SSE, a cut connection is restored and recovers what was missed', async () => {
  const proxy = await Proxy.start(hub.port);
  try {
    page = await openTestPage(browser, files, blockWebSockets);
    await page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      window.messages = new Recorder();
      window.recoveries = new Recorder();
      window.states = new Recorder();
      window.client = new Client(url, {
        reconnect: { minDelayMs: 50, maxDelayMs: 100 },
        onStateChange: window.states.push,
      });
      await window.client.connect();
      await window.client.subscribe('stream:fallback-cut', window.messages.push, {
        onRecover: window.recoveries.push,
      });
    }, `ws://127.0.0.1:${proxy.port}/ws`);
    for (const n of [1, 2]) await hub.publish('stream:fallback-cut', { n });
    await page.evaluate(() => window.messages.count(2));
    proxy.cut();
    await page.evaluate(() => window.states.wait((s) => s === 'disconnected', 'disconnected'));
    for (const n of [3, 4]) await hub.publish('stream:fallback-cut', { n });
    await page.evaluate(() => window.recoveries.count(1));
    await hub.publish('stream:fallback-cut', { n: 5 });
    const r = await page.evaluate(async () => {
      await window.messages.count(5);
      window.client.close();
      return {
        data: window.messages.items.map((m) => m.data.n),
        recoveries: window.recoveries.items.map((x) => x.recovered),
      };
    });
    assert.deepEqual(r.data, [1, 2, 3, 4, 5]);
    assert.deepEqual(r.recoveries, [true]);
  } finally {
    await proxy.close();
  }
});
