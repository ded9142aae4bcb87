// The KV cache and attention. Formats (spec and reference: host/model/kv.ts): f32 as run.c
// (layer, seq, kv_dim); int8/int4/int3 with one bf16 scale per (layer, position, KV head):
//   scale = bf16(amax / qmax), q = clamp(nearest(v / scale), -qmax, qmax), stored biased (q + 2^(b-1)):
//   int8 one byte each, int4 two per byte (low nibble first), int3 eight per 3 bytes (24-bit LE word).
// Codes (layer, seq, code_row bytes) and scales (layer, seq, n_kv_heads u16) are separate arrays
// (int4: scales (layer, n_kv_heads, seq), so that four positions' scales are one 8-byte load).
//
// int4 is laid out in u64 tiles for integer attention (SWAR: four 16-bit lanes per i64 op), per
// (layer, KV head, block of 4 positions, group of 4 dims): K tiles hold position 4b+j in lane j and
// dim 4g+s in its nibble s (bits 16j+4s); V tiles hold dim 4g+j in lane j and position 4b+s in
// nibble s. Attention over int4 runs in integers (attentionInt4 below; spec: host/model/kv.ts).
import { EXP_C2, EXP_C3, EXP_C4, EXP_C5, EXP_C6, EXP_C7, EXP_LN2_HI, EXP_LN2_LO, EXP_LOG2E, fastExp, softmax } from './ops';

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
let blocks: i32 = 0;       // int4: blocks of 4 positions
let qbuf: usize = 0;       // int4: (n_heads / n_kv, head_size) biased query codes u8, then f32 scales and i32 sums
let accbuf: usize = 0;     // int4: (n_heads / n_kv) * head_size / 2 u64 lane accumulators
let kCodes: usize = 0, vCodes: usize = 0, kScales: usize = 0, vScales: usize = 0;

export function kvCodeRowBytes(format: i32, dim: i32): i32 {
  if (format == KV_F32) return dim << 2;
  if (format == KV_INT8) return dim;
  if (format == KV_INT4) return dim >> 1;
  return (dim * 3) >> 3;
}

// Bytes the cache needs: codes and scales for K and V.
export function kvBytes(format: i32, layers: i32, seq: i32, dim: i32, heads: i32): usize {
  const codes = <usize>kvCodeRowBytes(format, dim) * <usize>(format == KV_INT4 ? (seq + 3) & ~3 : seq);
  const scales: usize = format == KV_F32 ? 0 : <usize>heads * <usize>seq << 1;
  return ((<usize>layers * (codes + scales)) << 1) + 16; // slack: int3 rows are read 4 bytes at a time
}

// Scratch of integer attention (int4): query codes and accumulators, per KV head's query heads.
export function kvScratchBytes(format: i32, kvMul: i32, hs: i32): usize {
  if (format != KV_INT4) return 0;
  const npairs = ((hs >> 2) + 1) >> 1;
  return <usize>(kvMul * hs + kvMul * 8 + 24) + <usize>(kvMul * npairs * 64 + 16) + <usize>(npairs * 32);
}

// Lays the cache out over `base` (kvBytes of it).
export function kvSetup(format: i32, layers: i32, seq: i32, dim: i32, heads: i32, hs: i32, base: usize, scratchBase: usize, kvMul: i32): void {
  fmt = format;
  qmax = format == KV_INT8 ? 127 : format == KV_INT4 ? 7 : format == KV_INT3 ? 3 : 0;
  headSize = hs;
  nKv = heads;
  kvDim = dim;
  seqLen = seq;
  codeRow = kvCodeRowBytes(format, dim);
  blocks = (seq + 3) >> 2;
  const codes = <usize>layers * <usize>(format == KV_INT4 ? blocks << 2 : seq) * <usize>codeRow;
  qbuf = scratchBase;
  const npairs = ((hs >> 2) + 1) >> 1;
  accbuf = (scratchBase + <usize>(kvMul * hs + kvMul * 8 + 16) + <usize>(kvMul * npairs * 64 + 16) + 7) & ~(<usize>7);
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

// The int4 tile of (layer l, KV head g, position block b, dim group dg).
@inline function tile(base: usize, l: i32, g: i32, b: i32, dg: i32): usize {
  return base + ((((<usize>(l * nKv + g) * <usize>blocks + <usize>b) * <usize>(headSize >> 2) + <usize>dg)) << 3);
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
    const sa = fmt == KV_INT4 ? (isV ? vScales : kScales) + ((<usize>(l * nKv + h) * <usize>seqLen + <usize>pos) << 1) : scales + (<usize>h << 1);
    store<u16>(sa, <u16>sbits);
    for (let i = 0; i < headSize; i++) {
      let q: i32 = 0;
      if (scale != 0) q = <i32>min(max(nearest<f32>(load<f32>(v + (<usize>i << 2)) / scale), -qmax), qmax);
      const j = h * headSize + i;
      if (fmt == KV_INT8) store<u8>(row + j, <u8>(q + 128));
      else if (fmt == KV_INT4) {
        const at = tile(isV ? vCodes : kCodes, l, h, pos >> 2, i >> 2);
        const shift: u64 = isV ? <u64>(16 * (i & 3) + 4 * (pos & 3)) : <u64>(16 * (pos & 3) + 4 * (i & 3));
        store<u64>(at, (load<u64>(at) & ~(<u64>15 << shift)) | (<u64>(q + 8) << shift));
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

// Four K or V values (dims i..i+3, i a multiple of 4) of one cached row, as f32 codes (f32 KV: values).
@inline function load4(row: usize, i: i32, f: i32, out: usize): void {
  if (f == KV_F32) {
    const p = row + (<usize>i << 2);
    store<f32>(out, load<f32>(p)); store<f32>(out, load<f32>(p, 4), 4); store<f32>(out, load<f32>(p, 8), 8); store<f32>(out, load<f32>(p, 12), 12);
  } else if (f == KV_INT8) {
    const w = load<u32>(row + i);
    store<f32>(out, <f32>(<i32>(w & 255) - 128)); store<f32>(out, <f32>(<i32>((w >> 8) & 255) - 128), 4);
    store<f32>(out, <f32>(<i32>((w >> 16) & 255) - 128), 8); store<f32>(out, <f32>(<i32>(w >> 24) - 128), 12);
  } else if (f == KV_INT4) {
    const w = <u32>load<u16>(row + (i >> 1));
    store<f32>(out, <f32>(<i32>(w & 15) - 8)); store<f32>(out, <f32>(<i32>((w >> 4) & 15) - 8), 4);
    store<f32>(out, <f32>(<i32>((w >> 8) & 15) - 8), 8); store<f32>(out, <f32>(<i32>(w >> 12) - 8), 12);
  } else {
    const w = (load<u32>(row + <usize>(i >> 3) * 3) >> (<u32>(i & 4) * 3)) & 0xfff; // 4 bytes read: the cache has slack
    store<f32>(out, <f32>(<i32>(w & 7) - 4)); store<f32>(out, <f32>(<i32>((w >> 3) & 7) - 4), 4);
    store<f32>(out, <f32>(<i32>((w >> 6) & 7) - 4), 8); store<f32>(out, <f32>(<i32>(w >> 9) - 4), 12);
  }
}

// Scores of the kvMul query heads of KV head g against positions 0..pos (rows of `att`, seqLen apart),
// for KV format f (a constant after inlining, so each format gets its own loop).
@inline function scores(f: i32, l: i32, pos: i32, g: i32, qg: usize, att: usize, kvMul: i32, tmp: usize): void {
  const norm: f32 = Mathf.sqrt(<f32>headSize);
  const base = <usize>l * <usize>seqLen;
  const hsB = <usize>headSize << 2;
  const off = f == KV_F32 ? (<usize>(g * headSize) << 2) : 0;
  for (let t = 0; t <= pos; t++) {
    const idx = base + <usize>t;
    const row = kCodes + idx * <usize>codeRow + off;
    for (let hh = 0; hh < kvMul; hh++) store<f32>(att + (<usize>(hh * seqLen + t) << 2), 0);
    for (let i = 0; i < headSize; i += 4) {
      load4(row, f == KV_F32 ? i : g * headSize + i, f, tmp);
      const k0 = load<f32>(tmp), k1 = load<f32>(tmp, 4), k2 = load<f32>(tmp, 8), k3 = load<f32>(tmp, 12);
      for (let hh = 0; hh < kvMul; hh++) {
        const q = qg + <usize>hh * hsB + (<usize>i << 2);
        const a = att + (<usize>(hh * seqLen + t) << 2);
        let s = load<f32>(a);
        s += load<f32>(q) * k0;
        s += load<f32>(q, 4) * k1;
        s += load<f32>(q, 8) * k2;
        s += load<f32>(q, 12) * k3;
        store<f32>(a, s);
      }
    }
    const sc: f32 = f == KV_F32 ? 1 : bf16ToF32(<u32>load<u16>(kScales + ((idx * <usize>nKv + <usize>g) << 1)));
    for (let hh = 0; hh < kvMul; hh++) {
      const a = att + (<usize>(hh * seqLen + t) << 2);
      store<f32>(a, f == KV_F32 ? load<f32>(a) / norm : load<f32>(a) * sc / norm);
    }
  }
}

// out (kvMul heads) = sum over t of att[t] * V[t], for KV head g.
@inline function values(f: i32, l: i32, pos: i32, g: i32, out: usize, att: usize, kvMul: i32, tmp: usize): void {
  const base = <usize>l * <usize>seqLen;
  const hsB = <usize>headSize << 2;
  const off = f == KV_F32 ? (<usize>(g * headSize) << 2) : 0;
  for (let i = 0; i < kvMul * headSize; i++) store<f32>(out + (<usize>i << 2), 0);
  for (let t = 0; t <= pos; t++) {
    const idx = base + <usize>t;
    const row = vCodes + idx * <usize>codeRow + off;
    const sc: f32 = f == KV_F32 ? 1 : bf16ToF32(<u32>load<u16>(vScales + ((idx * <usize>nKv + <usize>g) << 1)));
    for (let i = 0; i < headSize; i += 4) {
      load4(row, f == KV_F32 ? i : g * headSize + i, f, tmp);
      const v0 = load<f32>(tmp), v1 = load<f32>(tmp, 4), v2 = load<f32>(tmp, 8), v3 = load<f32>(tmp, 12);
      for (let hh = 0; hh < kvMul; hh++) {
        let a = load<f32>(att + (<usize>(hh * seqLen + t) << 2));
        if (f != KV_F32) a *= sc;
        const o = out + <usize>hh * hsB + (<usize>i << 2);
        store<f32>(o, load<f32>(o) + a * v0);
        store<f32>(o, load<f32>(o, 4) + a * v1, 4);
        store<f32>(o, load<f32>(o, 8) + a * v2, 8);
        store<f32>(o, load<f32>(o, 12) + a * v3, 12);
      }
    }
  }
}

// Multi-head attention of one token at `pos` in layer l: q (n_heads * head_size) -> out (same),
// over positions 0..pos. The query heads that share a KV head (grouped-query attention) are done
// together, so each cached K and V row is decoded once. `att` holds (n_heads / n_kv) rows of
// seq_len scores; `tmp` 16 bytes. f32 KV keeps run.c's order of operations (same results).
// Needs head_size % 4 == 0 (checked by the host).
export function attention(l: i32, pos: i32, q: usize, out: usize, att: usize, nHeads: i32, tmp: usize): void {
  const kvMul = nHeads / nKv;
  if (fmt == KV_INT4) {
    for (let g = 0; g < nKv; g++) attentionInt4(l, pos, g, q + (<usize>(g * kvMul * headSize) << 2), out + (<usize>(g * kvMul * headSize) << 2), att, kvMul);
    return;
  }
  for (let g = 0; g < nKv; g++) {
    const qg = q + (<usize>(g * kvMul * headSize) << 2);
    const og = out + (<usize>(g * kvMul * headSize) << 2);
    if (fmt == KV_F32) scores(KV_F32, l, pos, g, qg, att, kvMul, tmp);
    else if (fmt == KV_INT8) scores(KV_INT8, l, pos, g, qg, att, kvMul, tmp);
    else if (fmt == KV_INT4) scores(KV_INT4, l, pos, g, qg, att, kvMul, tmp);
    else scores(KV_INT3, l, pos, g, qg, att, kvMul, tmp);
    for (let hh = 0; hh < kvMul; hh++) softmax(att + (<usize>(hh * seqLen) << 2), pos + 1);
    if (fmt == KV_F32) values(KV_F32, l, pos, g, og, att, kvMul, tmp);
    else if (fmt == KV_INT8) values(KV_INT8, l, pos, g, og, att, kvMul, tmp);
    else if (fmt == KV_INT4) values(KV_INT4, l, pos, g, og, att, kvMul, tmp);
    else values(KV_INT3, l, pos, g, og, att, kvMul, tmp);
  }
}

// ---- integer attention over int4 tiles ----------------------------------------------------------------
// Spec (mirrored by the reference, host/model/kv.ts): per query head, q is quantized like an activation
// (absmax, qmax 127: codes qc, scale sq). Scores: idot_t = sum_i qc_i * k_t,i (exact), then
// s_t = f32(idot_t) * (sq * ks_t) / sqrt(head_size). Softmax weights e_t = exp(s_t - max) (f32; both
// builds compute exp by the same polynomial, fastExp in ops.ts and exp4 here, within 2 ulp of expf,
// where the reference takes Math.exp: the tests' int4 tolerance covers the difference); the
// value weights w_t = e_t * vs_t are quantized to WQ = 16383 steps of their maximum W:
// wc_t = nearest(w_t * (WQ / W)); out_i = f32(sum_t wc_t * v_t,i) * ((W / WQ) / sum_t e_t).
// The sums are exact integers (i64 lanes never overflow for seq_len <= 16384).

const WQ: f32 = 16383;
const LANES16: u64 = 0x000F000F000F000F;
const LANES32: u64 = 0x0000000F0000000F;

// exp of 4 lanes (SIMD build), fastExp's polynomial (ops.ts). Within 2 ulp of expf for x in [-87, 0]
// (softmax arguments); below that it flushes to 0.
@inline function exp4(x: v128): v128 {
  if (ASC_FEATURE_SIMD) {
    const xc = f32x4.max(x, f32x4.splat(-87));
    const n = f32x4.nearest(f32x4.mul(xc, f32x4.splat(EXP_LOG2E)));
    let r = f32x4.sub(xc, f32x4.mul(n, f32x4.splat(EXP_LN2_HI)));
    r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(EXP_LN2_LO)));
    let p = f32x4.splat(EXP_C7);
    p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_C6));
    p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_C5));
    p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_C4));
    p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_C3));
    p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_C2));
    p = f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r);
    p = f32x4.add(p, f32x4.splat(1));
    const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
    return f32x4.mul(p, scale);
  }
  return v128.splat<i32>(0);
}

// Lanes biased by 2^15 so that signed partial sums (|sum| < 2^15) never borrow from the next lane.
const BIAS16: u64 = 0x8000800080008000;

function attentionInt4(l: i32, pos: i32, g: i32, q: usize, out: usize, att: usize, kvMul: i32): void {
  const hs = headSize;
  const norm: f32 = Mathf.sqrt(<f32>hs);
  const base = <usize>l * <usize>seqLen;
  const qc = qbuf;                                         // (kvMul, hs) i8 query codes
  const qs = qbuf + <usize>(kvMul * hs);                   // (kvMul) f32 scales
  const qsum = qs + (<usize>kvMul << 2);                   // (kvMul) i32: sum of signed codes
  // quantize each query head (the activation quantizer: absmax, qmax 127, nearest-even)
  for (let hh = 0; hh < kvMul; hh++) {
    const qh = q + (<usize>(hh * hs) << 2);
    let amax: f32 = 0;
    for (let i = 0; i < hs; i++) amax = max(amax, abs(load<f32>(qh + (<usize>i << 2))));
    let sum = 0;
    const iscale: f32 = amax == 0 ? 0 : <f32>127 / amax;
    for (let i = 0; i < hs; i++) {
      const c = <i32>min(max(nearest<f32>(load<f32>(qh + (<usize>i << 2)) * iscale), <f32>-127), <f32>127);
      store<i8>(qc + <usize>(hh * hs + i), <i8>c);
      sum += c;
    }
    store<f32>(qs + (<usize>hh << 2), amax / <f32>127);
    store<i32>(qsum + (<usize>hh << 2), sum);
  }
  const ksBase = kScales + ((<usize>(l * nKv + g) * <usize>seqLen) << 1); // (seq) bf16 of this KV head
  const vsBase = vScales + ((<usize>(l * nKv + g) * <usize>seqLen) << 1);
  const dgs = hs >> 2;
  const npairs = (dgs + 1) >> 1;
  const qvec = (qsum + (<usize>kvMul << 2) + 15) & ~(<usize>15); // SIMD: (kvMul, npairs, 4) i16x8 multipliers
  if (ASC_FEATURE_SIMD) {
    // vector (hh, p, s): lanes 0-3 the signed code of dim 8p+s, lanes 4-7 that of dim 8p+4+s
    for (let hh = 0; hh < kvMul; hh++) {
      for (let p = 0; p < npairs; p++) {
        for (let s = 0; s < 4; s++) {
          const lo = <i32>load<i8>(qc + <usize>(hh * hs + 8 * p + s));
          const hi = 2 * p + 1 < dgs ? <i32>load<i8>(qc + <usize>(hh * hs + 8 * p + 4 + s)) : 0;
          const at = qvec + (<usize>((hh * npairs + p) * 4 + s) << 4);
          for (let j = 0; j < 4; j++) {
            store<i16>(at + (<usize>j << 1), <i16>lo);
            store<i16>(at + (<usize>(j + 4) << 1), <i16>hi);
          }
        }
      }
    }
  }
  const nb = (pos >> 2) + 1;
  // scores: lanes = 4 positions; sum_i qc_i * u_i over a block
  for (let hh = 0; hh < kvMul; hh++) {
    const qrow = qc + <usize>(hh * hs);
    const qsc = load<f32>(qs + (<usize>hh << 2));
    const sq = <i64>load<i32>(qsum + (<usize>hh << 2));
    const arow = att + (<usize>(hh * seqLen) << 2);
    for (let b = 0; b < nb; b++) {
      let t0: i64 = 0, t1: i64 = 0, t2: i64 = 0, t3: i64 = 0; // sum qc*u per position (u = k + 8)
      const tb = b << 2;
      const last = min(3, pos - tb);
      if (ASC_FEATURE_SIMD) {
        // two tiles (8 dims x 4 positions) per vector as i16 lanes, signed q codes
        const LANE4 = i16x8.splat(15);
        let acc = i32x4.splat(0);
        let tp = tile(kCodes, l, g, b, 0);
        for (let d0 = 0; d0 < dgs; d0 += 2) {
          const v = d0 + 1 < dgs ? v128.load(tp) : v128.load64_zero(tp);
          tp += 16;
          const qv = qvec + (<usize>(hh * npairs * 4 + (d0 >> 1) * 4) << 4);
          let a16 = i16x8.mul(v128.and(v, LANE4), v128.load(qv));
          a16 = i16x8.add(a16, i16x8.mul(v128.and(i16x8.shr_u(v, 4), LANE4), v128.load(qv, 16)));
          a16 = i16x8.add(a16, i16x8.mul(v128.and(i16x8.shr_u(v, 8), LANE4), v128.load(qv, 32)));
          a16 = i16x8.add(a16, i16x8.mul(i16x8.shr_u(v, 12), v128.load(qv, 48)));
          acc = i32x4.add(acc, i32x4.add(i32x4.extend_low_i16x8_s(a16), i32x4.extend_high_i16x8_s(a16)));
        }
        if (last == 3) {
          const idv = i32x4.sub(acc, i32x4.splat(<i32>(8 * sq)));
          const ks = i32x4.shl(i32x4.extend_low_i16x8_u(v128.load64_zero(ksBase + (<usize>tb << 1))), 16); // bf16 -> f32 bits
          v128.store(arow + (<usize>tb << 2), f32x4.div(f32x4.mul(f32x4.convert_i32x4_s(idv), f32x4.mul(f32x4.splat(qsc), ks)), f32x4.splat(norm)));
          continue;
        }
        t0 = <i64>i32x4.extract_lane(acc, 0); t1 = <i64>i32x4.extract_lane(acc, 1); t2 = <i64>i32x4.extract_lane(acc, 2); t3 = <i64>i32x4.extract_lane(acc, 3);
      } else {
        // signed query codes times biased key codes u = k + 8 in four 16-bit lanes; 16 dims per flush
        // keep each lane's sum within +-2^15 (16 * 127 * 15), so the lanes can be read back exactly
        let tp = tile(kCodes, l, g, b, 0);
        let bias: i64 = 0;
        for (let d0 = 0; d0 < dgs; d0 += 4) {
          let acc: u64 = BIAS16;
          const dend = min(d0 + 4, dgs);
          for (let dg = d0; dg < dend; dg++) {
            const w = load<u64>(tp);
            tp += 8;
            const qd = qrow + <usize>(dg << 2);
            acc += (w & LANES16) * <u64>load<i8>(qd) + ((w >> 4) & LANES16) * <u64>load<i8>(qd, 1)
              + ((w >> 8) & LANES16) * <u64>load<i8>(qd, 2) + ((w >> 12) & LANES16) * <u64>load<i8>(qd, 3);
          }
          t0 += <i64>(acc & 0xffff); t1 += <i64>((acc >> 16) & 0xffff); t2 += <i64>((acc >> 32) & 0xffff); t3 += <i64>(acc >> 48);
          bias += 32768;
        }
        t0 -= bias; t1 -= bias; t2 -= bias; t3 -= bias;
        if (last == 3) {
          // a whole block: sum qc*(u-8) = sum qc*u - 8*sum qc, straight-line for the four positions
          const corr = 8 * sq;
          const c: f32 = qsc;
          const s0 = <f32>(t0 - corr) * (c * bf16ToF32(<u32>load<u16>(ksBase + (<usize>tb << 1)))) / norm;
          const s1 = <f32>(t1 - corr) * (c * bf16ToF32(<u32>load<u16>(ksBase + (<usize>tb << 1), 2))) / norm;
          const s2 = <f32>(t2 - corr) * (c * bf16ToF32(<u32>load<u16>(ksBase + (<usize>tb << 1), 4))) / norm;
          const s3 = <f32>(t3 - corr) * (c * bf16ToF32(<u32>load<u16>(ksBase + (<usize>tb << 1), 6))) / norm;
          const a = arow + (<usize>tb << 2);
          store<f32>(a, s0); store<f32>(a, s1, 4); store<f32>(a, s2, 8); store<f32>(a, s3, 12);
          continue;
        }
      }
      // sum qc*(u-8) = sum qc*u - 8*sum qc
      for (let j = 0; j <= last; j++) {
        const idot = (j == 0 ? t0 : j == 1 ? t1 : j == 2 ? t2 : t3) - 8 * sq;
        const t = tb + j;
        const ks = bf16ToF32(<u32>load<u16>(ksBase + (<usize>t << 1)));
        store<f32>(arow + (<usize>t << 2), <f32>idot * (qsc * ks) / norm);
      }
    }
  }
  // softmax weights, value weights quantized to WQ steps, then sum over position blocks
  const accs = accbuf; // (hs/2) u64 per head: lanes 0,2 then 1,3 of each dim group
  for (let hh = 0; hh < kvMul; hh++) {
    const arow = att + (<usize>(hh * seqLen) << 2);
    let mx = load<f32>(arow);
    let sum: f32 = 0, wmax: f32 = 0;
    let t = 0;
    if (ASC_FEATURE_SIMD) {
      const full = (pos + 1) & ~3;
      let m4 = f32x4.splat(mx);
      for (let i = 0; i < full; i += 4) m4 = f32x4.max(m4, v128.load(arow + (<usize>i << 2)));
      mx = max(max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)), max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
      for (let i = full; i <= pos; i++) mx = max(mx, load<f32>(arow + (<usize>i << 2)));
      const mxv = f32x4.splat(mx);
      let s4 = f32x4.splat(0), w4 = f32x4.splat(0);
      for (; t < full; t += 4) {
        const e = exp4(f32x4.sub(v128.load(arow + (<usize>t << 2)), mxv));
        s4 = f32x4.add(s4, e);
        const vs = i32x4.shl(i32x4.extend_low_i16x8_u(v128.load64_zero(vsBase + (<usize>t << 1))), 16);
        const w = f32x4.mul(e, vs);
        v128.store(arow + (<usize>t << 2), w);
        w4 = f32x4.max(w4, w);
      }
      sum = (f32x4.extract_lane(s4, 0) + f32x4.extract_lane(s4, 1)) + (f32x4.extract_lane(s4, 2) + f32x4.extract_lane(s4, 3));
      wmax = max(max(f32x4.extract_lane(w4, 0), f32x4.extract_lane(w4, 1)), max(f32x4.extract_lane(w4, 2), f32x4.extract_lane(w4, 3)));
    } else {
      for (let i = 1; i <= pos; i++) mx = max(mx, load<f32>(arow + (<usize>i << 2)));
    }
    for (; t <= pos; t++) {
      const e = fastExp(load<f32>(arow + (<usize>t << 2)) - mx);
      sum += e;
      const w = e * bf16ToF32(<u32>load<u16>(vsBase + (<usize>t << 1)));
      store<f32>(arow + (<usize>t << 2), w);
      wmax = max(wmax, w);
    }
    const wq: f32 = wmax == 0 ? 0 : WQ / wmax;
    for (let i = 0; i < npairs * 4; i++) store<u64>(accs + (<usize>i << 3), 0);
    let swc: i64 = 0;
    for (let b = 0; b < nb; b++) {
      const tb = b << 2;
      const last = min(3, pos - tb);
      const w0 = <u64>nearest<f32>(load<f32>(arow + (<usize>tb << 2)) * wq);
      const w1 = last >= 1 ? <u64>nearest<f32>(load<f32>(arow + (<usize>(tb + 1) << 2)) * wq) : 0;
      const w2 = last >= 2 ? <u64>nearest<f32>(load<f32>(arow + (<usize>(tb + 2) << 2)) * wq) : 0;
      const w3 = last >= 3 ? <u64>nearest<f32>(load<f32>(arow + (<usize>(tb + 3) << 2)) * wq) : 0;
      swc += <i64>(w0 + w1 + w2 + w3);
      let tp = tile(vCodes, l, g, b, 0);
      if (ASC_FEATURE_SIMD) {
        // lanes = 8 dims (two tiles); u32 lanes accumulate wc * u exactly
        const LANE4 = i16x8.splat(15);
        const s0 = i16x8.splat(<i16>w0), s1 = i16x8.splat(<i16>w1), s2 = i16x8.splat(<i16>w2), s3 = i16x8.splat(<i16>w3);
        let ap = accs;
        for (let d0 = 0; d0 < dgs; d0 += 2) {
          const v = d0 + 1 < dgs ? v128.load(tp) : v128.load64_zero(tp);
          tp += 16;
          const c0 = v128.and(v, LANE4), c1 = v128.and(i16x8.shr_u(v, 4), LANE4), c2 = v128.and(i16x8.shr_u(v, 8), LANE4), c3 = i16x8.shr_u(v, 12);
          let lo = v128.load(ap), hi = v128.load(ap, 16);
          lo = i32x4.add(lo, i32x4.add(i32x4.add(i32x4.extmul_low_i16x8_u(c0, s0), i32x4.extmul_low_i16x8_u(c1, s1)), i32x4.add(i32x4.extmul_low_i16x8_u(c2, s2), i32x4.extmul_low_i16x8_u(c3, s3))));
          hi = i32x4.add(hi, i32x4.add(i32x4.add(i32x4.extmul_high_i16x8_u(c0, s0), i32x4.extmul_high_i16x8_u(c1, s1)), i32x4.add(i32x4.extmul_high_i16x8_u(c2, s2), i32x4.extmul_high_i16x8_u(c3, s3))));
          v128.store(ap, lo);
          v128.store(ap, hi, 16);
          ap += 32;
        }
      } else {
        let ap = accs;
        for (let dg = 0; dg < dgs; dg++) {
          const w = load<u64>(tp);
          tp += 8;
          // lanes 0, 2 (dims 4dg, 4dg+2) and 1, 3 in 32-bit halves
          const a = load<u64>(ap) + (w & LANES32) * w0 + ((w >> 4) & LANES32) * w1 + ((w >> 8) & LANES32) * w2 + ((w >> 12) & LANES32) * w3;
          const c = load<u64>(ap, 8) + ((w >> 16) & LANES32) * w0 + ((w >> 20) & LANES32) * w1 + ((w >> 24) & LANES32) * w2 + ((w >> 28) & LANES32) * w3;
          store<u64>(ap, a);
          store<u64>(ap, c, 8);
          ap += 16;
        }
      }
    }
    const scale: f32 = wmax == 0 ? 0 : (wmax / WQ) / sum;
    const oh = out + (<usize>(hh * hs) << 2);
    for (let dg = 0; dg < dgs; dg++) {
      const o = oh + (<usize>(dg << 2) << 2);
      let a0: i64, a1: i64, a2: i64, a3: i64;
      if (ASC_FEATURE_SIMD) {
        // pair dg >> 1: 8 u32 lanes, dims 8p .. 8p+7
        const at = accs + (<usize>(dg >> 1) << 5) + (<usize>(dg & 1) << 4);
        a0 = <i64>load<u32>(at); a1 = <i64>load<u32>(at, 4); a2 = <i64>load<u32>(at, 8); a3 = <i64>load<u32>(at, 12);
      } else {
        const a = load<u64>(accs + (<usize>dg << 4)), c = load<u64>(accs + (<usize>dg << 4), 8);
        a0 = <i64>(a & 0xffffffff); a1 = <i64>(c & 0xffffffff); a2 = <i64>(a >> 32); a3 = <i64>(c >> 32);
      }
      store<f32>(o, <f32>(a0 - 8 * swc) * scale);
      store<f32>(o, <f32>(a1 - 8 * swc) * scale, 4);
      store<f32>(o, <f32>(a2 - 8 * swc) * scale, 8);
      store<f32>(o, <f32>(a3 - 8 * swc) * scale, 12);
    }
  }
}
