// llama2.c checkpoints (karpathy/llama2.c export.py), one reader and one writer per version:
//
// version 0, legacy float32 (run.c reads it): int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads,
//   vocab_size (negative: the classifier is not shared with the embedding), seq_len; then float32
//   token_embedding (vocab, dim), rms_att (L, dim), wq (L, dim, dim), wk (L, kv_dim, dim),
//   wv (L, kv_dim, dim), wo (L, dim, dim), rms_ffn (L, dim), w1 (L, hidden, dim), w2 (L, dim, hidden),
//   w3 (L, hidden, dim), rms_final (dim), freq_cis_real and freq_cis_imag (seq_len, head_size/2, unused),
//   then wcls (vocab, dim) when not shared.
// versions 1 and 2 start with a 256-byte header: u32 magic 0x616b3432 ("ak42"), int32 version, the 7
//   int32 fields (vocab positive), u8 shared_classifier, (version 2: int32 group_size), zeros.
//   version 1 (float32): rms_att (L, dim), rms_ffn (L, dim), rms_final (dim), token_embedding, wq, wk,
//   wv, wo, w1, w2, w3 (each all layers), then wcls when not shared.
//   version 2 (int8, Q8_0-style groups over the flattened tensor): the norms as in version 1 in
//   float32, then per tensor (token_embedding, wq.., wk.., wv.., wo.., w1.., w2.., w3.., wcls when not
//   shared; one tensor per layer) its int8 values, then its float32 group scales; w = q * scale.
import { formatByName } from '../quant/formats.ts';
import { headDim, kvDim, type ModelConfig } from '../model/config.ts';
import { checkConfig, checkModel, MATRIX_NAMES, matrixShape, type LayerWeights, type Matrix, type Model } from '../model/model.ts';
import { ByteReader, ByteWriter } from './bytes.ts';

export const LLAMA2C_MAGIC = 0x616b3432;
const F32 = formatByName('f32')!;
const Q8_0 = formatByName('q8_0')!;

export function f32Matrix(data: Float32Array, m: number, k: number): Matrix {
  return { format: F32, m, k, data: new Uint8Array(data.buffer, data.byteOffset, m * k * 4), scale: 1 };
}

export function isLlama2c(bytes: Uint8Array): boolean {
  return bytes.length >= 28;
}

function readHeader(r: ByteReader): { config: ModelConfig; rawVocab: number } {
  const dim = r.i32('header dim');
  const hiddenDim = r.i32('header hidden_dim');
  const nLayers = r.i32('header n_layers');
  const nHeads = r.i32('header n_heads');
  const nKvHeads = r.i32('header n_kv_heads');
  const rawVocab = r.i32('header vocab_size');
  const seqLen = r.i32('header seq_len');
  const config: ModelConfig = { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(rawVocab), seqLen, sharedClassifier: rawVocab > 0 };
  checkConfig(config, r.file);
  return { config, rawVocab };
}

function layerFloats(c: ModelConfig): number {
  const kv = kvDim(c);
  return 2 * c.dim * c.dim + 2 * kv * c.dim + 3 * c.dim * c.hiddenDim;
}

// Bytes a checkpoint of this config must have (what a reader checks before reading anything).
export function expectedBytes(c: ModelConfig, version: 0 | 1 | 2, group = 32): number {
  const L = c.nLayers;
  const cls = c.sharedClassifier ? 0 : c.vocabSize * c.dim;
  const norms = (2 * L + 1) * c.dim;
  if (version === 0) return 28 + 4 * (c.vocabSize * c.dim + norms + L * layerFloats(c) + c.seqLen * headDim(c) + cls);
  if (version === 1) return 256 + 4 * (norms + c.vocabSize * c.dim + L * layerFloats(c) + cls);
  const q = c.vocabSize * c.dim + L * layerFloats(c) + cls;
  return 256 + 4 * norms + q + (4 * q) / group;
}

interface Parts {
  tok: Float32Array | Matrix;
  layers: Record<string, Array<Float32Array | Matrix>>;
  cls: Float32Array | Matrix | null;
}

function assemble(path: string, source: string, c: ModelConfig, rmsAtt: Float32Array[], rmsFfn: Float32Array[], rmsFinal: Float32Array, parts: Parts): Model {
  const mat = (x: Float32Array | Matrix, m: number, k: number): Matrix => (x instanceof Float32Array ? f32Matrix(x, m, k) : x);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const lw: Partial<LayerWeights> = { rmsAtt: rmsAtt[l], rmsFfn: rmsFfn[l] };
    for (const n of MATRIX_NAMES) {
      const [m, k] = matrixShape(c, n);
      lw[n] = mat(parts.layers[n][l], m, k);
    }
    layers.push(lw as LayerWeights);
  }
  const model: Model = {
    path, source, config: c, ropeTheta: 10000, normEps: 1e-5,
    embedding: mat(parts.tok, c.vocabSize, c.dim), layers, rmsFinal,
    classifier: parts.cls ? mat(parts.cls, c.vocabSize, c.dim) : null,
  };
  checkModel(model);
  return model;
}

function checkSize(r: ByteReader, want: number, what: string): void {
  if (r.length !== want) {
    r.fail('file size', `${want} bytes for ${what}`, `${r.length}${r.length < want ? ' (truncated?)' : ''}`);
  }
}

function describe(c: ModelConfig): string {
  return `dim ${c.dim}, hidden ${c.hiddenDim}, ${c.nLayers} layers, ${c.nHeads} heads, ${c.nKvHeads} kv heads, vocab ${c.vocabSize}, seq ${c.seqLen}, ${c.sharedClassifier ? 'shared' : 'unshared'} classifier`;
}

// fileSize: the whole file's, when bytes holds only its first part (its size is checked from the
// header before any weight is read; NeedMore then asks for the rest).
export function readLlama2c(path: string, bytes: Uint8Array, fileSize = bytes.length): Model {
  const r = new ByteReader(path, bytes, fileSize);
  r.need(0, 28, 'header');
  const magic = r.view.getUint32(0, true);
  if (magic === LLAMA2C_MAGIC) return readVersioned(r);
  const { config: c } = readHeader(r);
  checkSize(r, expectedBytes(c, 0), `a legacy llama2.c checkpoint of ${describe(c)}`);
  const L = c.nLayers, kv = kvDim(c);
  const tok = r.f32s(c.vocabSize * c.dim, 'token_embedding');
  const rmsAtt = Array.from({ length: L }, (_, l) => r.f32s(c.dim, `rms_att[${l}]`));
  const layers: Parts['layers'] = {};
  const shape: Record<string, [number, number]> = { wq: [c.dim, c.dim], wk: [kv, c.dim], wv: [kv, c.dim], wo: [c.dim, c.dim] };
  for (const n of ['wq', 'wk', 'wv', 'wo']) layers[n] = Array.from({ length: L }, (_, l) => r.f32s(shape[n][0] * shape[n][1], `${n}[${l}]`));
  const rmsFfn = Array.from({ length: L }, (_, l) => r.f32s(c.dim, `rms_ffn[${l}]`));
  for (const n of ['w1', 'w2', 'w3']) layers[n] = Array.from({ length: L }, (_, l) => r.f32s(c.dim * c.hiddenDim, `${n}[${l}]`));
  const rmsFinal = r.f32s(c.dim, 'rms_final');
  r.take(c.seqLen * headDim(c) * 4, 'freq_cis');
  const cls = c.sharedClassifier ? null : r.f32s(c.vocabSize * c.dim, 'wcls');
  return assemble(path, 'llama2.c legacy (version 0, float32)', c, rmsAtt, rmsFfn, rmsFinal, { tok, layers, cls });
}

function readVersioned(r: ByteReader): Model {
  r.seek(4);
  const version = r.i32('header version');
  if (version !== 1 && version !== 2) r.fail('header version', 'version 1 (float32) or 2 (int8)', String(version));
  const { config: c, rawVocab } = readHeader(r);
  if (rawVocab < 0) r.fail('header vocab_size', 'a positive vocab size in a versioned header', String(rawVocab));
  const shared = r.u8('header shared_classifier');
  if (shared > 1) r.fail('header shared_classifier', '0 or 1', String(shared));
  c.sharedClassifier = shared === 1;
  let group = 0;
  if (version === 2) {
    group = r.i32('header group_size');
    if (!(group >= 1 && group <= 4096)) r.fail('header group_size', 'a group size in [1, 4096]', String(group));
    if (c.dim % group !== 0) r.fail('header group_size', `a divisor of dim (${c.dim})`, String(group));
  }
  checkSize(r, expectedBytes(c, version, group), `a llama2.c version ${version} checkpoint of ${describe(c)}${version === 2 ? `, group ${group}` : ''}`);
  r.seek(256);
  const L = c.nLayers;
  const rmsAtt = Array.from({ length: L }, (_, l) => r.f32s(c.dim, `rms_att[${l}]`));
  const rmsFfn = Array.from({ length: L }, (_, l) => r.f32s(c.dim, `rms_ffn[${l}]`));
  const rmsFinal = r.f32s(c.dim, 'rms_final');
  const read = (name: string, m: number, k: number): Float32Array | Matrix => (version === 1 ? r.f32s(m * k, name) : readQ8(r, name, m, k, group));
  const tok = read('token_embedding', c.vocabSize, c.dim);
  const layers: Parts['layers'] = {};
  for (const n of MATRIX_NAMES) {
    const [m, k] = matrixShape(c, n);
    layers[n] = Array.from({ length: L }, (_, l) => read(`${n}[${l}]`, m, k));
  }
  const cls = c.sharedClassifier ? null : read('wcls', c.vocabSize, c.dim);
  return assemble(r.file, `llama2.c version ${version} (${version === 1 ? 'float32' : `int8, group ${group}`})`, c, rmsAtt, rmsFfn, rmsFinal, { tok, layers, cls });
}

// One version-2 tensor. Groups run over the flattened tensor; when they tile each row in multiples
// of 32 the tensor becomes the table's q8_0 exactly (every 32-block of a group carries the group's
// scale); otherwise it is dequantized to f32.
function readQ8(r: ByteReader, name: string, m: number, k: number, group: number): Float32Array | Matrix {
  const n = m * k;
  const q = new Int8Array(r.take(n, `${name} int8 values`).slice().buffer);
  const s = r.f32s(n / group, `${name} scales`);
  if (k % group === 0 && group % 32 === 0) {
    const nb = k / 32;
    const data = new Uint8Array(m * nb * 36);
    const dv = new DataView(data.buffer);
    for (let row = 0; row < m; row++) {
      for (let b = 0; b < nb; b++) {
        const at = (row * nb + b) * 36;
        const src = row * k + b * 32;
        dv.setFloat32(at, s[Math.floor(src / group)], true);
        data.set(new Uint8Array(q.buffer, src, 32), at + 4);
      }
    }
    return { format: Q8_0, m, k, data, scale: 1 };
  }
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = Math.fround(q[i] * s[Math.floor(i / group)]);
  return w;
}

// ---- writers (tests, tools, the run.c comparison) ------------------------------------------------

// Logical f32 weights, as a writer takes them.
export interface FloatWeights {
  config: ModelConfig;
  tok: Float32Array;                         // (vocab, dim)
  rmsAtt: Float32Array[]; rmsFfn: Float32Array[];
  layers: Record<(typeof MATRIX_NAMES)[number], Float32Array[]>;
  rmsFinal: Float32Array;
  cls: Float32Array | null;                  // null: shared
}

export function ropeFreqs(c: ModelConfig, theta = 10000): { real: Float32Array; imag: Float32Array } {
  const hs = headDim(c);
  const real = new Float32Array((c.seqLen * hs) / 2), imag = new Float32Array((c.seqLen * hs) / 2);
  for (let p = 0; p < c.seqLen; p++) {
    for (let i = 0; i < hs; i += 2) {
      const a = p / theta ** (i / hs);
      real[(p * hs) / 2 + i / 2] = Math.cos(a);
      imag[(p * hs) / 2 + i / 2] = Math.sin(a);
    }
  }
  return { real, imag };
}

export function writeLlama2c(w: FloatWeights, version: 0 | 1 | 2, group = 64): Uint8Array {
  const c = w.config;
  const out = new ByteWriter();
  const header = (vocab: number) => out.i32(c.dim).i32(c.hiddenDim).i32(c.nLayers).i32(c.nHeads).i32(c.nKvHeads).i32(vocab).i32(c.seqLen);
  const order = (): Float32Array[] => [w.tok, ...w.layers.wq, ...w.layers.wk, ...w.layers.wv, ...w.layers.wo, ...w.layers.w1, ...w.layers.w2, ...w.layers.w3, ...(w.cls ? [w.cls] : [])];
  if (version === 0) {
    header(w.cls ? -c.vocabSize : c.vocabSize);
    out.f32s(w.tok);
    for (const t of w.rmsAtt) out.f32s(t);
    for (const n of ['wq', 'wk', 'wv', 'wo'] as const) for (const t of w.layers[n]) out.f32s(t);
    for (const t of w.rmsFfn) out.f32s(t);
    for (const n of ['w1', 'w2', 'w3'] as const) for (const t of w.layers[n]) out.f32s(t);
    out.f32s(w.rmsFinal);
    const { real, imag } = ropeFreqs(c);
    out.f32s(real).f32s(imag);
    if (w.cls) out.f32s(w.cls);
    return out.finish();
  }
  out.u32(LLAMA2C_MAGIC).i32(version);
  header(c.vocabSize);
  out.u8(w.cls ? 0 : 1);
  if (version === 2) out.i32(group);
  out.zeros(256 - out.length);
  for (const t of [...w.rmsAtt, ...w.rmsFfn, w.rmsFinal]) out.f32s(t);
  for (const t of order()) {
    if (version === 1) out.f32s(t);
    else {
      const { q, s } = quantizeQ80(t, group);
      out.bytes(new Uint8Array(q.buffer)).f32s(s);
    }
  }
  return out.finish();
}

// export.py's quantize_q80: symmetric int8 per group, scale = max|w| / 127, round half away from zero
// is torch.round's half-to-even; both are written here as half-to-even.
export function quantizeQ80(w: Float32Array, group: number): { q: Int8Array; s: Float32Array } {
  const q = new Int8Array(w.length), s = new Float32Array(w.length / group);
  for (let g = 0; g < s.length; g++) {
    let amax = 0;
    for (let i = 0; i < group; i++) amax = Math.max(amax, Math.abs(w[g * group + i]));
    const scale = Math.fround(amax / 127);
    s[g] = scale;
    for (let i = 0; i < group; i++) {
      const v = scale === 0 ? 0 : Math.fround(w[g * group + i] / scale);
      const r = Math.round(v);
      q[g * group + i] = Math.max(-127, Math.min(127, r - v === 0.5 && r % 2 !== 0 ? r - 1 : r));
    }
  }
  return { q, s };
}

