// KV cache formats: the spec of assembly/model/kv.ts. Quantized caches hold, for every layer, position
// and KV head (a "head group": the query heads of grouped-query attention that share it), one bf16
// scale and head_size symmetric integer codes:
//   amax = max |v|; scale = bf16_round(f32(amax / qmax)) (0, and codes 0, when amax < 2^-27: the
//   int4 integer attention relies on scales being 0 or at least 2^-30);
//   q = clamp(nearest_even(f32(v / scale)), -qmax, qmax); v' = f32(scale * q).
// Codes are stored biased (u = q + 2^(bits-1)): int8 one byte each; int4 two per byte (low nibble
// first); int3 eight per 3 bytes (a little-endian 24-bit word, value i in bits 3i..3i+2).
import { maxOf } from '../arrays.ts';

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
const KV_MIN_AMAX = 2 ** -27;
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
  if (amax < KV_MIN_AMAX) return { codes, scale: 0 };
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
// head: q (head_size f32), keys and values as per-position codes and bf16 scales, positions 0..pos.
// Every per-position step is integer arithmetic: an interpreter (wasm3) pays for each float operation
// a conversion of its f64 register, and a board without a double FPU pays more.
//   q: quantized like an activation (absmax, qmax 127): codes qc, scale sq (f32).
//   idot_t = sum_i qc_i * kc_t,i (exact). A bf16 scale s (bits b) is m * 2^(E - 134) with E = b >> 7,
//   m = (b & 127) | 128 (scales below 2^-30 are stored as 0: kvQuantize).
//   Scores in fixed point, 2^-10 log2 units: B = min(f64(sq) * log2(e) * 1024 / sqrt(hs),
//   2^30 / (127 * 8 * 255 * hs * 2^(Ekmax - 134))) (f64; the cap keeps |z| < 2^30), S = min(20 -
//   floor(log2 B), 26), A = floor(B * 2^S + 0.5) (0 when B is 0), and
//   z_t = floor(idot_t * m_t * A / 2^(134 + S - E_t)).
//   Softmax: d_t = min(max z - z_t, 17 * 1024); e_t = round(EXP2_Q15[d_t & 1023] / 2^(d_t >> 10))
//   (2^(-d/1024) in Q15); value weights wc_t = round(e_t * mv_t / 2^min(9 + Evmax - Ev_t, 31)) (Q14
//   at most); round(a / 2^s) = (a + 2^s / 2) >> s, so small weights are not biased down;
//   out_i = f32(f64(sum_t wc_t * vc_t,i) * (2^(Evmax - 125) / sum_t e_t)).
export const EXP2_FRAC_BITS = 10;
// 2^(-i/1024) in Q15, i = 0..1023: 32768 * r^i with r = 2^(-1/1024) as an f64 literal, multiplied in
// f64 in order (the runtime builds the same table the same way), rounded half up.
export const EXP2_Q15: Uint16Array = (() => {
  const t = new Uint16Array(1 << EXP2_FRAC_BITS);
  let x = 1;
  for (let i = 0; i < t.length; i++) {
    t[i] = Math.floor(x * 32768 + 0.5);
    x *= 0.9993233275026507;
  }
  return t;
})();

const i64v = new BigInt64Array(1);
const f64v = new Float64Array(i64v.buffer);
function pow2(n: number): number {
  i64v[0] = BigInt(n + 1023) << 52n;
  return f64v[0];
}
function floorLog2(x: number): number {
  f64v[0] = x;
  return Number((i64v[0] >> 52n) & 0x7ffn) - 1023;
}
function bf16Bits(v: number): number {
  f32v[0] = v;
  return u32[0] >>> 16;
}

export function int4Attention(q: Float32Array, k: Array<{ codes: Int8Array; scale: number }>, v: Array<{ codes: Int8Array; scale: number }>): Float64Array {
  const hs = q.length;
  let amax = 0;
  for (const x of q) amax = Math.max(amax, Math.abs(x));
  const iscale = amax === 0 ? 0 : f(127 / amax);
  const qc = Array.from(q, (x) => Math.max(-127, Math.min(127, roundHalfEven(f(x * iscale)))));
  const sq = f(amax / 127);
  const kb = k.map((kt) => bf16Bits(kt.scale)), vb = v.map((vt) => bf16Bits(vt.scale));
  const ek = maxOf(kb.map((b) => b >> 7)), ev = maxOf(vb.map((b) => b >> 7));
  const b = Math.min(((sq * Math.LOG2E) * 1024) / Math.sqrt(hs), 1073741824 / ((127 * 8 * 255 * hs) * pow2(ek - 134)));
  const s = b === 0 ? 26 : Math.min(20 - floorLog2(b), 26);
  const a = b === 0 ? 0 : Math.floor(b * pow2(s) + 0.5);
  const z = k.map((kt, t) => {
    let idot = 0;
    for (let i = 0; i < hs; i++) idot += qc[i] * kt.codes[i];
    const p = idot * ((kb[t] & 127) | 128) * a; // |p| < 2^53: exact
    return p === 0 ? 0 : Math.floor(p / pow2(134 + s - (kb[t] >> 7)));
  });
  const mx = maxOf(z);
  let esum = 0;
  const acc = new Float64Array(hs);
  z.forEach((zt, t) => {
    const d = Math.min(mx - zt, 17 << EXP2_FRAC_BITS);
    const sh = d >> EXP2_FRAC_BITS;
    const e = (EXP2_Q15[d & 1023] + ((1 << sh) >> 1)) >> sh;
    esum += e;
    const vsh = Math.min(9 + ev - (vb[t] >> 7), 31);
    const wc = (e * ((vb[t] & 127) | 128) + (1 << (vsh - 1))) >> vsh;
    for (let i = 0; i < hs; i++) acc[i] += wc * v[t].codes[i];
  });
  const scale = pow2(ev - 125) / esum;
  return acc.map((x) => f(x * scale));
}

// Bytes of the cache (K and V), as assembly/model/kv.ts kvBytes: int4 rounds positions up to
// blocks of 4; 16 bytes of slack.
export function kvCacheBytes(fmt: KvFormat, layers: number, seq: number, kvDim: number, nKvHeads: number): number {
  const codeRow = fmt.qmax === 0 ? kvDim * 4 : Math.floor((kvDim * fmt.bits) / 8);
  const codes = codeRow * (fmt.name === 'int4' ? Math.ceil(seq / 4) * 4 : seq);
  const scales = fmt.qmax === 0 ? 0 : 2 * nKvHeads * seq;
  return 2 * layers * (codes + scales) + 16;
}

// Scratch of integer attention (int4), as kvScratchBytes in assembly/model/kv.ts: one query head's codes
// (8-byte aligned) and scale (8 bytes), 16-byte alignment, SIMD query vectors, the exp2 table.
export function kvScratchBytes(fmt: KvFormat, hs: number): number {
  const npairs = ((hs >> 2) + 1) >> 1;
  return fmt.name === 'int4' ? ((hs + 7) & ~7) + 8 + 15 + npairs * 64 + 2 * EXP2_Q15.length : 0;
}
