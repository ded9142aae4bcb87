// The model file readers (host/formats/): every format written by its writer from random weights,
// read back, its weights checked against the originals within the format's rounding, and its logits
// on every engine checked against the float64 reference of what was read (the tolerances of
// test/model.test.ts: 1e-5 of max |logit| for f32 weights, 1e-2 for quantized ones).
// Malformed files: one UserError line naming the file and the field.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UserError } from '../host/errors.ts';
import { loadModel, parseModel } from '../host/formats/index.ts';
import { writeGguf, type GgmlTypeName } from '../host/formats/gguf.ts';
import { writeLlama2c, type FloatWeights } from '../host/formats/llama2c.ts';
import { writeSafetensors } from '../host/formats/safetensors.ts';
import { readTokenizerBin, writeTokenizerBin } from '../host/formats/tokenizer-bin.ts';
import type { ModelConfig } from '../host/model/config.ts';
import { MATRIX_NAMES, matrixShape, type Model } from '../host/model/model.ts';
import { dequantize } from '../host/model/quantize.ts';
import { ReferenceModel } from '../host/model/reference.ts';
import { ModelRuntime } from '../host/model/runtime.ts';
import { randomWeights, trainTokenizer } from '../host/model/synthetic.ts';
import { TokenizerRef } from '../host/model/tokenizer.ts';
import { testEngines } from './helpers.ts';

const engines = await testEngines();
const dir = mkdtempSync(join(tmpdir(), 'ef-loaders-'));
const SMALL: ModelConfig = { dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 300, seqLen: 16, sharedClassifier: true };
// GGUF's ternary and Q4/Q8 types need rows that are multiples of 256 / 32
const WIDE: ModelConfig = { dim: 256, hiddenDim: 256, nLayers: 1, nHeads: 4, nKvHeads: 2, vocabSize: 280, seqLen: 8, sharedClassifier: false };

// Ternary-valued layer weights (scale * {-1, 0, 1}), so ternary formats hold them exactly.
function ternaryWeights(c: ModelConfig, seed: number): FloatWeights {
  const w = randomWeights(c, seed);
  for (const n of MATRIX_NAMES) w.layers[n] = w.layers[n].map((m) => Float32Array.from(m, (v) => (Math.abs(v) < 0.5 / Math.sqrt(c.dim) ? 0 : Math.sign(v) * 0.125)));
  return w;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / (m || 1);
}

// Weights read back vs written: each matrix within `tol` of its max |w|.
function checkWeights(m: Model, w: FloatWeights, tol: number, label: string): void {
  const c = m.config;
  for (let l = 0; l < c.nLayers; l++) {
    for (const n of MATRIX_NAMES) {
      const [rows, cols] = matrixShape(c, n);
      const got = dequantize(m.layers[l][n], rows, cols);
      assert.ok(maxRelDiff(got, w.layers[n][l]) <= tol, `${label}: layers.${l}.${n} (${m.layers[l][n].format.name}) off by ${maxRelDiff(got, w.layers[n][l])}`);
    }
    assert.ok(maxRelDiff(m.layers[l].rmsAtt, w.rmsAtt[l]) <= Math.max(tol, 1e-6), `${label}: rms_att`);
  }
  assert.ok(maxRelDiff(dequantize(m.embedding, c.vocabSize, c.dim), w.tok) <= Math.max(tol, 1e-2), `${label}: embedding`);
  assert.is(m.classifier === null, w.cls === null, `${label}: shared classifier`);
}

function checkLogits(m: Model, tol: number, label: string): void {
  for (const engine of engines) {
    const rt = ModelRuntime.create(m, engine, { batch: 2 });
    const ref = new ReferenceModel(m, { act: (t) => rt.plan.tensors.find((p) => p.data === t.data)?.act ?? 'f32' });
    try {
      for (const [p, tok] of [3, 1, 200, 7].entries()) {
        const got = rt.forward([tok], p)!;
        const want = ref.forward(tok, p);
        let d = 0, mx = 0;
        for (let i = 0; i < want.length; i++) {
          d = Math.max(d, Math.abs(got[i] - want[i]));
          mx = Math.max(mx, Math.abs(want[i]));
        }
        assert.ok(d / mx <= tol, `${label} on ${engine.name}: logits off by ${d / mx}`);
      }
    } finally {
      rt.close();
    }
  }
}

test('llama2.c legacy, version 1 and version 2 read back what their writer wrote', () => {
  for (const shared of [true, false]) {
    const w = randomWeights({ ...SMALL, sharedClassifier: shared }, 11);
    for (const version of [0, 1] as const) {
      const m = parseModel(`v${version}.bin`, writeLlama2c(w, version));
      assert.is(m.source.includes(version === 0 ? 'legacy' : 'version 1'), true);
      checkWeights(m, w, 0, `v${version} shared=${shared}`);
      checkLogits(m, 1e-5, `v${version}`);
    }
    // group 32 tiles every row: q8_0 tensors; group 64 does not tile hidden 96: f32
    for (const group of [32, 64]) {
      const m = parseModel('v2.bin', writeLlama2c(w, 2, group));
      checkWeights(m, w, 1 / 127 + 1e-6, `v2 group ${group}`);
      assert.is(m.layers[0].wq.format.name, 'q8_0');
      assert.is(m.layers[0].w2.format.name, group === 32 ? 'q8_0' : 'f32');
      checkLogits(m, 1e-2, `v2 group ${group}`);
    }
  }
});

test('GGUF: F32, F16, BF16, Q8_0, Q4_0, TQ1_0, TQ2_0 tensors, the tokenizer from metadata', () => {
  const tok = trainTokenizer(WIDE.vocabSize);
  const cases: Array<[GgmlTypeName, string, number]> = [
    ['F32', 'f32', 0], ['F16', 'f32', 1e-3], ['BF16', 'f32', 8e-3], ['Q8_0', 'q8_0', 1 / 127 + 1e-3], ['Q4_0', 'i4g32', 1 / 8 + 1e-3], ['TQ1_0', 'tq1', 1e-3], ['TQ2_0', 'tq2', 1e-3],
  ];
  for (const [type, format, tol] of cases) {
    const w = type.startsWith('TQ') ? ternaryWeights(WIDE, 5) : randomWeights(WIDE, 5);
    const bytes = writeGguf(w, { types: (name) => (name === 'token_embd.weight' || name === 'output.weight' ? 'F16' : type), tokenizer: tok });
    const m = parseModel(`${type}.gguf`, bytes);
    assert.is(m.layers[0].wq.format.name, format, type);
    checkWeights(m, w, tol, `GGUF ${type}`);
    checkLogits(m, format === 'f32' ? 1e-5 : 1e-2, `GGUF ${type}`);
    assert.equal(m.tokenizer!.pieces.map((p) => Buffer.from(p).toString()), tok.pieces.map((p) => Buffer.from(p).toString()));
    const a = new TokenizerRef(m.tokenizer!), b = new TokenizerRef(tok);
    assert.equal(a.encode('In the beginning God', true, false), b.encode('In the beginning God', true, false));
  }
  // the shared-classifier form (no output.weight) and GGUF version 2
  const w = randomWeights({ ...WIDE, sharedClassifier: true }, 6);
  const m = parseModel('v2.gguf', writeGguf(w, { version: 2 }));
  assert.is(m.classifier, null);
  checkWeights(m, w, 0, 'GGUF v2 shared');
});

test('safetensors + config.json (F32, F16, BF16): q/k rows permuted back to llama2.c RoPE pairs', () => {
  for (const [dtype, tol] of [['F32', 0], ['F16', 1e-3], ['BF16', 8e-3]] as const) {
    for (const shared of [true, false]) {
      const w = randomWeights({ ...SMALL, sharedClassifier: shared }, 21);
      const { bytes, config } = writeSafetensors(w, dtype);
      const m = parseModel('model.safetensors', bytes, config);
      checkWeights(m, w, tol, `safetensors ${dtype}`);
      checkLogits(m, 1e-5, `safetensors ${dtype}`);
    }
  }
  // the same logits as the llama2.c file of the same weights (the permutation is right)
  const w = randomWeights(SMALL, 22);
  const a = parseModel('a.bin', writeLlama2c(w, 0));
  const st = writeSafetensors(w, 'F32');
  const b = parseModel('b.safetensors', st.bytes, st.config);
  const ra = new ReferenceModel(a), rb = new ReferenceModel(b);
  for (let p = 0; p < 4; p++) {
    const x = ra.forward(p + 3, p), y = rb.forward(p + 3, p);
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) < 1e-9);
  }
});

test('loadModel finds config.json and tokenizer.bin beside the model; -z overrides', () => {
  const w = randomWeights(SMALL, 31);
  const tok = trainTokenizer(SMALL.vocabSize);
  const sub = mkdtempSync(join(dir, 'st-'));
  const st = writeSafetensors(w);
  writeFileSync(join(sub, 'model.safetensors'), st.bytes);
  writeFileSync(join(sub, 'config.json'), st.config);
  writeFileSync(join(sub, 'tokenizer.bin'), writeTokenizerBin(tok));
  const m = loadModel(sub);
  assert.is(m.source, 'safetensors + config.json');
  assert.is(m.tokenizer!.pieces.length, SMALL.vocabSize);
  const bin = join(dir, 'legacy.bin');
  writeFileSync(bin, writeLlama2c(w, 0));
  assert.throws(() => loadModel(bin), (e: Error) => e instanceof UserError && /no tokenizer/.test(e.message));
  assert.is(loadModel(bin, { tokenizer: join(sub, 'tokenizer.bin') }).tokenizer!.pieces.length, SMALL.vocabSize);
});

test('tokenizer.bin round trip; a tokenizer of another vocabulary size is refused', () => {
  const tok = trainTokenizer(300);
  const bytes = writeTokenizerBin(tok);
  const back = readTokenizerBin('t.bin', bytes, 300);
  assert.equal(back.pieces.map((p) => Array.from(p)), tok.pieces.map((p) => Array.from(p)));
  assert.equal(Array.from(back.scores), Array.from(tok.scores));
  assert.throws(() => readTokenizerBin('t.bin', bytes, 299), /t\.bin: end of file: expected 299 tokens/);
  assert.throws(() => readTokenizerBin('t.bin', bytes, 301), /t\.bin: token 300 score: expected 4 bytes/);
});

test('malformed files: one line naming the file, the field and what was expected', () => {
  const w = randomWeights(SMALL, 41);
  const v0 = writeLlama2c(w, 0);
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['truncated.bin', v0.subarray(0, v0.length - 4), /^truncated\.bin: file size: expected \d+ bytes for a legacy llama2\.c checkpoint of dim 64.*found \d+ \(truncated\?\)$/],
    ['short.bin', v0.subarray(0, 10), /^short\.bin: header: expected 28 bytes at offset 0/],
    ['heads.bin', (() => { const b = v0.slice(); new DataView(b.buffer).setInt32(12, 5, true); return b; })(), /^heads\.bin: config dim 64: expected a multiple of n_heads 5$/],
    ['version.bin', (() => { const b = writeLlama2c(w, 1); new DataView(b.buffer).setInt32(4, 7, true); return b; })(), /^version\.bin: header version: expected version 1 \(float32\) or 2 \(int8\), found 7$/],
    ['cut.gguf', writeGguf(w).subarray(0, 200), /^cut\.gguf: /],
    ['arch.gguf', (() => { const g = writeGguf(w); const s = Buffer.from(g).indexOf('llama'); const b = g.slice(); b.set(Buffer.from('mamba'), s); return b; })(), /^arch\.gguf: metadata general\.architecture: expected "llama", found "mamba"$/],
  ];
  for (const [name, bytes, re] of cases) {
    try {
      parseModel(name, bytes);
      assert.unreachable(`${name} parsed`);
    } catch (e) {
      assert.instance(e, UserError, `${name}: ${(e as Error).message}`);
      assert.match((e as Error).message, re);
      assert.not.match((e as Error).message, /\n/);
    }
  }
  const st = writeSafetensors(w);
  assert.throws(() => parseModel('m.safetensors', st.bytes, st.config.replace('"hidden_size": 64', '"hidden_size": 65')), /m\.safetensors: config\.json: config dim 65: expected a multiple of n_heads 4/);
  assert.throws(() => parseModel('m.safetensors', st.bytes, st.config.replace('"intermediate_size": 96', '"intermediate_size": 97')), /m\.safetensors: tensor model\.layers\.0\.mlp\.gate_proj\.weight: expected shape \[97, 64\] \(config\.json\), found \[96, 64\]/);
});

test.run();
