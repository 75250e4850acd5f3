// The package as users load it: CommonJS and ES module entry points, by name and by path,
// and the TypeScript definitions.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import hubbub, {
  HubbubError,
  Publisher,
  Unavailable,
  token,
  verifyToken,
  verifyHook,
  signHook,
  createHookHandler,
  RpcError,
} from 'hubbub-node'

const require = createRequire(import.meta.url)
const here = fileURLToPath(new URL('.', import.meta.url))

test('require() and import give the same objects', () => {
  const cjs = require('hubbub-node')
  assert.deepEqual(Object.keys(cjs).sort(), [
    'HubbubError',
    'Publisher',
    'RpcError',
    'Unavailable',
    'createHookHandler',
    'signHook',
    'token',
    'verifyHook',
    'verifyToken',
  ])
  assert.equal(cjs.Publisher, Publisher)
  assert.equal(cjs.HubbubError, HubbubError)
  assert.equal(cjs.Unavailable, Unavailable)
  assert.equal(cjs.token, token)
  assert.equal(cjs.verifyToken, verifyToken)
  assert.equal(cjs.verifyHook, verifyHook)
  assert.equal(cjs.signHook, signHook)
  assert.equal(cjs.createHookHandler, createHookHandler)
  assert.equal(cjs.RpcError, RpcError)
  assert.equal(hubbub, cjs)
  // As the repository's root loads it: require('./bindings-node').
  assert.equal(require('../../bindings-node').Publisher, Publisher)
})

test('Unavailable is the HubbubError of a hub that cannot be reached', () => {
  const err = new Unavailable('connection refused')
  assert.ok(err instanceof Unavailable && err instanceof HubbubError && err instanceof Error)
  assert.deepEqual([err.name, err.code, err.reason], ['Unavailable', 'UNAVAILABLE', 'connection refused'])
})

test('HubbubError is a real class', () => {
  const err = new HubbubError('ACCESS_DENIED', 'no')
  assert.ok(err instanceof HubbubError && err instanceof Error)
  assert.deepEqual([err.name, err.code, err.reason, err.message], ['HubbubError', 'ACCESS_DENIED', 'no', 'ACCESS_DENIED: no'])
  assert.ok(new Publisher() instanceof Publisher)
})

test('the TypeScript definitions type-check a program that uses the package', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const run = spawnSync(process.execPath, [tsc, '-p', `${here}types`], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stdout + run.stderr)
})
