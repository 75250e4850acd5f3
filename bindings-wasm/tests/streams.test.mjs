// Streams in headless Chromium against real hubbub processes: recovery after connections
// cut mid-stream (through a TCP proxy that resets them), a restarted hub's new epoch,
// subscribing since a rendered position, history, presence, join/leave.
//
// `stream:*` channels keep 1,000 messages with presence and join/leave, `brief:*` ones 3
// (the harness's config).

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
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

beforeEach(async () => {
  page = await openTestPage(browser, files);
});

afterEach(async () => {
  const problems = page.problems;
  await page.context().close();
  assert.deepEqual(problems, [], 'the page logged no error');
});

/** The channel's current position, as an app's server renders it into a page. */
async function position(h, channel) {
  const { epoch, offset } = await h.api('GET', `/api/history/${channel}?limit=0`);
  return { epoch, offset };
}

describe('recovery', () => {
  test('connections cut mid-stream: the page ends with every message, in order, none twice', async () => {
    const N = 300;
    const CUTS = 3;
    const proxy = await Proxy.start(hub.port);
    try {
      await page.evaluate(async (url) => {
        const { Client, Recorder } = window.hubbub;
        window.messages = new Recorder();
        window.recoveries = new Recorder();
        window.client = new Client(url, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
        await window.client.connect();
        window.sub = await window.client.subscribe('stream:cut', window.messages.push, {
          onRecover: window.recoveries.push,
        });
      }, proxy.ws);

      // Publications go to the hub directly, in batches; each batch is cut while it
      // streams. Waiting for the page to be past the batch's start before cutting also
      // means the client came back from the previous cut, so every cut hits a live socket.
      let published = 0;
      for (let cut = 0; cut < CUTS; cut++) {
        const batch = (async () => {
          for (let i = 0; i < N / CUTS; i++) {
            published += 1;
            await hub.publish('stream:cut', published);
          }
        })();
        const seen = (cut * N) / CUTS + 20;
        await page.evaluate((n) => window.messages.count(n, `${n} messages`, 20000), seen);
        assert.equal(proxy.cut(), 1, 'one connection was cut');
        await batch;
      }

      const r = await page.evaluate(async (n) => {
        await window.messages.count(n, `${n} messages`, 20000);
        await window.recoveries.count(3, '3 recoveries', 20000);
        const result = {
          data: window.messages.items.map((m) => m.data),
          offsets: window.messages.items.map((m) => m.offset),
          recoveries: window.recoveries.items,
          position: window.sub.position,
        };
        window.client.close();
        return result;
      }, N);
      const expected = Array.from({ length: N }, (_, i) => i + 1);
      assert.deepEqual(r.data, expected, 'every message, in order, none twice');
      assert.deepEqual(r.offsets, expected);
      assert.equal(r.recoveries.length, CUTS);
      const epoch = r.recoveries[0].epoch;
      for (const recovery of r.recoveries) {
        assert.equal(recovery.recovered, true, JSON.stringify(r.recoveries));
        assert.equal(recovery.epoch, epoch);
      }
      assert.deepEqual(r.position, { epoch, offset: N });
      assert.equal(proxy.accepted, CUTS + 1, 'one reconnection per cut');
      assert.equal(page.sockets.length, CUTS + 1);
    } finally {
      await proxy.close();
    }
  });

  test('a restarted hub has a new epoch: the client reports recovered: false', async () => {
    const own = await Hub.start();
    let restarted;
    try {
      await page.evaluate(async (url) => {
        const { Client, Recorder } = window.hubbub;
        window.states = new Recorder();
        window.messages = new Recorder();
        window.recoveries = new Recorder();
        window.client = new Client(url, {
          reconnect: { minDelayMs: 50, maxDelayMs: 400 },
          onStateChange: window.states.push,
        });
        await window.client.connect();
        window.sub = await window.client.subscribe('stream:epoch', window.messages.push, {
          onRecover: window.recoveries.push,
        });
      }, own.ws);
      const first = await own.publish('stream:epoch', 'one');
      await own.publish('stream:epoch', 'two');
      const before = await page.evaluate(async () => {
        await window.messages.count(2);
        return window.sub.position;
      });
      assert.deepEqual(before, { epoch: first.epoch, offset: 2 });

      // The client keeps retrying while no hub listens, and resubscribes since
      // {old epoch, 2} once the new process is up: that stream is gone.
      await own.stop();
      await page.evaluate(() => window.states.wait((s) => s === 'disconnected', 'disconnected'));
      restarted = await Hub.start(own.port);
      const [recovery] = await page.evaluate(() => window.recoveries.count(1, 'a recovery', 20000));
      assert.equal(recovery.recovered, false);
      assert.notEqual(recovery.epoch, first.epoch);
      assert.equal(recovery.offset, 0);

      const third = await restarted.publish('stream:epoch', 'three');
      const r = await page.evaluate(async () => {
        await window.messages.count(3);
        const result = { messages: window.messages.items, position: window.sub.position };
        window.client.close();
        return result;
      });
      assert.deepEqual(
        r.messages.map((m) => [m.data, m.offset]),
        [
          ['one', 1],
          ['two', 2],
          ['three', 1],
        ],
      );
      assert.deepEqual(r.position, { epoch: third.epoch, offset: 1 });
      assert.equal(recovery.epoch, third.epoch);
    } finally {
      await restarted?.stop();
      await own.stop();
    }
  });

  test('subscribing since a rendered position delivers what was published after the render', async () => {
    await hub.publish('stream:render', 'a');
    await hub.publish('stream:render', 'b');
    await hub.publish('stream:render', 'c');
    // The app's server renders the page with the state and this position...
    const rendered = await position(hub, 'stream:render');
    assert.equal(rendered.offset, 3);
    // ...and more is published before the page's script subscribes.
    await hub.publish('stream:render', 'd');
    await hub.publish('stream:render', 'e');

    const promise = page.evaluate(
      async ({ url, rendered }) => {
        const { Client, Recorder } = window.hubbub;
        const messages = new Recorder();
        const recoveries = new Recorder();
        const client = new Client(url);
        await client.connect();
        const sub = await client.subscribe('stream:render', messages.push, {
          since: rendered,
          onRecover: recoveries.push,
        });
        // Both arrive before subscribe() resolves.
        const atSubscribe = { messages: messages.items.slice(), recoveries: recoveries.items.slice() };

        // A second subscription on the channel shares its stream: starting where the
        // channel stands it missed nothing; starting earlier it did.
        const current = new Recorder();
        const stale = new Recorder();
        await client.subscribe('stream:render', () => {}, { since: sub.position, onRecover: current.push });
        await client.subscribe('stream:render', () => {}, { since: rendered, onRecover: stale.push });
        // Without a position there is nothing to report.
        const quiet = new Recorder();
        await client.subscribe('stream:render', () => {}, { since: 'latest', onRecover: quiet.push });
        window.step = 'subscribed';
        // Then live messages follow the recovered ones.
        await messages.count(3);
        client.close();
        return {
          atSubscribe,
          messages: messages.items,
          current: current.items,
          stale: stale.items,
          quiet: quiet.items,
        };
      },
      { url: hub.ws, rendered },
    );
    await page.waitForFunction(() => window.step === 'subscribed');
    await hub.publish('stream:render', 'f');
    const r = await promise;
    assert.deepEqual(
      r.atSubscribe.messages.map((m) => [m.data, m.offset]),
      [
        ['d', 4],
        ['e', 5],
      ],
    );
    const at5 = { epoch: rendered.epoch, offset: 5 };
    assert.deepEqual(r.atSubscribe.recoveries, [{ recovered: true, ...at5 }]);
    assert.deepEqual(r.current, [{ recovered: true, ...at5 }]);
    assert.deepEqual(r.stale, [{ recovered: false, ...at5 }]);
    assert.deepEqual(r.quiet, []);
    assert.deepEqual(
      r.messages.map((m) => [m.data, m.offset]),
      [
        ['d', 4],
        ['e', 5],
        ['f', 6],
      ],
    );
  });

  test('a rendered position the hub cannot continue is reported as recovered: false', async () => {
    // brief:* keeps 3 messages: 5 published after the render outgrow it.
    await hub.publish('brief:gap', 0);
    const rendered = await position(hub, 'brief:gap');
    for (let i = 1; i <= 5; i++) await hub.publish('brief:gap', i);
    const r = await page.evaluate(
      async ({ url, rendered }) => {
        const { Client, Recorder } = window.hubbub;
        const messages = new Recorder();
        const recoveries = new Recorder();
        const client = new Client(url);
        await client.connect();
        await client.subscribe('brief:gap', messages.push, { since: rendered, onRecover: recoveries.push });
        // Another epoch: a position from a hub that has since restarted.
        const other = new Recorder();
        await client.subscribe('stream:other-epoch', () => {}, {
          since: { epoch: 'gone', offset: 3 },
          onRecover: other.push,
        });
        client.close();
        return { messages: messages.items, recoveries: recoveries.items, other: other.items };
      },
      { url: hub.ws, rendered },
    );
    assert.deepEqual(r.messages, [], 'nothing is delivered when the gap cannot be filled');
    assert.deepEqual(r.recoveries, [{ recovered: false, epoch: rendered.epoch, offset: 6 }]);
    assert.equal(r.other.length, 1);
    assert.equal(r.other[0].recovered, false);
    assert.notEqual(r.other[0].epoch, 'gone');
  });
});

describe('history and presence', () => {
  test('sub.history() pages through what the channel keeps', async () => {
    const first = await hub.publish('stream:h', { n: 1 }, 'one');
    for (let n = 2; n <= 5; n++) await hub.publish('stream:h', { n });
    const r = await page.evaluate(async (url) => {
      const { Client } = window.hubbub;
      const client = new Client(url);
      await client.connect();
      const sub = await client.subscribe('stream:h', () => {});
      const plain = await client.subscribe('public:h', () => {});
      const pages = {
        last3: await sub.history({ limit: 3 }),
        after3: await sub.history({ since: 3 }),
        position: await sub.history({ limit: 0 }),
        all: await sub.history(),
        // With since, pages forward: the first `limit` after it.
        next: await sub.history({ since: 1, limit: 1 }),
      };
      const refused = await plain.history().catch((e) => ({ code: e.code, name: e.name }));
      const wrong = [];
      for (const bad of [{ limit: -1 }, { limit: 1.5 }, { since: 'x' }, 'all']) {
        try {
          sub.history(bad);
          wrong.push('accepted');
        } catch (e) {
          wrong.push(e.constructor.name);
        }
      }
      client.close();
      return { pages, refused, wrong };
    }, hub.ws);
    const epoch = first.epoch;
    const msg = (n) => ({
      channel: 'stream:h',
      event: n === 1 ? 'one' : 'message',
      data: { n },
      offset: n,
    });
    assert.deepEqual(r.pages.last3, { channel: 'stream:h', epoch, offset: 5, messages: [3, 4, 5].map(msg) });
    assert.deepEqual(r.pages.after3.messages, [4, 5].map(msg));
    assert.deepEqual(r.pages.position, { channel: 'stream:h', epoch, offset: 5, messages: [] });
    assert.deepEqual(r.pages.all.messages, [1, 2, 3, 4, 5].map(msg));
    assert.deepEqual(r.pages.next.messages, [msg(2)]);
    assert.deepEqual(r.refused, { code: 'INVALID_CHANNEL', name: 'HubbubError' });
    assert.deepEqual(r.wrong, ['TypeError', 'TypeError', 'TypeError', 'TypeError']);
  });

  test('sub.presence() lists every connection on the channel, with user and info', async () => {
    const ann = hub.token('ann', { read: ['stream:*'], info: { name: 'Ann' } });
    const r = await page.evaluate(
      async ({ url, ann }) => {
        const { Client } = window.hubbub;
        const a = new Client(url, { token: ann });
        const b = new Client(url);
        await Promise.all([a.connect(), b.connect()]);
        const sub = await a.subscribe('stream:p', () => {});
        await b.subscribe('stream:p', () => {});
        const plain = await b.subscribe('public:p', () => {});
        const presence = await sub.presence();
        const refused = await plain.presence().catch((e) => e.code);
        const ids = { a: a.clientId, b: b.clientId };
        a.close();
        b.close();
        return { presence, refused, ids };
      },
      { url: hub.ws, ann },
    );
    assert.equal(r.presence.channel, 'stream:p');
    const byClient = (x, y) => x.client.localeCompare(y.client);
    assert.deepEqual(
      r.presence.clients.sort(byClient),
      [
        { client: r.ids.a, user: 'ann', info: { name: 'Ann' } },
        { client: r.ids.b, user: null },
      ].sort(byClient),
    );
    assert.equal(r.refused, 'INVALID_CHANNEL');
  });

  test('onJoin and onLeave hear others come and go', async () => {
    const bob = hub.token('bob', { read: ['stream:*'], info: { name: 'Bob' } });
    const r = await page.evaluate(
      async ({ url, bob }) => {
        const { Client, Recorder } = window.hubbub;
        const events = new Recorder();
        const watcher = new Client(url);
        await watcher.connect();
        await watcher.subscribe('stream:jl', () => {}, {
          onJoin: (j) => events.push({ join: j }),
          onLeave: (l) => events.push({ leave: l }),
        });
        const b = new Client(url, { token: bob });
        const c = new Client(url);
        await Promise.all([b.connect(), c.connect()]);
        const ids = { b: b.clientId, c: c.clientId, watcher: watcher.clientId };
        const sub = await b.subscribe('stream:jl', () => {});
        await events.count(1);
        await sub.unsubscribe();
        await events.count(2);
        await c.subscribe('stream:jl', () => {});
        await events.count(3);
        c.close(); // gone without unsubscribing
        await events.count(4);
        b.close();
        watcher.close();
        return { events: events.items, ids };
      },
      { url: hub.ws, bob },
    );
    const { ids } = r;
    assert.deepEqual(r.events, [
      { join: { channel: 'stream:jl', client: ids.b, user: 'bob', info: { name: 'Bob' } } },
      { leave: { channel: 'stream:jl', client: ids.b, user: 'bob' } },
      { join: { channel: 'stream:jl', client: ids.c, user: null } },
      { leave: { channel: 'stream:jl', client: ids.c, user: null } },
    ]);
  });

  test('subscribe options of the wrong type are refused at once', async () => {
    const r = await page.evaluate((url) => {
      const { Client } = window.hubbub;
      const client = new Client(url, { reconnect: false });
      const attempt = (options) => {
        try {
          client.subscribe('stream:x', () => {}, options).catch(() => {});
          return 'accepted';
        } catch (e) {
          return e.constructor.name;
        }
      };
      const r = [
        attempt({ since: 17 }),
        attempt({ since: 'earliest' }),
        attempt({ since: { epoch: 'e' } }),
        attempt({ since: { epoch: 'e', offset: -1 } }),
        attempt({ onRecover: true }),
        attempt({ onJoin: 'x' }),
        attempt('since'),
        attempt({ since: { epoch: 'e', offset: 0 } }),
        attempt({ since: 'latest' }),
        attempt(undefined),
      ];
      client.close();
      return r;
    }, hub.ws);
    assert.deepEqual(r, [
      'TypeError',
      'TypeError',
      'TypeError',
      'TypeError',
      'TypeError',
      'TypeError',
      'TypeError',
      'accepted',
      'accepted',
      'accepted',
    ]);
  });
});
