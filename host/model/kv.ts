// KV cache formats: the spec of assembly/model/kv.ts. Quantized caches hold, for every layer, position
// and KV head (a "head group": the query heads of grouped-query attention that share it), one bf16
// scale and head_size symmetric integer codes:
//   amax = max |v|; scale = bf16_round(f32(amax / qmax)) (0 when amax is 0);
//   q = clamp(nearest_even(f32(v / scale)), -qmax, qmax); v' = f32(scale * q).
// Codes are stored biased (u = q + 2^(bits-1)): int8 one byte each; int4 two per byte (low nibble
// first); int3 eight per 3 bytes (a little-endian 24-bit word, value i in bits 3i..3i+2).

export type KvFormatName = 'f32' | 'int8' | 'int4' | 'int3';

export interface KvFormat {
  name: KvFormatName;
  id: number;     // the runtime's code
  bits: number;
  qmax: number;   // 0 for f32
}

export const KV_FORMATS: readonly KvFormat[] = [
  { name: 'f32', id: 0, bits: 32, qmax: 0 },
  { name: 'int8', id: 1, bits: 8, qmax: 127 },
  { name: 'int4', id: 2, bits: 4, qmax: 7 },
  { name: 'int3', id: 3, bits: 3, qmax: 3 },
];

export function kvFormat(name: string): KvFormat | undefined {
  return KV_FORMATS.find((k) => k.name === name);
}

const f = Math.fround;
const u32 = new Uint32Array(1);
const f32v = new Float32Array(u32.buffer);

export function bf16Round(v: number): number {
  f32v[0] = v;
  const x = u32[0];
  u32[0] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 0) & 0xffff0000;
  return f32v[0];
}

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// One head's values as stored: signed codes and the bf16-rounded scale (0 for an all-zero head).
export function kvQuantize(v: ArrayLike<number>, fmt: KvFormat): { codes: Int8Array; scale: number } {
  const x = Float32Array.from(v);
  const codes = new Int8Array(x.length);
  let amax = 0;
  for (let i = 0; i < x.length; i++) amax = Math.max(amax, Math.abs(x[i]));
  if (amax === 0) return { codes, scale: 0 };
  const scale = bf16Round(f(amax / fmt.qmax));
  for (let i = 0; i < x.length; i++) codes[i] = Math.max(-fmt.qmax, Math.min(fmt.qmax, roundHalfEven(f(x[i] / scale))));
  return { codes, scale };
}

// Quantize then dequantize one head's values (f32 in, f32 out), as the runtime stores and reads them.
export function kvRoundTrip(v: ArrayLike<number>, fmt: KvFormat): Float32Array {
  if (fmt.qmax === 0) return Float32Array.from(v);
  const { codes, scale } = kvQuantize(v, fmt);
  return Float32Array.from(codes, (c) => f(scale * c));
}

// Integer attention over int4 K/V (the spec of assembly/model/kv.ts attentionInt4), for one query
// head: q (head_size f32), keys and values as per-position codes and scales, positions 0..pos.
// q is quantized like an activation (absmax, qmax 127); idot_t = sum qc_i * kc_t,i;
// s_t = f32(idot_t) * f32(sq * ks_t) / sqrt(hs) in f32; e_t = exp(s_t - max); w_t = e_t * vs_t;
// wc_t = nearest(w_t * (16383 / max w)); out_i = f32(sum_t wc_t * vc_t,i) * ((max w / 16383) / sum e).
export const INT4_ATTENTION_STEPS = 16383;
export function int4Attention(q: Float32Array, k: Array<{ codes: Int8Array; scale: number }>, v: Array<{ codes: Int8Array; scale: number }>): Float64Array {
  const hs = q.length;
  let amax = 0;
  for (const x of q) amax = Math.max(amax, Math.abs(x));
  const iscale = amax === 0 ? 0 : f(127 / amax);
  const qc = Array.from(q, (x) => Math.max(-127, Math.min(127, roundHalfEven(f(x * iscale)))));
  const sq = f(amax / 127);
  const norm = f(Math.sqrt(hs));
  const s = k.map((kt) => {
    let idot = 0;
    for (let i = 0; i < hs; i++) idot += qc[i] * kt.codes[i];
    return f(f(f(idot) * f(sq * kt.scale)) / norm);
  });
  const mx = Math.max(...s);
  let sum = 0, wmax = 0;
  const w = s.map((st, t) => {
    const e = f(Math.exp(f(st - mx)));
    sum = f(sum + e);
    const wt = f(e * v[t].scale);
    wmax = Math.max(wmax, wt);
    return wt;
  });
  const wq = wmax === 0 ? 0 : f(INT4_ATTENTION_STEPS / wmax);
  const acc = new Float64Array(hs);
  w.forEach((wt, t) => {
    const wc = roundHalfEven(f(wt * wq));
    for (let i = 0; i < hs; i++) acc[i] += wc * v[t].codes[i];
  });
  const scale = wmax === 0 ? 0 : f(f(wmax / INT4_ATTENTION_STEPS) / sum);
  return acc.map((a) => f(f(a) * scale));
}

// Bytes of the cache (K and V), as assembly/model/kv.ts kvBytes: int4 rounds positions up to
// blocks of 4; 16 bytes of slack.
export function kvCacheBytes(fmt: KvFormat, layers: number, seq: number, kvDim: number, nKvHeads: number): number {
  const codeRow = fmt.qmax === 0 ? kvDim * 4 : Math.floor((kvDim * fmt.bits) / 8);
  const codes = codeRow * (fmt.name === 'int4' ? Math.ceil(seq / 4) * 4 : seq);
  const scales = fmt.qmax === 0 ? 0 : 2 * nKvHeads * seq;
  return 2 * layers * (codes + scales) + 16;
}

// Scratch of integer attention (int4), as kvScratchBytes.
export function kvScratchBytes(fmt: KvFormat, kvMul: number, hs: number): number {
  const npairs = ((hs >> 2) + 1) >> 1;
  return fmt.name === 'int4' ? kvMul * hs + kvMul * 8 + 24 + kvMul * npairs * 64 + 16 + npairs * 32 : 0;
}
