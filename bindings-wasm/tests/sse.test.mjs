// A hub channel read as Server-Sent Events by a page with a plain EventSource and no client
// library (nchan's way): messages, their positions as event ids, recovery through
// Last-Event-ID when the browser reconnects by itself, refusals, and the hub forgetting
// readers that went away.

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { Hub, launchChromium, Proxy, ROOT, serveFiles } from './harness.mjs';

let hub;
let files;
let browser;
let context;

before(async () => {
  [hub, files, browser] = await Promise.all([Hub.start(), serveFiles(ROOT), launchChromium()]);
});

after(async () => {
  await browser?.close();
  await files?.close();
  await hub?.stop();
});

afterEach(async () => {
  await context?.close();
  context = undefined;
});

/** Opens the EventSource page on `src`; resolves once the stream is open. */
async function openStream(src) {
  context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${files.url}/bindings-wasm/tests/eventsource.html?src=${encodeURIComponent(src)}`);
  await page.waitForFunction(() => window.opened === 1);
  return page;
}

/** Resolves once the hub counts `n` connections (a reader leaves the node a moment after its stream ends). */
async function connections(n) {
  for (let i = 0; i < 100; i += 1) {
    if ((await hub.api('GET', '/api/info')).connections === n) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`the hub still counts ${(await hub.api('GET', '/api/info')).connections} connections, not ${n}`);
}

test('a plain EventSource reads a channel: the messages, with their positions as ids', async () => {
  const page = await openStream(`${hub.http}/sse/stream:sse-read`);
  const published = [];
  for (const n of [1, 2, 3]) published.push(await hub.publish('stream:sse-read', { n }, 'tick'));
  await page.waitForFunction(() => window.events.length === 3);
  const events = await page.evaluate(() => window.events);
  assert.deepEqual(
    events,
    published.map((p, i) => ({
      id: `${p.epoch}:${p.offset}`,
      message: { channel: 'stream:sse-read', event: 'tick', data: { n: i + 1 }, offset: p.offset },
    })),
  );
});

test('after a cut the browser reconnects with Last-Event-ID and misses nothing', async () => {
  const proxy = await Proxy.start(hub.port);
  try {
    const page = await openStream(`http://127.0.0.1:${proxy.port}/sse/stream:sse-cut`);
    for (const n of [1, 2]) await hub.publish('stream:sse-cut', { n });
    await page.waitForFunction(() => window.events.length === 2);
    proxy.cut();
    await page.waitForFunction(() => window.errors === 1);
    // Published while the page has no stream: recovered from the id it last saw.
    for (const n of [3, 4]) await hub.publish('stream:sse-cut', { n });
    await page.waitForFunction(() => window.opened === 2);
    await hub.publish('stream:sse-cut', { n: 5 });
    await page.waitForFunction(() => window.events.length >= 5);
    const events = await page.evaluate(() => window.events);
    assert.deepEqual(
      events.map((e) => e.message.data.n),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      events.map((e) => Number(e.id.split(':').at(-1))),
      [1, 2, 3, 4, 5],
    );
    assert.equal(proxy.accepted, 2);
  } finally {
    await proxy.close();
  }
});

test('refusals are HTTP errors, after which EventSource gives up', async () => {
  const denied = await fetch(`${hub.http}/sse/private:1`);
  assert.equal(denied.status, 403);
  assert.deepEqual(await denied.json(), { err: 'ACCESS_DENIED', reason: 'no read permission on "private:1"' });
  const invalid = await fetch(`${hub.http}/sse/${encodeURIComponent('no spaces')}`);
  assert.equal(invalid.status, 400);
  assert.equal((await invalid.json()).err, 'INVALID_PAYLOAD');

  context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${files.url}/bindings-wasm/tests/eventsource.html?src=${encodeURIComponent(`${hub.http}/sse/private:1`)}`);
  await page.waitForFunction(() => window.errors === 1 && window.source.readyState === EventSource.CLOSED);
  await connections(0);
});

test('a reader that closes its stream, or whose page goes, leaves the hub', async () => {
  await connections(0);
  const page = await openStream(`${hub.http}/sse/public:sse-gone`);
  await connections(1);
  await page.evaluate(() => window.source.close());
  await connections(0);
  await openStream(`${hub.http}/sse/public:sse-gone`);
  await connections(1);
  await context.close();
  context = undefined;
  await connections(0);
});
