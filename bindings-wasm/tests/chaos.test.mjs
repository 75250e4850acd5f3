// Chaos: the hub is killed with SIGKILL mid-stream and started again on the same port, with
// clients of all three kinds at work: the browser client (subscribed, in headless Chromium),
// the Python publisher and the Rust publisher (hubbub-publisher). Each comes back by itself:
// the browser client reconnects, resubscribes and is told that its gap could not be filled
// (a killed hub's streams are gone: a new epoch); the publishers' calls fail as
// UNAVAILABLE while the hub is down and succeed again without being made anew.
//
// The Python part needs the `hubbub` package in the repository's virtualenv (the `python`
// part of the test command installs it) and is skipped with a message where it is missing.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Hub, launchChromium, openTestPage, ROOT, serveFiles } from './harness.mjs';

const PYTHON = path.join(ROOT, '.venv/bin/python');
const RUST_PUBLISHER = path.join(ROOT, 'target/debug/examples/publish');

let files;
let browser;

before(async () => {
  [files, browser] = await Promise.all([serveFiles(ROOT), launchChromium()]);
});

after(async () => {
  await browser?.close();
  await files?.close();
});

function pythonHasHubbub() {
  try {
    execFileSync(PYTHON, ['-c', 'import hubbub'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A Python publisher that publishes to `channel` every 20 ms until told to stop (a line on
 * its stdin), one `Publisher` for the whole run; it prints what each call gave.
 */
function pythonPublisher(url, channel) {
  const script = `
import sys, threading, time, json
import hubbub
p = hubbub.Publisher(${JSON.stringify(url)}, api_key="browser-tests-api-key", timeout=1.0)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
n = 0
while not stop.is_set():
    n += 1
    try:
        p.publish(${JSON.stringify(channel)}, {"from": "python", "n": n})
        print("ok", n, flush=True)
    except hubbub.Unavailable:
        print("unavailable", n, flush=True)
    time.sleep(0.02)
`;
  const proc = spawn(PYTHON, ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  proc.stdout.setEncoding('utf8');
  let buffer = '';
  proc.stdout.on('data', (chunk) => {
    buffer += chunk;
    const parts = buffer.split('\n');
    buffer = parts.pop();
    lines.push(...parts);
  });
  return {
    lines,
    /** Resolves once a line matching `pattern` has come after `from` lines. */
    async seen(pattern, from = 0) {
      for (let i = 0; i < 500; i++) {
        if (lines.slice(from).some((l) => pattern.test(l))) return;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`the Python publisher never printed ${pattern}: ${lines.slice(-5)}`);
    },
    async stop() {
      proc.stdin.end('stop\n');
      await new Promise((resolve) => proc.once('exit', resolve));
    },
  };
}

/** One publication by the Rust publisher's example program; resolves to its exit status. */
function rustPublish(hub, channel) {
  return new Promise((resolve) => {
    const proc = spawn(RUST_PUBLISHER, [channel, 'from rust'], {
      stdio: 'ignore',
      env: { ...process.env, HUBBUB_URL: hub.http, HUBBUB_API_KEY: 'browser-tests-api-key' },
    });
    proc.once('exit', (code) => resolve(code));
  });
}

test('SIGKILL mid-stream: browser, Python and Rust clients come back by themselves', async (t) => {
  if (!fs.existsSync(RUST_PUBLISHER)) {
    execFileSync('cargo', ['build', '-q', '-p', 'hubbub-publisher', '--example', 'publish'], {
      cwd: ROOT,
      stdio: 'inherit',
    });
  }
  const withPython = pythonHasHubbub();
  if (!withPython) t.diagnostic(`no hubbub package in ${PYTHON}: the Python publisher is left out`);

  const first = await Hub.start();
  const port = first.port;
  const page = await openTestPage(browser, files);
  let second;
  const python = withPython ? pythonPublisher(first.http, 'stream:chaos') : null;
  try {
    await page.evaluate(async (url) => {
      const { Client, Recorder } = window.hubbub;
      window.messages = new Recorder();
      window.recoveries = new Recorder();
      window.states = new Recorder();
      window.client = new Client(url, {
        reconnect: { minDelayMs: 50, maxDelayMs: 300 },
        onStateChange: window.states.push,
      });
      await window.client.connect();
      window.sub = await window.client.subscribe('stream:chaos', window.messages.push, {
        onRecover: window.recoveries.push,
      });
    }, first.ws);
    assert.equal(await rustPublish(first, 'stream:chaos'), 0);
    if (python) await python.seen(/^ok /);
    // One message from each publisher that runs (the Python one only where it is installed).
    await page.evaluate((n) => window.messages.count(n), python ? 2 : 1);

    // Mid-stream: the hub dies at once, with no close frame and no goodbye.
    first.proc.kill('SIGKILL');
    await first.exited;
    await page.evaluate(() => window.states.wait((s) => s === 'disconnected', 'disconnected'));
    if (python) await python.seen(/^unavailable /);
    assert.notEqual(await rustPublish(first, 'stream:chaos'), 0, 'the Rust publisher fails while the hub is down');

    second = await Hub.start(port);
    // The browser client reconnects and is told its gap cannot be filled: a new epoch.
    const recovery = await page.evaluate(() =>
      window.recoveries.wait((r) => r.recovered === false, 'a recovery reported as not recovered'),
    );
    assert.equal(recovery.recovered, false);
    const before = await page.evaluate(() => window.messages.items.length);
    // Both publishers reach the new hub, through the same objects and settings as before.
    if (python) {
      const from = python.lines.length;
      await python.seen(/^ok /, from);
    }
    assert.equal(await rustPublish(second, 'stream:chaos'), 0);
    const after = await page.evaluate(async (n) => {
      await window.messages.count(n + 1, 'deliveries after the restart');
      return window.messages.items;
    }, before);
    assert.ok(after.length > before);
    // After the restart, offsets start again in the new stream, in order.
    const fresh = after.slice(before).map((m) => m.offset);
    assert.deepEqual(fresh, [...fresh].sort((a, b) => a - b));
  } finally {
    await python?.stop();
    await page.context().close();
    await second?.stop();
    await first.stop();
  }
});
