// The KV cache and attention. Formats (spec and reference: host/model/kv.ts): f32 as run.c
// (layer, seq, kv_dim); int8/int4/int3 with one bf16 scale per (layer, position, KV head):
//   scale = bf16(amax / qmax), q = clamp(nearest(v / scale), -qmax, qmax), stored biased (q + 2^(b-1)):
//   int8 one byte each, int4 two per byte (low nibble first), int3 eight per 3 bytes (24-bit LE word).
// Codes (layer, seq, code_row bytes) and scales (layer, seq, n_kv_heads u16) are separate arrays.
import { softmax } from './ops';

export const KV_F32: i32 = 0;
export const KV_INT8: i32 = 1;
export const KV_INT4: i32 = 2;
export const KV_INT3: i32 = 3;

let fmt: i32 = 0;
let qmax: f32 = 0;
let headSize: i32 = 0;
let nKv: i32 = 0;
let kvDim: i32 = 0;
let seqLen: i32 = 0;
let codeRow: i32 = 0;      // bytes of one position's codes (or f32 values) in one layer
let kCodes: usize = 0, vCodes: usize = 0, kScales: usize = 0, vScales: usize = 0;

export function kvCodeRowBytes(format: i32, dim: i32): i32 {
  if (format == KV_F32) return dim << 2;
  if (format == KV_INT8) return dim;
  if (format == KV_INT4) return dim >> 1;
  return (dim * 3) >> 3;
}

// Bytes the cache needs: codes and scales for K and V.
export function kvBytes(format: i32, layers: i32, seq: i32, dim: i32, heads: i32): usize {
  let per = <usize>kvCodeRowBytes(format, dim);
  if (format != KV_F32) per += <usize>heads << 1;
  return (<usize>layers * <usize>seq * per) << 1;
}

// Lays the cache out over `base` (kvBytes of it).
export function kvSetup(format: i32, layers: i32, seq: i32, dim: i32, heads: i32, hs: i32, base: usize): void {
  fmt = format;
  qmax = format == KV_INT8 ? 127 : format == KV_INT4 ? 7 : format == KV_INT3 ? 3 : 0;
  headSize = hs;
  nKv = heads;
  kvDim = dim;
  seqLen = seq;
  codeRow = kvCodeRowBytes(format, dim);
  const codes = <usize>layers * <usize>seq * <usize>codeRow;
  kCodes = base;
  vCodes = base + codes;
  const scales: usize = format == KV_F32 ? <usize>0 : (<usize>layers * <usize>seq * <usize>heads) << 1;
  kScales = vCodes + codes;
  vScales = kScales + scales;
}

@inline function bf16ToF32(h: u32): f32 {
  return reinterpret<f32>(h << 16);
}

@inline function bf16Round(v: f32): u32 {
  const x = reinterpret<u32>(v);
  return (x + 0x7fff + ((x >> 16) & 1)) >> 16;
}

@inline function codeAt(row: usize, i: i32): i32 {
  if (fmt == KV_INT8) return <i32>load<u8>(row + i) - 128;
  if (fmt == KV_INT4) return ((<i32>load<u8>(row + (i >> 1)) >> ((i & 1) << 2)) & 15) - 8;
  const g = row + <usize>(i >> 3) * 3;
  const w = <u32>load<u8>(g) | (<u32>load<u8>(g, 1) << 8) | (<u32>load<u8>(g, 2) << 16);
  return <i32>((w >> (<u32>(i & 7) * 3)) & 7) - 4;
}

// Store the kv_dim values at src (f32) as position `pos` of layer `l` (K when isV is false).
export function kvStore(l: i32, pos: i32, src: usize, isV: bool): void {
  const idx = <usize>l * <usize>seqLen + <usize>pos;
  const row = (isV ? vCodes : kCodes) + idx * <usize>codeRow;
  if (fmt == KV_F32) {
    for (let i = 0; i < kvDim; i++) store<f32>(row + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
    return;
  }
  const scales = (isV ? vScales : kScales) + ((idx * <usize>nKv) << 1);
  if (fmt == KV_INT4) for (let i = 0; i < kvDim >> 1; i++) store<u8>(row + i, 0);
  if (fmt == KV_INT3) for (let i = 0; i < codeRow; i++) store<u8>(row + i, 0);
  for (let h = 0; h < nKv; h++) {
    const v = src + (<usize>(h * headSize) << 2);
    let amax: f32 = 0;
    for (let i = 0; i < headSize; i++) amax = max(amax, abs(load<f32>(v + (<usize>i << 2))));
    let sbits: u32 = 0;
    let scale: f32 = 0;
    if (amax != 0) {
      sbits = bf16Round(amax / qmax);
      scale = bf16ToF32(sbits);
    }
    store<u16>(scales + (<usize>h << 1), <u16>sbits);
    for (let i = 0; i < headSize; i++) {
      let q: i32 = 0;
      if (scale != 0) q = <i32>min(max(nearest<f32>(load<f32>(v + (<usize>i << 2)) / scale), -qmax), qmax);
      const j = h * headSize + i;
      if (fmt == KV_INT8) store<u8>(row + j, <u8>(q + 128));
      else if (fmt == KV_INT4) {
        const at = row + (j >> 1);
        store<u8>(at, load<u8>(at) | <u8>((q + 8) << ((j & 1) << 2)));
      } else {
        const g = row + <usize>(j >> 3) * 3;
        const w = <u32>(q + 4) << (<u32>(j & 7) * 3);
        store<u8>(g, load<u8>(g) | <u8>w);
        store<u8>(g, load<u8>(g, 1) | <u8>(w >> 8), 1);
        store<u8>(g, load<u8>(g, 2) | <u8>(w >> 16), 2);
      }
    }
  }
}

// Multi-head attention of one token at `pos` in layer l: q (n_heads * head_size) -> out (same),
// over positions 0..pos; `att` holds seq_len f32 scores. Query head h reads KV head h / (n_heads / n_kv).
export function attention(l: i32, pos: i32, q: usize, out: usize, att: usize, nHeads: i32): void {
  const kvMul = nHeads / nKv;
  const norm: f32 = Mathf.sqrt(<f32>headSize);
  const base = <usize>l * <usize>seqLen;
  for (let h = 0; h < nHeads; h++) {
    const qh = q + (<usize>(h * headSize) << 2);
    const g = h / kvMul;
    for (let t = 0; t <= pos; t++) {
      const idx = base + <usize>t;
      let score: f32 = 0;
      if (fmt == KV_F32) {
        const k = kCodes + idx * <usize>codeRow + (<usize>(g * headSize) << 2);
        for (let i = 0; i < headSize; i++) score += load<f32>(qh + (<usize>i << 2)) * load<f32>(k + (<usize>i << 2));
      } else {
        const row = kCodes + idx * <usize>codeRow;
        for (let i = 0; i < headSize; i++) score += load<f32>(qh + (<usize>i << 2)) * <f32>codeAt(row, g * headSize + i);
        score *= bf16ToF32(<u32>load<u16>(kScales + ((idx * <usize>nKv + <usize>g) << 1)));
      }
      store<f32>(att + (<usize>t << 2), score / norm);
    }
    softmax(att, pos + 1);
    const xb = out + (<usize>(h * headSize) << 2);
    for (let i = 0; i < headSize; i++) store<f32>(xb + (<usize>i << 2), 0);
    for (let t = 0; t <= pos; t++) {
      const idx = base + <usize>t;
      const a = load<f32>(att + (<usize>t << 2));
      if (fmt == KV_F32) {
        const v = vCodes + idx * <usize>codeRow + (<usize>(g * headSize) << 2);
        for (let i = 0; i < headSize; i++) {
          const at = xb + (<usize>i << 2);
          store<f32>(at, load<f32>(at) + a * load<f32>(v + (<usize>i << 2)));
        }
      } else {
        const row = vCodes + idx * <usize>codeRow;
        const as = a * bf16ToF32(<u32>load<u16>(vScales + ((idx * <usize>nKv + <usize>g) << 1)));
        for (let i = 0; i < headSize; i++) {
          const at = xb + (<usize>i << 2);
          store<f32>(at, load<f32>(at) + as * <f32>codeAt(row, g * headSize + i));
        }
      }
    }
  }
}
