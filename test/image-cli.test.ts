// The image verbs as a user meets them: pack, inspect, verify, plan, boards, keygen on the 260K demo
// model; every bad input is one line on stderr and exit code 2; a refused pack leaves no file.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fromRoot } from '../host/paths.ts';
import { cli } from './helpers.ts';

const MODEL = fromRoot('models', 'kjv-esp32-260k', 'model.bin');
const VECTORS = fromRoot('test', 'vectors', 'image');
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-image-'));
const at = (f: string) => join(dir, f);

// Exit 2 and exactly one error line (log lines of the verb aside), no stack trace.
function oneLineError(r: ReturnType<typeof cli>, what: string): string {
  assert.is(r.code, 2, `${what}: exit ${r.code}\n${r.err}`);
  const lines = r.err.trim().split('\n').filter((l) => l.startsWith('edge-flash: '));
  assert.is(lines.length, 1, `${what}: ${r.err}`);
  assert.match(lines[0], /^edge-flash: error: /);
  assert.not.match(r.err, /\n\s+at /);
  return lines[0];
}

const s = suite('image CLI');

s('boards lists every profile; --json carries the figures and their basis', () => {
  const r = cli('boards');
  assert.is(r.code, 0, r.err);
  for (const b of ['host', 'esp32', 'esp32s3', 'esp32s3-psram8', 'esp32c3', 'rpi-zero2w', 'rpi4', 'rpi5']) assert.match(r.out, new RegExp(`^${b} `, 'm'));
  const j = JSON.parse(cli('boards', '--json').out);
  assert.ok(j.every((b: any) => b.memory.basis && b.speed.basis && b.wasm3.basis && b.serial.transport));
});

s('pack, inspect and verify the demo model; packing twice without a timestamp gives the same bytes', () => {
  const args = [MODEL, '--board', 'esp32s3', '--quant', 'tb1', '--kv', 'int4', '--ctx', '256', '--no-timestamp'];
  const r = cli('pack', ...args, '-o', at('a.efimg'));
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^wrote \/.*\/a\.efimg: .* for esp32s3, 47 tensors, ctx 256, KV int4, .* verified$/m);
  // the image's digest and the file's SHA-256 (sha256sum's, the one flash and the board check), each named
  const fileSha = createHash('sha256').update(readFileSync(at('a.efimg'))).digest('hex');
  assert.match(r.out, new RegExp(`digest [0-9a-f]{16} \\(file SHA-256 ${fileSha.slice(0, 16)}, the one flash verifies\\)`));
  assert.match(cli('inspect', at('a.efimg')).out, new RegExp(`^file +${fileSha} \\(SHA-256 of the whole file`, 'm'));
  assert.is(cli('pack', ...args, '-o', at('b.efimg')).code, 0);
  assert.ok(readFileSync(at('a.efimg')).equals(readFileSync(at('b.efimg'))));
  const v = cli('verify', at('a.efimg'), '--board', 'esp32s3-psram8');
  assert.is(v.code, 0, v.err);
  assert.match(v.out, /ok: 6 section CRCs, digest [0-9a-f]{16}, file SHA-256 [0-9a-f]{16}, unsigned, for esp32s3, runs on esp32s3-psram8/);
  const j = JSON.parse(cli('inspect', at('a.efimg'), '--json').out);
  assert.is(j.board, 'esp32s3');
  assert.is(j.config.kv, 'int4');
  assert.is(j.tensors.find((t: any) => t.name === 'blk.0.ffn_down').stored[1], 192);
  const text = cli('inspect', at('a.efimg')).out;
  assert.match(text, /^board +esp32s3 \(id 3\)/m);
  // the descriptor section: the kernels model_init runs, by stable id
  assert.match(text, /^plan +48 descriptor entries, batch \d+, .*kernels gemm_q8_0_i8_naive \(2\) x1, gemm_tb1_i8_\w+ \(\d+\) x35$/m);
});

s('an image is a source too: plan it for another board, re-pack it', () => {
  const r = cli('plan', at('a.efimg'), '--board', 'rpi5', '--kv', 'int4', '--no-speed');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^verdict: FITS on rpi5/m);
  const p = cli('pack', at('a.efimg'), '--board', 'rpi5', '--kv', 'int4', '-o', at('re.efimg'));
  assert.is(p.code, 0, p.err);
  const a = JSON.parse(cli('inspect', at('a.efimg'), '--json').out), b = JSON.parse(cli('inspect', at('re.efimg'), '--json').out);
  assert.equal(b.tensors.map((t: any) => [t.name, t.format, t.size]), a.tensors.map((t: any) => [t.name, t.format, t.size]));
  oneLineError(cli('pack', at('a.efimg'), '-z', MODEL, '--board', 'rpi5', '-o', at('x.efimg')), 'an image with -z');
});

s('keygen, pack --sign, verify --key; the wrong key is one line', () => {
  assert.is(cli('keygen', '-o', at('k.pem')).code, 0);
  assert.is(cli('keygen', '-o', at('other.pem')).code, 0);
  oneLineError(cli('keygen', '-o', at('k.pem')), 'keygen over a key');
  const r = cli('pack', MODEL, '--board', 'rpi4', '--quant', 'tq2', '--sign', at('k.pem'), '-o', at('s.efimg'));
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /signed by [0-9a-f]{16}/);
  assert.match(cli('verify', at('s.efimg'), '--key', at('k.pub.pem')).out, /signature by [0-9a-f]{16} \(the key given\)/);
  const e = oneLineError(cli('verify', at('s.efimg'), '--key', at('other.pub.pem')), 'wrong key');
  assert.match(e, /signature: signed by key [0-9a-f]{16}, expected key [0-9a-f]{16}/);
  oneLineError(cli('verify', at('a.efimg'), '--key', at('k.pub.pem')), 'unsigned image, key required');
  oneLineError(cli('pack', MODEL, '--board', 'rpi4', '--sign', MODEL, '-o', at('x.efimg')), 'a model file as the key');
});

s('plan: the table, the verdict, the largest context and formats that fit; --json', () => {
  const r = cli('plan', MODEL, '--board', 'esp32', '--quant', 'tb1', '--kv', 'int4', '--ctx', '512', '--no-speed');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^KV cache +122\.\d KiB/m);
  assert.match(r.out, /^verdict: (FITS|DOES NOT FIT) on esp32/m);
  if (/DOES NOT FIT/.test(r.out)) assert.match(r.out, /largest context that fits: \d+ \(--ctx \d+\)/);
  const j = JSON.parse(cli('plan', MODEL, '--board', 'rpi4', '--no-speed', '--json').out);
  assert.ok(j.fits);
  assert.is(j.totals.linear, j.memory.total);
  const sp = cli('plan', MODEL, '--board', 'esp32s3', '--quant', 'tb1', '--kv', 'int4');
  assert.is(sp.code, 0, sp.err);
  assert.match(sp.out, /^speed: (~[\d.]+ tok\/s on esp32s3, estimate: |no estimate: the calibration's spread was \d+ %, over 25 %)/m);
});

s('a pack that does not fit is refused with the table, and leaves no file behind', () => {
  const before = readdirSync(dir).length;
  const r = cli('pack', MODEL, '--board', 'esp32', '--quant', 'f32', '--kv', 'f32', '--ctx', '512', '-o', at('big.efimg'));
  const line = oneLineError(r, 'does not fit');
  assert.match(line, /the model does not fit esp32: /);
  assert.match(r.err, /^verdict: DOES NOT FIT on esp32/m);
  assert.not.ok(existsSync(at('big.efimg')));
  assert.is(readdirSync(dir).length, before, 'no temporary file left');
  assert.match(line, /pass --ignore-fit to write it anyway/);
  const f = cli('pack', MODEL, '--board', 'esp32', '--quant', 'f32', '--kv', 'f32', '--ctx', '512', '--ignore-fit', '-o', at('big.efimg'));
  assert.is(f.code, 0, f.err);
  assert.match(f.err, /written with --ignore-fit although it does not fit esp32/);
  // --force only replaces the file: it does not write an image that does not fit
  const g = cli('pack', MODEL, '--board', 'esp32', '--quant', 'f32', '--kv', 'f32', '--ctx', '512', '--force', '-o', at('big.efimg'));
  assert.match(oneLineError(g, 'does not fit'), /--ignore-fit/);
});

s('bad flags and files: one line each, exit 2', () => {
  const cases: Array<[string[], RegExp]> = [
    [['plan', MODEL, '--board', 'esp33', '--no-speed'], /unknown board 'esp33': expected one of host, esp32/],
    [['plan', MODEL, '--board', 'esp32', '--kv', 'int9', '--no-speed'], /unknown --kv 'int9'/],
    [['plan', MODEL, '--board', 'esp32', '--ctx', '4096', '--no-speed'], /--ctx 4096 is larger than the model's seq_len 512/],
    [['plan', MODEL, '--board', 'esp32', '--ctx', 'ten', '--no-speed'], /--ctx must be an integer in 1..16777216, got 'ten'/],
    [['plan', MODEL, '--board', 'esp32', '--quant', 'q17', '--no-speed'], /unknown --quant format 'q17'/],
    [['plan', MODEL, '--board', 'esp32', '--embed', 'tb1', '--no-speed'], /unknown --embed 'tb1': expected f32 or q8_0/],
    [['plan', MODEL, '--board', 'esp32', '--kv', 'int3', '--no-speed'], /--kv int3 packs 8 values in 3 bytes: this model's head size 8 is not a multiple of 8|fits|FITS/],
    [['plan', at('nope.bin'), '--board', 'esp32', '--no-speed'], /cannot read model .*nope\.bin: no such file/],
    [['pack', MODEL, '--board', 'rpi4', '-o', at('a.efimg')], /a\.efimg exists/],
    [['pack', MODEL, '--board', 'rpi4', '-o', join(dir, 'no', 'such', 'dir.efimg')], /no such directory/],
    [['inspect', at('nope.efimg')], /cannot read .*nope\.efimg: no such file/],
    [['verify', MODEL], /model\.bin is a llama2\.c model, not an edge-flash image: pack it first/],
  ];
  for (const [args, re] of cases) {
    const r = cli(...args);
    if (r.code === 0) {
      assert.match(r.out, re, args.join(' '));
      continue;
    }
    assert.match(oneLineError(r, args.join(' ')), re);
  }
});

s('verify gives each corrupt vector its own error, one line, exit 2', () => {
  const manifest = JSON.parse(readFileSync(join(VECTORS, 'vectors.json'), 'utf8'));
  writeFileSync(at('test.pub'), readFileSync(join(VECTORS, 'test-key.pub.hex')));
  for (const v of manifest.vectors) {
    const args = ['verify', join(VECTORS, v.file), '--board', v.board, ...(v.public_key ? ['--key', at('test.pub')] : [])];
    const r = cli(...args);
    if (v.expect.ok) {
      assert.is(r.code, 0, `${v.file}: ${r.err}`);
      continue;
    }
    const line = oneLineError(r, v.file);
    assert.ok(line.includes(v.expect.message), `${v.file}: ${line} lacks '${v.expect.message}'`);
  }
});

s.run();
