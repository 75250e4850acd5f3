// The browser client in headless Chromium against a real hubbub process.
//
// Each test opens a fresh page with the package loaded and drives `Client` inside it with
// page.evaluate; publications go through the hub's HTTP API from here. A page that logs an
// error or throws fails its test.

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { Hub, launchChromium, openTestPage, ROOT, serveFiles } from './harness.mjs';

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

beforeEach(async () => {
  page = await openTestPage(browser, files);
});

afterEach(async () => {
  const problems = page.problems;
  await page.context().close();
  assert.deepEqual(problems, [], 'the page logged no error');
});

/** Runs `fn` in the page until it sets `window.step` to `name`, i.e. is ready for the test. */
async function until(name) {
  await page.waitForFunction((n) => window.step === n, name);
}

describe('connecting', () => {
  test('connects anonymously and reports connecting, then connected', async () => {
    const r = await page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      const states = new Recorder();
      const client = new Client(url, { onStateChange: states.push });
      const before = { state: client.state, clientId: client.clientId };
      await client.connect();
      const connected = { state: client.state, clientId: client.clientId };
      await client.connect(); // already connected: resolves at once
      client.close();
      return { before, connected, closed: client.state, states: states.items };
    }, hub.ws);
    assert.deepEqual(r.before, { state: 'disconnected', clientId: undefined });
    assert.equal(r.connected.state, 'connected');
    assert.match(r.connected.clientId, /^[A-Za-z0-9_-]+$/);
    assert.equal(r.closed, 'closed');
    assert.deepEqual(r.states, ['connecting', 'connected', 'closed']);
    assert.equal(page.sockets.length, 1);
  });

  test('authenticates with a token and reads what the token allows', async () => {
    const token = hub.token('ann', { read: ['room:*'] });
    const promise = page.evaluate(
      async ({ url, token }) => {
        const { Client, Recorder } = window.hubbub;
        const messages = new Recorder();
        const client = new Client(url, { token });
        await client.connect();
        await client.subscribe('room:auth', messages.push);
        window.step = 'subscribed';
        const [m] = await messages.count(1);
        client.close();
        return m;
      },
      { url: hub.ws, token },
    );
    await until('subscribed');
    await hub.publish('room:auth', { hello: 'ann' });
    assert.deepEqual(await promise, { channel: 'room:auth', event: 'message', data: { hello: 'ann' } });
  });

  test('refused credentials reject connect() and close the client', async () => {
    const r = await page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      const states = new Recorder();
      const errors = new Recorder();
      const client = new Client(url, {
        token: 'not.a.token',
        onStateChange: states.push,
        onError: (e) => errors.push(e.code),
      });
      // Made before connect(), as a page does: it learns the real reason too.
      const subscribed = client.subscribe('public:early', () => {}).catch((e) => e.code);
      const error = await client.connect().then(
        () => null,
        (e) => ({ name: e.name, code: e.code, isError: e instanceof Error }),
      );
      const again = await client.connect().catch((e) => e.code);
      return {
        error,
        again,
        subscribed: await subscribed,
        state: client.state,
        states: states.items,
        errors: errors.items,
      };
    }, hub.ws);
    assert.deepEqual(r.error, { name: 'HubbubError', code: 'INVALID_CREDENTIALS', isError: true });
    assert.equal(r.subscribed, 'INVALID_CREDENTIALS');
    assert.equal(r.again, 'CLOSED');
    assert.equal(r.state, 'closed');
    assert.deepEqual(r.states, ['connecting', 'closed']);
    assert.deepEqual(r.errors, ['INVALID_CREDENTIALS']);
  });

  test('with reconnect: false a failed connection rejects connect()', async () => {
    // A port nobody listens on: the hub's, once it is stopped.
    const gone = await Hub.start();
    await gone.stop();
    const r = await page.evaluate(async (url) => {
      const { Client } = window.hubbub;
      const client = new Client(url, { reconnect: false });
      const code = await client.connect().then(() => null, (e) => e.code);
      return { code, state: client.state };
    }, gone.ws);
    assert.deepEqual(r, { code: 'DISCONNECTED', state: 'disconnected' });
  });

  test('options of the wrong type are refused at construction', async () => {
    const r = await page.evaluate((url) => {
      const { Client } = window.hubbub;
      const attempt = (...args) => {
        try {
          new Client(...args);
          return 'accepted';
        } catch (e) {
          return e.constructor.name;
        }
      };
      return [
        attempt('not a url'),
        attempt(url, { token: 42 }),
        attempt(url, { user: 'alice' }),
        attempt(url, { reconnect: { minDelayMs: 500, maxDelayMs: 100 } }),
        attempt(url, { onError: 'nope' }),
        attempt(url, { urls: url }),
        attempt(url, { urls: ['not a url'] }),
        attempt(url, {}),
        attempt(url),
        attempt(url, { urls: [url, url] }),
      ];
    }, hub.ws);
    assert.deepEqual(r, [
      'TypeError', 'TypeError', 'TypeError', 'TypeError', 'TypeError', 'TypeError', 'TypeError',
      'accepted', 'accepted', 'accepted',
    ]);
  });
});

describe('subscriptions', () => {
  test('two channels share one socket, each message goes to its own callback', async () => {
    const token = hub.token('bob', { read: ['room:*'] });
    const promise = page.evaluate(
      async ({ url, token }) => {
        const { Client, Recorder } = window.hubbub;
        const a = new Recorder();
        const b = new Recorder();
        const client = new Client(url, { token });
        // Subscribing before connect() waits for the connection.
        const subs = Promise.all([client.subscribe('room:a', a.push), client.subscribe('room:b', b.push)]);
        await client.connect();
        const [sa, sb] = await subs;
        window.step = 'subscribed';
        const [ma, mb] = await Promise.all([a.count(2), b.count(1)]);
        return { channels: [sa.channel, sb.channel], a: ma, b: mb, counts: [a.items.length, b.items.length] };
      },
      { url: hub.ws, token },
    );
    await until('subscribed');
    const channels = (await hub.api('GET', '/api/channels')).channels;
    assert.equal(channels['room:a'].subscribers, 1);
    assert.equal(channels['room:b'].subscribers, 1);
    await hub.publish('room:a', 1, 'first');
    await hub.publish('room:b', 2, 'second');
    await hub.publish('room:a', 3, 'third');
    const r = await promise;
    assert.deepEqual(r.channels, ['room:a', 'room:b']);
    assert.deepEqual(
      r.a.map((m) => [m.channel, m.event, m.data]),
      [
        ['room:a', 'first', 1],
        ['room:a', 'third', 3],
      ],
    );
    assert.deepEqual(r.b.map((m) => [m.channel, m.event, m.data]), [['room:b', 'second', 2]]);
    assert.deepEqual(r.counts, [2, 1]);
    assert.equal(page.sockets.length, 1, 'one WebSocket for both channels');
  });

  test('data published over HTTP arrives intact', async () => {
    const payloads = [
      {
        text: 'héllo wörld ✓ 日本語 🎉',
        escapes: 'quote " backslash \\ newline \n tab \t nul \u0000 separators \u2028\u2029',
        numbers: [0, -1, 1.5, -0.25, 1e21, 9007199254740991, 3.141592653589793],
        nested: { a: [1, null, true, false, 'x', { b: [] }], empty: {} },
      },
      'just a string',
      42,
      null,
      true,
      [1, [2, [3]]],
    ];
    const promise = page.evaluate(
      async ({ url, n }) => {
        const { Client, Recorder } = window.hubbub;
        const messages = new Recorder();
        const client = new Client(url);
        await client.connect();
        await client.subscribe('public:data', messages.push);
        window.step = 'subscribed';
        return messages.count(n);
      },
      { url: hub.ws, n: payloads.length },
    );
    await until('subscribed');
    for (const [i, data] of payloads.entries()) await hub.publish('public:data', data, `e${i}`);
    const got = await promise;
    assert.deepEqual(
      got,
      payloads.map((data, i) => ({ channel: 'public:data', event: `e${i}`, data })),
    );
  });

  test('a channel the credentials do not allow is refused with ACCESS_DENIED', async () => {
    const r = await page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      const client = new Client(url);
      await client.connect();
      const refusal = await client.subscribe('private:x', () => {}).then(
        () => null,
        (e) => ({
          isError: e instanceof Error,
          name: e.name,
          code: e.code,
          channel: e.channel,
          message: e.message,
        }),
      );
      const invalid = await client.subscribe('bad channel!', () => {}).catch((e) => e.code);
      // The connection stays usable.
      const ok = await client.subscribe('public:x', new Recorder().push);
      return { refusal, invalid, ok: ok.channel, state: client.state };
    }, hub.ws);
    assert.equal(r.refusal.isError, true);
    assert.equal(r.refusal.name, 'HubbubError');
    assert.equal(r.refusal.code, 'ACCESS_DENIED');
    assert.equal(r.refusal.channel, 'private:x');
    assert.match(r.refusal.message, /^ACCESS_DENIED/);
    assert.equal(r.invalid, 'INVALID_PAYLOAD');
    assert.equal(r.ok, 'public:x');
    assert.equal(r.state, 'connected');
  });

  test('unsubscribe stops the messages and leaves the channel on the server', async () => {
    const promise = page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      const gone = new Recorder();
      const stays = new Recorder();
      const client = new Client(url);
      await client.connect();
      const sub = await client.subscribe('public:gone', gone.push);
      await client.subscribe('public:stays', stays.push);
      await sub.unsubscribe();
      await sub.unsubscribe(); // twice is harmless
      window.step = 'unsubscribed';
      // The hub delivers one connection's messages in order: once the later publication
      // on the other channel is here, the earlier one on this channel would be too.
      await stays.count(1);
      return gone.items;
    }, hub.ws);
    await until('unsubscribed');
    const channels = (await hub.api('GET', '/api/channels')).channels;
    assert.equal(channels['public:gone']?.subscribers ?? 0, 0);
    assert.equal(channels['public:stays'].subscribers, 1);
    await hub.publish('public:gone', 'not for you');
    await hub.publish('public:stays', 'for you');
    assert.deepEqual(await promise, []);
  });

  test('two subscriptions on one channel: each gets the messages until it unsubscribes', async () => {
    const promise = page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      const first = new Recorder();
      const second = new Recorder();
      const client = new Client(url);
      await client.connect();
      const s1 = await client.subscribe('public:twice', first.push);
      await client.subscribe('public:twice', second.push);
      window.step = 'both';
      await Promise.all([first.count(1), second.count(1)]);
      await s1.unsubscribe();
      window.step = 'one';
      await second.count(2);
      return [first.items.map((m) => m.data), second.items.map((m) => m.data)];
    }, hub.ws);
    await until('both');
    await hub.publish('public:twice', 1);
    await until('one');
    assert.equal((await hub.api('GET', '/api/channels')).channels['public:twice'].subscribers, 1);
    await hub.publish('public:twice', 2);
    assert.deepEqual(await promise, [[1], [1, 2]]);
  });
});

describe('sending', () => {
  test('broadcast where the token allows writing; ACCESS_DENIED where it does not', async () => {
    const writer = hub.token('carol', { read: ['chat:*'], write: ['chat:*'] });
    const reader = hub.token('dave', { read: ['chat:*', 'news:*'] });
    const r = await page.evaluate(
      async ({ url, writer, reader }) => {
        const { Client, Recorder } = window.hubbub;
        const own = new Recorder();
        const other = new Recorder();
        const w = new Client(url, { token: writer });
        const rd = new Client(url, { token: reader });
        await Promise.all([w.connect(), rd.connect()]);
        await w.subscribe('chat:1', own.push);
        await rd.subscribe('chat:1', other.push);
        await rd.subscribe('news:1', () => {});
        // Data as JSON.stringify sees it: toJSON, undefined fields dropped, every number.
        const data = {
          text: 'hi ☃ "q" \\ \n',
          n: [1, 2.5, -3, -0, 1e21, 2 ** 53 + 2, -5e-7, 0.1],
          nested: { empty: {}, list: [], t: true, f: false, z: null },
          skipped: undefined,
          when: new Date(0),
        };
        const sent = await w.broadcast('chat:1', 'chat', data);
        const [mine] = await own.count(1);
        const [theirs] = await other.count(1);
        const denied = await w.broadcast('news:1', 'chat', 'nope').catch((e) => e.code);
        const readerDenied = await rd.broadcast('chat:1', 'chat', 'nope').catch((e) => e.code);
        const unserialisable = await w.broadcast('chat:1', 'chat', undefined).catch((e) => e.code);
        w.close();
        rd.close();
        const json = JSON.parse(JSON.stringify(data));
        return { sent, mine, theirs, denied, readerDenied, unserialisable, json };
      },
      { url: hub.ws, writer, reader },
    );
    assert.equal(r.sent, undefined);
    assert.equal(r.json.when, '1970-01-01T00:00:00.000Z');
    const expected = { channel: 'chat:1', event: 'chat', data: r.json, from: 'carol' };
    assert.deepEqual(r.mine, expected);
    assert.deepEqual(r.theirs, expected);
    assert.equal(r.denied, 'ACCESS_DENIED');
    assert.equal(r.readerDenied, 'ACCESS_DENIED');
    assert.equal(r.unserialisable, 'INVALID_PAYLOAD');
  });

  test('direct messages between two clients, and from the HTTP API', async () => {
    const ann = hub.token('ann', {});
    const bob = hub.token('bob', {});
    const promise = page.evaluate(
      async ({ url, ann, bob }) => {
        const { Client, Recorder } = window.hubbub;
        const inbox = new Recorder();
        const unused = new Recorder();
        const a = new Client(url, { token: ann });
        const b = new Client(url, { token: bob });
        await Promise.all([a.connect(), b.connect()]);
        b.onDirect(inbox.push);
        const off = b.onDirect(unused.push);
        off();
        await a.direct(b.clientId, 'poke', { x: 1 });
        const unknown = await a.direct('no-such-client', 'poke', 1).catch((e) => e.code);
        window.bobId = b.clientId;
        window.step = 'ready';
        await inbox.count(2);
        return { inbox: inbox.items, unused: unused.items, unknown };
      },
      { url: hub.ws, ann, bob },
    );
    await until('ready');
    const bobId = await page.evaluate(() => window.bobId);
    await hub.api('POST', '/api/direct', { client: bobId, event: 'notice', data: ['from', 'the', 'app'] });
    const r = await promise;
    assert.deepEqual(r.inbox, [
      { event: 'poke', data: { x: 1 }, from: 'ann' },
      { event: 'notice', data: ['from', 'the', 'app'] },
    ]);
    assert.deepEqual(r.unused, []);
    assert.equal(r.unknown, 'INVALID_CLIENT');
  });

  test('close() ends the client for good', async () => {
    const r = await page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      const states = new Recorder();
      const client = new Client(url, { onStateChange: states.push });
      await client.connect();
      const sub = await client.subscribe('public:closing', () => {});
      client.close();
      client.close(); // twice is harmless
      return {
        state: client.state,
        clientId: client.clientId,
        states: states.items,
        connect: await client.connect().catch((e) => e.code),
        subscribe: await client.subscribe('public:after', () => {}).catch((e) => e.code),
        broadcast: await client.broadcast('public:after', 'e', 1).catch((e) => e.code),
        unsubscribe: await sub.unsubscribe(),
      };
    }, hub.ws);
    assert.deepEqual(r, {
      state: 'closed',
      clientId: undefined,
      states: ['connecting', 'connected', 'closed'],
      connect: 'CLOSED',
      subscribe: 'CLOSED',
      broadcast: 'CLOSED',
      unsubscribe: undefined,
    });
  });
});

describe('resilience', () => {
  test('a client the application disconnects (close 4000) does not come back by itself', async () => {
    const promise = page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      const states = new Recorder();
      const errors = new Recorder();
      window.messages = new Recorder();
      window.client = new Client(url, {
        onStateChange: states.push,
        onError: errors.push,
        reconnect: { minDelayMs: 10, maxDelayMs: 20 },
      });
      await window.client.connect();
      await window.client.subscribe('public:kicked', window.messages.push);
      window.clientId = window.client.clientId;
      window.step = 'connected';
      const [error] = await errors.count(1);
      return {
        error: { code: error.code, reason: error.reason, closeCode: error.closeCode },
        state: window.client.state,
        states: states.items.slice(),
      };
    }, hub.ws);
    await until('connected');
    const clientId = await page.evaluate(() => window.clientId);
    assert.deepEqual(await hub.api('POST', '/api/disconnect', { client: clientId }), { disconnected: 1 });
    assert.deepEqual(await promise, {
      error: { code: 'DISCONNECTED', reason: 'disconnected by the application', closeCode: 4000 },
      state: 'disconnected',
      states: ['connecting', 'connected', 'disconnected'],
    });
    // Proving that nothing happens takes a wait: ten times the longest reconnection delay.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await page.evaluate(() => window.client.state), 'disconnected');
    assert.equal(page.sockets.length, 1, 'no reconnection');

    // The application may bring it back: its subscriptions come back with it.
    await page.evaluate(() => window.client.connect());
    await hub.publish('public:kicked', 'back');
    const [m] = await page.evaluate(() => window.messages.count(1));
    assert.equal(m.data, 'back');
    await page.evaluate(() => window.client.close());
  });

  test('a hub that refuses the page (close 4403) is reported and not retried', async () => {
    const strict = await Hub.start(0, ['--allowed-origins', 'https://app.example']);
    try {
      const r = await page.evaluate(async (url) => {
        const { Client, Recorder } = window.hubbub;
        window.states = new Recorder();
        const errors = new Recorder();
        window.client = new Client(url, {
          onStateChange: window.states.push,
          onError: errors.push,
          reconnect: { minDelayMs: 10, maxDelayMs: 20 },
        });
        const pending = window.client.subscribe('public:refused', () => {});
        const error = await window.client.connect().then(
          () => null,
          (e) => ({ name: e.name, code: e.code, reason: e.reason, closeCode: e.closeCode }),
        );
        return {
          error,
          errors: errors.items.map((e) => e.code),
          state: window.client.state,
          pendingSettled: await Promise.race([pending.then(() => true, () => true), Promise.resolve(false)]),
        };
      }, strict.ws);
      assert.deepEqual(r.error, {
        name: 'HubbubError',
        code: 'ACCESS_DENIED',
        reason: 'origin not allowed',
        closeCode: 4403,
      });
      assert.deepEqual(r.errors, ['ACCESS_DENIED']);
      assert.equal(r.state, 'disconnected');
      // A subscription waits for a connection the application may ask for again.
      assert.equal(r.pendingSettled, false);
      // Proving that nothing happens takes a wait: ten times the longest reconnection delay.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const states = await page.evaluate(() => {
        window.client.close();
        return window.states.items;
      });
      assert.deepEqual(states, ['connecting', 'disconnected', 'closed']);
      assert.equal(page.sockets.length, 1, 'no reconnection');
    } finally {
      await strict.stop();
    }
  });

  test('a token that expires (close 4001) ends in TOKEN_EXPIRED on the reconnection', async () => {
    const token = hub.token('fay', { read: ['room:*'], ttl: '2s' });
    const r = await page.evaluate(
      async ({ url, token }) => {
        const { Client, Recorder } = window.hubbub;
        const states = new Recorder();
        const errors = new Recorder();
        const client = new Client(url, {
          token,
          onStateChange: states.push,
          onError: errors.push,
          reconnect: { minDelayMs: 10, maxDelayMs: 20 },
        });
        await client.connect();
        await client.subscribe('room:expiring', () => {});
        // The hub closes the connection with 4001 when the token's exp passes; the client
        // comes back, and authenticating with the same token is refused.
        await states.wait((s) => s === 'closed', 'closed', 10000);
        return { states: states.items, errors: errors.items.map((e) => e.code) };
      },
      { url: hub.ws, token },
    );
    assert.deepEqual(r.states.slice(0, 4), ['connecting', 'connected', 'disconnected', 'connecting']);
    assert.equal(r.states.at(-1), 'closed');
    // The hub closes at `exp` but accepts the token until that second is over, so a quick
    // reconnection can be let in and closed again a few times first.
    assert.ok(r.states.slice(3, -1).every((s) => s !== 'closed'));
    assert.deepEqual(r.errors, ['TOKEN_EXPIRED']);
  });

  test('after a server restart the client reconnects, re-authenticates and resubscribes', async () => {
    const own = await Hub.start();
    try {
      const token = own.token('erin', { read: ['room:*'] });
      await page.evaluate(
        async ({ url, token }) => {
          const { Client, Recorder } = window.hubbub;
          window.states = new Recorder();
          window.one = new Recorder();
          window.two = new Recorder();
          window.client = new Client(url, {
            token,
            reconnect: { minDelayMs: 50, maxDelayMs: 400 },
            onStateChange: window.states.push,
          });
          await window.client.connect();
          await window.client.subscribe('room:one', window.one.push);
          await window.client.subscribe('room:two', window.two.push);
          window.firstId = window.client.clientId;
        },
        { url: own.ws, token },
      );
      await own.publish('room:one', 'before');
      await page.evaluate(() => window.one.count(1));

      await own.stop();
      await page.evaluate(() => window.states.wait((s) => s === 'disconnected', 'disconnected'));
      const restarted = await Hub.start(own.port);
      try {
        // `connected` after a reconnect means authenticated and resubscribed.
        const r = await page.evaluate(async () => {
          await window.states.wait(
            () => window.states.items.filter((s) => s === 'connected').length === 2,
            'connected again',
          );
          return { states: window.states.items, id: window.client.clientId, firstId: window.firstId };
        });
        assert.deepEqual(r.states, ['connecting', 'connected', 'disconnected', ...r.states.slice(3)]);
        assert.equal(r.states.at(-1), 'connected');
        assert.ok(r.states.slice(3, -1).every((s) => s === 'connecting' || s === 'disconnected'));
        assert.notEqual(r.id, r.firstId, 'a new connection has a new client id');

        const channels = (await restarted.api('GET', '/api/channels')).channels;
        assert.equal(channels['room:one'].subscribers, 1);
        assert.equal(channels['room:two'].subscribers, 1);
        // room:* needs the token's permission: delivery proves the client authenticated.
        await restarted.publish('room:one', 'after', 'again');
        await restarted.publish('room:two', { still: 'here' });
        const [one, two] = await page.evaluate(() => Promise.all([window.one.count(2), window.two.count(1)]));
        assert.deepEqual(one.map((m) => m.data), ['before', 'after']);
        assert.deepEqual(two, [{ channel: 'room:two', event: 'message', data: { still: 'here' } }]);
        await page.evaluate(() => window.client.close());
      } finally {
        await restarted.stop();
      }
    } finally {
      await own.stop();
    }
  });

  test('the heartbeat notices a silent server within heartbeatMs', async () => {
    const own = await Hub.start();
    try {
      await page.evaluate(async (url) => {
        const { Client, Recorder } = window.hubbub;
        window.states = new Recorder();
        window.messages = new Recorder();
        window.client = new Client(url, {
          heartbeatMs: 1000,
          reconnect: { minDelayMs: 50, maxDelayMs: 200 },
          onStateChange: (s) => window.states.push({ s, t: performance.now() }),
        });
        await window.client.connect();
        await window.client.subscribe('public:beat', window.messages.push);
      }, own.ws);
      // A frozen process keeps its sockets open: only the heartbeat can tell.
      const frozenAt = await page.evaluate(() => performance.now());
      own.pause();
      let disconnectedAt;
      try {
        disconnectedAt = await page.evaluate(
          async () => (await window.states.wait(({ s }) => s === 'disconnected', 'disconnected', 5000)).t,
        );
      } finally {
        own.resume();
      }
      const noticed = disconnectedAt - frozenAt;
      console.log(`heartbeat: silence noticed after ${noticed.toFixed(0)} ms`);
      assert.ok(noticed <= 1000 + 250, `noticed after ${noticed.toFixed(0)} ms`);

      await page.evaluate(() =>
        window.states.wait(({ s, t }) => s === 'connected' && t > window.states.items[2].t, 'connected again'),
      );
      await own.publish('public:beat', 'alive');
      const [m] = await page.evaluate(() => window.messages.count(1));
      assert.equal(m.data, 'alive');
      await page.evaluate(() => window.client.close());
    } finally {
      await own.stop();
    }
  });

  test('timers that ran late (a hidden tab, a busy page) do not drop a live connection', async () => {
    await page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      window.states = new Recorder();
      window.messages = new Recorder();
      window.client = new Client(url, { heartbeatMs: 1000, onStateChange: window.states.push });
      await window.client.connect();
      await window.client.subscribe('public:late', window.messages.push);
      // Hold the page's only thread for more than two heartbeats: the heartbeat's timer
      // fires late, after a silence that was the page's, not the hub's.
      const until = performance.now() + 2500;
      while (performance.now() < until);
    }, hub.ws);
    // A round trip through the hub: by its end the late heartbeat has run.
    await hub.publish('public:late', 'still here');
    const [m] = await page.evaluate(() => window.messages.count(1));
    assert.equal(m.data, 'still here');
    const states = await page.evaluate(() => {
      window.client.close();
      return window.states.items;
    });
    assert.deepEqual(states, ['connecting', 'connected', 'closed']);
    assert.equal(page.sockets.length, 1);
  });
});

describe('tokens that refresh (getToken)', () => {
  test('2-second tokens are renewed on the open connection over a 10-second page life', async () => {
    await page.exposeFunction('mintToken', () => hub.token('gil', { read: ['room:*'], ttl: '2s' }));
    const firstId = await page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      Object.assign(window, { states: new Recorder(), errors: new Recorder(), tokens: new Recorder() });
      window.messages = new Recorder();
      window.client = new Client(url, {
        getToken: async () => {
          const token = await window.mintToken();
          window.tokens.push(token);
          return token;
        },
        onStateChange: window.states.push,
        onError: window.errors.push,
      });
      await window.client.connect();
      await window.client.subscribe('room:refreshed', window.messages.push);
      return window.client.clientId;
    }, hub.ws);
    // One publication per renewed token, each awaited in the page, for ten seconds.
    const start = Date.now();
    let sent = 0;
    while (Date.now() - start < 10000) {
      sent += 1;
      await hub.publish('room:refreshed', { n: sent });
      await page.evaluate((n) => window.messages.count(n).then(() => window.tokens.count(n + 1)), sent);
    }
    const r = await page.evaluate(() => {
      const id = window.client.clientId;
      window.client.close();
      return {
        id,
        states: window.states.items,
        errors: window.errors.items.map((e) => e.code),
        tokens: window.tokens.items.length,
        data: window.messages.items.map((m) => m.data.n),
      };
    });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.states, ['connecting', 'connected', 'closed'], 'never disconnected');
    assert.equal(r.id, firstId, 'one session throughout');
    assert.equal(page.sockets.length, 1, 'no reconnection');
    assert.ok(r.tokens >= 6, `tokens renewed before each expiry (${r.tokens})`);
    assert.deepEqual(r.data, Array.from({ length: sent }, (_, i) => i + 1));
  });

  test('TOKEN_EXPIRED and a failing getToken: reported, then getToken is asked again', async () => {
    const answers = [
      () => hub.expiredToken('hal'),
      () => {
        throw new Error('token endpoint down');
      },
    ];
    const fresh = hub.token('hal', { read: ['room:*'] });
    await page.exposeFunction('mintToken', () => (answers.shift() ?? (() => fresh))());
    const r = await page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      const states = new Recorder();
      const errors = new Recorder();
      let asked = 0;
      const client = new Client(url, {
        getToken: () => {
          asked += 1;
          return window.mintToken();
        },
        reconnect: { minDelayMs: 10, maxDelayMs: 20 },
        onStateChange: states.push,
        onError: errors.push,
      });
      await client.connect();
      await client.subscribe('room:renewed', () => {});
      client.close();
      return { asked, states: states.items, errors: errors.items.map((e) => [e.code, e.reason]) };
    }, hub.ws);
    assert.deepEqual(r.errors.map(([code]) => code), ['TOKEN_EXPIRED', 'UNAVAILABLE']);
    assert.match(r.errors[1][1], /token endpoint down/);
    assert.equal(r.asked, 3);
    assert.deepEqual(r.states, ['connecting', 'disconnected', 'connecting', 'disconnected', 'connecting', 'connected', 'closed']);
  });

  test('getToken with user and secret is a TypeError', async () => {
    const r = await page.evaluate((url) => {
      try {
        new window.hubbub.Client(url, { user: 'u', secret: 's', getToken: () => 't' });
        return null;
      } catch (e) {
        return [e.name, e.message];
      }
    }, hub.ws);
    assert.deepEqual(r, ['TypeError', 'getToken goes with tokens, not with user and secret']);
  });
});
