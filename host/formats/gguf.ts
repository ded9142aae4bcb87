// GGUF (llama.cpp's model file), one reader and one writer, llama architecture only.
//
// Layout (little-endian): u32 magic "GGUF", u32 version (2 or 3), u64 tensor count, u64 metadata
// count; metadata: string key, u32 value type, value (strings are u64 length + UTF-8; arrays u32 type,
// u64 count, items); tensor infos: string name, u32 n_dims, u64 ne[n_dims] (ne[0] is the row length),
// u32 ggml type, u64 offset into the data section; the data section starts at the next multiple of
// general.alignment (default 32).
//
// Tensor types read, and what each becomes (lossless unless said):
//   F32, F16, BF16 -> f32;  Q8_0 (f16 d, 32 x i8) -> q8_0;  Q4_0 (f16 d, 16 bytes: q[j] | q[j+16] << 4,
//   w = d*(q-8)) -> i4g32 with m = -8d;  TQ2_0 (64 bytes of 2-bit codes, f16 d) -> tq2 and TQ1_0 (48 bytes
//   of 5 trits, 4 bytes of 4 trits, f16 d) -> tq1, with the tensor scale d when every non-zero block
//   has the same d (BitNet exports), else q8_0 (|w| = d exactly representable up to f32 rounding).
// The tokenizer comes from tokenizer.ggml.* (model "llama": sentencepiece pieces, U+2581 as space).
import { UserError } from '../errors.ts';
import { formatById, formatByName } from '../quant/formats.ts';
import { packTrits } from '../quant/ref/ternary.ts';
import { REFS } from '../quant/ref/index.ts';
import { headDim, type ModelConfig } from '../model/config.ts';
import { checkConfig, checkModel, checkNormEps, checkRopeTheta, MATRIX_NAMES, matrixShape, type LayerWeights, type Matrix, type Model } from '../model/model.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { bf16ToF32, ByteReader, clean, ByteWriter, f16ToF32, f32ToF16, LIMITS } from './bytes.ts';
import { f32Matrix, type FloatWeights } from './llama2c.ts';

export const GGUF_MAGIC = 0x46554747;

export const GGML = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, BF16: 30, TQ1_0: 34, TQ2_0: 35 } as const;
export type GgmlTypeName = keyof typeof GGML;
// (weights per block, bytes per block) of the types read here
const BLOCKS: Record<number, [number, number, GgmlTypeName]> = {
  0: [1, 4, 'F32'], 1: [1, 2, 'F16'], 30: [1, 2, 'BF16'], 8: [32, 34, 'Q8_0'], 2: [32, 18, 'Q4_0'], 34: [256, 54, 'TQ1_0'], 35: [256, 66, 'TQ2_0'],
};
// Every ggml type id: its name and (weights per block, bytes per block), so that each tensor's range
// is checked whatever its type (ggml.c's type_traits; ids 4, 5, 31-33 and 36-38 are retired).
const GGML_TYPES: Record<number, [string, number, number]> = {
  0: ['F32', 1, 4], 1: ['F16', 1, 2], 2: ['Q4_0', 32, 18], 3: ['Q4_1', 32, 20], 6: ['Q5_0', 32, 22], 7: ['Q5_1', 32, 24],
  8: ['Q8_0', 32, 34], 9: ['Q8_1', 32, 36], 10: ['Q2_K', 256, 84], 11: ['Q3_K', 256, 110], 12: ['Q4_K', 256, 144],
  13: ['Q5_K', 256, 176], 14: ['Q6_K', 256, 210], 15: ['Q8_K', 256, 292], 16: ['IQ2_XXS', 256, 66], 17: ['IQ2_XS', 256, 74],
  18: ['IQ3_XXS', 256, 98], 19: ['IQ1_S', 256, 50], 20: ['IQ4_NL', 32, 18], 21: ['IQ3_S', 256, 110], 22: ['IQ2_S', 256, 82],
  23: ['IQ4_XS', 256, 136], 24: ['I8', 1, 1], 25: ['I16', 1, 2], 26: ['I32', 1, 4], 27: ['I64', 1, 8], 28: ['F64', 1, 8],
  29: ['IQ1_M', 256, 56], 30: ['BF16', 1, 2], 34: ['TQ1_0', 256, 54], 35: ['TQ2_0', 256, 66], 39: ['MXFP4', 32, 17],
};
const SUPPORTED = Object.values(BLOCKS).map((b) => b[2]).join(', ');
// A tensor type's name as ggml writes it ('Q4_0'), or an extension type's ('edge-flash i4g32').
export function ggmlTypeName(type: number): string {
  const ext = extBlock(type);
  return GGML_TYPES[type]?.[0] ?? (ext ? `edge-flash ${formatById(type - EF_TYPE_BASE)!.name}` : `type ${type}`);
}

// Arrays read in full (bounded by the vocabulary limit); any other long array is skipped unread.
const USED_ARRAYS = new Set(['tokenizer.ggml.tokens', 'tokenizer.ggml.scores']);
const ITEM_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

const V = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;
type Value = number | bigint | boolean | string | Value[];

export function isGguf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x47 && bytes[1] === 0x47 && bytes[2] === 0x55 && bytes[3] === 0x46;
}

interface TensorInfo { name: string; ne: number[]; type: number; offset: number; size: number }

function readString(r: ByteReader, field: string): string {
  const n = r.u64(`${field} length`);
  if (n > r.length - r.pos) r.fail(field, `a string of ${n} bytes inside the file`, `${r.length - r.pos} bytes left`);
  return new TextDecoder().decode(r.take(n, field));
}

// Skips an array's items without keeping them (what a long unused array costs is its bytes).
function skipArray(r: ByteReader, et: number, count: number, field: string): void {
  const size = ITEM_BYTES[et];
  if (size !== undefined) {
    r.inFile(r.pos, count * size, field);
    r.pos += count * size;
  } else if (et === V.STRING) {
    for (let i = 0; i < count; i++) {
      const n = r.u64(`${field}[${i}] length`);
      r.inFile(r.pos, n, `${field}[${i}]`);
      r.pos += n;
    }
  } else r.fail(`${field} item type`, 'numbers or strings in an array this long', String(et));
}

const SKIPPED = Symbol('skipped');

function readValue(r: ByteReader, type: number, field: string, depth = 0, key = ''): Value | typeof SKIPPED {
  switch (type) {
    case V.U8: return r.u8(field);
    case V.I8: { const v = r.u8(field); return v > 127 ? v - 256 : v; }
    case V.U16: { r.need(r.pos, 2, field); const v = r.view.getUint16(r.pos, true); r.pos += 2; return v; }
    case V.I16: { r.need(r.pos, 2, field); const v = r.view.getInt16(r.pos, true); r.pos += 2; return v; }
    case V.U32: return r.u32(field);
    case V.I32: return r.i32(field);
    case V.F32: return r.f32(field);
    case V.BOOL: return r.u8(field) !== 0;
    case V.STRING: return readString(r, field);
    case V.U64: return r.u64(field);
    case V.I64: return r.i64(field);
    case V.F64: return r.f64(field);
    case V.ARRAY: {
      if (depth > 2) r.fail(field, 'arrays nested at most 2 deep');
      const et = r.u32(`${field} item type`);
      const count = r.u64(`${field} count`);
      if (count > r.length - r.pos) r.fail(`${field} count`, `at most ${r.length - r.pos} items (the bytes left)`, String(count));
      if (USED_ARRAYS.has(key)) {
        if (count > LIMITS.metadataArray) r.fail(`${field} count`, `at most ${LIMITS.metadataArray} items`, String(count));
      } else if (count > LIMITS.unusedArray) {
        skipArray(r, et, count, field);
        return SKIPPED;
      }
      const out: Value[] = [];
      for (let i = 0; i < count; i++) out.push(readValue(r, et, `${field}[${i}]`, depth + 1) as Value);
      return out;
    }
    default: return r.fail(`${field} type`, 'a GGUF value type (0..12)', String(type));
  }
}

export interface GgufFile {
  version: number;
  meta: Map<string, Value>;
  tensors: Map<string, TensorInfo>;
  dataStart: number;
  dataEnd: number; // the end of the last tensor: what the header describes of the file
}

// fileSize: the whole file's, when bytes holds only its first part (NeedMore asks for more).
export function parseGguf(path: string, bytes: Uint8Array, fileSize = bytes.length): GgufFile {
  const r = new ByteReader(path, bytes, fileSize);
  if (r.u32('magic') !== GGUF_MAGIC) r.fail('magic', '"GGUF"');
  const version = r.u32('version');
  if (version !== 2 && version !== 3) r.fail('version', 'GGUF version 2 or 3', String(version));
  const nTensors = r.u64('tensor count');
  const nKv = r.u64('metadata count');
  if (nTensors > r.length / 24) r.fail('tensor count', `at most ${Math.floor(r.length / 24)} for a file of ${r.length} bytes`, String(nTensors));
  if (nKv > r.length / 13) r.fail('metadata count', `at most ${Math.floor(r.length / 13)} for a file of ${r.length} bytes`, String(nKv));
  const meta = new Map<string, Value>();
  for (let i = 0; i < nKv; i++) {
    const key = readString(r, `metadata ${i} key`);
    if (meta.has(key)) r.fail(`metadata ${key}`, 'unique keys', 'a duplicate');
    const v = readValue(r, r.u32(`metadata ${key} type`), `metadata ${key}`, 0, key);
    if (v !== SKIPPED) meta.set(key, v);
  }
  const tensors = new Map<string, TensorInfo>();
  for (let i = 0; i < nTensors; i++) {
    const name = clean(readString(r, `tensor ${i} name`));
    const nd = r.u32(`tensor ${name} n_dims`);
    if (nd < 1 || nd > 4) r.fail(`tensor ${name} n_dims`, '1 to 4 dimensions', String(nd));
    const ne: number[] = [];
    for (let d = 0; d < nd; d++) ne.push(r.u64(`tensor ${name} ne[${d}]`));
    const type = r.u32(`tensor ${name} type`);
    const offset = r.u64(`tensor ${name} offset`);
    if (tensors.has(name)) r.fail(`tensor ${name}`, 'unique tensor names', 'a duplicate');
    tensors.set(name, { name, ne, type, offset, size: 0 });
  }
  const alignValue = meta.get('general.alignment') ?? 32;
  if (typeof alignValue !== 'number' || alignValue < 1 || alignValue > 1 << 16 || (alignValue & (alignValue - 1)) !== 0) {
    r.fail('metadata general.alignment', 'a power of two up to 65536', String(alignValue));
  }
  const align = Number(alignValue);
  const dataStart = Math.ceil(r.pos / align) * align;
  // every tensor, used or not, lies inside the file and overlaps no other
  for (const t of tensors.values()) {
    const ext = extBlock(t.type);
    const g: [string, number, number] | undefined = GGML_TYPES[t.type] ?? (ext && [`edge-flash ${formatById(t.type - EF_TYPE_BASE)!.name}`, ext[0], ext[1]]);
    if (!g) r.fail(`tensor ${t.name} type`, `a ggml tensor type id or an edge-flash extension type (${EF_TYPE_BASE} + a live format id)`, String(t.type));
    const [typeName, bw, bb] = g;
    const n = t.ne.reduce((a, v) => a * v, 1);
    if (!Number.isSafeInteger(n)) r.fail(`tensor ${t.name} ne`, 'a size below 2^53', t.ne.join(' x '));
    if (t.ne[0] % bw !== 0) r.fail(`tensor ${t.name}`, `a row length that is a multiple of ${typeName}'s block of ${bw}`, String(t.ne[0]));
    if (t.offset % align !== 0) r.fail(`tensor ${t.name} offset`, `a multiple of the alignment ${align}`, String(t.offset));
    t.size = (n / bw) * bb;
    r.inFile(dataStart + t.offset, t.size, `tensor ${t.name} data (${typeName}, offset ${t.offset} in the data section at ${dataStart})`);
  }
  const byOffset = [...tensors.values()].filter((t) => t.size > 0).sort((a, b) => a.offset - b.offset);
  let dataEnd = dataStart;
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1], t = byOffset[i];
    if (prev.offset + prev.size > t.offset) {
      r.fail(`tensor ${t.name} offset`, `a range disjoint from tensor ${prev.name}'s [${prev.offset}, ${prev.offset + prev.size})`, String(t.offset));
    }
  }
  for (const t of byOffset) dataEnd = Math.max(dataEnd, dataStart + t.offset + t.size);
  return { version, meta, tensors, dataStart, dataEnd };
}

function metaNumber(f: GgufFile, path: string, key: string, def?: number): number {
  const v = f.meta.get(key);
  if (v === undefined) {
    if (def !== undefined) return def;
    throw new UserError(`${path}: metadata ${key}: expected a number, found none`);
  }
  if (typeof v === 'bigint') return Number(v);
  if (typeof v !== 'number') throw new UserError(`${path}: metadata ${key}: expected a number, found ${typeof v}`);
  return v;
}

// A tensor's values as f32 (any type read here).
function tensorF32(path: string, bytes: Uint8Array, f: GgufFile, t: TensorInfo): Float32Array {
  const n = t.ne.reduce((a, v) => a * v, 1);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + f.dataStart + t.offset);
  const out = new Float32Array(n);
  switch (t.type) {
    case GGML.F32: for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true); break;
    case GGML.F16: for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true)); break;
    case GGML.BF16: for (let i = 0; i < n; i++) out[i] = bf16ToF32(dv.getUint16(2 * i, true)); break;
    case GGML.Q8_0:
      for (let b = 0; b < n / 32; b++) {
        const d = f16ToF32(dv.getUint16(34 * b, true));
        for (let i = 0; i < 32; i++) out[32 * b + i] = Math.fround(d * dv.getInt8(34 * b + 2 + i));
      }
      break;
    case GGML.Q4_0:
      for (let b = 0; b < n / 32; b++) {
        const d = f16ToF32(dv.getUint16(18 * b, true));
        for (let j = 0; j < 16; j++) {
          const q = dv.getUint8(18 * b + 2 + j);
          out[32 * b + j] = Math.fround(d * ((q & 15) - 8));
          out[32 * b + j + 16] = Math.fround(d * ((q >> 4) - 8));
        }
      }
      break;
    case GGML.TQ1_0: case GGML.TQ2_0: {
      const { trits, d } = ternaryBlocks(dv, t.type, n);
      for (let i = 0; i < n; i++) out[i] = Math.fround(trits[i] * d[i >> 8]);
      break;
    }
    default: throw new UserError(`${path}: tensor ${t.name}: type ${GGML_TYPES[t.type]?.[0] ?? t.type} is not read here: expected one of ${SUPPORTED}`);
  }
  return out;
}

const POW3 = [1, 3, 9, 27, 81, 243];
const trit = (q: number, n: number) => ((((q * POW3[n]) & 0xff) * 3) >> 8) - 1;

// ggml's TQ1_0 / TQ2_0 blocks (dequantize_row_tq1_0 / tq2_0 order) -> trits and per-block d.
function ternaryBlocks(dv: DataView, type: number, n: number): { trits: Int8Array; d: Float32Array } {
  const nb = n / 256;
  const trits = new Int8Array(n);
  const d = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    let y = 256 * b;
    if (type === GGML.TQ2_0) {
      const at = 66 * b;
      d[b] = f16ToF32(dv.getUint16(at + 64, true));
      for (let j = 0; j < 64; j += 32) for (let l = 0; l < 4; l++) for (let m = 0; m < 32; m++) trits[y++] = ((dv.getUint8(at + j + m) >> (2 * l)) & 3) - 1;
    } else {
      const at = 54 * b;
      d[b] = f16ToF32(dv.getUint16(at + 52, true));
      for (let n5 = 0; n5 < 5; n5++) for (let m = 0; m < 32; m++) trits[y++] = trit(dv.getUint8(at + m), n5);
      for (let n5 = 0; n5 < 5; n5++) for (let m = 0; m < 16; m++) trits[y++] = trit(dv.getUint8(at + 32 + m), n5);
      for (let n4 = 0; n4 < 4; n4++) for (let j = 0; j < 4; j++) trits[y++] = trit(dv.getUint8(at + 48 + j), n4);
    }
  }
  return { trits, d };
}

function tensorMatrix(path: string, bytes: Uint8Array, f: GgufFile, t: TensorInfo, rows: number, cols: number): Matrix {
  if (t.type >= EF_TYPE_BASE) return extMatrix(path, bytes, f, t, rows, cols);
  const n = t.ne.reduce((a, v) => a * v, 1);
  if (t.ne[0] !== cols || n !== rows * cols) {
    throw new UserError(`${path}: tensor ${t.name}: expected shape [${cols}, ${rows}] (ne), found [${t.ne.join(', ')}]`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset + f.dataStart + t.offset);
  if (t.type === GGML.Q8_0) {
    const data = new Uint8Array((n / 32) * 36);
    const out = new DataView(data.buffer);
    for (let b = 0; b < n / 32; b++) {
      out.setFloat32(36 * b, f16ToF32(dv.getUint16(34 * b, true)), true);
      for (let i = 0; i < 32; i++) out.setInt8(36 * b + 4 + i, dv.getInt8(34 * b + 2 + i));
    }
    return { format: formatByName('q8_0')!, m: rows, k: cols, data, scale: 1 };
  }
  if (t.type === GGML.Q4_0 && formatByName('i4g32')) {
    const data = new Uint8Array((n / 32) * 24);
    const out = new DataView(data.buffer);
    for (let b = 0; b < n / 32; b++) {
      const d = f16ToF32(dv.getUint16(18 * b, true));
      out.setFloat32(24 * b, d, true);
      out.setFloat32(24 * b + 4, Math.fround(-8 * d), true);
      for (let j = 0; j < 16; j++) out.setUint8(24 * b + 8 + j, dv.getUint8(18 * b + 2 + j));
    }
    return { format: formatByName('i4g32')!, m: rows, k: cols, data, scale: 1 };
  }
  if (t.type === GGML.TQ1_0 || t.type === GGML.TQ2_0) {
    const { trits, d } = ternaryBlocks(dv, t.type, n);
    const nonzero = [...new Set(Array.from(d).filter((v) => v !== 0))];
    if (nonzero.length <= 1) {
      const s = nonzero[0] ?? 0;
      for (let b = 0; b < d.length; b++) if (d[b] === 0) trits.fill(0, 256 * b, 256 * b + 256);
      return packTrits(formatByName(t.type === GGML.TQ2_0 ? 'tq2' : 'tq1')!, trits, rows, cols, s);
    }
    const w = Float32Array.from(trits, (v, i) => v * d[i >> 8]);
    return REFS.q8_0.quantize(w, rows, cols);
  }
  return f32Matrix(tensorF32(path, bytes, f, t), rows, cols);
}

// ---- edge-flash extension types (docs/formats.md, "GGUF extension types") ----------------------
// ggml type EF_TYPE_BASE + id holds format `id` of the table in its own block layout, rows of ne[0]
// weights (the row length rounded up to the format's block, zero-padded as the runtime holds it);
// a tensor-scale format keeps its scale in metadata edge_flash.tensor.<name>.scale (f32).
export const EF_TYPE_BASE = 1024;

function extBlock(type: number): [number, number, GgmlTypeName] | undefined {
  const fmt = type >= EF_TYPE_BASE ? formatById(type - EF_TYPE_BASE) : undefined;
  return fmt && !fmt.retired && !(fmt.rowTile && fmt.rowTile > 1) ? [fmt.block, fmt.blockBytes, 'F32'] : undefined;
}

function extMatrix(path: string, bytes: Uint8Array, f: GgufFile, t: TensorInfo, rows: number, cols: number): Matrix {
  const fmt = extBlock(t.type) ? formatById(t.type - EF_TYPE_BASE)! : undefined;
  if (!fmt) throw new UserError(`${path}: tensor ${t.name}: type ${t.type}: expected an edge-flash extension type (${EF_TYPE_BASE} + a live format id)`);
  const k = Math.ceil(cols / fmt.block) * fmt.block;
  if (t.ne.length !== 2 || t.ne[0] !== k || t.ne[1] !== rows) {
    throw new UserError(`${path}: tensor ${t.name}: expected shape [${k}, ${rows}] (ne) for ${fmt.name}, found [${t.ne.join(', ')}]`);
  }
  const size = (rows * k / fmt.block) * fmt.blockBytes;
  const data = bytes.slice(f.dataStart + t.offset, f.dataStart + t.offset + size);
  let scale = 1;
  if (fmt.tensorScale) {
    const v = f.meta.get(`edge_flash.tensor.${t.name}.scale`);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new UserError(`${path}: metadata edge_flash.tensor.${t.name}.scale: expected the f32 tensor scale of ${fmt.name}`);
    scale = v;
  }
  return { format: fmt, m: rows, k, data, scale };
}

// withTokenizer: false when the user passes their own (-z), so a GGUF without a usable one still loads.
export function readGguf(path: string, bytes: Uint8Array, withTokenizer = true): Model {
  const f = parseGguf(path, bytes);
  const arch = f.meta.get('general.architecture');
  if (arch !== 'llama') throw new UserError(`${path}: metadata general.architecture: expected "llama", found ${clean(JSON.stringify(arch ?? null))}`);
  const get = (name: string): TensorInfo => {
    const t = f.tensors.get(name);
    if (!t) throw new UserError(`${path}: tensor ${name}: expected in a llama GGUF, not found`);
    return t;
  };
  const emb = get('token_embd.weight');
  const tokens = f.meta.get('tokenizer.ggml.tokens');
  const vocab = Array.isArray(tokens) ? tokens.length : emb.ne[1] ?? 0;
  const declared = f.meta.get('llama.vocab_size');
  if (declared !== undefined && Array.isArray(tokens) && Number(declared) !== tokens.length) {
    throw new UserError(`${path}: metadata llama.vocab_size: expected the ${tokens.length} tokens of tokenizer.ggml.tokens, found ${clean(String(declared))}`);
  }
  const nHeads = metaNumber(f, path, 'llama.attention.head_count');
  const c: ModelConfig = {
    dim: metaNumber(f, path, 'llama.embedding_length'),
    hiddenDim: metaNumber(f, path, 'llama.feed_forward_length'),
    nLayers: metaNumber(f, path, 'llama.block_count'),
    nHeads,
    nKvHeads: metaNumber(f, path, 'llama.attention.head_count_kv', nHeads),
    vocabSize: vocab,
    seqLen: metaNumber(f, path, 'llama.context_length'),
    sharedClassifier: !f.tensors.has('output.weight'),
  };
  checkConfig(c, path);
  const rd = f.meta.get('llama.rope.dimension_count');
  if (rd !== undefined && rd !== headDim(c)) throw new UserError(`${path}: metadata llama.rope.dimension_count: expected the head size ${headDim(c)}, found ${rd}`);
  const vec = (name: string): Float32Array => {
    const t = get(name);
    if (t.ne.length !== 1 || t.ne[0] !== c.dim) throw new UserError(`${path}: tensor ${name}: expected shape [${c.dim}], found [${t.ne.join(', ')}]`);
    return tensorF32(path, bytes, f, t);
  };
  const names: Record<(typeof MATRIX_NAMES)[number], string> = { wq: 'attn_q', wk: 'attn_k', wv: 'attn_v', wo: 'attn_output', w1: 'ffn_gate', w2: 'ffn_down', w3: 'ffn_up' };
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const lw: Partial<LayerWeights> = { rmsAtt: vec(`blk.${l}.attn_norm.weight`), rmsFfn: vec(`blk.${l}.ffn_norm.weight`) };
    for (const n of MATRIX_NAMES) {
      const [rows, cols] = matrixShape(c, n);
      lw[n] = tensorMatrix(path, bytes, f, get(`blk.${l}.${names[n]}.weight`), rows, cols);
    }
    layers.push(lw as LayerWeights);
  }
  const model: Model = {
    path, source: `GGUF v${f.version}`, config: c,
    ropeTheta: checkRopeTheta(`${path}: metadata llama.rope.freq_base`, metaNumber(f, path, 'llama.rope.freq_base', 10000)),
    normEps: checkNormEps(`${path}: metadata llama.attention.layer_norm_rms_epsilon`, metaNumber(f, path, 'llama.attention.layer_norm_rms_epsilon', 1e-5)),
    embedding: tensorMatrix(path, bytes, f, emb, c.vocabSize, c.dim),
    layers,
    rmsFinal: vec('output_norm.weight'),
    classifier: c.sharedClassifier ? null : tensorMatrix(path, bytes, f, get('output.weight'), c.vocabSize, c.dim),
  };
  if (withTokenizer && tokens !== undefined) model.tokenizer = ggufTokenizer(path, f);
  checkModel(model);
  return model;
}

function ggufTokenizer(path: string, f: GgufFile): Tokenizer {
  const kind = f.meta.get('tokenizer.ggml.model');
  if (kind !== 'llama') throw new UserError(`${path}: metadata tokenizer.ggml.model: expected "llama" (sentencepiece BPE, what run.c's tokenizer does), found ${clean(JSON.stringify(kind ?? null))}`, 'pass a llama2.c tokenizer.bin with -z');
  const tokens = f.meta.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) throw new UserError(`${path}: metadata tokenizer.ggml.tokens: expected an array of strings`);
  const scores = f.meta.get('tokenizer.ggml.scores') ?? tokens.map(() => 0);
  if (!Array.isArray(scores) || scores.length !== tokens.length || !scores.every((s) => typeof s === 'number')) {
    throw new UserError(`${path}: metadata tokenizer.ggml.scores: expected ${tokens.length} numbers`);
  }
  const bad = (scores as number[]).findIndex((s) => !Number.isFinite(s));
  if (bad >= 0) throw new UserError(`${path}: metadata tokenizer.ggml.scores[${bad}]: expected a finite number, found ${scores[bad]}`);
  const enc = new TextEncoder();
  const pieces = (tokens as string[]).map((t) => enc.encode(t.replaceAll('\u2581', ' ')));
  let maxTokenLength = 1;
  for (const p of pieces) maxTokenLength = Math.max(maxTokenLength, p.length);
  const id = (key: string, def: number) => {
    const v = metaNumber(f, path, key, def);
    if (!(Number.isInteger(v) && v >= 0 && v < tokens.length)) throw new UserError(`${path}: metadata ${key}: expected a token id below ${tokens.length}, found ${v}`);
    return v;
  };
  return {
    pieces, scores: Float32Array.from(scores as number[]), maxTokenLength,
    bos: id('tokenizer.ggml.bos_token_id', 1), eos: id('tokenizer.ggml.eos_token_id', 2),
  };
}

// ---- writer (tests and tools): ggml's reference quantizers --------------------------------------

export function quantizeGgml(type: number, w: Float32Array): Uint8Array {
  const n = w.length;
  const [bw, bb] = BLOCKS[type];
  const out = new Uint8Array((n / bw) * bb);
  const dv = new DataView(out.buffer);
  const f = Math.fround;
  for (let b = 0; b < n / bw; b++) {
    const x = w.subarray(b * bw, (b + 1) * bw);
    const at = b * bb;
    switch (type) {
      case GGML.F32: dv.setFloat32(at, x[0], true); break;
      case GGML.F16: dv.setUint16(at, f32ToF16(x[0]), true); break;
      case GGML.BF16: { const u = new Uint32Array(new Float32Array([x[0]]).buffer)[0]; dv.setUint16(at, ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff, true); break; }
      case GGML.Q8_0: {
        let amax = 0;
        for (const v of x) amax = Math.max(amax, Math.abs(v));
        const d = f(amax / 127), id = d ? f(1 / d) : 0;
        dv.setUint16(at, f32ToF16(d), true);
        for (let i = 0; i < 32; i++) dv.setInt8(at + 2 + i, Math.round(f(x[i] * id)));
        break;
      }
      case GGML.Q4_0: {
        let amax = 0, mx = 0;
        for (const v of x) if (Math.abs(v) > amax) { amax = Math.abs(v); mx = v; }
        const d = f(mx / -8), id = d ? f(1 / d) : 0;
        dv.setUint16(at, f32ToF16(d), true);
        for (let j = 0; j < 16; j++) {
          const q0 = Math.min(15, Math.trunc(f(f(x[j] * id) + 8.5))), q1 = Math.min(15, Math.trunc(f(f(x[j + 16] * id) + 8.5)));
          dv.setUint8(at + 2 + j, q0 | (q1 << 4));
        }
        break;
      }
      case GGML.TQ2_0: case GGML.TQ1_0: {
        let amax = 0;
        for (const v of x) amax = Math.max(amax, Math.abs(v));
        const id = amax ? f(1 / amax) : 0;
        const t = (i: number) => Math.round(f(x[i] * id)) + 1;
        if (type === GGML.TQ2_0) {
          for (let j = 0; j < 64; j += 32) for (let m = 0; m < 32; m++) {
            let q = 0;
            for (let l = 0; l < 4; l++) q |= (t(j * 4 + l * 32 + m) & 3) << (2 * l);
            dv.setUint8(at + j + m, q);
          }
          dv.setUint16(at + 64, f32ToF16(amax), true);
        } else {
          const pack = (vals: number[], extra: number) => {
            let q = 0;
            for (const v of vals) q = q * 3 + v;
            q *= 3 ** extra;
            return Math.floor((q * 256 + 242) / 243);
          };
          for (let m = 0; m < 32; m++) dv.setUint8(at + m, pack([0, 1, 2, 3, 4].map((n5) => t(m + 32 * n5)), 0));
          for (let m = 0; m < 16; m++) dv.setUint8(at + 32 + m, pack([0, 1, 2, 3, 4].map((n5) => t(160 + m + 16 * n5)), 0));
          for (let j = 0; j < 4; j++) dv.setUint8(at + 48 + j, pack([0, 1, 2, 3].map((n4) => t(240 + j + 4 * n4)), 1));
          dv.setUint16(at + 52, f32ToF16(amax), true);
        }
        break;
      }
    }
  }
  return out;
}

export interface GgufWriteOptions {
  types?: (name: string) => GgmlTypeName; // per tensor (default F32)
  tokenizer?: Tokenizer;
  version?: 2 | 3;
  alignment?: number;
  extraMeta?: Array<[string, number, Value]>; // [key, value type, value]
}

function writeValue(w: ByteWriter, type: number, v: Value): void {
  switch (type) {
    case V.U8: case V.BOOL: w.u8(Number(v)); break;
    case V.U32: w.u32(Number(v)); break;
    case V.I32: w.i32(Number(v)); break;
    case V.F32: w.f32(Number(v)); break;
    case V.U64: w.u64(BigInt(v as number)); break;
    case V.STRING: { const b = new TextEncoder().encode(String(v)); w.u64(b.length).bytes(b); break; }
    default: throw new Error(`writer: value type ${type} not supported`);
  }
}

export function writeGguf(fw: FloatWeights, opts: GgufWriteOptions = {}): Uint8Array {
  const c = fw.config;
  const typeOf = (name: string) => GGML[opts.types?.(name) ?? 'F32'];
  const tensors: GgufTensor[] = ggufTensorList(fw).map(([name, data, ne]) => {
    const type = ne.length === 1 ? GGML.F32 : typeOf(name);
    return { name, ne, type, bytes: quantizeGgml(type, data) };
  });
  return writeGgufTensors(c, tensors, opts);
}

// The llama tensors of a model in GGUF's order and names, with their ne (row length first).
export const GGUF_MATRIX_NAMES = { wq: 'attn_q', wk: 'attn_k', wv: 'attn_v', wo: 'attn_output', w1: 'ffn_gate', w2: 'ffn_down', w3: 'ffn_up' } as const;
export function ggufTensorList(fw: FloatWeights): Array<[string, Float32Array, number[]]> {
  const c = fw.config;
  const tensors: Array<[string, Float32Array, number[]]> = [['token_embd.weight', fw.tok, [c.dim, c.vocabSize]]];
  for (let l = 0; l < c.nLayers; l++) {
    tensors.push([`blk.${l}.attn_norm.weight`, fw.rmsAtt[l], [c.dim]], [`blk.${l}.ffn_norm.weight`, fw.rmsFfn[l], [c.dim]]);
    for (const n of MATRIX_NAMES) {
      const [rows, cols] = matrixShape(c, n);
      tensors.push([`blk.${l}.${GGUF_MATRIX_NAMES[n]}.weight`, fw.layers[n][l], [cols, rows]]);
    }
  }
  tensors.push(['output_norm.weight', fw.rmsFinal, [c.dim]]);
  if (fw.cls) tensors.push(['output.weight', fw.cls, [c.dim, c.vocabSize]]);
  return tensors;
}

// One tensor as written: its ggml type (or EF_TYPE_BASE + format id) and its bytes in that layout.
export interface GgufTensor { name: string; ne: number[]; type: number; bytes: Uint8Array }

export function writeGgufTensors(c: ModelConfig, tensors: GgufTensor[], opts: GgufWriteOptions = {}): Uint8Array {
  const align = opts.alignment ?? 32;
  const meta: Array<[string, number, Value]> = [
    ['general.architecture', V.STRING, 'llama'], ['general.alignment', V.U32, align],
    ['llama.context_length', V.U32, c.seqLen], ['llama.embedding_length', V.U32, c.dim], ['llama.block_count', V.U32, c.nLayers],
    ['llama.feed_forward_length', V.U32, c.hiddenDim], ['llama.rope.dimension_count', V.U32, headDim(c)],
    ['llama.attention.head_count', V.U32, c.nHeads], ['llama.attention.head_count_kv', V.U32, c.nKvHeads],
    ['llama.attention.layer_norm_rms_epsilon', V.F32, 1e-5], ['llama.rope.freq_base', V.F32, 10000],
    ...(opts.extraMeta ?? []),
  ];
  const w = new ByteWriter();
  const tok = opts.tokenizer;
  const kvCount = meta.length + (tok ? 6 : 0);
  w.u32(GGUF_MAGIC).u32(opts.version ?? 3).u64(tensors.length).u64(kvCount);
  for (const [k, t, v] of meta) { writeValue(w, V.STRING, k); w.u32(t); writeValue(w, t, v); }
  if (tok) {
    const dec = new TextDecoder();
    const str = (k: string) => writeValue(w, V.STRING, k);
    str('tokenizer.ggml.model'); w.u32(V.STRING); writeValue(w, V.STRING, 'llama');
    str('tokenizer.ggml.tokens'); w.u32(V.ARRAY).u32(V.STRING).u64(tok.pieces.length);
    for (const p of tok.pieces) writeValue(w, V.STRING, dec.decode(p).replaceAll(' ', '\u2581'));
    str('tokenizer.ggml.scores'); w.u32(V.ARRAY).u32(V.F32).u64(tok.pieces.length);
    for (const s of tok.scores) w.f32(s);
    str('tokenizer.ggml.token_type'); w.u32(V.ARRAY).u32(V.I32).u64(tok.pieces.length);
    for (let i = 0; i < tok.pieces.length; i++) w.i32(1);
    str('tokenizer.ggml.bos_token_id'); w.u32(V.U32).u32(tok.bos);
    str('tokenizer.ggml.eos_token_id'); w.u32(V.U32).u32(tok.eos);
  }
  let offset = 0;
  for (const { name, ne, type, bytes } of tensors) {
    writeValue(w, V.STRING, name);
    w.u32(ne.length);
    for (const d of ne) w.u64(d);
    w.u32(type).u64(offset);
    offset += Math.ceil(bytes.length / align) * align;
  }
  w.padTo(align);
  for (const t of tensors) w.bytes(t.bytes).padTo(align);
  return w.finish();
}
