// The device runtime under AddressSanitizer + UBSan (`make -C boards/runtime sanitize`): the seeded
// fuzzer (boards/runtime/test/fuzz.c) feeds the frame receiver 200,000 mutated frame streams and the
// image reader 40,000 mutated images (half resealed to reach the contents checks), and the whole device
// protocol 8,000 mutated sessions over a RAM flash (uploads, verify, commit, reset and boot among them); no sanitizer report,
// no crash, no hang. Then the sanitized reader over every vector and the sanitized runtime through an
// install, a boot, a trap and a call after it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeImage } from '../host/image/write.ts';
import { fromRoot } from '../host/paths.ts';
import { TINY, imageParts } from './fixtures/image.ts';
import { makeRuntime, runBin } from './runtime-helpers.ts';

const asan = join(makeRuntime('sanitize'), 'asan');
const VEC = fromRoot('test', 'vectors', 'image');
const SAN_ENV = { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=99', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1:exitcode=98' };
const SEED = Number(process.env.FUZZ_SEED ?? 20261201);

test(`fuzz: 200,000 frame streams, 40,000 images and 8,000 protocol sessions under ASan/UBSan (seed ${SEED})`, () => {
  const r = runBin(join(asan, 'fuzz'), [String(SEED), '200000', '40000', join(VEC, 'small.efimg'), join(VEC, 'small-signed.efimg'), '--protocol', '8000'], { env: SAN_ENV, timeout: 120_000 });
  assert.is(r.code, 0, `exit ${r.code} ${r.signal ?? ''}: ${r.err.slice(0, 4000)}`);
  assert.not.match(r.err, /runtime error|AddressSanitizer|LeakSanitizer/);
  const s = JSON.parse(r.out);
  assert.is(s.frame_cases + s.image_cases, 240000);
  // every receiver outcome and the deep image checks were reached
  for (const k of ['delivered', 'bad_frame', 'bad_crc', 'unknown_type', 'bad_length', 'too_large']) assert.ok(s.frames[k] > 0, `frames: no ${k}`);
  for (const k of ['ok', 'header_crc', 'section_crc', 'overlap', 'signature', 'config', 'tokenizer', 'tensor', 'metadata']) assert.ok(s.images[k] > 0, `images: no ${k}`);
  // the whole device protocol: sessions with real uploads, commits and resets (each a boot through wasm3)
  assert.is(s.protocol.cases, 8000);
  assert.ok(s.protocol.resets > 100 && s.protocol.frames > 100000, JSON.stringify(s.protocol));
  process.stderr.write(`runtime fuzz (ASan+UBSan): ${r.out}`);
});

test('sanitized reader over every vector, sanitized runtime through install, boot and a trap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-rt-asan-'));
  const files = ['small.efimg', 'truncated.efimg', 'bit-flipped.efimg', 'overlapping.efimg', 'bad-tokenizer.efimg', 'bad-metadata.efimg', 'small-signed.efimg', 'bad-signature.efimg', 'bad-tensor-shape.efimg'];
  const r = runBin(join(asan, 'image_check'), ['--board-id', '2', '--capacity', '3080192', ...files.map((f) => join(VEC, f))], { env: SAN_ENV });
  assert.is(r.code, 0, r.err);
  assert.is(r.out.trim().split('\n').length, files.length);
  const slot = join(dir, 'slots.bin');
  const board = ['--slot-file', slot, '--board-id', '2', '--capacity', '65536'];
  const trapApp = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x03, 0x03, 0x02, 0x00, 0x00,
    0x07, 0x11, 0x02, 0x04, ...Buffer.from('trap'), 0x00, 0x00, 0x06, ...Buffer.from('answer'), 0x00, 0x01,
    0x0a, 0x0a, 0x02, 0x03, 0x00, 0x00, 0x0b, 0x04, 0x00, 0x41, 0x2a, 0x0b]);
  const img = join(dir, 'trap.efimg');
  writeFileSync(img, writeImage(imageParts(TINY, 9, { app: trapApp })).bytes);
  const i = runBin(join(asan, 'edge-flash-runtime'), [...board, '--install', img], { env: SAN_ENV });
  assert.is(i.code, 0, i.err);
  const b = runBin(join(asan, 'edge-flash-runtime'), [...board, '--boot', '--call', 'trap', '--call', 'answer'], { env: SAN_ENV });
  assert.is(b.code, 0, b.err);
  assert.match(b.out, /"event":"booted"/, b.err);
  assert.not.match(b.err, /runtime error|AddressSanitizer|LeakSanitizer/);
  const calls = b.out.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.event === 'call');
  assert.equal(calls.map((c) => c.ok), [false, true]);
  assert.is(calls[1].result, 42);
});

test.run();
