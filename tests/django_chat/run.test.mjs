// examples/django_chat/run.sh as a newcomer meets it: the demo data on a fresh database,
// ports moved with the documented variables (the hub's hooks following Django), a clear
// stop when a port is taken, and Ctrl-C stopping both servers.
//
//   node --test tests/django_chat/run.test.mjs
//
// Environment: HUBBUB_BIN (default target/debug/hubbub: run.sh builds nothing then),
// PYTHON (default .venv/bin/python: its virtualenv is the one run.sh uses).
// scripts/test-django.sh sets everything up.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RUN = path.join(ROOT, 'examples/django_chat/run.sh');
const HUBBUB_BIN = process.env.HUBBUB_BIN || path.join(ROOT, 'target/debug/hubbub');
const PYTHON = process.env.PYTHON || path.join(ROOT, '.venv/bin/python');
// Bounds how long a broken run.sh takes to fail; every wait is on its output.
const WAIT_MS = 60_000;

let tmp;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'hubbub-run-sh-'));
});
after(() => rm(tmp, { recursive: true, force: true }));

function environment(extra) {
  const env = { ...process.env, HUBBUB_BIN, VIRTUAL_ENV: path.dirname(path.dirname(PYTHON)) };
  for (const key of Object.keys(env)) {
    if (key.startsWith('HUBBUB_') && key !== 'HUBBUB_BIN') delete env[key];
  }
  return { ...env, CHAT_DATABASE: path.join(tmp, 'db.sqlite3'), ...extra };
}

/** run.sh with `args`; `output` grows as it prints, `exited` resolves with its status. */
function runSh(args, extra) {
  const child = spawn(RUN, args, { env: environment(extra), stdio: ['ignore', 'pipe', 'pipe'] });
  child.text = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      child.text += chunk;
      child.emit('text');
    });
  }
  child.exited = once(child, 'exit').then(([code, signal]) => code ?? signal);
  return child;
}

/** Resolves once run.sh has printed a match for `pattern`; rejects if it exits first. */
function waitFor(child, pattern) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${WAIT_MS} ms:\n${child.text}`)), WAIT_MS);
    const check = () => {
      if (pattern.test(child.text)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.on('text', check);
    check();
    child.exited.then((status) => {
      clearTimeout(timer);
      reject(new Error(`run.sh exited (${status}) before printing ${pattern}:\n${child.text}`));
    });
  });
}

/** A port on 127.0.0.1 that a listener holds until `close()`. */
function holdPort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () =>
      resolve({ port: server.address().port, close: () => new Promise((r) => server.close(r)) }),
    );
  });
}

async function freePort() {
  const held = await holdPort();
  await held.close();
  return held.port;
}

/** Whether something accepts connections on 127.0.0.1:port. */
function listening(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/**
 * A minimal WebSocket client over a TCP socket (Node 20 has no WebSocket of its own): opens
 * `ws://127.0.0.1:port/ws` as a page of `origin` would, sends each of `commands` once the
 * previous one was answered, and resolves with every frame the hub sent: the text frames
 * parsed, a close frame as {close: code}.
 */
function hubConversation(port, origin, commands) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const frames = [];
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    const send = (text) => {
      // A client's frames are masked; a zero mask leaves the payload as it is.
      const payload = Buffer.from(text);
      assert.ok(payload.length < 126);
      socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]));
    };
    const done = () => {
      socket.destroy();
      resolve(frames);
    };
    socket.on('error', reject);
    socket.on('close', () => resolve(frames));
    socket.on('connect', () =>
      socket.write(
        `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
          + `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: ${origin}\r\n\r\n`,
      ),
    );
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString();
        if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(`no upgrade: ${head}`));
        upgraded = true;
        buffer = buffer.subarray(end + 4);
      }
      // The hub's frames: unmasked, short (the 16-bit length covers these answers).
      while (buffer.length >= 2) {
        let length = buffer[1] & 0x7f;
        let start = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          start = 4;
        }
        if (buffer.length < start + length) return;
        const opcode = buffer[0] & 0x0f;
        const payload = buffer.subarray(start, start + length);
        buffer = buffer.subarray(start + length);
        if (opcode === 0x8) {
          frames.push({ close: payload.length >= 2 ? payload.readUInt16BE(0) : null });
          return done();
        }
        if (opcode !== 0x1) continue; // pings
        frames.push(JSON.parse(payload.toString()));
        const next = commands.shift();
        if (next === undefined) return done();
        send(JSON.stringify(next));
      }
    });
  });
}

test('run.sh manage demo works on a fresh database', async () => {
  const child = runSh(['manage', 'demo'], { CHAT_DATABASE: path.join(tmp, 'fresh.sqlite3') });
  assert.equal(await child.exited, 0, child.text);
});

test('a taken hub port stops run.sh with a message naming HUBBUB_LISTEN', async () => {
  const held = await holdPort();
  try {
    const chat = await freePort();
    const child = runSh([], { HUBBUB_LISTEN: `127.0.0.1:${held.port}`, CHAT_ADDR: `127.0.0.1:${chat}` });
    assert.equal(await child.exited, 1, child.text);
    assert.match(child.text, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${held.port} for the hub`));
    assert.match(child.text, /HUBBUB_LISTEN=/);
    assert.doesNotMatch(child.text, /the chat is at/);
    assert.equal(await listening(chat), false);
  } finally {
    await held.close();
  }
});

test("a taken Django port stops run.sh with a message naming CHAT_ADDR", async () => {
  const held = await holdPort();
  try {
    const hub = await freePort();
    const child = runSh([], { HUBBUB_LISTEN: `127.0.0.1:${hub}`, CHAT_ADDR: `127.0.0.1:${held.port}` });
    assert.equal(await child.exited, 1, child.text);
    assert.match(child.text, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${held.port} for Django`));
    assert.match(child.text, /CHAT_ADDR=/);
    assert.doesNotMatch(child.text, /the chat is at/);
    assert.equal(await listening(hub), false);
  } finally {
    await held.close();
  }
});

test('HUBBUB_LISTEN and CHAT_ADDR move the chat; Ctrl-C stops both servers', async () => {
  const [hub, chat] = [await freePort(), await freePort()];
  const child = runSh([], { HUBBUB_LISTEN: `127.0.0.1:${hub}`, CHAT_ADDR: `127.0.0.1:${chat}` });
  try {
    await waitFor(child, new RegExp(`the chat is at http://127\\.0\\.0\\.1:${chat}/`));
    const login = await fetch(`http://127.0.0.1:${chat}/login/`);
    assert.equal(login.status, 200);
    assert.deepEqual(await (await fetch(`http://127.0.0.1:${hub}/health`)).json(), { status: 'ok' });

    // The hub's hooks reach Django at its moved address: a connection without a session is
    // welcomed as anonymous (a hook the hub could not reach would close it with 4503), and
    // Django itself answers its subscribe and its rpc.
    const frames = await hubConversation(hub, `http://127.0.0.1:${chat}`, [
      { subscribe: { channel: 'room:1' } },
      { rpc: { method: 'room.members', data: { room: 1 } } },
    ]);
    assert.equal(frames.length, 3, JSON.stringify(frames));
    assert.equal(frames[0].connected?.user, undefined, JSON.stringify(frames));
    assert.ok(frames[0].connected.client);
    // No rooms in this database: Django's own reasons.
    assert.deepEqual(frames[1], { err: 'ACCESS_DENIED', reason: 'no such room' });
    assert.deepEqual(frames[2], {
      rpcResult: { method: 'room.members', error: { code: 'NOT_FOUND', reason: 'no such room' } },
    });

    child.kill('SIGINT');
    assert.equal(await child.exited, 130, child.text);
    assert.equal(await listening(hub), false, 'the hub is stopped');
    assert.equal(await listening(chat), false, "Django's server is stopped");
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
  }
});
