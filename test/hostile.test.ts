// Hostile model files: headers written by hand with sizes at and beyond each limit (0, negative,
// 2^31, 2^32, 2^53, 2^63, NaN, ...) in every field a loader believes, for GGUF, llama2.c,
// tokenizer.bin and safetensors + config.json. Each file is loaded from disk as `run` loads it
// (host/formats/index.ts): it loads when valid, else fails with a UserError of one line naming the
// file (the CLI's exit 2); anything else is the `internal error` a file must never reach. A few of
// them run through the CLI in a child process, whose peak memory (max RSS) is held to a bound.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GuestTrap, baseImports, checkedBytes, readAsString } from '../host/engine/imports.ts';
import type { Instance } from '../host/engine/types.ts';
import { UserError } from '../host/errors.ts';
import { ByteWriter } from '../host/formats/bytes.ts';
import { GGUF_MAGIC } from '../host/formats/gguf.ts';
import { loadModel } from '../host/formats/index.ts';
import { LLAMA2C_MAGIC, writeLlama2c } from '../host/formats/llama2c.ts';
import { writeSafetensors } from '../host/formats/safetensors.ts';
import { writeTokenizerBin } from '../host/formats/tokenizer-bin.ts';
import type { ModelConfig } from '../host/model/config.ts';
import { randomWeights, trainTokenizer } from '../host/model/synthetic.ts';
import type { Tokenizer } from '../host/model/tokenizer.ts';
import { fromRoot } from '../host/paths.ts';
import { writeImage } from '../host/image/write.ts';
import { imageParts, TINY } from './fixtures/image.ts';
import { smallImage } from './fixtures/image-vectors.ts';
import { cli, rng } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'edge-flash-hostile-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// The sizes tried in every numeric field, and a seeded few around them.
const LIMITS = [0, -1, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, 2 ** 63, NaN];
const r = rng(18);
const SIZES = [...LIMITS, ...LIMITS.filter((v) => v > 1).map((v) => v + Math.floor(r() * 1000) - 500)];

let nFile = 0;
// Loads `bytes` from a file (and config.json beside it, when given); returns null when it loads.
function outcome(bytes: Uint8Array, opts: { config?: string | 'dir'; tokenizer?: Uint8Array } = {}): string | null {
  const d = join(dir, String(nFile++));
  mkdirSync(d);
  const file = join(d, 'model.bin');
  writeFileSync(file, bytes);
  if (opts.config === 'dir') mkdirSync(join(d, 'config.json'));
  else if (opts.config !== undefined) writeFileSync(join(d, 'config.json'), opts.config);
  let z: string | undefined;
  if (opts.tokenizer) writeFileSync((z = join(d, 'tokenizer.bin')), opts.tokenizer);
  try {
    loadModel(file, { tokenizer: z, needTokenizer: false });
    return null;
  } catch (e) {
    if (!(e instanceof UserError)) throw new Error(`internal error (${(e as Error).constructor.name}): ${(e as Error).message}`);
    const m = (e as Error).message;
    assert.not.match(m, /\n/, `two lines: ${m}`);
    assert.ok(m.includes(d), `does not name the file: ${m}`);
    return m;
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

function refused(what: string, bytes: Uint8Array, pattern?: RegExp, opts: Parameters<typeof outcome>[1] = {}): string {
  const m = outcome(bytes, opts);
  if (m === null) throw new Error(`${what}: loaded, expected a refusal`);
  if (pattern) assert.match(m, pattern, `${what}: ${m}`);
  return m;
}

// Either outcome is fine for these (a size that happens to be valid loads); only clean errors.
function clean(what: string, bytes: Uint8Array, opts: Parameters<typeof outcome>[1] = {}): void {
  try {
    outcome(bytes, opts);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}

const C: ModelConfig = { dim: 16, hiddenDim: 32, nLayers: 1, nHeads: 2, nKvHeads: 1, vocabSize: 40, seqLen: 16, sharedClassifier: true };
const W = randomWeights(C, 3);
const TOK = trainTokenizer(C.vocabSize);

// ---- a GGUF written field by field ----------------------------------------------------------------

const T = { U8: 0, U32: 4, I32: 5, F32: 6, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;
type Meta = { key: string; type: number; value: unknown; item?: number };
type Tensor = { name: string; ne: Array<number | bigint>; type: number; offset: number | bigint; data: Uint8Array };

function u64(v: number | bigint): bigint {
  if (typeof v === 'bigint') return BigInt.asUintN(64, v);
  return Number.isNaN(v) ? 0n : BigInt.asUintN(64, BigInt(Math.trunc(v)));
}

function ggufValue(w: ByteWriter, type: number, v: unknown, item?: number): void {
  switch (type) {
    case T.U8: w.u8(Number(v) & 255); break;
    case T.U32: w.u32(Number(u64(v as number) & 0xffffffffn)); break;
    case T.I32: w.i32(Number(BigInt.asIntN(32, u64(v as number)))); break;
    case T.F32: w.f32(v as number); break;
    case T.F64: w.f64(v as number); break;
    case T.U64: w.u64(u64(v as number)); break;
    case T.I64: w.i64(BigInt.asIntN(64, u64(v as number))); break;
    case T.STRING: { const b = new TextEncoder().encode(String(v)); w.u64(b.length).bytes(b); break; }
    case T.ARRAY: {
      if (v instanceof Uint8Array) { w.u32(T.U8).u64(v.length).bytes(v); break; }
      const a = v as unknown[];
      w.u32(item!).u64(a.length);
      for (const x of a) ggufValue(w, item!, x);
      break;
    }
  }
}

function ggufFile(meta: Meta[], tensors: Tensor[], o: { nTensors?: number | bigint; nKv?: number | bigint; tail?: Uint8Array } = {}): Uint8Array {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC).u32(3).u64(u64(o.nTensors ?? tensors.length)).u64(u64(o.nKv ?? meta.length));
  for (const m of meta) {
    ggufValue(w, T.STRING, m.key);
    w.u32(m.type);
    ggufValue(w, m.type, m.value, m.item);
  }
  for (const t of tensors) {
    ggufValue(w, T.STRING, t.name);
    w.u32(t.ne.length);
    for (const d of t.ne) w.u64(u64(d));
    w.u32(t.type).u64(u64(t.offset));
  }
  w.padTo(32);
  let at = 0;
  for (const t of [...tensors].sort((a, b) => Number(a.offset) - Number(b.offset))) {
    const off = Number(t.offset);
    if (!(off >= at) || off > 1 << 24) continue; // hostile offsets point at bytes that are not there
    w.zeros(off - at).bytes(t.data);
    at = off + t.data.length;
  }
  if (o.tail) w.bytes(o.tail);
  return w.finish();
}

const f32 = (a: Float32Array) => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

function baseGguf(c: ModelConfig = C, w = W, tok: Tokenizer = TOK): { meta: Meta[]; tensors: Tensor[] } {
  const dec = new TextDecoder();
  const meta: Meta[] = [
    { key: 'general.architecture', type: T.STRING, value: 'llama' },
    { key: 'llama.context_length', type: T.U32, value: c.seqLen },
    { key: 'llama.embedding_length', type: T.U32, value: c.dim },
    { key: 'llama.block_count', type: T.U32, value: c.nLayers },
    { key: 'llama.feed_forward_length', type: T.U32, value: c.hiddenDim },
    { key: 'llama.attention.head_count', type: T.U32, value: c.nHeads },
    { key: 'llama.attention.head_count_kv', type: T.U32, value: c.nKvHeads },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: T.F32, value: 1e-5 },
    { key: 'llama.rope.freq_base', type: T.F32, value: 10000 },
    { key: 'tokenizer.ggml.model', type: T.STRING, value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: T.ARRAY, item: T.STRING, value: tok.pieces.map((p) => dec.decode(p).replaceAll(' ', '\u2581')) },
    { key: 'tokenizer.ggml.scores', type: T.ARRAY, item: T.F32, value: Array.from(tok.scores) },
  ];
  const names = { wq: 'attn_q', wk: 'attn_k', wv: 'attn_v', wo: 'attn_output', w1: 'ffn_gate', w2: 'ffn_down', w3: 'ffn_up' } as const;
  const shapes = { wq: [c.dim, c.dim], wk: [c.dim, c.dim / c.nHeads * c.nKvHeads], wv: [c.dim, c.dim / c.nHeads * c.nKvHeads], wo: [c.dim, c.dim], w1: [c.dim, c.hiddenDim], w2: [c.hiddenDim, c.dim], w3: [c.dim, c.hiddenDim] } as const;
  const list: Array<[string, Float32Array, number[]]> = [['token_embd.weight', w.tok, [c.dim, c.vocabSize]], ['output_norm.weight', w.rmsFinal, [c.dim]]];
  for (let l = 0; l < c.nLayers; l++) {
    list.push([`blk.${l}.attn_norm.weight`, w.rmsAtt[l], [c.dim]], [`blk.${l}.ffn_norm.weight`, w.rmsFfn[l], [c.dim]]);
    for (const n of ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'] as const) list.push([`blk.${l}.${names[n]}.weight`, w.layers[n][l], [...shapes[n]]]);
  }
  let offset = 0;
  const tensors = list.map(([name, data, ne]) => {
    const t: Tensor = { name, ne, type: 0, offset, data: f32(data) };
    offset += Math.ceil(data.byteLength / 32) * 32;
    return t;
  });
  return { meta, tensors };
}

function withMeta(meta: Meta[], key: string, type: number, value: unknown): Meta[] {
  const out = meta.filter((m) => m.key !== key);
  return [...out, { key, type, value }];
}

test('GGUF: the hand-written base loads, and so does a 131072-token vocabulary', () => {
  const b = baseGguf();
  assert.is(outcome(ggufFile(b.meta, b.tensors)), null);
  const big: ModelConfig = { ...C, dim: 8, hiddenDim: 16, vocabSize: 131072 };
  const pieces = Array.from({ length: big.vocabSize }, (_, i) => new TextEncoder().encode(i < 3 ? ['<unk>', '<s>', '</s>'][i] : `t${i}`));
  const tok: Tokenizer = { pieces, scores: new Float32Array(big.vocabSize), maxTokenLength: 8, bos: 1, eos: 2 };
  const bb = baseGguf(big, randomWeights(big, 4), tok);
  assert.is(outcome(ggufFile(bb.meta, bb.tensors)), null);
  // and the same vocabulary as a llama2.c tokenizer.bin
  assert.is(outcome(writeLlama2c(randomWeights(big, 4), 1), { tokenizer: writeTokenizerBin(tok) }), null);
});

// The same vocabulary through every path that builds a tokenizer from it: the image's tokenizer
// section (pack, run <model>), an image run, quantize and inspect, from the CLI as a user runs them.
test('a 131072-token llama2.c model through pack, run (model and image), quantize and inspect', () => {
  const big: ModelConfig = { ...C, dim: 32, hiddenDim: 32, vocabSize: 131072 };
  const pieces = Array.from({ length: big.vocabSize }, (_, i) => new TextEncoder().encode(i < 3 ? ['<unk>', '<s>', '</s>'][i] : `t${i}`));
  const tok: Tokenizer = { pieces, scores: new Float32Array(big.vocabSize), maxTokenLength: 8, bos: 1, eos: 2 };
  const d = join(dir, 'vocab131072');
  mkdirSync(d);
  writeFileSync(join(d, 'model.bin'), writeLlama2c(randomWeights(big, 4), 1));
  writeFileSync(join(d, 'tokenizer.bin'), writeTokenizerBin(tok));
  const m = join(d, 'model.bin'), img = join(d, 'model.efimg'), q = join(d, 'q.gguf');
  for (const args of [
    ['run', m, '-n', '4', '-t', '0', '-i', 't7 t8'],
    ['pack', m, '--board', 'host', '--quant', 'f32', '--kv', 'f32', '-o', img],
    ['run', img, '-n', '4', '-t', '0', '-i', 't7 t8'],
    ['inspect', img],
    ['quantize', m, '--method', 'rtn', '--bits', '4', '-o', q],
    ['run', q, '-n', '4', '-t', '0', '-z', join(d, 'tokenizer.bin')],
    ['inspect', m],
  ]) {
    const r = cli(...args);
    assert.is(r.code, 0, `${args.join(' ')}: exit ${r.code}\n${r.err}`);
    assert.not.match(r.err, /internal error|call stack/, args.join(' '));
  }
  assert.match(cli('inspect', img).out, /131072/);
});

test('GGUF: counts, dimensions, string lengths and array counts at every limit', () => {
  const b = baseGguf();
  for (const v of SIZES) {
    clean(`tensor count ${v}`, ggufFile(b.meta, b.tensors, { nTensors: u64(v) }));
    clean(`metadata count ${v}`, ggufFile(b.meta, b.tensors, { nKv: u64(v) }));
    for (const key of ['llama.context_length', 'llama.embedding_length', 'llama.block_count', 'llama.feed_forward_length', 'llama.attention.head_count', 'llama.attention.head_count_kv', 'general.alignment']) {
      for (const type of [T.U32, T.I32, T.U64, T.I64, T.F64]) clean(`${key} ${v}`, ggufFile(withMeta(b.meta, key, type, v), b.tensors));
    }
    for (let i = 0; i < b.tensors.length; i += 3) {
      const t = b.tensors.map((x, j) => (j === i ? { ...x, ne: [v, ...x.ne.slice(1)] } : x));
      refused(`tensor ne ${v}`, ggufFile(b.meta, t));
      const t2 = b.tensors.map((x, j) => (j === i ? { ...x, ne: [...x.ne, v] } : x));
      if (v !== 1) refused(`tensor extra dim ${v}`, ggufFile(b.meta, t2));
    }
    // a string whose length field is v, and an unused array whose count is v
    const w = new ByteWriter().u32(GGUF_MAGIC).u32(3).u64(0).u64(1).u64(u64(v));
    refused(`key length ${v}`, w.bytes(new TextEncoder().encode('general.name')).finish());
    const a = new ByteWriter().u32(GGUF_MAGIC).u32(3).u64(0).u64(1);
    ggufValue(a, T.STRING, 'general.junk');
    a.u32(T.ARRAY).u32(T.U32).u64(u64(v)).zeros(64);
    refused(`array count ${v}`, a.finish());
  }
});

test('GGUF: tensor offsets, types and overlaps, used and unused', () => {
  const b = baseGguf();
  const extraData = new Uint8Array(20 * 2); // a Q4_1 tensor of 64 weights: 2 blocks of 20 bytes
  const end = b.tensors.reduce((a, t) => Math.max(a, Number(t.offset) + Math.ceil(t.data.length / 32) * 32), 0);
  for (const v of SIZES) {
    const unused: Tensor = { name: 'unused.q4_1', ne: [64], type: 3, offset: v, data: extraData };
    const m = refused(`unused Q4_1 at offset ${v}`, ggufFile(b.meta, [...b.tensors, unused]));
    assert.match(m, /unused\.q4_1/);
    const used = b.tensors.map((t, j) => (j === 3 ? { ...t, offset: v } : t));
    clean(`used tensor at offset ${v}`, ggufFile(b.meta, used));
    clean(`tensor type ${v}`, ggufFile(b.meta, b.tensors.map((t, j) => (j === 3 ? { ...t, type: Number(u64(v) & 0xffffffffn) } : t))));
  }
  // an unused tensor of a type not read here, in range and apart from the others, is fine
  assert.is(outcome(ggufFile(b.meta, [...b.tensors, { name: 'unused.q4_1', ne: [64], type: 3, offset: end, data: extraData }])), null);
  // used: one line naming the tensor and the types read
  const q41 = b.tensors.map((t) => (t.name === 'blk.0.ffn_down.weight' ? { ...t, type: 3, data: new Uint8Array((C.dim * C.hiddenDim / 32) * 20) } : t));
  refused('used Q4_1', ggufFile(b.meta, q41), /blk\.0\.ffn_down\.weight.*Q4_1.*expected one of F32, F16, Q4_0, Q8_0, BF16, TQ1_0, TQ2_0/);
  // two tensors over the same bytes
  const same = b.tensors.map((t, j) => (j === 4 ? { ...t, offset: b.tensors[3].offset } : t));
  refused('overlapping tensors', ggufFile(b.meta, same), /disjoint/);
  refused('overlap with an unused tensor', ggufFile(b.meta, [...b.tensors, { name: 'x', ne: [8], type: 0, offset: 0, data: new Uint8Array(32) }]), /disjoint/);
});

test('GGUF: norm epsilon, RoPE base, vocab_size and scores', () => {
  const b = baseGguf();
  for (const v of [NaN, -1, 0, 1e30, Infinity, -Infinity, 2 ** 63, 1, 1e-50]) {
    for (const type of [T.F32, T.F64]) {
      refused(`eps ${v}`, ggufFile(withMeta(b.meta, 'llama.attention.layer_norm_rms_epsilon', type, v), b.tensors), /layer_norm_rms_epsilon/);
    }
  }
  for (const v of [NaN, -1, 0, 0.5, Infinity, 1e39]) {
    for (const type of [T.F32, T.F64]) refused(`rope base ${v}`, ggufFile(withMeta(b.meta, 'llama.rope.freq_base', type, v), b.tensors), /freq_base/);
  }
  assert.is(outcome(ggufFile(withMeta(b.meta, 'llama.rope.freq_base', T.F32, 500000), b.tensors)), null);
  for (const v of SIZES.filter((x) => x !== C.vocabSize)) {
    refused(`vocab_size ${v}`, ggufFile(withMeta(b.meta, 'llama.vocab_size', T.U64, v), b.tensors), /vocab_size/);
  }
  assert.is(outcome(ggufFile(withMeta(b.meta, 'llama.vocab_size', T.U32, C.vocabSize), b.tensors)), null);
  for (const v of [NaN, Infinity, -Infinity]) {
    const meta = b.meta.map((m) => (m.key === 'tokenizer.ggml.scores' ? { ...m, value: (m.value as number[]).map((s, i) => (i === 7 ? v : s)) } : m));
    refused(`score ${v}`, ggufFile(meta, b.tensors), /scores\[7\]/);
  }
});

// ---- llama2.c and tokenizer.bin ---------------------------------------------------------------------

const FIELDS = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'];

test('llama2.c: every header field at every limit, in each version', () => {
  for (const version of [0, 1, 2] as const) {
    const base = writeLlama2c(W, version, 16);
    assert.is(outcome(base, { tokenizer: writeTokenizerBin(TOK) }), null);
    const at = version === 0 ? 0 : 8;
    for (const v of SIZES) {
      for (let f = 0; f < FIELDS.length; f++) {
        const b = base.slice();
        new DataView(b.buffer).setInt32(at + 4 * f, Number(BigInt.asIntN(32, u64(v))), true);
        clean(`v${version} ${FIELDS[f]} ${v}`, b);
      }
      if (version === 2) {
        const b = base.slice();
        new DataView(b.buffer).setInt32(37, Number(BigInt.asIntN(32, u64(v))), true);
        clean(`group_size ${v}`, b);
      }
    }
  }
  // a header that fits its limits but describes terabytes: refused from the header, nothing read
  const huge = new ByteWriter().u32(LLAMA2C_MAGIC).i32(1).i32(65536).i32(262144).i32(1024).i32(1024).i32(1024).i32(4194304).i32(1 << 20).u8(1).zeros(256 - 37).finish();
  refused('terabyte header', huge, /file size/);
  // followed by more bytes than the header describes
  refused('trailing bytes', new Uint8Array([...writeLlama2c(W, 1), 0, 0, 0, 0]), /file size/);
});

test('tokenizer.bin: max length, token lengths and scores at every limit', () => {
  const model = writeLlama2c(W, 1);
  const base = writeTokenizerBin(TOK);
  for (const v of SIZES) {
    const i32 = Number(BigInt.asIntN(32, u64(v)));
    const b = base.slice();
    new DataView(b.buffer).setInt32(0, i32, true);
    clean(`max_token_length ${v}`, model, { tokenizer: b });
    const c = base.slice();
    new DataView(c.buffer).setInt32(8, i32, true); // token 0's length
    clean(`token length ${v}`, model, { tokenizer: c });
    const d = base.slice();
    new DataView(d.buffer).setFloat32(4, v, true); // token 0's score
    if (!Number.isFinite(Math.fround(v))) refused(`score ${v}`, model, /score/, { tokenizer: d });
    else clean(`score ${v}`, model, { tokenizer: d });
  }
  refused('a tokenizer of another vocabulary', model, /tokenizer/, { tokenizer: writeTokenizerBin(trainTokenizer(C.vocabSize * 2)) });
});

// ---- safetensors + config.json ----------------------------------------------------------------------

const ST = writeSafetensors(W, 'F16');

function stFile(header: Record<string, unknown>, data: Uint8Array, length?: bigint): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  return new ByteWriter().u64(length ?? BigInt(json.length)).bytes(json).bytes(data).finish();
}

const stHeader = (): Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> => {
  const n = Number(new DataView(ST.bytes.buffer).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(ST.bytes.subarray(8, 8 + n)));
};
const stData = (() => {
  const n = Number(new DataView(ST.bytes.buffer).getBigUint64(0, true));
  return ST.bytes.subarray(8 + n);
})();

test('safetensors: header length, shapes, offsets and overlaps at every limit', () => {
  const tok = writeTokenizerBin(TOK);
  assert.is(outcome(ST.bytes, { config: ST.config, tokenizer: tok }), null);
  for (const v of SIZES) {
    const m = refused(`header length ${v}`, stFile(stHeader(), stData, u64(v) || 1n), undefined, { config: ST.config });
    assert.match(m, /safetensors/, `header length ${v}: the format is not named: ${m}`);
    for (const name of ['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.norm.weight']) {
      const h = stHeader();
      h[name] = { ...h[name], shape: [v, ...h[name].shape.slice(1)] };
      refused(`${name} shape ${v}`, stFile(h, stData), undefined, { config: ST.config });
      const h2 = stHeader();
      h2[name] = { ...h2[name], data_offsets: [v, h2[name].data_offsets[1]] };
      clean(`${name} begin ${v}`, stFile(h2, stData), { config: ST.config });
      const h3 = stHeader();
      h3[name] = { ...h3[name], data_offsets: [h3[name].data_offsets[0], v] };
      clean(`${name} end ${v}`, stFile(h3, stData), { config: ST.config });
    }
  }
  const h = stHeader();
  h['model.layers.0.self_attn.k_proj.weight'].data_offsets = [...h['model.layers.0.self_attn.v_proj.weight'].data_offsets];
  refused('two tensors over the same bytes', stFile(h, stData), /disjoint/, { config: ST.config });
  const h4 = stHeader();
  h4['model.norm.weight'].dtype = 'I16';
  refused('a dtype not read', stFile(h4, stData), /model\.norm\.weight dtype.*F32, F16 or BF16.*I16/, { config: ST.config });
  const h5 = stHeader();
  h5['model.norm.weight'].dtype = 'Q9';
  refused('an unknown dtype', stFile(h5, stData), /dtype/, { config: ST.config });
});

test('config.json: every field at every limit, eps and theta, not a file, not an object', () => {
  const cfg = JSON.parse(ST.config);
  for (const key of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'vocab_size', 'max_position_embeddings']) {
    for (const v of [...SIZES, 'NaN', null, '16', 1e30]) clean(`${key} ${v}`, ST.bytes, { config: JSON.stringify({ ...cfg, [key]: Number.isNaN(v) ? 'NaN' : v }) });
  }
  for (const v of [-1, 0, 1e30, 1, 1e-50, 'NaN', [], {}]) refused(`rms_norm_eps ${v}`, ST.bytes, /rms_norm_eps/, { config: JSON.stringify({ ...cfg, rms_norm_eps: v }) });
  for (const v of [-1, 0, 0.5, 1e39, 'NaN', true]) refused(`rope_theta ${v}`, ST.bytes, /rope_theta/, { config: JSON.stringify({ ...cfg, rope_theta: v }) });
  refused('config.json a directory', ST.bytes, /config\.json.*directory/, { config: 'dir' });
  for (const text of ['[]', '3', 'null', '{', '']) refused(`config.json ${text}`, ST.bytes, /config\.json/, { config: text });
});

// ---- guest pointers are u32 ------------------------------------------------------------------------

test('imports: guest pointers and lengths above 2^31 are unsigned, never negative', () => {
  const mem = new Uint8Array(1 << 16);
  const high = (2 ** 31 + 8) | 0; // how an engine hands over the u32 2^31 + 8: a negative i32
  assert.ok(high < 0);
  assert.throws(() => checkedBytes(mem, high, 4, 'x'), (e: Error) => e instanceof GuestTrap && e.message.includes(`[${2 ** 31 + 8}, ${2 ** 31 + 12})`));
  assert.throws(() => checkedBytes(mem, 16, -1, 'x'), (e: Error) => e instanceof GuestTrap && e.message.includes(String(16 + 2 ** 32 - 1)));
  assert.throws(() => checkedBytes(mem, -4, 8, 'x'), (e: Error) => e instanceof GuestTrap && !/-\d/.test(e.message));
  assert.is(checkedBytes(mem, 100, 4, 'x').byteOffset, 100);
  assert.throws(() => readAsString(mem, high), (e: Error) => e instanceof GuestTrap && !/-\d/.test(e.message));
  // weights_read(dst, offset, len): an offset past 2^31 is read as the u32 it is
  const weights = new Uint8Array(64).fill(7);
  const fake = { memory: () => mem } as unknown as Instance;
  const read = baseImports({ weights })(() => fake).find((f) => f.name === 'weights_read')!.fn as (d: number, o: number, l: number) => void;
  assert.throws(() => read(0, -2076069664, 16), (e: Error) => e instanceof GuestTrap && e.message.includes(`[${-2076069664 >>> 0}, `));
  assert.throws(() => read(high, 0, 16), (e: Error) => e instanceof GuestTrap && !/-\d/.test(e.message));
  read(32, 8, 16);
  assert.is(mem[32], 7);
  assert.is(mem[48], 0);
});

// ---- through the CLI: exit codes, one line, peak memory --------------------------------------------

// Peak memory of one CLI run stays under this (measured: 55-115 MB, most of it Node and the app's
// compilation). Before the loaders read ranges and run sized the KV cache by -n, the same valid GGUF
// with 512 MiB of zeros after it peaked at 577 MB, and the 2^20-context claim at 1.11 GB.
const RSS_BOUND_MB = 300;

function cliRss(args: string[]): { code: number | null; err: string; rssMb: number } {
  const rssFile = join(dir, `rss-${nFile++}`);
  const preload = join(dir, 'rss.cjs');
  writeFileSync(preload, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));\n`);
  const t = performance.now();
  const res = spawnSync(process.execPath, ['--require', preload, fromRoot('bin', 'edge-flash.js'), ...args], { encoding: 'utf8' });
  const rssMb = Number(readFileSync(rssFile, 'utf8')) / 1024;
  if (process.env.HOSTILE_TIMES) process.stderr.write(`${args.join(' ')}: ${(performance.now() - t).toFixed(0)} ms, ${rssMb.toFixed(0)} MB\n`);
  return { code: res.status, err: res.stderr, rssMb };
}

test(`CLI: hostile files end in exit 2 with one line, valid ones run, each under ${RSS_BOUND_MB} MB`, () => {
  const b = baseGguf();
  const d = join(dir, 'cli');
  mkdirSync(d);
  // a valid GGUF followed by 512 MiB of zeros (a sparse file: no disk written)
  const tail = join(d, 'tail.gguf');
  writeFileSync(tail, ggufFile(b.meta, b.tensors));
  truncateSync(tail, ggufFile(b.meta, b.tensors).length + (512 << 20));
  // a valid GGUF with an unused metadata array of 2^25 items
  const arr = join(d, 'array.gguf');
  writeFileSync(arr, ggufFile([...b.meta, { key: 'general.junk', type: T.ARRAY, item: T.U8, value: new Uint8Array(1 << 25) }], b.tensors));
  // a small model claiming a context of 2^20 (its full f32 KV cache: 2 layers x 2 x 2^20 x 64 x 4 bytes = 1 GiB)
  const cc: ModelConfig = { dim: 64, hiddenDim: 64, nLayers: 2, nHeads: 2, nKvHeads: 2, vocabSize: 40, seqLen: 1 << 20, sharedClassifier: true };
  const cb = baseGguf(cc, randomWeights(cc, 6));
  const ctx = join(d, 'ctx.gguf');
  writeFileSync(ctx, ggufFile(cb.meta, cb.tensors));
  // a model whose full context needs more linear memory than wasm32 has (8 layers x 2^20 x 128 x 2 x 4 bytes)
  const wide: ModelConfig = { dim: 128, hiddenDim: 64, nLayers: 8, nHeads: 4, nKvHeads: 4, vocabSize: 40, seqLen: 1 << 20, sharedClassifier: true };
  const wb = baseGguf(wide, randomWeights(wide, 5));
  const big = join(d, 'big.gguf');
  writeFileSync(big, ggufFile(wb.meta, wb.tensors));
  // hostile: an unused Q4_1 tensor past the end, a NaN epsilon, a safetensors header length of 2^63
  const q41 = join(d, 'q41.gguf');
  writeFileSync(q41, ggufFile(b.meta, [...b.tensors, { name: 'unused.q4_1', ne: [64], type: 3, offset: 2 ** 40, data: new Uint8Array(40) }]));
  const nan = join(d, 'nan.gguf');
  writeFileSync(nan, ggufFile(withMeta(b.meta, 'llama.attention.layer_norm_rms_epsilon', T.F32, NaN), b.tensors));
  mkdirSync(join(d, 'st'));
  writeFileSync(join(d, 'st', 'model.safetensors'), stFile(stHeader(), stData, 1n << 63n));
  writeFileSync(join(d, 'st', 'config.json'), ST.config);

  for (const [file, args] of [[tail, ['-n', '4']], [arr, ['-n', '4']], [ctx, ['-n', '8', '--verbose']]] as const) {
    const res = cliRss(['run', file, '-t', '0', ...args]);
    assert.is(res.code, 0, `${file}: ${res.err}`);
    assert.ok(res.rssMb < RSS_BOUND_MB, `${file}: peak memory ${res.rssMb.toFixed(0)} MB`);
    if (file === ctx) assert.match(res.err, /context: 8 positions \(-n\), not the model's 1048576/);
  }
  const refusals: Array<[string, RegExp]> = [[big, /over the engine's limit of 4294967296/], [q41, /unused\.q4_1/], [nan, /layer_norm_rms_epsilon/], [join(d, 'st'), /safetensors.*header length/]];
  for (const [file, pattern] of refusals) {
    const res = cliRss(['run', file, '-t', '0', '-n', file === big ? '0' : '4']);
    assert.is(res.code, 2, `${file}: ${res.err}`);
    const lines = res.err.trimEnd().split('\n');
    assert.is(lines.length, 1, `${file}: ${res.err}`);
    assert.match(lines[0], /^edge-flash: /);
    assert.match(lines[0], pattern);
    assert.not.match(lines[0], /internal error/);
    assert.ok(res.rssMb < RSS_BOUND_MB, `${file}: peak memory ${res.rssMb.toFixed(0)} MB`);
  }
});

// ---- verify: the app section must be a WebAssembly module, as a board loads it -----------------

test('verify: an image whose app does not validate is refused (its CRCs and SHA-256 are right)', () => {
  const good = join(dir, 'good.efimg');
  writeFileSync(good, smallImage());
  assert.is(cli('verify', good).code, 0);
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  // a section id that does not exist; a type section whose size runs past the module
  for (const [what, body] of [['section id 0x7f', [0x7f, 0x01, 0x00]], ['a type section past the end', [0x01, 0x20, 0x01, 0x60]]] as const) {
    const parts = imageParts(TINY, 7, {}, { ctx: 16 });
    parts.app = new Uint8Array([...header, ...body]);
    const file = join(dir, 'bad.efimg');
    writeFileSync(file, writeImage(parts).bytes);
    const res = cli('verify', file);
    assert.is(res.code, 2, `${what}: ${res.out}${res.err}`);
    assert.is(res.err.trimEnd().split('\n').length, 1, res.err);
    assert.match(res.err, /^edge-flash: .*app section: expected a valid WebAssembly module/);
  }
});

let t0 = performance.now();
test.after.each((ctx) => {
  if (process.env.HOSTILE_TIMES) process.stderr.write(`${ctx.__test__}: ${(performance.now() - t0).toFixed(0)} ms\n`);
  t0 = performance.now();
});

test.run();
