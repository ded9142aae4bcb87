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

// Quantize then dequantize one head's values (f32 in, f32 out), as the runtime stores and reads them.
export function kvRoundTrip(v: ArrayLike<number>, fmt: KvFormat): Float32Array {
  const out = Float32Array.from(v);
  if (fmt.qmax === 0) return out;
  let amax = 0;
  for (let i = 0; i < out.length; i++) amax = Math.max(amax, Math.abs(out[i]));
  if (amax === 0) return out.fill(0);
  const scale = bf16Round(f(amax / fmt.qmax));
  for (let i = 0; i < out.length; i++) {
    const q = Math.max(-fmt.qmax, Math.min(fmt.qmax, roundHalfEven(f(out[i] / scale))));
    out[i] = f(scale * q);
  }
  return out;
}

// Bytes of one (position, layer) row of K or V: kv_dim codes plus n_kv_heads bf16 scales.
export function kvRowBytes(fmt: KvFormat, kvDim: number, nKvHeads: number): number {
  if (fmt.qmax === 0) return kvDim * 4;
  return Math.ceil((kvDim * fmt.bits) / 8) + 2 * nKvHeads;
}
