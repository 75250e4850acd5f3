// The shipped TypeScript declarations: real types, checked by tsc against a client program.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { linkPackage, PACKAGE, TESTS } from './harness.mjs';

test('a client program type-checks against the package with tsc --noEmit', () => {
  linkPackage();
  const tsc = path.join(PACKAGE, 'node_modules/typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', TESTS], { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    assert.fail(`tsc found errors:\n${e.stdout}${e.stderr}`);
  }
});

test('the public declarations use no `any`', () => {
  const dts = fs.readFileSync(path.join(PACKAGE, 'pkg/hubbub_client.d.ts'), 'utf8');
  // Everything before wasm-bindgen's own loader types (InitInput, InitOutput, init).
  const api = dts
    .slice(0, dts.indexOf('export type InitInput'))
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '');
  assert.match(api, /export class Client/);
  assert.match(api, /export interface ClientOptions/);
  assert.doesNotMatch(api, /\bany\b/);
});
