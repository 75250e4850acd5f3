// The documentation's code blocks, run the way a newcomer would paste them: the blocks of
// README.md, the guides and the examples' READMEs that are marked runnable are extracted
// and run in order, against a real hub, with a clean virtualenv active and a scratch npm
// project for the JavaScript.
//
//   node --test tests/docs/docs.test.mjs          (scripts/test-docs.sh sets everything up)
//
// A fenced block is marked by words after its language on the opening line (GitHub shows
// the language and ignores the rest):
//
//   ```sh runnable           bash, from the repository's root (set -euo pipefail)
//   ```sh runnable project   bash, from the scratch npm project (npm install ...)
//   ```sh hub                the command that starts the hub; it runs in the background
//                            until the end of the file, and the next block waits until the
//                            hub listens
//   ```python runnable       the clean virtualenv's python, from the scratch project
//   ```js runnable           node, saved in the scratch npm project (.mjs when it imports,
//                            .cjs otherwise; file=NAME to name it)
//   ```js runnable browser   a <script type="module"> of a page served from the scratch
//                            project, in headless Chromium, with an import map for
//                            'hubbub-client' (node_modules/hubbub-client); it passes once the
//                            script has run to its end without an uncaught error
//   ```toml runnable         a config file: hubbub must start with it
//   ```nginx runnable        http-level nginx config: `nginx -t` must accept it (with a
//                            test certificate for its ssl_certificate lines); then nginx
//                            runs it on a free port, and a WebSocket upgrade of /ws through
//                            it must reach the hub (101 and the welcome frame)
//   ```caddyfile runnable    a Caddyfile: `caddy adapt` must accept it without a warning
//   ```ini runnable          a systemd unit: `systemd-analyze verify` must say nothing about
//                            it (its /usr/local/bin/hubbub is $HUBBUB_BIN)
//
// given=NAME,... gives a block what the page or program around it would have: `token` (a
// token of user 42 that may read and write every channel of the running hub), `secret` (the
// hub's token_secret) and `render` (a function that logs its arguments).
//
// How a file's blocks run:
// - One after another, as in one terminal: variables a shell block exports reach the later
//   blocks of the file; every shell block starts from its directory again. The first block
//   that fails ends the file (the rest are skipped).
// - A hub runs while the blocks run. A file with a `hub` block starts its hub there (blocks
//   before it run without one); any other file gets a development-mode hub ($HUBBUB_BIN)
//   before its first block. The hub listens on a free port, not 9772: `127.0.0.1:9772` and
//   `localhost:9772` in the blocks are replaced with its address, and HUBBUB_URL points at
//   it. It has a token_secret: the one the blocks exported as HUBBUB_TOKEN_SECRET, else one
//   of the test's own (blocks do not see it unless they ask: given=secret).
// - `/path/to/hubbub` in a block is the repository's root.
// - A shell block that an earlier file already ran, word for word and from the same
//   directory, is not run again (the builds and installs of README.md recur in the guides).
//   The files run README.md first, then by path, and share the virtualenv and the npm
//   project, as one newcomer would: a guide run alone (HUBBUB_DOCS_ONLY) can lack what
//   README.md installed before it.
// - curl fails on an HTTP error (a .curlrc with --fail-with-body), so that a refused call
//   fails its block.
// - No HUBBUB_* or CHAT_* variable of the caller's environment reaches a block.
//
// Environment: HUBBUB_BIN (default target/debug/hubbub), HUBBUB_DOCS_SCRATCH (default
// target/test-docs: the virtualenv and the npm project, made afresh by test-docs.sh),
// CHROMIUM (default /usr/bin/chromium), HUBBUB_DOCS_ONLY (run only the files whose path
// contains it).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HUBBUB_BIN = process.env.HUBBUB_BIN || path.join(ROOT, 'target/debug/hubbub');
const SCRATCH = path.resolve(process.env.HUBBUB_DOCS_SCRATCH || path.join(ROOT, 'target/test-docs'));
const VENV = path.join(SCRATCH, 'venv');
const PROJECT = path.join(SCRATCH, 'project');
const BLOCKS = path.join(SCRATCH, 'blocks');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const LOG = path.join(SCRATCH, 'docs.log');

const LISTENING = /listening on http:\/\/([0-9.]+):([0-9]+)/;
const TEST_SECRET = 'docs-test-token-secret';
// Builds may run inside shell blocks (the first `cargo build --release` takes minutes);
// everything else is quick, and these only bound how long a broken block takes to fail.
const SHELL_MS = 30 * 60_000;
const PROGRAM_MS = 60_000;
const PAGE_MS = 20_000;

const FLAGS = new Set(['runnable', 'hub', 'project', 'browser']);
const OPTIONS = new Set(['given', 'file']);
const LANGS = {
  sh: 'sh', bash: 'sh', shell: 'sh', python: 'python', py: 'python', js: 'js', javascript: 'js', toml: 'toml',
  nginx: 'nginx', caddyfile: 'caddyfile', ini: 'systemd',
};
const GIVEN = new Set(['token', 'secret', 'render']);

/** The fenced code blocks of a Markdown text, with their opening line's number and words. */
export function codeBlocks(text) {
  const blocks = [];
  const lines = text.split('\n');
  let open = null;
  lines.forEach((line, i) => {
    if (!open) {
      const m = /^(\s*)(`{3,}|~{3,})\s*(.*)$/.exec(line);
      if (m) open = { indent: m[1].length, fence: m[2], info: m[3].trim(), line: i + 1, code: [] };
      return;
    }
    const close = /^\s*(`{3,}|~{3,})\s*$/.exec(line);
    if (close && close[1][0] === open.fence[0] && close[1].length >= open.fence.length) {
      const [lang = '', ...words] = open.info.split(/\s+/).filter(Boolean);
      const flags = new Set();
      const options = {};
      for (const word of words) {
        const eq = word.indexOf('=');
        if (eq > 0) options[word.slice(0, eq)] = word.slice(eq + 1);
        else flags.add(word);
      }
      const strip = new RegExp(`^ {0,${open.indent}}`);
      blocks.push({
        line: open.line,
        info: open.info,
        lang,
        flags,
        options,
        code: open.code.map((l) => l.replace(strip, '')).join('\n') + '\n',
      });
      open = null;
      return;
    }
    open.code.push(line);
  });
  return blocks;
}

/** The blocks of `file` marked runnable, checked for typos in their marks. */
function runnableBlocks(file) {
  const blocks = codeBlocks(fs.readFileSync(path.join(ROOT, file), 'utf8'));
  const marked = [];
  for (const b of blocks) {
    const words = [...b.flags, ...Object.keys(b.options)];
    if (words.length === 0) continue;
    const where = `${file}:${b.line} (${b.info})`;
    for (const f of b.flags) assert.ok(FLAGS.has(f), `${where}: unknown mark "${f}"`);
    for (const o of Object.keys(b.options)) assert.ok(OPTIONS.has(o), `${where}: unknown option "${o}="`);
    assert.ok(b.flags.has('runnable') || b.flags.has('hub'), `${where}: marked but neither runnable nor hub`);
    b.kind = LANGS[b.lang];
    assert.ok(b.kind, `${where}: cannot run a "${b.lang}" block`);
    assert.ok(!b.flags.has('hub') || b.kind === 'sh', `${where}: a hub block is a shell command`);
    assert.ok(!b.flags.has('browser') || b.kind === 'js', `${where}: a browser block is JavaScript`);
    assert.ok(!b.flags.has('project') || b.kind === 'sh', `${where}: "project" is for shell blocks`);
    b.given = b.options.given ? b.options.given.split(',') : [];
    for (const g of b.given) assert.ok(GIVEN.has(g), `${where}: nothing to give as "${g}"`);
    b.where = where;
    marked.push(b);
  }
  return marked;
}

/** The Markdown files of the repository (tracked, or new and not ignored), README.md first. */
function markdownFiles() {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const files = [...new Set(out.split('\n').filter((f) => f && !f.includes('node_modules/')))]
    .filter((f) => fs.existsSync(path.join(ROOT, f)))
    .sort();
  return [...files.filter((f) => f === 'README.md'), ...files.filter((f) => f !== 'README.md')];
}

function log(text) {
  fs.appendFileSync(LOG, text.endsWith('\n') ? text : text + '\n');
}

/** The environment of a newcomer's terminal with the clean virtualenv active. */
function newcomerEnvironment() {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (['HUBBUB_', 'CHAT_', 'npm_', 'NODE_TEST'].some((prefix) => key.startsWith(prefix))) continue;
    if (['VIRTUAL_ENV', 'PYTHONPATH', 'NODE_OPTIONS', 'CURL_HOME'].includes(key)) continue;
    env[key] = value;
  }
  let pathList = (env.PATH || '/usr/bin:/bin').split(':');
  if (process.env.VIRTUAL_ENV) pathList = pathList.filter((p) => !p.startsWith(process.env.VIRTUAL_ENV));
  env.PATH = [path.join(VENV, 'bin'), ...pathList].join(':');
  env.VIRTUAL_ENV = VENV;
  env.CURL_HOME = SCRATCH;
  return env;
}

/**
 * Runs a command in a process group of its own, with its output (both streams) kept and
 * logged; kills the group when it takes longer than `timeoutMs`.
 */
function run(command, args, { cwd, env, timeoutMs }) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = [];
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        output.push(chunk);
        log(chunk);
      });
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => output.push(String(err)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, output: output.join('') });
    });
  });
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function tail(text, lines = 60) {
  const all = text.trimEnd().split('\n');
  return (all.length > lines ? ['...', ...all.slice(-lines)] : all).join('\n');
}

/** A hub running in the background, started by a command, and its log. */
class Hub {
  static start(command, args, { cwd, env, timeoutMs, label }) {
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = [];
    const exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    return new Promise((resolve, reject) => {
      let started = false;
      const timer = setTimeout(() => {
        killGroup(child, 'SIGKILL');
        reject(new Error(`${label}: no "listening on" within ${timeoutMs / 1000}s:\n${tail(output.join('\n'))}`));
      }, timeoutMs);
      for (const stream of [child.stdout, child.stderr]) {
        readline.createInterface({ input: stream }).on('line', (line) => {
          output.push(line);
          log(line);
          const m = !started && LISTENING.exec(line);
          if (m) {
            started = true;
            clearTimeout(timer);
            resolve(Object.assign(new Hub(), { child, exited, output, port: Number(m[2]) }));
          }
        });
      }
      exited.then(({ code, signal }) => {
        if (started) return;
        clearTimeout(timer);
        reject(new Error(`${label} exited (${code ?? signal}) before listening:\n${tail(output.join('\n'))}`));
      });
    });
  }

  async stop() {
    killGroup(this.child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(this.child, 'SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
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

/** Resolves once something accepts connections on 127.0.0.1:port. */
async function listeningOn(port) {
  for (;;) {
    const accepted = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('connect', () => socket.end(() => resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (accepted) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A WebSocket upgrade of /ws over TLS to 127.0.0.1:port for `host`, as a page of
 * https://host would send it; resolves with the payload of the first frame.
 */
function upgradeThrough(port, host) {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, path: '/ws', servername: host, rejectUnauthorized: false,
      headers: {
        Host: host, Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', Origin: `https://${host}`,
      },
    });
    req.setTimeout(PAGE_MS, () => req.destroy(new Error('no answer to the upgrade')));
    req.on('error', reject);
    req.on('response', (res) => reject(new Error(`the upgrade was answered ${res.statusCode}`)));
    req.on('upgrade', (res, socket, head) => {
      let data = head;
      const frame = () => {
        // An unmasked text frame from the server: 2 header bytes (a payload under 126).
        if (data.length < 2 || data.length < 2 + (data[1] & 0x7f)) return;
        socket.destroy();
        resolve(data.subarray(2, 2 + (data[1] & 0x7f)).toString('utf8'));
      };
      socket.on('data', (chunk) => {
        data = Buffer.concat([data, chunk]);
        frame();
      });
      frame();
    });
    req.end();
  });
}

/** Serves the scratch project's files (node_modules included) for the browser blocks. */
function serveProject() {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
  const server = http.createServer((req, res) => {
    const file = path.join(PROJECT, decodeURIComponent(new URL(req.url, 'http://x').pathname));
    if (!file.startsWith(PROJECT + path.sep)) return res.writeHead(403).end();
    fs.readFile(file, (err, body) => {
      if (err) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) }),
    ),
  );
}

// The shell blocks that ran, by their directory and text: where they ran first.
const shellRuns = new Map();

let browser;
let files;
async function browserAndFiles() {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  files ??= await serveProject();
  return { browser, files };
}

/** One file's blocks, run in order as in one terminal. */
class Session {
  constructor(file, blocks) {
    this.file = file;
    this.slug = file.replace(/[^A-Za-z0-9]+/g, '-');
    this.blocks = blocks;
    this.env = newcomerEnvironment();
    this.hub = null;
    this.hubSecret = null;
    this.hasHubBlock = blocks.some((b) => b.flags.has('hub'));
  }

  /** `127.0.0.1:9772` becomes the running hub's address, `/path/to/hubbub` the repository. */
  substitute(code) {
    let out = code.replaceAll('/path/to/hubbub', ROOT);
    if (this.hub) {
      out = out.replaceAll('127.0.0.1:9772', `127.0.0.1:${this.hub.port}`).replaceAll('localhost:9772', `localhost:${this.hub.port}`);
    }
    return out;
  }

  /** The environment of the next block: the blocks' own exports, and where the hub is. */
  blockEnv() {
    const env = { ...this.env };
    if (this.hub && !('HUBBUB_URL' in this.env)) env.HUBBUB_URL = `http://127.0.0.1:${this.hub.port}`;
    return env;
  }

  /** The environment a hub starts with: a free port, and a token_secret. */
  hubEnv() {
    this.hubSecret = this.env.HUBBUB_TOKEN_SECRET || TEST_SECRET;
    return { ...this.env, HUBBUB_LISTEN: '127.0.0.1:0', HUBBUB_TOKEN_SECRET: this.hubSecret };
  }

  async ensureHub() {
    if (this.hub || this.hasHubBlock) return;
    this.hub = await Hub.start(HUBBUB_BIN, [], {
      cwd: SCRATCH, env: this.hubEnv(), timeoutMs: 30_000, label: 'the development hub',
    });
  }

  token() {
    return execFileSync(HUBBUB_BIN, ['token', '--token-secret', this.hubSecret, '--user', '42', '--read', '*', '--write', '*'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    }).trim();
  }

  /** Definitions of what the block is given, in its language. */
  givenCode(block) {
    if (block.given.length === 0) return '';
    assert.ok(this.hub, `${block.where}: given=${block.given} needs a running hub`);
    const values = { token: this.token(), secret: this.hubSecret };
    return block.given
      .map((name) => {
        if (block.kind === 'python') {
          assert.notEqual(name, 'render', `${block.where}: render is for JavaScript`);
          return `${name} = ${JSON.stringify(values[name])}\n`;
        }
        if (name === 'render') return `const render = (...args) => console.log('render', ...args);\n`;
        return `const ${name} = ${JSON.stringify(values[name])};\n`;
      })
      .join('');
  }

  async run(block) {
    if (!block.flags.has('hub')) await this.ensureHub();
    const code = this.substitute(block.code);
    const n = `${this.slug}-${block.line}`;
    log(`\n===== ${block.where}\n${code}`);
    if (block.flags.has('hub')) return this.runHub(block, code, n);
    switch (block.kind) {
      case 'sh':
        return this.runShell(block, code, n);
      case 'python':
        return this.runProgram(block, 'python', this.givenCode(block) + code, path.join(BLOCKS, block.options.file || `${n}.py`));
      case 'js':
        if (block.flags.has('browser')) return this.runPage(block, code, n);
        return this.runProgram(block, 'node', this.givenCode(block) + code, path.join(PROJECT, block.options.file || `docs-${n}.${/^\s*import\s/m.test(code) ? 'mjs' : 'cjs'}`));
      case 'toml':
        return this.runConfig(block, code, n);
      case 'nginx':
        return this.runNginx(block, code, n);
      case 'caddyfile':
        return this.checkQuietly(block, code, 'caddy', (file) => ['adapt', '--config', file], `${n}.Caddyfile`);
      case 'systemd':
        return this.checkQuietly(block, code.replaceAll('/usr/local/bin/hubbub', HUBBUB_BIN), 'systemd-analyze',
          (file) => ['verify', file], `${n}.service`);
    }
  }

  fail(block, code, result, what) {
    const how = result.timedOut ? 'took too long' : `exited with ${result.code ?? result.signal}`;
    assert.fail(`${block.where}: ${what} ${how}\n--- block\n${code.trimEnd()}\n--- output\n${tail(result.output)}`);
  }

  /** Where the same shell command ran already, if it did. */
  ranBefore(block) {
    if (block.kind !== 'sh' || block.flags.has('hub')) return undefined;
    return shellRuns.get(`${block.flags.has('project')}\n${this.substitute(block.code)}`);
  }

  async runShell(block, code, n) {
    const script = path.join(BLOCKS, `${n}.sh`);
    const envOut = path.join(BLOCKS, `${n}.env`);
    fs.writeFileSync(script, code);
    const wrapper = '__env_out=$2; trap \'env -0 > "$__env_out"\' EXIT\nset -euo pipefail\nsource "$1"\n';
    const result = await run('bash', ['-c', wrapper, 'bash', script, envOut], {
      cwd: block.flags.has('project') ? PROJECT : ROOT,
      env: this.blockEnv(),
      timeoutMs: SHELL_MS,
    });
    if (result.code !== 0) this.fail(block, code, result, 'the shell block');
    shellRuns.set(`${block.flags.has('project')}\n${code}`, block.where);
    // What the block exported reaches the later blocks, as in one terminal.
    const env = {};
    for (const entry of fs.readFileSync(envOut, 'utf8').split('\0')) {
      const eq = entry.indexOf('=');
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    for (const key of ['PWD', 'OLDPWD', 'SHLVL', '_', '__env_out']) delete env[key];
    if (this.hub && env.HUBBUB_URL === `http://127.0.0.1:${this.hub.port}` && !('HUBBUB_URL' in this.env)) delete env.HUBBUB_URL;
    this.env = env;
  }

  async runHub(block, code, n) {
    assert.ok(!this.hub, `${block.where}: a second hub block in one file`);
    const script = path.join(BLOCKS, `${n}.sh`);
    fs.writeFileSync(script, code);
    this.hub = await Hub.start('bash', ['-euo', 'pipefail', script], {
      cwd: ROOT, env: this.hubEnv(), timeoutMs: SHELL_MS, label: `${block.where}: the hub block`,
    });
  }

  async runProgram(block, command, code, file) {
    fs.writeFileSync(file, code);
    const result = await run(command, [file], { cwd: PROJECT, env: this.blockEnv(), timeoutMs: PROGRAM_MS });
    if (result.code !== 0) this.fail(block, code, result, `${command} ${path.basename(file)}`);
  }

  async runConfig(block, code, n) {
    const file = path.join(BLOCKS, `${n}.toml`);
    fs.writeFileSync(file, code);
    const hub = await Hub.start(HUBBUB_BIN, ['--config', file, '--listen', '127.0.0.1:0'], {
      cwd: SCRATCH, env: newcomerEnvironment(), timeoutMs: 30_000, label: `${block.where}: hubbub --config`,
    });
    await hub.stop();
  }

  /** Runs `command` on the block saved as `name`: it must succeed with nothing on stderr. */
  async checkQuietly(block, code, command, args, name) {
    const dir = path.join(BLOCKS, name.replace(/\.[^.]*$/, ''));
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, name);
    fs.writeFileSync(file, code);
    const stderr = [];
    const result = await new Promise((resolve) => {
      const child = spawn(command, args(file), { cwd: dir, env: newcomerEnvironment(), stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr.setEncoding('utf8').on('data', (chunk) => stderr.push(chunk));
      child.on('error', (err) => stderr.push(String(err)));
      child.on('close', (code) => resolve(code));
    });
    const output = stderr.join('');
    log(output);
    if (result !== 0 || output.trim()) {
      assert.fail(`${block.where}: ${command} ${args(name).join(' ')} ${result !== 0 ? `exited with ${result}` : 'complained'}\n--- output\n${tail(output)}`);
    }
  }

  /**
   * nginx -t on the block (its certificates replaced with a test one), then nginx running it
   * on a free port: a WebSocket upgrade of /ws must reach the hub.
   */
  async runNginx(block, code, n) {
    const dir = path.join(BLOCKS, n);
    fs.mkdirSync(dir, { recursive: true });
    const [cert, key] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
      '-days', '2', '-subj', '/CN=example.com'], { stdio: 'ignore' });
    const port = await freePort();
    const http = code
      .replace(/^(\s*ssl_certificate)(\s+)\S+;/gm, `$1$2${cert};`)
      .replace(/^(\s*ssl_certificate_key)(\s+)\S+;/gm, `$1$2${key};`)
      .replace(/^(\s*)listen\s+443\s+ssl;/gm, `$1listen 127.0.0.1:${port} ssl;`);
    const conf = path.join(dir, 'nginx.conf');
    const errors = path.join(dir, 'error.log');
    fs.writeFileSync(conf, `pid ${dir}/nginx.pid;\nerror_log ${errors};\nevents {}\nhttp {\naccess_log off;\n${http}}\n`);
    const check = await run('nginx', ['-t', '-q', '-c', conf, '-e', errors], { cwd: dir, env: newcomerEnvironment(), timeoutMs: PROGRAM_MS });
    if (check.code !== 0) this.fail(block, code, check, 'nginx -t');

    const nginx = spawn('nginx', ['-c', conf, '-e', errors, '-g', 'daemon off;'], { detached: true, stdio: 'ignore' });
    const exited = new Promise((resolve) => nginx.once('close', resolve));
    try {
      await Promise.race([
        listeningOn(port),
        exited.then((status) => assert.fail(`nginx exited (${status}):\n${fs.readFileSync(errors, 'utf8')}`)),
      ]);
      const welcome = await upgradeThrough(port, 'example.com').catch((err) =>
        assert.fail(`${block.where}: a WebSocket upgrade through nginx: ${err.message}`));
      assert.match(welcome, /^\{"connected":\{"client":"[^"]+"\}\}$/, `${block.where}: the hub's welcome through nginx`);
    } finally {
      killGroup(nginx, 'SIGTERM');
      await exited;
    }
  }

  async runPage(block, code, n) {
    const { browser, files } = await browserAndFiles();
    const script = `docs-${n}.mjs`;
    fs.writeFileSync(
      path.join(PROJECT, script),
      `${this.givenCode(block)}${code}\nwindow.__docsBlockDone = true;\n`,
    );
    const importMap = { imports: { 'hubbub-client': '/node_modules/hubbub-client/hubbub_client.js' } };
    fs.writeFileSync(
      path.join(PROJECT, `docs-${n}.html`),
      `<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n` +
        `<script type="importmap">${JSON.stringify(importMap)}</script>\n` +
        `<script type="module" src="/${script}"></script>\n`,
    );
    const page = await browser.newPage();
    const seen = [];
    let failed;
    const failure = new Promise((resolve) => (failed = resolve));
    page.on('console', (m) => {
      seen.push(`console.${m.type()}: ${m.text()}`);
      log(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => failed(`uncaught: ${e.message}`));
    page.on('response', (r) => {
      if (r.status() >= 400 && r.url().startsWith(files.url)) failed(`${r.status()} for ${r.url()}`);
    });
    page.on('requestfailed', (r) => {
      if (r.url().startsWith(files.url)) failed(`${r.url()}: ${r.failure()?.errorText}`);
    });
    try {
      await page.goto(`${files.url}/docs-${n}.html`);
      const outcome = await Promise.race([
        page.waitForFunction(() => window.__docsBlockDone === true, null, { timeout: PAGE_MS }).then(() => null),
        failure,
      ]).catch((e) => `did not finish: ${e.message.split('\n')[0]}`);
      if (outcome) {
        assert.fail(`${block.where}: the page's script failed: ${outcome}\n--- block\n${code.trimEnd()}\n--- console\n${seen.join('\n')}`);
      }
    } finally {
      await page.close();
    }
  }

  async close() {
    await this.hub?.stop();
    this.hub = null;
  }
}

fs.mkdirSync(BLOCKS, { recursive: true });
fs.mkdirSync(PROJECT, { recursive: true });
fs.writeFileSync(path.join(SCRATCH, '.curlrc'), '--fail-with-body\n');

const only = process.env.HUBBUB_DOCS_ONLY;
const documents = markdownFiles()
  .filter((file) => !only || file.includes(only))
  .map((file) => ({ file, blocks: runnableBlocks(file) }))
  .filter((d) => d.blocks.length > 0);

after(async () => {
  await browser?.close();
  await files?.close();
});

test('README.md and every guide have runnable blocks', { skip: Boolean(only) }, () => {
  const guides = ['README.md', 'docs/python.md', 'docs/node.md', 'docs/browser.md', 'docs/django.md', 'docs/protocol.md',
    'docs/production.md'];
  const covered = new Set(documents.map((d) => d.file));
  assert.deepEqual(guides.filter((g) => !covered.has(g)), []);
});

for (const { file, blocks } of documents) {
  describe(file, () => {
    const session = new Session(file, blocks);
    let broken = null;
    after(() => session.close());
    for (const block of blocks) {
      const name = `line ${block.line}: ${block.info}`;
      test(name, async (t) => {
        if (broken) return t.skip(`after the failure at ${broken}`);
        const earlier = session.ranBefore(block);
        if (earlier) return t.skip(`ran at ${earlier}`);
        try {
          await session.run(block);
        } catch (err) {
          broken = `line ${block.line}`;
          throw err;
        }
      });
    }
  });
}
