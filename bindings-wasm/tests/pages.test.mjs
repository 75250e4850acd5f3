// The package as applications use it: bundled by Vite (a build, and the dev server), and in
// the demo page under examples/browser (a plain <script type="module">), in headless Chromium.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { build, createServer } from 'vite';
import { Hub, launchChromium, linkPackage, ROOT, serveFiles, TESTS } from './harness.mjs';

let hub;
let browser;

before(async () => {
  [hub, browser] = await Promise.all([Hub.start(), launchChromium()]);
});

after(async () => {
  await browser?.close();
  await hub?.stop();
});

test('an application bundled by Vite loads the package and receives messages', async () => {
  linkPackage();
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-vite-'));
  await build({
    root: path.join(TESTS, 'vite'),
    configFile: false,
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  });
  const assets = fs.readdirSync(path.join(outDir, 'assets'));
  assert.ok(assets.some((f) => f.endsWith('.wasm')), `the bundle holds the .wasm: ${assets}`);

  const files = await serveFiles(outDir);
  try {
    await roundTrip(`${files.url}/index.html`, 'public:vite-build');
  } finally {
    await files.close();
    fs.rmSync(outDir, { recursive: true, force: true });
  }
});

test("the same application runs under Vite's dev server", async () => {
  linkPackage();
  const server = await createServer({
    root: path.join(TESTS, 'vite'),
    configFile: false,
    logLevel: 'warn',
    server: { host: '127.0.0.1', port: 0 },
  });
  await server.listen();
  try {
    await roundTrip(server.resolvedUrls.local[0], 'public:vite-dev');
  } finally {
    await server.close();
  }
});

/** Opens the Vite app at `url`, subscribes to `channel` and receives one publication. */
async function roundTrip(url, channel) {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  try {
    await page.goto(url);
    await page.waitForFunction(() => window.hubbub !== undefined);
    const received = page.evaluate(
      async ({ url, channel }) => {
        const client = new window.hubbub.Client(url);
        let resolve;
        const first = new Promise((r) => (resolve = r));
        await client.connect();
        await client.subscribe(channel, resolve);
        window.subscribed = true;
        const message = await first;
        client.close();
        return message;
      },
      { url: hub.ws, channel },
    );
    await page.waitForFunction(() => window.subscribed === true);
    await hub.publish(channel, { bundled: true });
    assert.deepEqual(await received, { channel, event: 'message', data: { bundled: true } });
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
}

test('the demo page shows a channel\'s messages as they arrive', async () => {
  const files = await serveFiles(ROOT);
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  try {
    const query = new URLSearchParams({ hub: hub.ws, channel: 'public:demo' });
    await page.goto(`${files.url}/examples/browser/index.html?${query}`);
    await page.locator('#state', { hasText: 'connected' }).waitFor();
    assert.equal((await hub.api('GET', '/api/channels')).channels['public:demo'].subscribers, 1);

    await hub.publish('public:demo', { hello: 'world' });
    await hub.publish('public:demo', 'second', 'news');
    const items = page.locator('#messages li');
    await items.nth(1).waitFor();
    // Newest first.
    assert.deepEqual(await page.locator('#messages .event').allTextContents(), ['news', 'message']);
    assert.deepEqual(await page.locator('#messages .data').allTextContents(), ['"second"', '{"hello":"world"}']);
    assert.match(await page.locator('#curl').textContent(), /api\/publish/);
    await page.screenshot({ path: path.join(os.tmpdir(), 'hubbub-demo.png') });
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
    await files.close();
  }
});

test('the demo page with a token reads what the token allows, and names a refusal', async () => {
  const files = await serveFiles(ROOT);
  const open = async (params) => {
    const page = await browser.newPage();
    page.problems = [];
    page.on('pageerror', (e) => page.problems.push(e.message));
    await page.goto(`${files.url}/examples/browser/index.html?${new URLSearchParams({ hub: hub.ws, ...params })}`);
    return page;
  };
  const pages = [];
  try {
    // room:* is not anonymous on the test hub: only the token lets the page read it.
    const good = await open({ channel: 'room:7', token: hub.token('42', { read: ['room:*'] }) });
    pages.push(good);
    await good.locator('#state', { hasText: 'connected' }).waitFor();
    await hub.publish('room:7', { for: 'user 42' });
    await good.locator('#messages li').first().waitFor();
    assert.equal(await good.locator('#messages .data').textContent(), '{"for":"user 42"}');

    const bad = await open({ channel: 'room:7', token: 'not.a.token' });
    pages.push(bad);
    await bad.locator('#error', { hasText: 'INVALID_CREDENTIALS' }).waitFor();

    const anonymous = await open({ channel: 'room:7' });
    pages.push(anonymous);
    await anonymous.locator('#error', { hasText: 'ACCESS_DENIED' }).waitFor();

    // The events that follow (the client's closed state, the subscription's CLOSED) left
    // the error in place.
    assert.match(await bad.locator('#error').textContent(), /INVALID_CREDENTIALS/);
    for (const page of pages) assert.deepEqual(page.problems, []);
  } finally {
    for (const page of pages) await page.close();
    await files.close();
  }
});

test('the demo page names the error when the hub refuses its token or its origin', async () => {
  const files = await serveFiles(ROOT);
  const strict = await Hub.start(0, ['--allowed-origins', 'https://app.example']);
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  try {
    const open = (h, extra = {}) =>
      page.goto(`${files.url}/examples/browser/index.html?${new URLSearchParams({ hub: h.ws, ...extra })}`);

    await open(hub, { channel: 'room:1', token: 'not.a.token' });
    await page.locator('#state', { hasText: 'closed' }).waitFor();
    await page.locator('#error', { hasText: 'INVALID_CREDENTIALS' }).waitFor();

    await open(strict);
    await page.locator('#error', { hasText: 'ACCESS_DENIED: origin not allowed' }).waitFor();
    assert.equal(await page.locator('#state').textContent(), 'disconnected');
    await page.screenshot({ path: path.join(os.tmpdir(), 'hubbub-demo-refused.png') });
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
    await strict.stop();
    await files.close();
  }
});
