// `edge-flash run <image>` as a user meets it: an image (told by its magic) runs as its board runs it,
// on V8 and wasm3, printing what `run <model>` prints with the same settings, within the linear memory
// its plan records; a corrupt or truncated image is one line and exit 2, the line `verify` gives; a
// SIMD app is refused on wasm3; flags that would change what the image packs are refused. And demo
// models on representative boards: what fits packs and runs, what does not is refused with the table.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../host/cli/main.ts';
import { appBuild, appProblem } from '../host/image/app.ts';
import { descriptorWords, readImage } from '../host/image/read.ts';
import { writeImage } from '../host/image/write.ts';
import { D_KEEP_W2, D_KEEP_WO } from '../host/model/desc.ts';
import { fromRoot } from '../host/paths.ts';
import { cli, testEngines } from './helpers.ts';

const engines = (await testEngines()).map((e) => e.name);
const MODEL = fromRoot('models', 'kjv-esp32-260k', 'model.bin');
const VECTORS = fromRoot('test', 'vectors', 'image');
const dir = mkdtempSync(join(tmpdir(), 'ef-run-image-'));
const at = (f: string) => join(dir, f);

// The CLI in this process (no spawn): for the many short error cases.
async function inproc(...args: string[]) {
  let out = '', err = '';
  const w1 = process.stdout.write, w2 = process.stderr.write;
  process.stdout.write = ((s: string | Uint8Array) => ((out += typeof s === 'string' ? s : Buffer.from(s).toString()), true)) as typeof w1;
  process.stderr.write = ((s: string | Uint8Array) => ((err += typeof s === 'string' ? s : Buffer.from(s).toString()), true)) as typeof w2;
  try {
    return { code: await main(args), out, err };
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
  }
}

// Exit 2 and exactly one line on stderr (warnings aside; with `table`, the planner's table too), no stack trace.
function oneLineError(r: { code: number | null; err: string }, what: string, table = false): string {
  assert.is(r.code, 2, `${what}: exit ${r.code}\n${r.err}`);
  const lines = r.err.trim().split('\n').filter((l) => !l.startsWith('warning: ') && (!table || l.startsWith('edge-flash: ')));
  assert.is(lines.length, 1, `${what}: ${r.err}`);
  assert.match(lines[0], /^edge-flash: error: /);
  assert.not.match(r.err, /\n\s+at /);
  return lines[0];
}

const runJson = (r: { code: number | null; out: string; err: string }, what: string) => {
  assert.is(r.code, 0, `${what}: ${r.err}`);
  assert.not.match(r.err, /warning/, `${what}: ${r.err}`);
  return JSON.parse(r.out);
};

const PROMPT = ['-i', 'In the beginning'];
// f32 embedding, as `run <model> --quant tb1` keeps it, so that both run the same tensors
assert.is(cli('pack', MODEL, '--board', 'esp32s3', '--quant', 'tb1', '--kv', 'int4', '--embed', 'f32', '-o', at('s3.efimg')).code, 0);
const s3 = readImage(readFileSync(at('s3.efimg')));

const s = suite('run <image>');

s('the image prints what run <model> prints with the same settings, on every engine, within its planned memory', () => {
  const same = ['--quant', 'tb1', '--kv', 'int4', '--target', 'device'];
  for (const engine of engines) {
    const img = runJson(cli('run', at('s3.efimg'), '-t', '0', '-n', '96', ...PROMPT, '--engine', engine, '--json'), `image on ${engine}`);
    const mod = runJson(cli('run', MODEL, '-t', '0', '-n', '96', ...PROMPT, '--engine', engine, '--json', ...same), `model on ${engine}`);
    assert.is(img.text, mod.text, `greedy on ${engine}`);
    assert.equal(img.tokens, mod.tokens);
    assert.ok(img.text.length > 100, img.text);
    assert.is(img.memory_bytes, s3.config.plannedLinear, `${engine}: the arena reaches the image's planned linear memory`);
    assert.is(img.image.planned_linear, s3.config.plannedLinear);
    assert.is(img.image.app_build, 'device');
    assert.is(img.kv, 'int4');
  }
  // sampled: the image on wasm3 and the model on V8 (device build) draw the same tokens
  const sampled = ['-t', '0.9', '-p', '0.9', '-s', '42', '-n', '200'];
  const a = runJson(cli('run', at('s3.efimg'), ...sampled, '--engine', engines.at(-1)!, '--json'), 'sampled image');
  const b = runJson(cli('run', MODEL, ...sampled, '--engine', 'v8', '--json', ...same), 'sampled model');
  assert.is(a.text, b.text);
  // plain text output, streamed, as run <model>
  const t = cli('run', at('s3.efimg'), '-t', '0', '-n', '40', ...PROMPT);
  assert.is(t.code, 0, t.err);
  assert.is(t.out, cli('run', MODEL, '-t', '0', '-n', '40', ...PROMPT, ...same).out);
  assert.match(t.err, /^achieved tok\/s: /m);
});

s('a corrupt or truncated image: one line, exit 2, the line verify gives; the image is told by magic, not name', () => {
  const good = readFileSync(at('s3.efimg'));
  const flipped = Uint8Array.from(good);
  flipped[s3.tensors.find((t) => t.name === 'blk.2.ffn_up')!.offset + 5] ^= 0x10;
  writeFileSync(at('flipped.bin'), flipped);
  writeFileSync(at('truncated.bin'), good.subarray(0, good.length - 100));
  writeFileSync(at('header.bin'), good.subarray(0, 10));
  const badMagic = Uint8Array.from(good);
  badMagic[1] ^= 0x01;
  writeFileSync(at('magic.bin'), badMagic);
  writeFileSync(at('image.named.gguf'), good);
  for (const [f, re] of [
    ['flipped.bin', /section 'weights': CRC-32 is 0x[0-9a-f]{8}, the section table says/],
    ['truncated.bin', /truncated: the image is \d+ bytes, its header says \d+/],
    ['header.bin', /truncated: the image is 10 bytes, shorter than the 24-byte header/],
    ['magic.bin', /not an edge-flash image: magic is 45 47 49 4d \('EGIM'\)/],
  ] as const) {
    const r = cli('run', at(f), '-n', '8', '--engine', engines.at(-1)!);
    const line = oneLineError(r, f);
    assert.match(line, re);
    assert.is(r.out, '', `${f}: nothing on stdout`);
    assert.is(line, oneLineError(cli('verify', at(f)), `verify ${f}`), `${f}: run and verify say the same`);
  }
  const r = cli('run', at('image.named.gguf'), '-t', '0', '-n', '16', ...PROMPT);
  assert.is(r.code, 0, r.err);
});

s('every corrupt test vector: run refuses it with the error verify gives', async () => {
  const manifest = JSON.parse(readFileSync(join(VECTORS, 'vectors.json'), 'utf8'));
  writeFileSync(at('test.pub'), readFileSync(join(VECTORS, 'test-key.pub.hex')));
  let bad = 0;
  for (const v of manifest.vectors) {
    const opts = ['--board', v.board, ...(v.public_key ? ['--key', at('test.pub')] : [])];
    const r = await inproc('run', join(VECTORS, v.file), '-n', '4', ...opts);
    const line = oneLineError(r, v.file);
    if (v.expect.ok) {
      // the vectors' app is a stub module, not the device app: refused before anything runs
      assert.match(line, /the app does not export .*: it is not an edge-flash device app/, v.file);
      continue;
    }
    bad++;
    assert.ok(line.includes(`${join(VECTORS, v.file)}: ${v.expect.message}`), `${v.file}: ${line} lacks '${v.expect.message}'`);
    const ver = await inproc('verify', join(VECTORS, v.file), ...opts);
    assert.is(line, oneLineError(ver, `verify ${v.file}`), v.file);
  }
  assert.ok(bad >= 27, `${bad} corrupt vectors`);
});

// The same image with build/simd.wasm as its app.
function withApp(src: string, app: Uint8Array, out: string): void {
  const img = readImage(readFileSync(src));
  const { bytes } = writeImage({
    boardId: img.boardId, app, config: img.config, tokenizer: img.tokenizer, metadata: img.metadata, descriptor: descriptorWords(img),
    tensors: img.tensors.map((t) => ({ name: t.name, format: t.format, m: t.m, k: t.k, scale: t.scale, resident: t.resident, data: t.data })),
  });
  writeFileSync(out, bytes);
}

s('the app is told from its code: a SIMD app runs on V8 only, a device app on both', () => {
  const device = readFileSync(fromRoot('build', 'device.wasm')), simd = readFileSync(fromRoot('build', 'simd.wasm'));
  assert.is(appBuild(device), 'device');
  assert.is(appBuild(simd), 'simd');
  assert.is(appProblem(device), null);
  assert.is(appProblem(simd), null);
  // one function () -> i32 { i32x4.extract_lane 0 (v128.const 0) }: SIMD with no v128 local
  const body = [0x00, 0xfd, 0x0c, ...new Array(16).fill(0), 0xfd, 0x1b, 0x00, 0x0b];
  const mod = Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type section: () -> i32
    0x03, 0x02, 0x01, 0x00,                   // function section: one function of type 0
    0x0a, body.length + 2, 0x01, body.length, ...body, // code section: one body (no locals)
  ]);
  assert.ok(WebAssembly.validate(mod), 'the hand-made module is valid');
  assert.is(appBuild(mod), 'simd');
  assert.match(appProblem(mod)!, /does not export memory, arena_reset/);
  assert.match(appProblem(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x0a, 0x05))!, /not a valid WebAssembly module/);

  withApp(at('s3.efimg'), simd, at('simd.efimg'));
  if (engines.includes('wasm3')) {
    const line = oneLineError(cli('run', at('simd.efimg'), '--engine', 'wasm3', '-n', '8'), 'SIMD app on wasm3');
    assert.match(line, /the image's app is a SIMD build, which wasm3 \(and a board\) cannot run \(run it with --engine v8/);
  }
  const r = cli('run', at('simd.efimg'), '--engine', 'v8', '-t', '0', '-n', '64', ...PROMPT, '--json');
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /carries a SIMD build of the app, which a board cannot run: it runs the kernels the image's plan names/);
  const j = JSON.parse(r.out);
  assert.is(j.target, 'simd');
  assert.is(j.image.app_build, 'simd');
  // the same descriptor, so the same kernels and the same text as the device app's
  const d = cli('run', at('s3.efimg'), '--engine', 'v8', '-t', '0', '-n', '64', ...PROMPT, '--json');
  assert.is(j.text, JSON.parse(d.out).text);
  assert.is(j.memory_bytes, JSON.parse(d.out).memory_bytes);
  oneLineError(cli('run', at('s3.efimg'), '--target', 'simd', '-n', '8'), '--target simd on a device image');
});

s('an a4.8 image (pack --act a4.8) carries the whole mode: int4/int8 per matrix, the top-K, int3 KV; it runs as run <model> --act a4.8 and re-packs as a4.8', async () => {
  assert.is(cli('pack', MODEL, '--board', 'esp32s3', '--quant', 'tb1', '--act', 'a4.8', '--embed', 'f32', '-o', at('a48.efimg')).code, 0);
  const img = readImage(readFileSync(at('a48.efimg')));
  assert.is(img.config.act, 'a4.8');
  assert.is(img.config.kv, 'int3');
  const words = new Int32Array(img.descriptor.slice().buffer);
  assert.equal([words[D_KEEP_WO], words[D_KEEP_W2]], [img.config.dim / 2, Math.round(img.config.hiddenDim / 2)]);
  const a = runJson(cli('run', at('a48.efimg'), '-t', '0', '-n', '64', ...PROMPT, '--engine', engines.at(-1)!, '--json'), 'a4.8 image');
  const b = runJson(cli('run', MODEL, '-t', '0', '-n', '64', ...PROMPT, '--json', '--quant', 'tb1', '--act', 'a4.8', '--target', 'device'), 'a4.8 model');
  assert.is(a.text, b.text);
  assert.is(b.kv, 'int3');
  assert.match(oneLineError(await inproc('run', at('a48.efimg'), '-n', '4', '--topk', '0.3'), '--topk'), /--topk: .*a48\.efimg runs the top-K it was packed with/);
  // re-packed without flags: the same mode and top-K
  assert.is(cli('pack', at('a48.efimg'), '--board', 'esp32s3', '-o', at('a48-again.efimg')).code, 0);
  const again = readImage(readFileSync(at('a48-again.efimg')));
  assert.is(again.config.act, 'a4.8');
  assert.equal(Array.from(new Int32Array(again.descriptor.slice().buffer).subarray(D_KEEP_WO, D_KEEP_W2 + 1)), [words[D_KEEP_WO], words[D_KEEP_W2]]);
});

s('flags that would change what the image packs are refused; its own values are accepted', async () => {
  const img = at('s3.efimg');
  const cases: Array<[string[], RegExp]> = [
    [['--kv', 'f32'], /--kv f32: .*s3\.efimg was planned with KV int4 \(drop --kv, or pack it again with --kv f32\)/],
    [['--quant', 'q8_0'], /--quant q8_0: .* runs its weights as packed \(layer matrices tb1\)/],
    [['--act', 'i4'], /--act i4: .* was packed with i8 activations/],
    [['--memory', '160K'], /--memory: .* runs under its own plan, \d+ bytes of linear memory/],
    [['--batch', '3'], new RegExp(`--batch 3: .* was planned with a prefill width of ${s3.config.batch}`)],
    [['--target', 'simd'], /--target simd: .* carries a device build of the app/],
    [['-z', fromRoot('models', 'kjv-esp32-260k', 'tokenizer.bin')], /is an edge-flash image: it carries its tokenizer, drop -z/],
    [['--board', 'esp32'], /wrong board: the image is for esp32s3 \(id 3\), this board is esp32/],
    [['--key', join(VECTORS, 'test-key.pub.hex')], /signature: the image is not signed; key [0-9a-f]{16} is required/],
  ];
  for (const [flags, re] of cases) assert.match(oneLineError(await inproc('run', img, '-n', '4', ...flags), flags.join(' ')), re);
  for (const flags of [['--kv', 'int4', '--act', 'i8', '--batch', String(s3.config.batch), '--quant', 'tb1', '--target', 'device'], ['--quant', 'ternary'], ['--board', 'esp32s3-psram8']]) {
    const r = await inproc('run', img, '-n', '4', '-t', '0', ...flags);
    assert.is(r.code, 0, `${flags.join(' ')}: ${r.err}`);
  }
  for (const flags of [['--key', at('test.pub')], ['--board', 'esp32']]) {
    assert.match(oneLineError(await inproc('run', MODEL, '-n', '4', ...flags), flags[0]), /model\.bin: not an edge-flash image: magic is /);
  }
});

s('an image packed with --ignore-fit (not planned) runs the plan it records (the smallest there is), saying so', () => {
  const p = cli('pack', MODEL, '--board', 'esp32', '--quant', 'tb1', '--kv', 'int4', '--ctx', '512', '--ignore-fit', '-o', at('forced.efimg'));
  assert.is(p.code, 0, p.err);
  const r = cli('run', at('forced.efimg'), '-t', '0', '-n', '16', ...PROMPT, '--engine', engines.at(-1)!);
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /^warning: .*forced\.efimg was not planned \(packed with --ignore-fit\): it runs the plan it records with no memory cap$/m);
  assert.match(r.out, /^In the beginning/);
});

// Representative pairs of the README's fit table: an MCU without PSRAM (the model fits at a smaller
// context only) and one with PSRAM (weights stream from flash every token).
s('demo models on boards: what fits packs and runs on wasm3 within its plan; what does not is refused with the table', () => {
  const engine = engines.includes('wasm3') ? 'wasm3' : 'v8';
  const pairs: Array<{ model: string; board: string; flags: string[]; refusedAt?: number; ctx: number; streams: boolean }> = [
    { model: 'kjv-esp32-260k', board: 'esp32', flags: ['--quant', 'tb1', '--kv', 'int4'], refusedAt: 512, ctx: 0, streams: true },
    // (kjv-s3-3m no longer fits a plain esp32s3 under wasm3 once ESP-IDF's main task is counted: the 260K model there)
    { model: 'kjv-esp32-260k', board: 'esp32s3', flags: ['--quant', 'tb1', '--kv', 'int4'], refusedAt: 512, ctx: 0, streams: true },
    { model: 'kjv-s3-3m', board: 'esp32s3-psram2', flags: ['--quant', 'tb1', '--kv', 'int4'], ctx: 256, streams: true },
  ];
  for (const p of pairs) {
    const what = `${p.model} on ${p.board}`;
    const out = at(`${p.model}-${p.board}.efimg`);
    const src = fromRoot('models', p.model);
    if (p.refusedAt) {
      // the whole context named: refused (without --ctx the planner takes the largest that fits)
      const r = cli('pack', src, '--board', p.board, ...p.flags, '--ctx', String(p.refusedAt), '-o', out);
      assert.match(oneLineError(r, what, true), new RegExp(`the model does not fit ${p.board}: linear memory`));
      assert.match(r.err, new RegExp(`^verdict: DOES NOT FIT on ${p.board}`, 'm'));
      assert.match(r.err, /^KV cache +[\d.]+ KiB/m);
      // the context it packs at is the planner's largest that fits (it moves with the app's size)
      const plan = JSON.parse(cli('plan', src, '--board', p.board, ...p.flags, '--ctx', String(p.refusedAt), '--json').out);
      assert.ok(plan.largestCtx > 0 && plan.largestCtx < p.refusedAt, `${what}: largest context ${plan.largestCtx}`);
      p.ctx = plan.largestCtx;
    }
    const pk = cli('pack', src, '--board', p.board, ...p.flags, ...(p.refusedAt ? ['--ctx', String(p.ctx)] : []), '-o', out, '--json');
    assert.is(pk.code, 0, `${what}: ${pk.err}`);
    const sum = JSON.parse(pk.out);
    assert.ok(sum.fits);
    assert.is(sum.ctx, p.ctx);
    assert.is(sum.streamed_bytes_per_token > 0, p.streams, what);
    const j = runJson(cli('run', out, '--engine', engine, '-t', '0', '-n', '12', ...PROMPT, '--json'), what);
    assert.is(j.memory_bytes, sum.linear_bytes, `${what}: the run reaches the planned linear memory`);
    assert.ok(j.memory_bytes <= sum.linear_limit);
    assert.match(j.text, /^In the beginning \w+/);
  }
});

s.run();
