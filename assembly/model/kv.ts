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
import { quantize_act } from '../kernels/act';
import { KV_F32, KV_INT3, KV_INT3_QMAX, KV_INT4, KV_INT4_QMAX, KV_INT8, KV_INT8_QMAX } from '../kernels/formats.gen';
import { softmax } from './ops';

const KV_MIN_AMAX: f32 = 7.450580596923828e-9; // 2^-27

let fmt: i32 = 0;
let qmax: f32 = 0;
let headSize: i32 = 0;
let nKv: i32 = 0;
let kvDim: i32 = 0;
let seqLen: i32 = 0;
let codeRow: i32 = 0;      // bytes of one position's codes (or f32 values) in one layer
let blocks: i32 = 0;       // int4: blocks of 4 positions
let qbuf: usize = 0;       // int4 scratch: one query head's codes, then its f32 scale (attentionInt4)
let qvecBuf: usize = 0;    // int4, SIMD build: that head's query code vectors
let exp2Tab: usize = 0;    // int4: 2^(-i/1024) in Q15, 1024 u16
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

// Scratch of integer attention (int4), for one query head at a time: its codes (8-byte aligned) and
// scale (8 bytes), 16-byte alignment, the SIMD build's query vectors (64 bytes per 8 dims) and the
// exp2 table. host/model/kv.ts kvScratchBytes mirrors it.
export function kvScratchBytes(format: i32, hs: i32): usize {
  if (format != KV_INT4) return 0;
  const npairs = ((hs >> 2) + 1) >> 1;
  return <usize>(((hs + 7) & ~7) + 8 + 15 + npairs * 64 + (EXP2_SIZE << 1));
}

// Lays the cache out over `base` (kvBytes of it).
export function kvSetup(format: i32, layers: i32, seq: i32, dim: i32, heads: i32, hs: i32, base: usize, scratchBase: usize): void {
  fmt = format;
  const q: i32 = format == KV_INT8 ? KV_INT8_QMAX : format == KV_INT4 ? KV_INT4_QMAX : format == KV_INT3 ? KV_INT3_QMAX : 0;
  qmax = <f32>q;
  headSize = hs;
  nKv = heads;
  kvDim = dim;
  seqLen = seq;
  codeRow = kvCodeRowBytes(format, dim);
  blocks = (seq + 3) >> 2;
  const codes = <usize>layers * <usize>(format == KV_INT4 ? blocks << 2 : seq) * <usize>codeRow;
  if (format == KV_INT4) {
    const npairs = ((hs >> 2) + 1) >> 1;
    qbuf = scratchBase;
    qvecBuf = (scratchBase + <usize>(((hs + 7) & ~7) + 8) + 15) & ~(<usize>15);
    exp2Tab = qvecBuf + <usize>(npairs * 64);
    // 32768 * r^i, r = 2^(-1/1024), multiplied in f64 in order, rounded half up (host/model/kv.ts)
    let x: f64 = 1;
    for (let i = 0; i < EXP2_SIZE; i++) {
      store<u16>(exp2Tab + (<usize>i << 1), <u16>Math.floor(x * 32768 + 0.5));
      x *= 0.9993233275026507;
    }
  }
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
    if (amax >= KV_MIN_AMAX) { // smaller: stored as 0 (int4 attention needs scales of 0 or >= 2^-30)
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

// Four K or V codes (dims i..i+3, i a multiple of 4) of one cached int8 or int3 row, as f32 (f32 KV
// has its own loops, scoresF32 / valuesF32; int4 never comes here: attentionInt4).
@inline function load4(row: usize, i: i32, f: i32, out: usize): void {
  if (f == KV_INT8) {
    const w = load<u32>(row + i);
    store<f32>(out, <f32>(<i32>(w & 255) - 128)); store<f32>(out, <f32>(<i32>((w >> 8) & 255) - 128), 4);
    store<f32>(out, <f32>(<i32>((w >> 16) & 255) - 128), 8); store<f32>(out, <f32>(<i32>(w >> 24) - 128), 12);
  } else {
    const w = (load<u32>(row + <usize>(i >> 3) * 3) >> (<u32>(i & 4) * 3)) & 0xfff; // 4 bytes read: the cache has slack
    store<f32>(out, <f32>(<i32>(w & 7) - 4)); store<f32>(out, <f32>(<i32>((w >> 3) & 7) - 4), 4);
    store<f32>(out, <f32>(<i32>((w >> 6) & 7) - 4), 8); store<f32>(out, <f32>(<i32>(w >> 9) - 4), 12);
  }
}

// Scores of the kvMul query heads of KV head g against positions 0..pos (rows of `att`, seqLen apart),
// for quantized KV format f (int8 or int3: a constant after inlining, so each gets its own loop).
@inline function scores(f: i32, l: i32, pos: i32, g: i32, qg: usize, att: usize, kvMul: i32, tmp: usize): void {
  const norm: f32 = Mathf.sqrt(<f32>headSize);
  const base = <usize>l * <usize>seqLen;
  const hsB = <usize>headSize << 2;
  for (let t = 0; t <= pos; t++) {
    const idx = base + <usize>t;
    const row = kCodes + idx * <usize>codeRow;
    for (let hh = 0; hh < kvMul; hh++) store<f32>(att + (<usize>(hh * seqLen + t) << 2), 0);
    for (let i = 0; i < headSize; i += 4) {
      load4(row, g * headSize + i, f, tmp);
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
    const sc: f32 = bf16ToF32(<u32>load<u16>(kScales + ((idx * <usize>nKv + <usize>g) << 1)));
    for (let hh = 0; hh < kvMul; hh++) {
      const a = att + (<usize>(hh * seqLen + t) << 2);
      store<f32>(a, load<f32>(a) * sc / norm);
    }
  }
}

// out (kvMul heads) = sum over t of att[t] * V[t], for KV head g (int8 or int3 codes).
@inline function values(f: i32, l: i32, pos: i32, g: i32, out: usize, att: usize, kvMul: i32, tmp: usize): void {
  const base = <usize>l * <usize>seqLen;
  const hsB = <usize>headSize << 2;
  for (let i = 0; i < kvMul * headSize; i++) store<f32>(out + (<usize>i << 2), 0);
  for (let t = 0; t <= pos; t++) {
    const idx = base + <usize>t;
    const row = vCodes + idx * <usize>codeRow;
    const sc: f32 = bf16ToF32(<u32>load<u16>(vScales + ((idx * <usize>nKv + <usize>g) << 1)));
    for (let i = 0; i < headSize; i += 4) {
      load4(row, g * headSize + i, f, tmp);
      const v0 = load<f32>(tmp), v1 = load<f32>(tmp, 4), v2 = load<f32>(tmp, 8), v3 = load<f32>(tmp, 12);
      for (let hh = 0; hh < kvMul; hh++) {
        const a = load<f32>(att + (<usize>(hh * seqLen + t) << 2)) * sc;
        const o = out + <usize>hh * hsB + (<usize>i << 2);
        store<f32>(o, load<f32>(o) + a * v0);
        store<f32>(o, load<f32>(o, 4) + a * v1, 4);
        store<f32>(o, load<f32>(o, 8) + a * v2, 8);
        store<f32>(o, load<f32>(o, 12) + a * v3, 12);
      }
    }
  }
}

// f32 KV, one query head, in run.c's order: att[t] = (sum_i q[i] * k_t[i], i ascending) / sqrt(head_size)
// for t <= pos. Shaped for wasm3 like the f32 GEMV (kernels/float.ts): four positions share each
// loaded q, each walks its own pointer with constant offsets, the loop test at the bottom.
// `k` is position 0's row of this head in the layer; rows are codeRow bytes apart.
function scoresF32(k: usize, q: usize, att: usize, pos: i32): void {
  const norm: f32 = Mathf.sqrt(<f32>headSize);
  const stride = <usize>codeRow;
  const qEnd = q + (<usize>headSize << 2); // head_size % 4 == 0 (model_init checks)
  const n = pos + 1;
  let t = 0;
  let k0 = k;
  for (; t + 4 <= n; t += 4) {
    let k1 = k0 + stride, k2 = k1 + stride, k3 = k2 + stride;
    let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
    let p = q;
    do {
      let v = load<f32>(p);
      s0 += v * load<f32>(k0); s1 += v * load<f32>(k1); s2 += v * load<f32>(k2); s3 += v * load<f32>(k3);
      v = load<f32>(p, 4);
      s0 += v * load<f32>(k0, 4); s1 += v * load<f32>(k1, 4); s2 += v * load<f32>(k2, 4); s3 += v * load<f32>(k3, 4);
      v = load<f32>(p, 8);
      s0 += v * load<f32>(k0, 8); s1 += v * load<f32>(k1, 8); s2 += v * load<f32>(k2, 8); s3 += v * load<f32>(k3, 8);
      v = load<f32>(p, 12);
      s0 += v * load<f32>(k0, 12); s1 += v * load<f32>(k1, 12); s2 += v * load<f32>(k2, 12); s3 += v * load<f32>(k3, 12);
      k0 += 16; k1 += 16; k2 += 16; k3 += 16;
      p += 16;
    } while (p < qEnd);
    const a = att + (<usize>t << 2);
    store<f32>(a, s0 / norm); store<f32>(a, s1 / norm, 4); store<f32>(a, s2 / norm, 8); store<f32>(a, s3 / norm, 12);
    k0 = k3 + stride - (<usize>headSize << 2); // row t+4
  }
  for (; t < n; t++) {
    let s: f32 = 0;
    let p = q, kp = k0;
    do {
      s += load<f32>(p) * load<f32>(kp);
      s += load<f32>(p, 4) * load<f32>(kp, 4);
      s += load<f32>(p, 8) * load<f32>(kp, 8);
      s += load<f32>(p, 12) * load<f32>(kp, 12);
      p += 16;
      kp += 16;
    } while (p < qEnd);
    store<f32>(att + (<usize>t << 2), s / norm);
    k0 += stride;
  }
}

// f32 KV, one head: out[i] = sum over t <= pos (ascending) of att[t] * v_t[i], as run.c sums it,
// eight dims (then four) at a time across the positions with their sums in locals.
function valuesF32(v: usize, att: usize, out: usize, pos: i32): void {
  const stride = <usize>codeRow;
  const aEnd = att + (<usize>(pos + 1) << 2);
  let i = 0;
  for (; i + 8 <= headSize; i += 8) {
    let c0: f32 = 0, c1: f32 = 0, c2: f32 = 0, c3: f32 = 0, c4: f32 = 0, c5: f32 = 0, c6: f32 = 0, c7: f32 = 0;
    let vp = v + (<usize>i << 2), ap = att;
    do {
      const a = load<f32>(ap);
      c0 += a * load<f32>(vp); c1 += a * load<f32>(vp, 4); c2 += a * load<f32>(vp, 8); c3 += a * load<f32>(vp, 12);
      c4 += a * load<f32>(vp, 16); c5 += a * load<f32>(vp, 20); c6 += a * load<f32>(vp, 24); c7 += a * load<f32>(vp, 28);
      ap += 4;
      vp += stride;
    } while (ap < aEnd);
    const o = out + (<usize>i << 2);
    store<f32>(o, c0); store<f32>(o, c1, 4); store<f32>(o, c2, 8); store<f32>(o, c3, 12);
    store<f32>(o, c4, 16); store<f32>(o, c5, 20); store<f32>(o, c6, 24); store<f32>(o, c7, 28);
  }
  if (i < headSize) { // head_size % 8 == 4
    let c0: f32 = 0, c1: f32 = 0, c2: f32 = 0, c3: f32 = 0;
    let vp = v + (<usize>i << 2), ap = att;
    do {
      const a = load<f32>(ap);
      c0 += a * load<f32>(vp); c1 += a * load<f32>(vp, 4); c2 += a * load<f32>(vp, 8); c3 += a * load<f32>(vp, 12);
      ap += 4;
      vp += stride;
    } while (ap < aEnd);
    const o = out + (<usize>i << 2);
    store<f32>(o, c0); store<f32>(o, c1, 4); store<f32>(o, c2, 8); store<f32>(o, c3, 12);
  }
}

// Multi-head attention of one token at `pos` in layer l: q (n_heads * head_size) -> out (same),
// over positions 0..pos. f32 KV: one query head at a time in run.c's order of operations (same
// results), nothing to decode. Quantized KV: the query heads that share a KV head (grouped-query
// attention) are done together, so each cached K and V row is decoded once. `att` holds
// (n_heads / n_kv) rows of seq_len scores; `tmp` 16 bytes. Needs head_size % 4 == 0 (checked by the host).
export function attention(l: i32, pos: i32, q: usize, out: usize, att: usize, nHeads: i32, tmp: usize): void {
  const kvMul = nHeads / nKv;
  if (fmt == KV_INT4) {
    for (let g = 0; g < nKv; g++) attentionInt4(l, pos, g, q + (<usize>(g * kvMul * headSize) << 2), out + (<usize>(g * kvMul * headSize) << 2), att, kvMul);
    return;
  }
  if (fmt == KV_F32) {
    for (let h = 0; h < nHeads; h++) {
      const g = h / kvMul;
      const kv = (<usize>l * <usize>seqLen * <usize>codeRow) + (<usize>(g * headSize) << 2);
      const a = att;
      scoresF32(kCodes + kv, q + (<usize>(h * headSize) << 2), a, pos);
      softmax(a, pos + 1);
      valuesF32(vCodes + kv, a, out + (<usize>(h * headSize) << 2), pos);
    }
    return;
  }
  for (let g = 0; g < nKv; g++) {
    const qg = q + (<usize>(g * kvMul * headSize) << 2);
    const og = out + (<usize>(g * kvMul * headSize) << 2);
    if (fmt == KV_INT8) scores(KV_INT8, l, pos, g, qg, att, kvMul, tmp);
    else scores(KV_INT3, l, pos, g, qg, att, kvMul, tmp);
    for (let hh = 0; hh < kvMul; hh++) softmax(att + (<usize>(hh * seqLen) << 2), pos + 1);
    if (fmt == KV_INT8) values(KV_INT8, l, pos, g, og, att, kvMul, tmp);
    else values(KV_INT3, l, pos, g, og, att, kvMul, tmp);
  }
}

// ---- integer attention over int4 tiles ----------------------------------------------------------------
// Spec and reference: host/model/kv.ts int4Attention. For one KV head, the query heads that share it
// are quantized (codes, score multiplier A, shift base C = 134 + S); pass 1 turns the K tiles into every
// position's fixed-point score z_t (2^-10 log2 units) and keeps each head's maximum; pass 2 turns
// max - z_t into Q15 exp2 weights by table, folds in the V scale (Q14 value weights) and sums them
// against the V tiles. Per position everything is integer: wasm3 keeps floats in an f64 register and
// converts on every f32 operation, and a board without a double FPU pays more for f64.

const EXP2_SIZE: i32 = 1024;         // 2^EXP2_FRAC entries
const EXP2_FRAC: i32 = 10;
const D_LIMIT: i32 = 17 << 10;       // exp2(-d/1024) in Q15 rounds to 0 from here on
const LANES16: u64 = 0x000F000F000F000F;
const LANES32: u64 = 0x0000000F0000000F;
const ONES16: u64 = 0x0001000100010001;
const BIAS16: u64 = 0x8000800080008000; // lanes biased by 2^15: sums within +-2^15 never borrow

// Lane-wise max of four 16-bit lanes below 2^15 (bf16 bits of scales, which are positive): a lane of
// (a | 2^15) - b keeps its top bit where a >= b and never borrows from the next.
@inline function max16(a: u64, b: u64): u64 {
  const ge = (((a | BIAS16) - b) & BIAS16) >> 15;
  const m = ge * 0xffff;
  return (a & m) | (b & ~m);
}

@inline function pow2(n: i32): f64 {
  return reinterpret<f64>(<i64>(n + 1023) << 52);
}

// The value weight of lane j of a block (0 past its last live lane: att has seqLen entries a head,
// and the last block's tail may lie beyond it).
@inline function wcAt(wp: usize, j: i32, live: i32): u32 {
  return j <= live ? load<u32>(wp + (<usize>j << 2)) : 0;
}

@inline function outLane(o: usize, off: usize, acc: i64, bias: i64, scale: f64): void {
  store<f32>(o + off, <f32>(<f64>(acc - bias) * scale));
}

// z = floor(idot * m * A / 2^(C - E)) for a bf16 scale b = (E, m). A zero K row has idot 0, so its
// shift (which may pass 63) does not matter; any other row has E >= 97, so C - E <= 63.
@inline function zScore(idot: i64, b: u32, a: i64, c: i32): i32 {
  return <i32>((idot * <i64>((b & 127) | 128) * a) >> <i64>(c - <i32>(b >> 7)));
}

// exp2(-d / 1024) in Q15 for d >= 0, rounded to nearest (clamped where it rounds to 0).
@inline function exp2q(d: i32): u32 {
  const dc = d < D_LIMIT ? d : D_LIMIT;
  const s = <u32>(dc >> EXP2_FRAC);
  return (<u32>load<u16>(exp2Tab + (<usize>(dc & (EXP2_SIZE - 1)) << 1)) + ((<u32>1 << s) >> 1)) >> s;
}

// the value weight (Q14) of exp weight e for a V scale b (mantissa, and its shift below the maximum)
@inline function vMant(b: u32): u32 {
  return (b & 127) | 128;
}
@inline function vShift(b: u32, evTop: i32): u32 {
  const s = evTop - <i32>(b >> 7); // evTop = 9 + Evmax
  return <u32>(s < 31 ? s : 31);
}

// The query head at q quantized into qbuf (the activation quantizer: absmax, qmax 127, codes then the
// f32 scale) and its score constants: qCorr = 8 * sum qc (the key codes' bias), multiplier A = qA and
// shift base C = qC (134 + S).
let qCorr: i64 = 0, qA: i64 = 0, qC: i32 = 0;
function queryHead(q: usize, bcap: f64): void {
  const hs = headSize;
  const qscale = qbuf + <usize>((hs + 7) & ~7);
  quantize_act(q, qbuf, qscale, 1, hs, 127);
  let qsum = 0;
  for (let i = 0; i < hs; i++) qsum += <i32>load<i8>(qbuf + i);
  qCorr = <i64>(8 * qsum);
  const bq = min(<f64>load<f32>(qscale) * Math.LOG2E * 1024.0 / Math.sqrt(<f64>hs), bcap);
  const sa = bq == 0 ? 26 : min(20 - (<i32>((reinterpret<i64>(bq) >> 52) & 0x7ff) - 1023), 26);
  qA = bq == 0 ? 0 : <i64>Math.floor(bq * pow2(sa) + 0.5);
  qC = 134 + sa;
}

function attentionInt4(l: i32, pos: i32, g: i32, q: usize, out: usize, att: usize, kvMul: i32): void {
  const hs = headSize;
  const dgs = hs >> 2;
  const npairs = (dgs + 1) >> 1;
  const qch = qbuf;                                     // the query head's i8 codes (queryHead)
  const ksBase = kScales + ((<usize>(l * nKv + g) * <usize>seqLen) << 1); // (seq) bf16 of this KV head
  const vsBase = vScales + ((<usize>(l * nKv + g) * <usize>seqLen) << 1);
  // the largest K and V scale exponents over the positions: the largest scales' bits (positive bf16
  // order as integers), four positions a load, the last block's lanes past pos masked off
  let mk: u64 = 0, mv: u64 = 0;
  const lastW = pos >> 2;
  const tail: u64 = (pos & 3) == 3 ? <u64>-1 : (<u64>1 << <u64>(((pos & 3) + 1) << 4)) - 1;
  for (let b = 0; b <= lastW; b++) {
    const live = b < lastW ? <u64>-1 : tail;
    mk = max16(mk, load<u64>(ksBase + (<usize>b << 3)) & live);
    mv = max16(mv, load<u64>(vsBase + (<usize>b << 3)) & live);
  }
  let ek: u32 = 0, ev: u32 = 0;
  for (let j = 0; j < 4; j++) {
    ek = max(ek, <u32>mk & 0xffff); ev = max(ev, <u32>mv & 0xffff);
    mk >>= 16; mv >>= 16;
  }
  ek >>= 7; ev >>= 7;
  const bcap: f64 = 1073741824.0 / (<f64>(127 * 8 * 255) * <f64>hs * pow2(<i32>ek - 134));
  const nb = (pos >> 2) + 1;
  const lastB = nb - 1, lastJ = pos & 3; // the last block holds positions up to pos only (lane lastJ)
  const stride = <usize>(dgs << 3); // from a tile to the same dim group's tile of the next block
  const evTop = 9 + <i32>ev;
  let hh = 0;
  // head size 8 on the scalar build: the query heads two at a time (int4PairHs8)
  if (!ASC_FEATURE_SIMD && hs == 8) {
    for (; hh + 2 <= kvMul; hh += 2) {
      int4PairHs8(l, pos, g, q + (<usize>(hh * hs) << 2), out + (<usize>(hh * hs) << 2), att + (<usize>(hh * seqLen) << 2), att + (<usize>((hh + 1) * seqLen) << 2), bcap, ev, ksBase, vsBase);
    }
  }
  for (; hh < kvMul; hh++) {
    queryHead(q + (<usize>(hh * hs) << 2), bcap);
    const corr = qCorr, a = qA, c = qC;
    if (ASC_FEATURE_SIMD) {
      // vector (p, s): lanes 0-3 the signed code of dim 8p+s, lanes 4-7 that of dim 8p+4+s
      for (let p = 0; p < npairs; p++) {
        for (let s = 0; s < 4; s++) {
          const lo = <i32>load<i8>(qch + <usize>(8 * p + s));
          const hi = 2 * p + 1 < dgs ? <i32>load<i8>(qch + <usize>(8 * p + 4 + s)) : 0;
          const at = qvecBuf + (<usize>(p * 4 + s) << 4);
          for (let j = 0; j < 4; j++) {
            store<i16>(at + (<usize>j << 1), <i16>lo);
            store<i16>(at + (<usize>(j + 4) << 1), <i16>hi);
          }
        }
      }
    }
    const zr = att + (<usize>(hh * seqLen) << 2); // z_t, then wc_t (att has seqLen entries a head)

    // pass 1: scores z_t and their maximum
    let mx = i32.MIN_VALUE;
    for (let b = 0; b < nb; b++) {
      // idot of the block's four positions
      let i0: i64, i1: i64, i2: i64, i3: i64;
      let tp = tile(kCodes, l, g, b, 0);
      if (ASC_FEATURE_SIMD) {
        // two tiles (8 dims x 4 positions) per vector as i16 lanes, signed q codes
        const LANE4 = i16x8.splat(15);
        let acc = i32x4.splat(0);
        for (let d0 = 0; d0 < dgs; d0 += 2) {
          const v = d0 + 1 < dgs ? v128.load(tp) : v128.load64_zero(tp);
          tp += 16;
          const qv = qvecBuf + (<usize>((d0 >> 1) * 4) << 4);
          let a16 = i16x8.mul(v128.and(v, LANE4), v128.load(qv));
          a16 = i16x8.add(a16, i16x8.mul(v128.and(i16x8.shr_u(v, 4), LANE4), v128.load(qv, 16)));
          a16 = i16x8.add(a16, i16x8.mul(v128.and(i16x8.shr_u(v, 8), LANE4), v128.load(qv, 32)));
          a16 = i16x8.add(a16, i16x8.mul(i16x8.shr_u(v, 12), v128.load(qv, 48)));
          acc = i32x4.add(acc, i32x4.add(i32x4.extend_low_i16x8_s(a16), i32x4.extend_high_i16x8_s(a16)));
        }
        i0 = <i64>i32x4.extract_lane(acc, 0) - corr; i1 = <i64>i32x4.extract_lane(acc, 1) - corr;
        i2 = <i64>i32x4.extract_lane(acc, 2) - corr; i3 = <i64>i32x4.extract_lane(acc, 3) - corr;
      } else if (dgs <= 4) {
        // signed query codes times biased key codes u = k + 8 in four 16-bit lanes, started at
        // 2^15 - 8 * sum qc so that each lane ends at idot + 2^15 (|idot| <= 16 * 127 * 8 < 2^15)
        let acc: u64 = BIAS16 + <u64>(-corr) * ONES16;
        for (let dg = 0; dg < dgs; dg++) {
          const w = load<u64>(tp);
          tp += 8;
          const qd = qch + <usize>(dg << 2);
          acc += (w & LANES16) * <u64>load<i8>(qd) + ((w >> 4) & LANES16) * <u64>load<i8>(qd, 1)
            + ((w >> 8) & LANES16) * <u64>load<i8>(qd, 2) + ((w >> 12) & LANES16) * <u64>load<i8>(qd, 3);
        }
        i0 = <i64>(acc & 0xffff) - 0x8000; i1 = <i64>((acc >> 16) & 0xffff) - 0x8000;
        i2 = <i64>((acc >> 32) & 0xffff) - 0x8000; i3 = <i64>(acc >> 48) - 0x8000;
      } else {
        // 16 dims per flush keep each lane's signed sum within +-2^15 (16 * 127 * 15)
        i0 = -corr; i1 = -corr; i2 = -corr; i3 = -corr;
        for (let d0 = 0; d0 < dgs; d0 += 4) {
          let acc: u64 = BIAS16;
          const dend = min(d0 + 4, dgs);
          for (let dg = d0; dg < dend; dg++) {
            const w = load<u64>(tp);
            tp += 8;
            const qd = qch + <usize>(dg << 2);
            acc += (w & LANES16) * <u64>load<i8>(qd) + ((w >> 4) & LANES16) * <u64>load<i8>(qd, 1)
              + ((w >> 8) & LANES16) * <u64>load<i8>(qd, 2) + ((w >> 12) & LANES16) * <u64>load<i8>(qd, 3);
          }
          i0 += <i64>(acc & 0xffff) - 0x8000; i1 += <i64>((acc >> 16) & 0xffff) - 0x8000;
          i2 += <i64>((acc >> 32) & 0xffff) - 0x8000; i3 += <i64>(acc >> 48) - 0x8000;
        }
      }
      const kp = ksBase + (<usize>b << 3);
      const zt = zr + (<usize>b << 4);
      const live = b < lastB ? 3 : lastJ; // the block's last position lane
      const z0 = zScore(i0, <u32>load<u16>(kp), a, c);
      store<i32>(zt, z0);
      mx = max(mx, z0);
      if (live >= 1) {
        const z1 = zScore(i1, <u32>load<u16>(kp, 2), a, c);
        store<i32>(zt, z1, 4);
        mx = max(mx, z1);
      }
      if (live >= 2) {
        const z2 = zScore(i2, <u32>load<u16>(kp, 4), a, c);
        store<i32>(zt, z2, 8);
        mx = max(mx, z2);
      }
      if (live == 3) {
        const z3 = zScore(i3, <u32>load<u16>(kp, 6), a, c);
        store<i32>(zt, z3, 12);
        mx = max(mx, z3);
      }
    }

    // pass 2: exp weights e_t and value weights wc_t (in place of z_t), then the value sums, one dim
    // group (SIMD: two) at a time across the blocks with its sums in locals
    let esum: i64 = 0, wsum: i64 = 0;
    for (let t = 0; t <= pos; t++) {
      const zt = zr + (<usize>t << 2);
      const e = exp2q(mx - load<i32>(zt));
      const bv = <u32>load<u16>(vsBase + (<usize>t << 1));
      const sh = vShift(bv, evTop);
      const wc = (e * vMant(bv) + (<u32>1 << (sh - 1))) >> sh; // rounded to nearest
      store<u32>(zt, wc);
      esum += <i64>e;
      wsum += <i64>wc;
    }
    // out_i = f32(f64(sum_t wc_t * (u_t,i - 8)) * 2^(Evmax - 125) / sum_t e_t)
    const scale: f64 = pow2(<i32>ev - 125) / <f64>esum;
    const bias = 8 * wsum;
    const oh = out + (<usize>(hh * hs) << 2);
    if (ASC_FEATURE_SIMD) {
      // lanes = 8 dims (two tiles); u32 lanes accumulate wc * u exactly
      const LANE4 = i16x8.splat(15);
      for (let p = 0; p < npairs; p++) {
        let lo = i32x4.splat(0), hi = i32x4.splat(0);
        const two = 2 * p + 1 < dgs;
        for (let b = 0; b < nb; b++) {
          const wp = zr + (<usize>b << 4);
          const live = b < lastB ? 3 : lastJ;
          const v0 = i16x8.splat(<i16>wcAt(wp, 0, live)), v1 = i16x8.splat(<i16>wcAt(wp, 1, live));
          const v2 = i16x8.splat(<i16>wcAt(wp, 2, live)), v3 = i16x8.splat(<i16>wcAt(wp, 3, live));
          const tp = tile(vCodes, l, g, b, 2 * p);
          const v = two ? v128.load(tp) : v128.load64_zero(tp);
          const c0 = v128.and(v, LANE4), c1 = v128.and(i16x8.shr_u(v, 4), LANE4), c2 = v128.and(i16x8.shr_u(v, 8), LANE4), c3 = i16x8.shr_u(v, 12);
          lo = i32x4.add(lo, i32x4.add(i32x4.add(i32x4.extmul_low_i16x8_u(c0, v0), i32x4.extmul_low_i16x8_u(c1, v1)), i32x4.add(i32x4.extmul_low_i16x8_u(c2, v2), i32x4.extmul_low_i16x8_u(c3, v3))));
          hi = i32x4.add(hi, i32x4.add(i32x4.add(i32x4.extmul_high_i16x8_u(c0, v0), i32x4.extmul_high_i16x8_u(c1, v1)), i32x4.add(i32x4.extmul_high_i16x8_u(c2, v2), i32x4.extmul_high_i16x8_u(c3, v3))));
        }
        const o = oh + (<usize>(8 * p) << 2);
        outLane(o, 0, <i64>i32x4.extract_lane(lo, 0), bias, scale); outLane(o, 4, <i64>i32x4.extract_lane(lo, 1), bias, scale);
        outLane(o, 8, <i64>i32x4.extract_lane(lo, 2), bias, scale); outLane(o, 12, <i64>i32x4.extract_lane(lo, 3), bias, scale);
        if (two) {
          outLane(o, 16, <i64>i32x4.extract_lane(hi, 0), bias, scale); outLane(o, 20, <i64>i32x4.extract_lane(hi, 1), bias, scale);
          outLane(o, 24, <i64>i32x4.extract_lane(hi, 2), bias, scale); outLane(o, 28, <i64>i32x4.extract_lane(hi, 3), bias, scale);
        }
      }
    } else {
      for (let dg = 0; dg < dgs; dg++) {
        // lanes 0, 2 (dims 4dg, 4dg+2) and 1, 3 in 32-bit halves
        let s02: u64 = 0, s13: u64 = 0;
        let tp = tile(vCodes, l, g, 0, dg);
        for (let b = 0; b < nb; b++) {
          const wp = zr + (<usize>b << 4);
          const live = b < lastB ? 3 : lastJ;
          const w0 = <u64>wcAt(wp, 0, live), w1 = <u64>wcAt(wp, 1, live), w2 = <u64>wcAt(wp, 2, live), w3 = <u64>wcAt(wp, 3, live);
          const v = load<u64>(tp);
          tp += stride;
          s02 += (v & LANES32) * w0 + ((v >> 4) & LANES32) * w1 + ((v >> 8) & LANES32) * w2 + ((v >> 12) & LANES32) * w3;
          s13 += ((v >> 16) & LANES32) * w0 + ((v >> 20) & LANES32) * w1 + ((v >> 24) & LANES32) * w2 + ((v >> 28) & LANES32) * w3;
        }
        const o = oh + (<usize>(dg << 2) << 2);
        outLane(o, 0, <i64>(s02 & 0xffffffff), bias, scale); outLane(o, 4, <i64>(s13 & 0xffffffff), bias, scale);
        outLane(o, 8, <i64>(s02 >> 32), bias, scale); outLane(o, 12, <i64>(s13 >> 32), bias, scale);
      }
    }
  }
}

// Two query heads of one KV head at head size 8 (two K and two V tiles a block: the 260K shape) in one
// pass over the codes, with the same arithmetic as the one-head loop above: each tile's nibbles are
// split once for both heads, the query codes are locals, the exp and value weights go straight into
// the value sums (locals) instead of through att, and only the scores z_t are stored (zrA, zrB: each
// head's row of att). Lanes in loops rather than unrolled: the app's size is context on a board.
function int4PairHs8(l: i32, pos: i32, g: i32, q: usize, out: usize, zrA: usize, zrB: usize, bcap: f64, ev: u32, ksBase: usize, vsBase: usize): void {
  queryHead(q, bcap);
  const a0 = <u64>load<i8>(qbuf), a1 = <u64>load<i8>(qbuf, 1), a2 = <u64>load<i8>(qbuf, 2), a3 = <u64>load<i8>(qbuf, 3);
  const a4 = <u64>load<i8>(qbuf, 4), a5 = <u64>load<i8>(qbuf, 5), a6 = <u64>load<i8>(qbuf, 6), a7 = <u64>load<i8>(qbuf, 7);
  const biasA: u64 = BIAS16 + <u64>(-qCorr) * ONES16, mulA = qA, cA = qC;
  queryHead(q + 32, bcap);
  const b0 = <u64>load<i8>(qbuf), b1 = <u64>load<i8>(qbuf, 1), b2 = <u64>load<i8>(qbuf, 2), b3 = <u64>load<i8>(qbuf, 3);
  const b4 = <u64>load<i8>(qbuf, 4), b5 = <u64>load<i8>(qbuf, 5), b6 = <u64>load<i8>(qbuf, 6), b7 = <u64>load<i8>(qbuf, 7);
  const biasB: u64 = BIAS16 + <u64>(-qCorr) * ONES16, mulB = qA, cB = qC;
  const lastB = pos >> 2;

  // pass 1: scores of both heads (each lane of accA/accB ends at idot + 2^15, as in the one-head loop)
  let mxA = i32.MIN_VALUE, mxB = i32.MIN_VALUE;
  let tp = tile(kCodes, l, g, 0, 0);
  let t = 0;
  for (let b = 0; b <= lastB; b++) {
    const w0 = load<u64>(tp), w1 = load<u64>(tp, 8);
    tp += 16;
    let accA = biasA + (w0 & LANES16) * a0 + ((w0 >> 4) & LANES16) * a1 + ((w0 >> 8) & LANES16) * a2 + ((w0 >> 12) & LANES16) * a3;
    let accB = biasB + (w0 & LANES16) * b0 + ((w0 >> 4) & LANES16) * b1 + ((w0 >> 8) & LANES16) * b2 + ((w0 >> 12) & LANES16) * b3;
    accA += (w1 & LANES16) * a4 + ((w1 >> 4) & LANES16) * a5 + ((w1 >> 8) & LANES16) * a6 + ((w1 >> 12) & LANES16) * a7;
    accB += (w1 & LANES16) * b4 + ((w1 >> 4) & LANES16) * b5 + ((w1 >> 8) & LANES16) * b6 + ((w1 >> 12) & LANES16) * b7;
    const tEnd = b < lastB ? t + 4 : pos + 1;
    for (; t < tEnd; t++) { // lane t & 3
      const kb = <u32>load<u16>(ksBase + (<usize>t << 1));
      const m = <i64>((kb & 127) | 128), e = <i32>(kb >> 7);
      const zA = <i32>(((<i64>(accA & 0xffff) - 0x8000) * m * mulA) >> <i64>(cA - e));
      const zB = <i32>(((<i64>(accB & 0xffff) - 0x8000) * m * mulB) >> <i64>(cB - e));
      store<i32>(zrA + (<usize>t << 2), zA);
      store<i32>(zrB + (<usize>t << 2), zB);
      mxA = max(mxA, zA); mxB = max(mxB, zB);
      accA >>= 16; accB >>= 16;
    }
  }

  // pass 2: exp weights e_t, value weights wc_t and the value sums of both heads, position by
  // position; sAn holds dims n and n + 2 of tile n >> 1 in its 32-bit halves
  const evTop = 9 + <i32>ev;
  let esA: i64 = 0, wsA: i64 = 0, esB: i64 = 0, wsB: i64 = 0;
  let sA0: u64 = 0, sA1: u64 = 0, sA4: u64 = 0, sA5: u64 = 0, sB0: u64 = 0, sB1: u64 = 0, sB4: u64 = 0, sB5: u64 = 0;
  let vt = tile(vCodes, l, g, 0, 0);
  t = 0;
  for (let b = 0; b <= lastB; b++) {
    let v0 = load<u64>(vt), v1 = load<u64>(vt, 8);
    vt += 16;
    const tEnd = b < lastB ? t + 4 : pos + 1;
    for (; t < tEnd; t++) { // nibble t & 3 of each lane
      const bv = <u32>load<u16>(vsBase + (<usize>t << 1));
      const mv = vMant(bv), sh = vShift(bv, evTop);
      const rnd = (<u32>1 << (sh - 1));
      const eA = exp2q(mxA - load<i32>(zrA + (<usize>t << 2)));
      const eB = exp2q(mxB - load<i32>(zrB + (<usize>t << 2)));
      const wA = <u64>((eA * mv + rnd) >> sh), wB = <u64>((eB * mv + rnd) >> sh);
      esA += <i64>eA; wsA += <i64>wA; esB += <i64>eB; wsB += <i64>wB;
      const c0 = v0 & LANES32, d0 = (v0 >> 16) & LANES32, c1 = v1 & LANES32, d1 = (v1 >> 16) & LANES32;
      sA0 += c0 * wA; sA1 += d0 * wA; sA4 += c1 * wA; sA5 += d1 * wA;
      sB0 += c0 * wB; sB1 += d0 * wB; sB4 += c1 * wB; sB5 += d1 * wB;
      v0 >>= 4; v1 >>= 4;
    }
  }
  const pw = pow2(<i32>ev - 125);
  outDims4(out, sA0, sA1, 8 * wsA, pw / <f64>esA);
  outDims4(out + 16, sA4, sA5, 8 * wsA, pw / <f64>esA);
  outDims4(out + 32, sB0, sB1, 8 * wsB, pw / <f64>esB);
  outDims4(out + 48, sB4, sB5, 8 * wsB, pw / <f64>esB);
}

// four dims of output from two SWAR value sums (dims 0, 2 and 1, 3 in their 32-bit halves)
function outDims4(o: usize, s02: u64, s13: u64, bias: i64, scale: f64): void {
  outLane(o, 0, <i64>(s02 & 0xffffffff), bias, scale); outLane(o, 4, <i64>(s13 & 0xffffffff), bias, scale);
  outLane(o, 8, <i64>(s02 >> 32), bias, scale); outLane(o, 12, <i64>(s13 >> 32), bias, scale);
}
