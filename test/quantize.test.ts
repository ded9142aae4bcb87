// edge-flash quantize: the methods on synthetic matrices, round trips of every target format through
// the GGUF writer and reader (bit for bit), ggml's own reader (gguf-py) on the standard types, and
// the CLI on the demo model, with its one-line errors.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readGguf, writeGguf } from '../host/formats/gguf.ts';
import { loadModel } from '../host/formats/index.ts';
import { MATRIX_NAMES, matrixShape } from '../host/model/model.ts';
import { dequantize } from '../host/model/quantize.ts';
import { modelFromWeights, randomWeights } from '../host/model/synthetic.ts';
import { fromRoot } from '../host/paths.ts';
import { bitmodScheme } from '../host/quant/bitmod.ts';
import { gptq } from '../host/quant/gptq.ts';
import { quantizeModel, type QuantizeOptions } from '../host/quant/quantize.ts';
import { intScheme, q4_0Scheme, rtn } from '../host/quant/rtn.ts';
import { dequantResult, type Scheme } from '../host/quant/scheme.ts';
import { cli, randn, rng } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'ef-quant-'));
// rows of 256: every format's block divides them (tq*_0: 256, bmd: 128)
const CFG = { dim: 256, hiddenDim: 256, nLayers: 1, nHeads: 4, nKvHeads: 2, vocabSize: 32, seqLen: 16, sharedClassifier: true };
const model = modelFromWeights(randomWeights(CFG, 3));

const TARGETS: Array<[string, QuantizeOptions]> = [
  ['ternary tq2', { method: 'ternary' }], ['ternary tq1', { method: 'ternary', format: 'tq1' }], ['ternary tb1', { method: 'ternary', format: 'tb1' }],
  ['ternary tq2_0', { method: 'ternary', format: 'tq2_0' }], ['ternary tq1_0', { method: 'ternary', format: 'tq1_0' }],
  ...[2, 3, 4].flatMap((bits) => [32, 64, 128].flatMap((group) => [false, true].map((sym): [string, QuantizeOptions] => [`rtn i${bits}g${group}${sym ? ' sym' : ''}`, { method: 'rtn', bits, group, sym }]))),
  ['rtn q4_0', { method: 'rtn', format: 'q4_0' }], ['rtn q8_0', { method: 'rtn', format: 'q8_0' }],
  ...[3, 4].flatMap((bits) => [32, 64, 128].map((group): [string, QuantizeOptions] => [`bitmod ${bits} g${group}`, { method: 'bitmod', bits, group }])),
  ['gptq bmd3g32', { method: 'gptq', format: 'bmd3g32', calibTokens: 32, window: 16 }],
  ['gptq i3g64', { method: 'gptq', bits: 3, group: 64, calibTokens: 32, window: 16 }],
  ['gptq bmd4g128 act-order', { method: 'gptq', format: 'bmd4g128', actOrder: true, calibTokens: 32, window: 16 }],
  ['gptq tq2', { method: 'gptq', format: 'tq2', calibTokens: 32, window: 16 }],
  ['rtn embedding too', { method: 'rtn', bits: 4, keep: [] }],
];

for (const [label, o] of TARGETS) {
  test(`round trip through GGUF, bit for bit: ${label}`, () => {
    const { bytes, values } = quantizeModel(model, o);
    const back = readGguf('<q>', bytes);
    const c = back.config;
    let checked = 0;
    const check = (name: string, t: typeof back.embedding, rows: number, cols: number) => {
      const want = values.get(name);
      if (!want) { assert.is(t.format.name, 'f32', name); return; }
      const got = dequantize(t, rows, cols);
      for (let i = 0; i < got.length; i++) if (got[i] !== Math.fround(want[i])) assert.unreachable(`${name}[${i}]: read ${got[i]}, wrote ${want[i]}`);
      checked++;
    };
    check('token_embd.weight', back.embedding, c.vocabSize, c.dim);
    const names = { wq: 'attn_q', wk: 'attn_k', wv: 'attn_v', wo: 'attn_output', w1: 'ffn_gate', w2: 'ffn_down', w3: 'ffn_up' } as const;
    for (const n of MATRIX_NAMES) check(`blk.0.${names[n]}.weight`, back.layers[0][n], ...matrixShape(c, n));
    assert.ok(checked >= 7);
    assert.equal(Array.from(back.layers[0].rmsAtt), Array.from(model.layers[0].rmsAtt));
  });
}

test('gguf-py (ggml\'s reader, pinned) dequantizes Q4_0, Q8_0, TQ2_0, TQ1_0 to the same values', () => {
  const pip = spawnSync('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', 'gguf==0.17.1'], { encoding: 'utf8' });
  assert.is(pip.status, 0, `pip install gguf==0.17.1 failed: ${pip.stderr}`);
  for (const [fmt, method] of [['q4_0', 'rtn'], ['q8_0', 'rtn'], ['tq2_0', 'ternary'], ['tq1_0', 'ternary']] as const) {
    const { bytes, values } = quantizeModel(model, { method, format: fmt });
    const path = join(tmp, `${fmt}.gguf`);
    writeFileSync(path, bytes);
    const py = `
import sys, numpy as np, gguf
from gguf.quants import dequantize
r = gguf.GGUFReader(sys.argv[1])
out = open(sys.argv[2], 'wb')
for t in r.tensors:
    if t.name.startswith('blk.0.'):
        v = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        out.write((t.name + ' ' + t.tensor_type.name + ' ' + str(v.size) + '\\n').encode()); out.write(v.tobytes())
`;
    const r = spawnSync('python3', ['-c', py, path, join(tmp, `${fmt}.f32`)], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const raw = readFileSync(join(tmp, `${fmt}.f32`));
    let at = 0, n = 0;
    while (at < raw.length) {
      const nl = raw.indexOf(10, at);
      const [name, type, size] = raw.subarray(at, nl).toString().split(' ');
      const count = Number(size);
      const got = new Float32Array(raw.buffer.slice(raw.byteOffset + nl + 1, raw.byteOffset + nl + 1 + 4 * count));
      at = nl + 1 + 4 * count;
      const want = values.get(name);
      if (!want) continue;
      assert.is(type, fmt.toUpperCase(), name);
      assert.is(got.length, want.length, name);
      for (let i = 0; i < got.length; i++) if (got[i] !== Math.fround(want[i])) assert.unreachable(`${fmt} ${name}[${i}]: gguf-py ${got[i]}, ours ${want[i]}`);
      n++;
    }
    assert.is(n, 7, `${fmt}: the 7 matrices`);
  }
});

test('a float GGUF input (F16 linears, its norm eps an f32 1e-5) quantizes to what the same values give from memory', () => {
  const w = randomWeights(CFG, 5);
  const f16 = readGguf('<f16>', writeGguf(w, { types: (name) => (name.startsWith('blk.') ? 'F16' : 'F32') }));
  assert.is.not(f16.normEps, 1e-5); // what the writer stores, read back: fround(1e-5)
  assert.is(f16.normEps, Math.fround(1e-5));
  const o: QuantizeOptions = { method: 'rtn', bits: 4, group: 32 };
  const fromGguf = quantizeModel(f16, o);
  // the same F16-rounded values, as a model in memory with llama2.c's eps
  const rounded = modelFromWeights(w);
  for (let i = 0; i < CFG.nLayers; i++) for (const n of MATRIX_NAMES) rounded.layers[i][n] = f16.layers[i][n];
  const direct = quantizeModel(rounded, o);
  assert.equal(Array.from(fromGguf.values.get('blk.0.attn_q.weight')!), Array.from(direct.values.get('blk.0.attn_q.weight')!));
  assert.equal(Array.from(fromGguf.bytes), Array.from(direct.bytes));
});

// Inputs with strongly correlated features (few latent factors plus noise, uneven scales).
function correlated(seed: number, n: number, k: number): Float64Array {
  const r = rng(seed);
  const lat = 8;
  const A = randn(r, lat * k);
  const scale = Array.from({ length: k }, () => 0.2 + 3 * r());
  const X = new Float64Array(n * k);
  for (let t = 0; t < n; t++) {
    const z = randn(r, lat);
    for (let i = 0; i < k; i++) {
      let v = 0.1 * randn(r, 1)[0];
      for (let j = 0; j < lat; j++) v += z[j] * A[j * k + i];
      X[t * k + i] = v * scale[i];
    }
  }
  return X;
}

function outputError(s: Scheme, W: Float32Array, rows: number, k: number, X: Float64Array, res: ReturnType<typeof rtn>): number {
  const Q = dequantResult(s, res, rows, k);
  let e = 0;
  for (let t = 0; t < X.length / k; t++) {
    for (let r = 0; r < rows; r++) {
      let d = 0;
      for (let i = 0; i < k; i++) d += X[t * k + i] * (Q[r * k + i] - W[r * k + i]);
      e += d * d;
    }
  }
  return e;
}

test('GPTQ lowers the layer output error below RTN\'s on correlated inputs (INT2/3/4, BitMoD, Q4_0; act order)', () => {
  const k = 128, rows = 24;
  const X = correlated(7, 512, k);
  const H = new Float64Array(k * k);
  for (let t = 0; t < 512; t++) for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) H[i * k + j] += X[t * k + i] * X[t * k + j];
  const W = randn(rng(9), rows * k, 0.1);
  const schemes: Scheme[] = [intScheme(2, 32, false), intScheme(3, 64, false), intScheme(4, 128, true), bitmodScheme(3, 128), q4_0Scheme()];
  for (const s of schemes) {
    const eR = outputError(s, W, rows, k, X, rtn(s, W, rows, k));
    for (const actOrder of [false, true]) {
      const eG = outputError(s, W, rows, k, X, gptq(s, W, rows, k, H, { actOrder, blockSize: 32 }));
      assert.ok(eG < 0.8 * eR, `${s.name} act order ${actOrder}: GPTQ ${eG.toExponential(3)} vs RTN ${eR.toExponential(3)}`);
    }
  }
});

test('BitMoD lowers the group error below asymmetric INT at equal bits (3 and 4 bits, groups of 32, 64, 128)', () => {
  const W = randn(rng(5), 64 * 128, 0.05);
  for (const bits of [3, 4]) {
    for (const group of [32, 64, 128]) {
      const b = bitmodScheme(bits, group), i = intScheme(bits, group, false);
      assert.is(b.bitsPerWeight, i.bitsPerWeight);
      const err = (s: Scheme) => { const q = dequantResult(s, rtn(s, W, 64, 128), 64, 128); return q.reduce((a, v, j) => a + (v - W[j]) ** 2, 0); };
      // Gaussian groups of 32 at 4 bits are the exception: asymmetric INT4's 16 levels over [min, max] fit
      // so few weights about as well as FP4 (BitMoD 0.1281 vs INT 0.1271 here); it must stay close
      if (bits === 4 && group === 32) assert.ok(err(b) < 1.02 * err(i), `4 bits, groups of 32: BitMoD ${err(b)} vs INT ${err(i)}`);
      else assert.ok(err(b) < err(i), `${bits} bits, groups of ${group}: BitMoD ${err(b)} vs INT ${err(i)}`);
    }
  }
});

const demo = fromRoot('models', 'kjv-esp32-260k-fp', 'model.bin');

test('CLI: gptq on the demo model writes a GGUF the loaders read, with a JSON summary', () => {
  const out = join(tmp, 'demo.gguf');
  const r = cli('quantize', demo, '--method', 'gptq', '--bits', '3', '--calib-tokens', '256', '-o', out, '--json');
  assert.is(r.code, 0, r.err);
  const s = JSON.parse(r.out);
  assert.is(s.format, 'i3g32');
  const wq = s.groups.find((g: { group: string }) => g.group === 'wq');
  assert.ok(wq.rel_error > 0 && wq.rel_error < 0.5 && wq.bits_per_weight === 5, JSON.stringify(wq));
  assert.is(s.bytes, readFileSync(out).length);
  const m = loadModel(out);
  assert.is(m.layers[0].wq.format.name, 'i3g32');
  assert.is(m.embedding.format.name, 'f32');
  const run = cli('run', out, '-i', 'In the beginning', '-n', '8', '-s', '1');
  assert.is(run.code, 0, run.err);
});

test('CLI: bitmod groups of 32 and 64 on the demo model (64-wide rows) run on V8; the device build (wasm3, boards) refuses them in one line', () => {
  for (const [bits, group] of [[3, 32], [4, 64]]) {
    const out = join(tmp, `bmd${bits}g${group}.gguf`), img = join(tmp, `bmd${bits}g${group}.efimg`);
    const r = cli('quantize', demo, '--method', 'bitmod', '--bits', String(bits), '--group', String(group), '-o', out, '--json');
    assert.is(r.code, 0, r.err);
    assert.is(JSON.parse(r.out).format, `bmd${bits}g${group}`);
    assert.is(loadModel(out).layers[4].w2.format.name, `bmd${bits}g${group}`);
    const gen = ['-i', 'In the beginning', '-n', '12', '-t', '0'];
    const run = cli('run', out, '-z', join(dirname(demo), 'tokenizer.bin'), ...gen, '--engine', 'v8');
    assert.is(run.code, 0, run.err);
    assert.ok(run.out.startsWith('In the beginning'), run.out);
    // only the simd build carries these groups' kernels (formats.ts: a board's heap pays for each kernel);
    // pack names the format (with none named the planner chooses a format the device runs)
    for (const args of [['run', out, '-z', join(dirname(demo), 'tokenizer.bin'), ...gen, '--engine', 'wasm3'], ['pack', out, '-z', join(dirname(demo), 'tokenizer.bin'), '--board', 'host', '--quant', `bmd${bits}g${group}`, '-o', img]]) {
      const r2 = cli(...args);
      assert.is(r2.code, 2, r2.err);
      assert.match(r2.err, `format bmd${bits}g${group} has no kernel in the device build`);
      assert.is(r2.err.trim().split('\n').filter((l) => l.startsWith('edge-flash:')).length, 1, r2.err);
    }
  }
});

test('CLI: tesseraq on the demo model lowers every block\'s output error below its rtn init\'s', () => {
  const out = join(tmp, 'tq.gguf');
  const r = cli('quantize', demo, '--method', 'tesseraq', '--bits', '2', '--init', 'rtn', '--calib-tokens', '64', '--window', '64', '--iters', '2', '-o', out, '--json');
  assert.is(r.code, 0, r.err);
  const s = JSON.parse(r.out);
  assert.is(s.blocks.length, 5);
  for (const b of s.blocks) assert.ok(!b.kept_init && b.loss < b.init_loss, JSON.stringify(b));
  assert.is(loadModel(out).layers[4].w2.format.name, 'i2g32');
});

test('CLI: bad input is one line and exit 2', () => {
  const out = join(tmp, 'bad.gguf');
  const empty = join(tmp, 'empty.txt'), short = join(tmp, 'short.txt');
  writeFileSync(empty, '');
  writeFileSync(short, 'In the beginning');
  const q4 = join(tmp, 'q4.gguf');
  assert.is(cli('quantize', demo, '--method', 'rtn', '-o', q4).code, 0);
  const cases: Array<[string[], RegExp]> = [
    [['--method', 'awq'], /unknown --method awq/],
    [['--method', 'rtn', '--bits', '5'], /--bits 5/],
    [['--method', 'bitmod', '--bits', '2'], /BitMoD has 3- and 4-bit/],
    [['--method', 'rtn', '--format', 'q4_0', '--bits', '3'], /q4_0 is 4-bit/],
    [['--method', 'ternary', '--bits', '2'], /ternary/],
    [['--method', 'rtn', '--format', 'nf4'], /unknown --format nf4/],
    [['--method', 'bitmod', '--bits', '3'], /do not divide the rows .*--group 64 \(or 32\) fits/],
    [['--method', 'bitmod', '--bits', '3', '--group', '48'], /BitMoD groups of 48: expected 32, 64 or 128/],
    // (--format q8_0 on the demo's 172-wide rows falls back to F16 per tensor: test/new-user.test.ts)
    [['--method', 'gptq', '--calib', empty], /is empty/],
    [['--method', 'gptq', '--calib', short], /fewer than one window/],
    [['--method', 'tesseraq', '--format', 'bmd3g128'], /tesseraq tunes integer groups/],
    [['--method', 'tesseraq', '--init', 'awq'], /--init awq/],
  ];
  for (const [args, re] of cases) {
    const r = cli('quantize', demo, ...args, '-o', out, '--force');
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code} ${r.err}`);
    const lines = r.err.trim().split('\n');
    assert.is(lines.length, 1, r.err);
    assert.ok(lines[0].startsWith('edge-flash:') && re.test(lines[0]), `${args.join(' ')}: ${lines[0]}`);
  }
  const again = cli('quantize', q4, '--method', 'rtn', '-o', out, '--force');
  assert.is(again.code, 2);
  assert.match(again.err, /already quantized/);
});

test.run();
