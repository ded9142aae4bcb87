// safetensors with a Hugging Face llama config.json, one reader and one writer.
//
// Layout: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {...}}, then the data (offsets relative to byte 8 + N). Types read: F32, F16, BF16.
// Names (HF LlamaForCausalLM): model.embed_tokens.weight, model.layers.{i}.input_layernorm.weight,
// .self_attn.{q,k,v,o}_proj.weight, .post_attention_layernorm.weight, .mlp.{gate,down,up}_proj.weight,
// model.norm.weight, lm_head.weight (absent or tie_word_embeddings: shared with the embedding).
// HF's RoPE rotates the two halves of each head (rotate_half); llama2.c rotates adjacent pairs, so
// the rows of q_proj and k_proj are permuted on load (row s*hs/2 + j of a head -> row 2j + s), as
// llama2.c's export.py does. The tokenizer is not read from HF files: pass a tokenizer.bin with -z.
import { UserError } from '../errors.ts';
import { headDim, type ModelConfig } from '../model/config.ts';
import { checkConfig, checkModel, checkNormEps, checkRopeTheta, MATRIX_NAMES, matrixShape, type LayerWeights, type Model } from '../model/model.ts';
import { bf16ToF32, ByteReader, clean, ByteWriter, f16ToF32, f32ToBf16, f32ToF16, LIMITS } from './bytes.ts';
import { f32Matrix, type FloatWeights } from './llama2c.ts';

const DTYPES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };
// every dtype of the safetensors spec, so that each tensor's range is checked whatever its type
const ALL_DTYPES: Record<string, number> = {
  ...DTYPES, F64: 8, I64: 8, U64: 8, I32: 4, U32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

// Told by '{' then '"', '}' or a space at byte 8, whatever the length before it: a llama2.c header
// there would have n_layers of at least 0x097b, beyond any it reads.
export function isSafetensors(bytes: Uint8Array): boolean {
  return bytes.length >= 10 && bytes[8] === 0x7b && [0x22, 0x7d, 0x20, 0x0a, 0x0d, 0x09].includes(bytes[9]);
}

interface Entry { dtype: string; shape: number[]; begin: number; end: number }

// fileSize: the whole file's, when bytes holds only its first part (NeedMore asks for more).
export function parseSafetensors(path: string, bytes: Uint8Array, fileSize = bytes.length): Map<string, Entry> {
  const r = new ByteReader(`${path} (safetensors: a u64 header length, then '{')`, bytes, fileSize);
  r.need(0, 8, 'header length');
  const n64 = r.view.getBigUint64(0, true);
  r.pos = 8;
  const most = Math.min(r.length - 8, LIMITS.jsonHeader);
  if (n64 > BigInt(most)) r.fail('header length', `at most ${most} (the file's size less 8, and the JSON header limit ${LIMITS.jsonHeader})`, String(n64));
  const n = Number(n64);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(r.take(n, 'header')));
  } catch (e) {
    r.fail('header', 'UTF-8 JSON', `unparsable (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) r.fail('header', 'a JSON object');
  const out = new Map<string, Entry>();
  const dataStart = 8 + n;
  for (const [raw, v] of Object.entries(json as Record<string, unknown>)) {
    if (raw === '__metadata__') continue;
    const name = clean(raw);
    const e = v as Record<string, unknown>;
    if (typeof e !== 'object' || e === null) r.fail(`tensor ${name}`, 'an object with dtype, shape and data_offsets');
    const dtype = e.dtype, shape = e.shape, offs = e.data_offsets;
    if (typeof dtype !== 'string') r.fail(`tensor ${name} dtype`, 'a string');
    if (!Array.isArray(shape) || shape.length > 4 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) r.fail(`tensor ${name} shape`, 'up to 4 non-negative integers', JSON.stringify(shape));
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[1] < offs[0]) {
      r.fail(`tensor ${name} data_offsets`, '[begin, end] with begin <= end', JSON.stringify(offs));
    }
    const [begin, end] = offs as number[];
    const numel = (shape as number[]).reduce((a, d) => a * d, 1);
    const size = ALL_DTYPES[dtype as string];
    if (!size) r.fail(`tensor ${name} dtype`, `a safetensors dtype (${Object.keys(ALL_DTYPES).join(', ')})`, String(dtype));
    if (!Number.isSafeInteger(numel * size) || end - begin !== numel * size) {
      r.fail(`tensor ${name} data_offsets`, `${numel * size} bytes for ${dtype} ${JSON.stringify(shape)}`, String(end - begin));
    }
    r.inFile(dataStart + begin, end - begin, `tensor ${name} data`);
    out.set(raw, { dtype: dtype as string, shape: shape as number[], begin: dataStart + begin, end: dataStart + end });
  }
  // tensor ranges are disjoint (two names for the same bytes would load as garbage)
  const ranges = [...out.entries()].filter(([, e]) => e.end > e.begin).sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < ranges.length; i++) {
    const [pn, p] = ranges[i - 1], [tn, t] = ranges[i];
    if (p.end > t.begin) r.fail(`tensor ${clean(tn)} data_offsets`, `a range disjoint from tensor ${clean(pn)}'s [${p.begin - dataStart}, ${p.end - dataStart})`, `begin ${t.begin - dataStart}`);
  }
  return out;
}

function floats(path: string, bytes: Uint8Array, name: string, e: Entry): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset + e.begin, e.end - e.begin);
  const size = DTYPES[e.dtype];
  if (!size) throw new UserError(`${path}: tensor ${name} dtype: expected F32, F16 or BF16, found ${clean(e.dtype)}`);
  const n = (e.end - e.begin) / size;
  const out = new Float32Array(n);
  if (e.dtype === 'F32') for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
  else if (e.dtype === 'F16') for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
  else for (let i = 0; i < n; i++) out[i] = bf16ToF32(dv.getUint16(2 * i, true));
  return out;
}

// HF rotate_half rows -> adjacent-pair rows, per head (and back with inverse).
export function permuteRope(w: Float32Array, heads: number, hs: number, cols: number, inverse = false): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < hs / 2; j++) {
      for (let s = 0; s < 2; s++) {
        const hf = h * hs + s * (hs / 2) + j, l2c = h * hs + 2 * j + s;
        const [from, to] = inverse ? [l2c, hf] : [hf, l2c];
        out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

function configFrom(path: string, configJson: string): { c: ModelConfig; eps: number; theta: number; tied: boolean } {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(configJson);
  } catch (e) {
    throw new UserError(`${path}: config.json: expected JSON, found unparsable text (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new UserError(`${path}: config.json: expected a JSON object`);
  if (j.model_type !== undefined && j.model_type !== 'llama') throw new UserError(`${path}: config.json model_type: expected "llama", found ${clean(JSON.stringify(j.model_type))}`);
  const num = (k: string, def?: number): number => {
    const v = j[k] ?? def;
    if (typeof v !== 'number') throw new UserError(`${path}: config.json ${k}: expected a number, found ${clean(JSON.stringify(j[k] ?? null))}`);
    return v;
  };
  const heads = num('num_attention_heads');
  const c: ModelConfig = {
    dim: num('hidden_size'), hiddenDim: num('intermediate_size'), nLayers: num('num_hidden_layers'), nHeads: heads,
    nKvHeads: num('num_key_value_heads', heads), vocabSize: num('vocab_size'), seqLen: num('max_position_embeddings'), sharedClassifier: false,
  };
  checkConfig(c, `${path}: config.json`);
  const eps = checkNormEps(`${path}: config.json rms_norm_eps`, num('rms_norm_eps', 1e-6));
  const theta = checkRopeTheta(`${path}: config.json rope_theta`, num('rope_theta', 10000));
  return { c, eps, theta, tied: j.tie_word_embeddings === true };
}

export function readSafetensorsModel(path: string, bytes: Uint8Array, configJson: string): Model {
  const { c, eps, theta, tied } = configFrom(path, configJson);
  const entries = parseSafetensors(path, bytes);
  const tensor = (name: string, shape: number[]): Float32Array => {
    const e = entries.get(name);
    if (!e) throw new UserError(`${path}: tensor ${name}: expected in a llama safetensors file, not found`);
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
      throw new UserError(`${path}: tensor ${name}: expected shape [${shape.join(', ')}] (config.json), found [${e.shape.join(', ')}]`);
    }
    return floats(path, bytes, name, e);
  };
  c.sharedClassifier = tied || !entries.has('lm_head.weight');
  const hs = headDim(c);
  const hf = { wq: 'self_attn.q_proj', wk: 'self_attn.k_proj', wv: 'self_attn.v_proj', wo: 'self_attn.o_proj', w1: 'mlp.gate_proj', w2: 'mlp.down_proj', w3: 'mlp.up_proj' } as const;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `model.layers.${l}.`;
    const lw: Partial<LayerWeights> = { rmsAtt: tensor(`${p}input_layernorm.weight`, [c.dim]), rmsFfn: tensor(`${p}post_attention_layernorm.weight`, [c.dim]) };
    for (const n of MATRIX_NAMES) {
      const [rows, cols] = matrixShape(c, n);
      let w = tensor(`${p}${hf[n]}.weight`, [rows, cols]);
      if (n === 'wq') w = permuteRope(w, c.nHeads, hs, cols);
      if (n === 'wk') w = permuteRope(w, c.nKvHeads, hs, cols);
      lw[n] = f32Matrix(w, rows, cols);
    }
    layers.push(lw as LayerWeights);
  }
  const model: Model = {
    path, source: 'safetensors + config.json', config: c, ropeTheta: theta, normEps: eps,
    embedding: f32Matrix(tensor('model.embed_tokens.weight', [c.vocabSize, c.dim]), c.vocabSize, c.dim),
    layers, rmsFinal: tensor('model.norm.weight', [c.dim]),
    classifier: c.sharedClassifier ? null : f32Matrix(tensor('lm_head.weight', [c.vocabSize, c.dim]), c.vocabSize, c.dim),
  };
  checkModel(model);
  return model;
}

// ---- writer (tests and tools) ----------------------------------------------------------------------

export function writeSafetensors(fw: FloatWeights, dtype: 'F32' | 'F16' | 'BF16' = 'F32'): { bytes: Uint8Array; config: string } {
  const c = fw.config;
  const hs = headDim(c);
  const tensors: Array<[string, Float32Array, number[]]> = [['model.embed_tokens.weight', fw.tok, [c.vocabSize, c.dim]]];
  const hf = { wq: 'self_attn.q_proj', wk: 'self_attn.k_proj', wv: 'self_attn.v_proj', wo: 'self_attn.o_proj', w1: 'mlp.gate_proj', w2: 'mlp.down_proj', w3: 'mlp.up_proj' } as const;
  for (let l = 0; l < c.nLayers; l++) {
    const p = `model.layers.${l}.`;
    tensors.push([`${p}input_layernorm.weight`, fw.rmsAtt[l], [c.dim]], [`${p}post_attention_layernorm.weight`, fw.rmsFfn[l], [c.dim]]);
    for (const n of MATRIX_NAMES) {
      const [rows, cols] = matrixShape(c, n);
      let w = fw.layers[n][l];
      if (n === 'wq') w = permuteRope(w, c.nHeads, hs, cols, true);
      if (n === 'wk') w = permuteRope(w, c.nKvHeads, hs, cols, true);
      tensors.push([`${p}${hf[n]}.weight`, w, [rows, cols]]);
    }
  }
  tensors.push(['model.norm.weight', fw.rmsFinal, [c.dim]]);
  if (fw.cls) tensors.push(['lm_head.weight', fw.cls, [c.vocabSize, c.dim]]);
  const size = DTYPES[dtype];
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let at = 0;
  for (const [name, w, shape] of tensors) {
    header[name] = { dtype, shape, data_offsets: [at, at + w.length * size] };
    at += w.length * size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const out = new ByteWriter().u64(json.length).bytes(new TextEncoder().encode(json));
  for (const [, w] of tensors) {
    const b = new Uint8Array(w.length * size);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < w.length; i++) {
      if (dtype === 'F32') dv.setFloat32(4 * i, w[i], true);
      else dv.setUint16(2 * i, dtype === 'F16' ? f32ToF16(w[i]) : f32ToBf16(w[i]), true);
    }
    out.bytes(b);
  }
  const config = JSON.stringify({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: c.dim, intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers, num_attention_heads: c.nHeads, num_key_value_heads: c.nKvHeads, vocab_size: c.vocabSize,
    max_position_embeddings: c.seqLen, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: !fw.cls, torch_dtype: dtype.toLowerCase(),
  }, null, 2);
  return { bytes: out.finish(), config };
}
