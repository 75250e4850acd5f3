// The chat example end to end: a real hubbub with the example's config, the example's
// Django project on its development server, and two headless Chromium pages, one logged in
// as a staff user and one as a non-staff user. The pages log in to Django only: the hub
// asks Django who they are (the connect hook, from the session cookie), who may join a
// room (the subscribe hook) and what "Who's here?" answers (the rpc hook).
//
//   node --test tests/django_chat/chat.test.mjs
//
// Environment: HUBBUB_BIN (default target/debug/hubbub), PYTHON (default .venv/bin/python),
// CHROMIUM (default /usr/bin/chromium). scripts/test-django.sh sets everything up.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLE = path.join(ROOT, 'examples/django_chat');
const HUBBUB_BIN = process.env.HUBBUB_BIN || path.join(ROOT, 'target/debug/hubbub');
const PYTHON = process.env.PYTHON || path.join(ROOT, '.venv/bin/python');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
];
// Every wait below is on an event or a selector; this only bounds how long a broken build
// takes to fail.
const WAIT_MS = 15_000;
// The HTTP API key of examples/django_chat/hubbub.toml.
const API_KEY = 'chat-example-api-key';

// A child process whose output is kept for the failure message and scanned line by line.
function start(name, command, args, options) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  child.output = [];
  child.lines = new (class extends EventTarget {})();
  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream }).on('line', (line) => {
      child.output.push(line);
      child.lines.dispatchEvent(Object.assign(new Event('line'), { line }));
    });
  }
  child.exited = once(child, 'exit');
  child.name = name;
  return child;
}

// Resolves with the match of the first output line matching `pattern`; rejects if the
// process exits first.
function waitForLine(child, pattern) {
  return new Promise((resolve, reject) => {
    const onLine = ({ line }) => {
      const match = pattern.exec(line);
      if (match) {
        child.lines.removeEventListener('line', onLine);
        resolve(match);
      }
    };
    child.lines.addEventListener('line', onLine);
    for (const line of child.output) onLine({ line });
    child.exited.then(([code, signal]) =>
      reject(new Error(`${child.name} exited (${code ?? signal}) before printing ${pattern}:\n${child.output.join('\n')}`)),
    );
  });
}

async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await child.exited;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Django's development server prints its address just before it binds: wait for that
// line, then for the first answer (retrying only while the connection is refused).
async function waitForDjango(child, url) {
  await waitForLine(child, /Starting development server at/);
  for (;;) {
    try {
      return await fetch(url, { redirect: 'manual' });
    } catch (err) {
      if (err.cause?.code !== 'ECONNREFUSED') throw err;
      if (child.exitCode !== null) throw new Error(`Django exited:\n${child.output.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

const manage = (args, env) =>
  promisify(execFile)(PYTHON, ['manage.py', ...args], { cwd: EXAMPLE, env });

describe('MultiChat on hubbub', () => {
  let tmp, hub, django, browser, djangoUrl, hubUrl, hubWsUrl, userIds;
  const pages = {};

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hubbub-django-chat-'));
    // Django's address first: the hub's hooks point at it (as run.sh does with CHAT_ADDR).
    const djangoPort = await freePort();
    djangoUrl = `http://127.0.0.1:${djangoPort}`;
    hub = start('hubbub', HUBBUB_BIN, [
      '--config', path.join(EXAMPLE, 'hubbub.toml'), '--listen', '127.0.0.1:0',
      '--hooks-connect-url', `${djangoUrl}/hubbub/connect`,
      '--hooks-subscribe-url', `${djangoUrl}/hubbub/subscribe`,
      '--hooks-rpc-url', `${djangoUrl}/hubbub/rpc`,
    ]);
    const env = {
      ...process.env,
      PYTHONUNBUFFERED: '1',
      CHAT_DATABASE: path.join(tmp, 'db.sqlite3'),
    };
    const listUsers = 'import json; from django.contrib.auth.models import User; '
      + 'print(json.dumps({u.username: str(u.pk) for u in User.objects.all()}))';
    const [[, host, port], users] = await Promise.all([
      waitForLine(hub, /listening on http:\/\/([0-9.]+):([0-9]+)/),
      manage(['migrate', '--noinput', '-v', '0'], env)
        .then(() => manage(['demo'], env))
        .then(() => manage(['shell', '-c', listUsers], env)),
    ]);
    // The last line: Django 5.2's shell may say first what it imported.
    userIds = JSON.parse(users.stdout.trim().split('\n').at(-1));
    hubUrl = `http://${host}:${port}`;
    hubWsUrl = `ws://${host}:${port}/ws`;
    env.CHAT_HUBBUB_URL = hubUrl;

    django = start('django', PYTHON, ['manage.py', 'runserver', '--noreload', `127.0.0.1:${djangoPort}`], {
      cwd: EXAMPLE,
      env,
    });
    const [, answer] = await Promise.all([
      chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }).then((b) => (browser = b)),
      waitForDjango(django, `${djangoUrl}/login/`),
    ]);
    assert.equal(answer.status, 200);
  });

  after(async () => {
    await browser?.close();
    await Promise.all([stop(django), stop(hub)]);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  // Logs a new browser context in as `username` and waits for the chat page to be
  // connected to hubbub.
  async function logIn(username) {
    const context = await browser.newContext();
    context.setDefaultTimeout(WAIT_MS);
    const page = await context.newPage();
    page.username = username;
    page.sockets = [];
    page.errors = [];
    page.frames_ = [];
    page.sent = [];
    page.received = [];
    page.on('websocket', (ws) => {
      page.sockets.push(ws);
      const log = (dir) => (frame) => page.frames_.push(`${dir} ${frame.payload}`.slice(0, 200));
      ws.on('framesent', log('→'));
      ws.on('framereceived', log('←'));
      ws.on('framesent', (frame) => page.sent.push(JSON.parse(frame.payload)));
      ws.on('framereceived', (frame) => page.received.push(JSON.parse(frame.payload)));
      ws.on('close', () => page.frames_.push('socket closed'));
    });
    page.on('pageerror', (err) => page.errors.push(err.message));
    page.on('console', (msg) => msg.type() === 'error' && page.errors.push(msg.text()));
    page.on('response', (r) => r.status() >= 400 && page.errors.push(`${r.status()} ${r.url()}`));
    await page.goto(`${djangoUrl}/`);
    await page.fill('input[name=username]', username);
    await page.fill('input[name=password]', username);
    await page.click('button[type=submit]');
    await page.waitForSelector('#status[data-state=connected]').catch(async (err) => {
      const state = await page.textContent('#status').catch(() => '?');
      throw new Error(`${username}'s page did not connect (status ${state}; page errors: ${page.errors.join(' | ')})${trace(page)}`, { cause: err });
    });
    assert.match(await page.textContent('.who'), new RegExp(`^${username}\\b`));
    return page;
  }

  // The hub's own view, through its HTTP API with the example's key.
  async function hubApi(route) {
    const response = await fetch(`${hubUrl}${route}`, {
      headers: { Authorization: `Bearer ${API_KEY}` },
    });
    assert.equal(response.status, 200);
    return response.json();
  }
  const hubChannels = async () => (await hubApi('/api/channels')).channels;

  const roomItem = (title) => `#rooms li[data-title="${title}"]`;
  const pane = (title) => `#chats .room[data-title="${title}"]`;

  // What a page's WebSocket carried, for failure messages.
  const trace = (page) => `\nframes of ${page.username}'s page:\n  ${page.frames_.slice(-30).join('\n  ')}`;

  // Clicks a room's Join button. Clicks on one page go one at a time (they share its
  // mouse); the subscriptions they start may be in flight together.
  const clickJoin = (page, title) => page.click(`${roomItem(title)} button.join`);

  // Waits until the page has joined the room, and fails at once if it was refused.
  async function joined(page, title) {
    await page
      .waitForSelector(`${roomItem(title)}[data-joined], ${roomItem(title)} .error:not([hidden])`)
      .catch((err) => assert.fail(`${err.message}${trace(page)}`));
    const refused = page.locator(`${roomItem(title)} .error:not([hidden])`);
    if (await refused.count()) assert.fail(`joining ${title}: ${await refused.textContent()}${trace(page)}`);
  }

  async function join(page, title) {
    await clickJoin(page, title);
    await joined(page, title);
  }

  async function say(page, title, text) {
    await page.fill(`${pane(title)} input[name=text]`, text);
    await page.click(`${pane(title)} button[type=submit]`);
  }

  // Waits for the message to appear in the room's pane and returns who sent it.
  async function seen(page, title, text) {
    const item = page.locator(`${pane(title)} .messages li`, { hasText: text });
    await item.waitFor().catch((err) => assert.fail(`${err.message}${trace(page)}`));
    return item.locator('.user').textContent();
  }

  test('a staff user and a non-staff user log in and connect', async () => {
    [pages.staff, pages.guest] = await Promise.all([logIn('staff'), logIn('guest')]);
    for (const page of [pages.staff, pages.guest]) {
      assert.deepEqual(page.sockets.map((ws) => ws.url()), [hubWsUrl]);
    }
  });

  test('the pages connect with no token, and the hub knows them by their Django session', async () => {
    for (const page of [pages.staff, pages.guest]) {
      // The page holds no token, and sends none: no authenticate command on its socket.
      const config = JSON.parse(await page.textContent('#hubbub-config'));
      assert.deepEqual(config, { url: hubWsUrl });
      assert.equal(page.sent.filter((frame) => 'authenticate' in frame).length, 0, trace(page));
      // The welcome frame names the user Django answered for the session cookie.
      const welcome = page.received.find((frame) => 'connected' in frame);
      assert.equal(welcome?.connected.user, userIds[page.username], trace(page));
    }
  });

  test('both join the same room and see each other\'s messages', async () => {
    await Promise.all([join(pages.staff, 'Lobby'), join(pages.guest, 'Lobby')]);

    await say(pages.guest, 'Lobby', 'hello from guest');
    assert.equal(await seen(pages.staff, 'Lobby', 'hello from guest'), 'guest');
    assert.equal(await seen(pages.guest, 'Lobby', 'hello from guest'), 'guest');

    await say(pages.staff, 'Lobby', 'hello from staff');
    assert.equal(await seen(pages.guest, 'Lobby', 'hello from staff'), 'staff');
    assert.equal(await seen(pages.staff, 'Lobby', 'hello from staff'), 'staff');
  });

  test('the hub refuses the staff-only room to the non-staff user, as Django says, with its reason', async () => {
    const { guest } = pages;
    await clickJoin(guest, 'Staff lounge');
    const error = guest.locator(`${roomItem('Staff lounge')} .error`);
    await error.waitFor({ state: 'visible' });
    // The reason is Django's answer to the subscribe hook (chat/hubbub_hooks.py).
    assert.equal(await error.textContent(), 'ACCESS_DENIED: Staff lounge is for staff only');
    assert.equal(await guest.locator(pane('Staff lounge')).count(), 0);
    assert.equal(await guest.locator(`${roomItem('Staff lounge')}[data-joined]`).count(), 0);
    const staffChannel = await guest.getAttribute(roomItem('Staff lounge'), 'data-channel');
    assert.equal((await hubChannels())[staffChannel], undefined);

    // Posting to it through Django is refused as well.
    const answer = await guest.evaluate(async (url) => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRFToken': document.getElementById('csrf').value },
        body: JSON.stringify({ text: 'let me in' }),
      });
      return { status: response.status, body: await response.json() };
    }, await guest.getAttribute(roomItem('Staff lounge'), 'data-send-url'));
    assert.equal(answer.status, 403);
    assert.equal(answer.body.error, 'ACCESS_DENIED');
  });

  test('the staff user receives messages from several rooms on one socket', async () => {
    const { staff, guest } = pages;
    await clickJoin(staff, 'Staff lounge');
    await clickJoin(staff, 'Random');
    await clickJoin(guest, 'Random');
    await Promise.all([joined(staff, 'Staff lounge'), joined(staff, 'Random'), joined(guest, 'Random')]);

    await say(staff, 'Staff lounge', 'staff eyes only');
    assert.equal(await seen(staff, 'Staff lounge', 'staff eyes only'), 'staff');
    await say(guest, 'Random', 'random thought');
    assert.equal(await seen(staff, 'Random', 'random thought'), 'guest');
    await say(guest, 'Lobby', 'back in the lobby');
    assert.equal(await seen(staff, 'Lobby', 'back in the lobby'), 'guest');

    // The guest got the later Lobby message, and never the earlier staff-only one.
    assert.equal(await seen(guest, 'Lobby', 'back in the lobby'), 'guest');
    assert.equal(await guest.getByText('staff eyes only').count(), 0);

    // Three rooms, one WebSocket, still open.
    assert.equal(await staff.locator('#chats .room').count(), 3);
    assert.equal(staff.sockets.length, 1);
    assert.equal(staff.sockets[0].isClosed(), false);
    assert.equal(await staff.getAttribute('#status', 'data-state'), 'connected');
    // On the hub: two connections in all, one per page, holding every subscription.
    assert.equal((await hubApi('/api/info')).connections, 2);
    const channels = await hubChannels();
    const subscribers = Object.values(channels).reduce((n, c) => n + c.subscribers, 0);
    assert.equal(subscribers, 5); // staff: Lobby, Random, Staff lounge; guest: Lobby, Random
  });

  // Clicks a room's "Who's here?" and waits for the answer to read `expected`.
  async function whoIsHere(page, title, expected) {
    await page.click(`${pane(title)} button.members`);
    await page
      .locator(`${pane(title)} .here`, { hasText: expected })
      .waitFor()
      .catch(async (err) => {
        const shown = await page.locator(`${pane(title)} .here, ${pane(title)} .error`).allTextContents();
        assert.fail(`${err.message}\nshown: ${shown}${trace(page)}`);
      });
  }

  test("\"Who's here?\" is an rpc that Django answers over the page's WebSocket", async () => {
    const { staff, guest } = pages;
    await whoIsHere(staff, 'Lobby', /^Here now: guest, staff$/);
    await whoIsHere(staff, 'Staff lounge', /^Here now: staff$/);
    await whoIsHere(guest, 'Random', /^Here now: guest, staff$/);
    // Over the socket: the rpc went out and its answer came back there.
    const lobby = Number(await staff.getAttribute(roomItem('Lobby'), 'data-room-id'));
    assert.ok(
      staff.sent.some((f) => f.rpc?.method === 'room.members' && f.rpc.data.room === lobby),
      trace(staff),
    );
    const answer = staff.received.find((f) => f.rpcResult?.data?.room === lobby);
    assert.deepEqual(answer?.rpcResult, {
      method: 'room.members',
      data: { room: lobby, members: ['guest', 'staff'] },
    });
    assert.equal(staff.sockets.length, 1);
  });

  test('leaving a room unsubscribes from its channel on the hub', async () => {
    const { staff } = pages;
    const channel = await staff.getAttribute(roomItem('Random'), 'data-channel');
    assert.equal((await hubChannels())[channel]?.subscribers, 2);
    await staff.click(`${pane('Random')} button.leave`);
    await staff.locator(pane('Random')).waitFor({ state: 'detached' });
    // The page marks the room as left once the hub confirmed the unsubscription.
    await staff.waitForSelector(`${roomItem('Random')}:not([data-joined]) button.join:not([disabled])`);
    assert.equal((await hubChannels())[channel]?.subscribers, 1);
    // Who is in the room is the hub's presence: staff is gone from it.
    await whoIsHere(pages.guest, 'Random', /^Here now: guest$/);
  });

  test('joining a room again shows its recent messages, in order, once each', async () => {
    const { staff, guest } = pages;
    await say(guest, 'Random', 'while staff was away');
    assert.equal(await seen(guest, 'Random', 'while staff was away'), 'guest');
    await join(staff, 'Random');
    // Read from the room's history: what was said before, and while staff had left.
    assert.equal(await seen(staff, 'Random', 'while staff was away'), 'guest');
    const texts = await staff.locator(`${pane('Random')} .messages li .text`).allTextContents();
    assert.equal(new Set(texts).size, texts.length, `shown once each: ${texts}`);
    const offsets = await staff
      .locator(`${pane('Random')} .messages li`)
      .evaluateAll((items) => items.map((li) => Number(li.dataset.offset)));
    assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b));
  });

  test("the staff room's history and presence are not the non-staff user's to read either", async () => {
    // A socket of the guest's own, opened by hand in the guest's page: its session cookie
    // goes along, so the hub knows it as guest, and it asks what the page never asks.
    const staffChannel = await pages.guest.getAttribute(roomItem('Staff lounge'), 'data-channel');
    const answers = await pages.guest.evaluate(async ({ url, channel }) => {
      const ws = new WebSocket(url);
      const frames = [];
      const next = () => new Promise((resolve) => ws.addEventListener('message', (e) => resolve(JSON.parse(e.data)), { once: true }));
      frames.push(await next()); // connected
      for (const command of [{ history: { channel, limit: 10 } }, { presence: { channel } }, { subscribe: { channel } }]) {
        const answer = next();
        ws.send(JSON.stringify(command));
        frames.push(await answer);
      }
      const closed = new Promise((resolve) => ws.addEventListener('close', resolve));
      ws.close();
      await closed;
      return frames;
    }, { url: hubWsUrl, channel: staffChannel });
    const [welcome, ...refusals] = answers;
    assert.equal(welcome.connected.user, userIds.guest);
    assert.deepEqual(refusals.map((a) => a.err), ['ACCESS_DENIED', 'ACCESS_DENIED', 'ACCESS_DENIED'], JSON.stringify(answers));
    assert.equal(refusals[2].reason, 'Staff lounge is for staff only');
    assert.ok(!JSON.stringify(answers).includes('staff eyes only'));
  });

  test('no errors in either page', () => {
    // The refused join is shown on the page, not thrown.
    assert.deepEqual(pages.staff.errors, []);
    // The guest's post to the staff-only room was answered 403, on purpose.
    const expected = /status of 403|^403 .*\/rooms\/\d+\/messages$/;
    assert.deepEqual(pages.guest.errors.filter((e) => !expected.test(e)), []);
  });
});
