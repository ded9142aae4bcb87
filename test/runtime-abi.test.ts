// One set of import names: the C runtime's link table (boards/runtime/core/app.c), docs/abi.md,
// assembly/abi.ts and host/engine/imports.ts name the same imports with the same signatures, and the
// device app (build/device.wasm) imports nothing the C table does not link.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeImage } from '../host/image/write.ts';
import { fromRoot } from '../host/paths.ts';
import { TINY, imageParts } from './fixtures/image.ts';
import { makeRuntime, runBin } from './runtime-helpers.ts';

const bin = join(makeRuntime(), 'edge-flash-runtime');
const sorted = (xs: string[]) => [...xs].sort();

test('the C link table, docs/abi.md, assembly/abi.ts and host/engine/imports.ts agree', () => {
  const r = runBin(bin, ['--imports']);
  assert.is(r.code, 0, r.err);
  const c = r.out.trim().split('\n').map((l) => l.split(' ')).map(([m, n, s]) => `${m}.${n} ${s}`);
  assert.ok(c.length >= 3, r.out);
  const doc = readFileSync(fromRoot('docs', 'abi.md'), 'utf8');
  const docImports = [...doc.split('## Exports')[0].matchAll(/^\| `(\w+)` \| `([^`]+)` \|/gm)].map((m) => `edge.${m[1]} ${m[2]}`);
  assert.equal(sorted(c), sorted(docImports), 'docs/abi.md');
  const as = readFileSync(fromRoot('assembly', 'abi.ts'), 'utf8');
  const asImports = [...as.matchAll(/\/\/ ([vifFI]\([iIfF]*\)):[^\n]*\n(?:\/\/[^\n]*\n)*@external\("(\w+)", "(\w+)"\)/g)].map((m) => `${m[2]}.${m[3]} ${m[1]}`);
  assert.equal(sorted(c), sorted(asImports), 'assembly/abi.ts');
  const ts = readFileSync(fromRoot('host', 'engine', 'imports.ts'), 'utf8');
  const tsImports = [...ts.matchAll(/module: '(\w+)', name: '(\w+)', sig: '([^']+)'/g)].map((m) => `${m[1]}.${m[2]} ${m[3]}`);
  assert.equal(sorted(c), sorted(tsImports), 'host/engine/imports.ts');
});

test('build/device.wasm imports only what the C runtime links', () => {
  const r = runBin(bin, ['--imports']);
  const linked = new Set(r.out.trim().split('\n').map((l) => l.split(' ').slice(0, 2).join('.')));
  const mod = new WebAssembly.Module(readFileSync(fromRoot('build', 'device.wasm')));
  const imports = WebAssembly.Module.imports(mod).filter((i) => i.kind === 'function').map((i) => `${i.module}.${i.name}`);
  assert.ok(imports.length > 0);
  for (const i of imports) assert.ok(linked.has(i), `device.wasm imports ${i}, which the C link table lacks`);
});

test('the device app in an image loads, links, compiles and starts in the C runtime (its boot self-test)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-rt-abi-'));
  const img = join(dir, 'device.efimg');
  writeFileSync(img, writeImage(imageParts(TINY, 3, { app: new Uint8Array(readFileSync(fromRoot('build', 'device.wasm'))) })).bytes);
  const board = ['--slot-file', join(dir, 'slots.bin'), '--board-id', '2', '--capacity', '262144'];
  const i = runBin(bin, [...board, '--install', img]);
  assert.is(i.code, 0, i.err);
  const b = runBin(bin, [...board, '--boot', '--call', 'arena_top']);
  assert.is(b.code, 0, b.err);
  const events = b.out.trim().split('\n').map((l) => JSON.parse(l));
  assert.is(events[0].event, 'booted', b.err);
  assert.is(events[0].slots[0].state, 'confirmed');
  const call = events.find((e) => e.event === 'call');
  assert.ok(call.ok, call.error);
});

test.run();
