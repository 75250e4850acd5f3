// The admin dashboard in headless Chromium against a real hub: a wrong password refused,
// login, figures that change while this test publishes, looking a channel up, publishing
// from the page to a browser client, disconnecting that client, logout. The screenshot it
// takes (target/test-admin/dashboard.png) is for a person to look at.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Hub, launchChromium, openTestPage, ROOT, serveFiles } from './harness.mjs';

const PASSWORD = 'a long admin password';
const SHOTS = path.join(ROOT, 'target', 'test-admin');

let hub;
let files;
let browser;

before(async () => {
  [hub, files, browser] = await Promise.all([
    Hub.start(0, ['--admin-password', PASSWORD]),
    serveFiles(ROOT),
    launchChromium(),
  ]);
});

after(async () => {
  await browser?.close();
  await files?.close();
  await hub?.stop();
});

test('the dashboard: login, live figures, a channel, publish, disconnect, logout', async () => {
  // A browser client the dashboard will see, publish to and disconnect.
  const reader = await openTestPage(browser, files);
  const readerId = await reader.evaluate(async (url) => {
    const { Client, Recorder } = window.hubbub;
    window.messages = new Recorder();
    window.errors = new Recorder();
    window.client = new Client(url, { reconnect: false, onError: window.errors.push });
    await window.client.connect();
    await window.client.subscribe('public:admin', window.messages.push);
    return window.client.clientId;
  }, hub.ws);

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const admin = await context.newPage();
  const problems = [];
  admin.on('pageerror', (e) => problems.push(e.message));
  await admin.goto(`${hub.http}/admin`);

  await admin.fill('input[name=password]', 'not the password');
  await admin.click('button[type=submit]');
  await admin.waitForSelector('#wrong:not([hidden])');

  await admin.fill('input[name=password]', PASSWORD);
  await admin.click('button[type=submit]');
  await admin.waitForSelector('#connections');
  const cookie = (await context.cookies()).find((c) => c.name === 'hubbub_admin');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.path, '/admin');

  // The figures follow what happens: the reader's connection, then deliveries per second
  // while this test publishes.
  await admin.waitForFunction(() => Number(document.getElementById('connections').textContent) >= 1);
  const publishing = setInterval(() => hub.publish('public:admin', { tick: Date.now() }).catch(() => {}), 50);
  try {
    await admin.waitForFunction(() => Number(document.getElementById('out-rate').textContent) > 0);
    await admin.waitForFunction(() => document.getElementById('top-rate').textContent.includes('public:admin'));
  } finally {
    clearInterval(publishing);
  }
  await admin.waitForFunction(() => document.getElementById('top-subscribers').textContent.includes('public:admin'));

  await admin.fill('#lookup input[name=channel]', 'public:admin');
  await admin.click('#lookup button');
  await admin.waitForFunction(() => document.getElementById('channel-info').textContent.includes('"subscribers": 1'));

  await admin.fill('#publish input[name=channel]', 'public:admin');
  await admin.fill('#publish input[name=data]', '{"from": "the dashboard"}');
  await admin.click('#publish button');
  await admin.waitForFunction(() => document.getElementById('publish-result').textContent.startsWith('published'));
  await reader.evaluate(() => window.messages.wait((m) => m.data?.from === 'the dashboard', 'the dashboard\'s message'));

  fs.mkdirSync(SHOTS, { recursive: true });
  await admin.screenshot({ path: path.join(SHOTS, 'dashboard.png'), fullPage: true });

  await admin.fill('#disconnect input[name=who]', readerId);
  await admin.click('#disconnect button');
  await admin.waitForFunction(() => document.getElementById('disconnect-result').textContent === 'disconnected 1');
  const closed = await reader.evaluate(async () => {
    const e = await window.errors.wait((e) => e.closeCode === 4000, 'the close');
    return { code: e.code, closeCode: e.closeCode };
  });
  assert.deepEqual(closed, { code: 'DISCONNECTED', closeCode: 4000 });

  await admin.click('header button');
  await admin.waitForSelector('input[name=password]');
  assert.equal((await context.cookies()).find((c) => c.name === 'hubbub_admin'), undefined);
  assert.deepEqual(problems, []);
  await context.close();
  await reader.context().close();
});
