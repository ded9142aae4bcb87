// The slot-state record (docs/slots.md) byte for byte: the C runtime's one writer and reader
// (boards/runtime/core/slots.c, through boards/runtime/test/slot_check.c) against the vectors written
// from the spec (test/vectors/slots/records.json): every record encodes to its bytes and decodes to its
// fields, every damaged or foreign copy is ignored, and of two copies the valid newer one is chosen.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SLOT_STATES } from '../host/board/frames.ts';
import { SLOT_VECTOR_DIR, vectorFiles } from './vectors/slots/generate.ts';
import { makeRuntime } from './runtime-helpers.ts';

const check = join(makeRuntime(), 'slot_check');
const V = JSON.parse(readFileSync(join(SLOT_VECTOR_DIR, 'records.json'), 'utf8'));

function ask(lines: string[]): string[] {
  const r = spawnSync(check, [], { input: lines.join('\n') + '\n', encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  return r.stdout.split('\n').slice(0, lines.length);
}
const fields = (r: any) => [r.seq, r.active, r.trial, ...r.slots.flatMap((s: any) => [SLOT_STATES.indexOf(s.state), s.size, s.sha256])].join(' ');

test('the vector file is what its generator writes from the spec', () => {
  for (const [name, content] of vectorFiles()) assert.is(readFileSync(join(SLOT_VECTOR_DIR, name), 'utf8'), content, `${name} is stale: run npx tsx test/vectors/slots/generate.ts`);
  assert.equal(V.states, [...SLOT_STATES]);
});

test('every record: the C writer gives its 100 bytes, the C reader its fields', () => {
  assert.ok(V.records.length >= 5);
  const enc = ask(V.records.map((c: any) => `E ${fields(c.record)}`));
  V.records.forEach((c: any, i: number) => assert.is(enc[i], c.hex, c.name));
  const dec = ask(V.records.map((c: any) => `D ${c.hex}`));
  V.records.forEach((c: any, i: number) => assert.is(dec[i], fields(c.record), c.name));
});

test('every damaged, foreign or RAM-only copy is ignored', () => {
  assert.ok(V.ignored.length >= 10);
  const dec = ask(V.ignored.map((c: any) => `D ${c.hex}`));
  V.ignored.forEach((c: any, i: number) => assert.is(dec[i], 'ignored', c.name));
});

test('of the two copies, the valid one with the newer sequence is in force', () => {
  const got = ask(V.choose.map((c: any) => `O ${c.copies[0]} ${c.copies[1]}`));
  V.choose.forEach((c: any, i: number) => assert.is(got[i], fields(c.chosen), c.name));
});

test.run();
