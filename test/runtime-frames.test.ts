// The C framing (boards/runtime/core/frame.c) against the shared protocol vectors
// (test/vectors/protocol/vectors.json), byte for byte: every COBS case, the wire bytes of every frame,
// the receiver's delivery of every host-to-device frame, and the events of every to-device decode
// stream (frames and errors with code, req_type, seq, arg). The C receiver does not report skipped or
// held bytes as events (it has no use for them), so those entries are not compared.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromRoot } from '../host/paths.ts';
import { makeRuntime } from './runtime-helpers.ts';

const check = join(makeRuntime(), 'frame_check');
const V = JSON.parse(readFileSync(fromRoot('test', 'vectors', 'protocol', 'vectors.json'), 'utf8'));

function ask(lines: string[]): string[] {
  const r = spawnSync(check, [], { input: lines.join('\n') + '\n', encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.is(r.status, 0, r.stderr);
  const out = r.stdout.split('\n');
  return out.slice(0, lines.length);
}

test('COBS: every vector', () => {
  const got = ask(V.cobs.map((c: any) => `C ${c.data}`));
  V.cobs.forEach((c: any, i: number) => assert.is(got[i], c.encoded, c.name));
});

test('frames: the C encoder gives every frame\'s wire bytes; the receiver delivers every host-to-device frame', () => {
  const got = ask(V.frames.map((f: any) => `F ${f.type} ${f.seq} ${f.payload}`));
  V.frames.forEach((f: any, i: number) => assert.is(got[i], f.wire, f.name));
  const toDevice = V.frames.filter((f: any) => f.type < 0x40);
  assert.ok(toDevice.length >= 10);
  const dec = ask(toDevice.map((f: any) => `D 65535 00${f.wire}`));
  toDevice.forEach((f: any, i: number) => assert.is(dec[i], `frame ${f.type} ${f.seq} ${f.payload}`, f.name));
});

test('decode: every to-device stream gives the vector\'s frames and errors, in order', () => {
  const cases = V.decode.filter((d: any) => d.receives === 'to_device');
  assert.ok(cases.length >= 15, `${cases.length} cases`);
  const got = ask(cases.map((d: any) => `D ${d.max_frame} ${d.stream}`));
  cases.forEach((d: any, i: number) => {
    const want = d.events.filter((e: any) => !('skip' in e)).map((e: any) => ('frame' in e ? `frame ${e.type} ${e.seq} ${e.payload}` : `error ${e.code} ${e.req_type} ${e.seq} ${e.arg}`));
    assert.is(got[i], want.join(';'), `${d.name}: ${d.about}`);
  });
});

test.run();
