// The browser client and the app's hooks, in headless Chromium: `client.rpc()` against a
// hub whose rpc_url points at a small app server in this process (its data, its errors,
// answers in call order, a failing app, nothing resent after a dropped connection), a hub
// without one (UNKNOWN_COMMAND), and a page the app identifies by its cookie through the
// connect hook, with no token at all.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { Hub, launchChromium, openTestPage, Proxy, ROOT, serveFiles } from './harness.mjs';

const SECRET = 'browser-tests-hooks-secret';

/**
 * The app: checks every hook request's signature (HMAC-SHA256 of "<timestamp>.<body>", as
 * docs/protocol.md gives it) and answers connect and rpc. `calls` records the rpc requests;
 * `hold()` makes the next `hang` call wait until the returned function is called.
 */
class App {
  constructor() {
    this.calls = [];
    this.held = [];
    this.badSignatures = 0;
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => this.answer(req, Buffer.concat(chunks), res));
    });
  }

  static async start() {
    const app = new App();
    await new Promise((resolve) => app.server.listen(0, '127.0.0.1', resolve));
    app.url = `http://127.0.0.1:${app.server.address().port}`;
    return app;
  }

  answer(req, body, res) {
    const timestamp = req.headers['x-hubbub-timestamp'];
    const expected = `sha256=${crypto.createHmac('sha256', SECRET).update(`${timestamp}.`).update(body).digest('hex')}`;
    const json = (status, value) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    if (req.headers['x-hubbub-signature'] !== expected) {
      this.badSignatures += 1;
      return json(403, { err: 'ACCESS_DENIED' });
    }
    const request = JSON.parse(body);
    if (req.url === '/hubbub/connect') {
      const cookie = request.headers.cookie ?? '';
      if (/(^|; )session=ann(;|$)/.test(cookie)) {
        return json(200, { user: 'ann', read: ['room:*'], write: ['room:*'] });
      }
      if (/(^|; )session=flaky(;|$)/.test(cookie)) {
        // Fails the first time (the hub closes with 4503), answers after.
        this.flaky = (this.flaky ?? 0) + 1;
        if (this.flaky === 1) return json(500, { err: 'UNAVAILABLE' });
        return json(200, { user: 'flo', read: ['room:*'] });
      }
      return json(200, {});
    }
    this.calls.push(request);
    switch (request.method) {
      case 'echo':
        return json(200, { data: { you: request.user, sent: request.data } });
      case 'slow':
        return setTimeout(() => json(200, { data: 'late' }), 300);
      case 'nothing':
        return json(200, { data: null });
      case 'refuse':
        return json(200, { error: { code: 'NOT_ALLOWED', reason: 'members only' } });
      case 'bare':
        return json(200, { error: { code: 'BARE' } });
      case 'hang':
        return this.held.push(() => json(200, { data: 'too late' }));
      default:
        return json(500, { err: 'UNAVAILABLE' });
    }
  }

  close() {
    for (const release of this.held.splice(0)) release();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

let app;
let hooked; // rpc_url and connect_url set
let plain; // no hooks
let files;
let browser;
let page;

before(async () => {
  app = await App.start();
  [hooked, plain, files, browser] = await Promise.all([
    Hub.start(0, [
      '--hooks-connect-url',
      `${app.url}/hubbub/connect`,
      '--hooks-rpc-url',
      `${app.url}/hubbub/rpc`,
      '--hooks-secret',
      SECRET,
    ]),
    Hub.start(),
    serveFiles(ROOT),
    launchChromium(),
  ]);
});

after(async () => {
  await browser?.close();
  await files?.close();
  await hooked?.stop();
  await plain?.stop();
  await app?.close();
});

beforeEach(async () => {
  page = await openTestPage(browser, files);
});

afterEach(async () => {
  const problems = page.problems;
  await page.context().close();
  assert.deepEqual(problems, [], 'the page logged no error');
  assert.equal(app.badSignatures, 0, 'every hook request was signed');
});

describe('client.rpc()', () => {
  test("resolves with the app's data, in the order of the calls", async () => {
    const r = await page.evaluate(async (url) => {
      const { Client } = window.hubbub;
      const client = new Client(url);
      await client.connect();
      const order = [];
      const slow = client.rpc('slow', 1).then((d) => (order.push('slow'), d));
      const echo = client.rpc('echo', { x: [1, 'two'] }).then((d) => (order.push('echo'), d));
      const results = { slow: await slow, echo: await echo };
      results.order = order;
      results.noData = await client.rpc('echo');
      results.nothing = await client.rpc('nothing', 'x');
      client.close();
      return results;
    }, hooked.ws);
    assert.deepEqual(r, {
      slow: 'late',
      echo: { you: null, sent: { x: [1, 'two'] } },
      order: ['slow', 'echo'],
      noData: { you: null, sent: null },
      nothing: null,
    });
  });

  test("rejects with the app's code and reason, and with the hub's errors", async () => {
    const r = await page.evaluate(async (url) => {
      const { Client } = window.hubbub;
      const client = new Client(url);
      await client.connect();
      const fail = (p) =>
        p.then(
          (data) => ({ resolved: data }),
          (e) => ({ name: e.name, code: e.code, reason: e.reason, isError: e instanceof Error }),
        );
      const results = {
        refuse: await fail(client.rpc('refuse', null)),
        bare: await fail(client.rpc('bare')),
        failing: await fail(client.rpc('failing')),
        unserialisable: await fail(client.rpc('echo', () => 1)),
      };
      client.close();
      results.closed = await fail(client.rpc('echo'));
      return results;
    }, hooked.ws);
    assert.deepEqual(r.refuse, { name: 'HubbubError', code: 'NOT_ALLOWED', reason: 'members only', isError: true });
    assert.deepEqual(r.bare, { name: 'HubbubError', code: 'BARE', reason: undefined, isError: true });
    // The app answered 500: the hub fails closed.
    assert.equal(r.failing.code, 'UNAVAILABLE');
    assert.equal(r.unserialisable.code, 'INVALID_PAYLOAD');
    assert.equal(r.closed.code, 'CLOSED');
    // What reached the app: the unserialisable call never left the page.
    assert.deepEqual(
      app.calls.slice(-3).map((c) => c.method),
      ['refuse', 'bare', 'failing'],
    );
  });

  test('rejects with UNKNOWN_COMMAND where the hub has no rpc hook', async () => {
    const r = await page.evaluate(async (url) => {
      const { Client } = window.hubbub;
      const client = new Client(url);
      await client.connect();
      const error = await client.rpc('echo', 1).catch((e) => ({ code: e.code, reason: e.reason }));
      client.close();
      return error;
    }, plain.ws);
    assert.equal(r.code, 'UNKNOWN_COMMAND');
    assert.match(r.reason, /rpc_url/);
  });

  test('rejects with DISCONNECTED when the connection drops before the answer, and is not resent', async () => {
    const proxy = await Proxy.start(hooked.port);
    try {
      const promise = page.evaluate(async (url) => {
        const { Client, Recorder } = window.hubbub;
        const states = new Recorder();
        const client = new Client(url, { onStateChange: states.push, reconnect: { minDelayMs: 50, maxDelayMs: 100 } });
        const offline = await client.rpc('echo', 1).catch((e) => e.code);
        await client.connect();
        window.pending = client.rpc('hang', 'once').then(
          () => 'resolved',
          (e) => ({ code: e.code, reason: e.reason }),
        );
        window.step = 'sent';
        const dropped = await window.pending;
        await states.wait((s, i) => s === 'connected' && i > 1, 'the reconnection');
        const after = await client.rpc('echo', 'again');
        client.close();
        return { offline, dropped, after };
      }, proxy.ws);
      await page.waitForFunction(() => window.step === 'sent');
      // The app has the call; then the network goes.
      const deadline = Date.now() + 5000;
      while (!app.calls.some((c) => c.method === 'hang')) {
        assert.ok(Date.now() < deadline, 'the hang call reached the app');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(proxy.cut(), 1);
      const r = await promise;
      assert.equal(r.offline, 'DISCONNECTED');
      assert.equal(r.dropped.code, 'DISCONNECTED');
      assert.equal(r.after.sent, 'again');
      assert.equal(app.calls.filter((c) => c.method === 'hang').length, 1, 'the rpc was not resent');
    } finally {
      for (const release of app.held.splice(0)) release();
      await proxy.close();
    }
  });
});

describe('a page the app identifies by its cookie (connect hook)', () => {
  test('connects without a token, with the permissions the app gives', async () => {
    const r = await page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      // The app's session cookie, as its login would set it: cookies are per host, not per
      // port, so the page's cookie goes along with the WebSocket upgrade to the hub.
      document.cookie = 'session=ann; path=/';
      const messages = new Recorder();
      const client = new Client(url);
      await client.connect();
      await client.subscribe('room:cookie', messages.push);
      await client.broadcast('room:cookie', 'chat', 'hi');
      const [message] = await messages.count(1);
      const me = await client.rpc('echo', 'who');
      client.close();

      document.cookie = 'session=; path=/; max-age=0';
      const anonymous = new Client(url);
      await anonymous.connect();
      const denied = await anonymous.subscribe('room:cookie', () => {}).catch((e) => e.code);
      anonymous.close();
      return { message, me, denied };
    }, hooked.ws);
    assert.deepEqual(r.message, { channel: 'room:cookie', event: 'chat', data: 'hi', from: 'ann' });
    assert.deepEqual(r.me, { you: 'ann', sent: 'who' });
    assert.equal(r.denied, 'ACCESS_DENIED');
  });

  test('an app that failed (close 4503) is retried, unlike a refusal', async () => {
    const r = await page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      document.cookie = 'session=flaky; path=/';
      const errors = new Recorder();
      const client = new Client(url, {
        onError: errors.push,
        reconnect: { minDelayMs: 10, maxDelayMs: 20 },
      });
      // The subscription waits for a connection, made by the client's own retry.
      const subscribed = client.subscribe('room:flaky', () => {});
      const first = await client.connect().then(
        () => null,
        (e) => e.closeCode,
      );
      await subscribed;
      const me = await client.rpc('echo', null);
      client.close();
      document.cookie = 'session=; path=/; max-age=0';
      return { first, closeCodes: errors.items.map((e) => e.closeCode), me };
    }, hooked.ws);
    assert.ok(r.closeCodes.includes(4503), JSON.stringify(r));
    assert.equal(r.me.you, 'flo');
    assert.equal(app.flaky, 2);
  });
});
