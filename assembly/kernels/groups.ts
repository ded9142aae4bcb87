// Grouped low-bit GEMM kernels: INT2/INT3/INT4 asymmetric groups (w = d*q + m), BitMoD (w = scale *
// grid[q], a per-group grid of FP3/FP4 with one special value) and Q8_0 (w = d*q). The signature and
// the f32 epilogue order are those of the references (host/quant/ref/lowbit.ts, bitmod.ts), so every
// kernel is bit-exact: per block an exact i32 dot, then
//   lowbit: acc = acc + (d*iq + m*sx)   bitmod: acc = acc + scale*iq   q8_0: acc = acc + d*iq
// and y = acc * xs[t]. Code packing (ref/codes.ts): 4-bit byte j = q[j] | q[j+G/2] << 4; 2-bit byte j
// = sum_s q[j+s*G/4] << 2s; 3-bit = 2-bit low bits, then G/16 u16 planes of bit 2.
import { scratch } from '../arena';
import { BITMOD3_GRIDS, BITMOD4_GRIDS } from './formats.gen';

// ---- scalar: decode one code at a time ----------------------------------------------------------------

@inline function codeAt(bits: i32, codes: usize, g: i32, i: i32): i32 {
  if (bits == 4) return i < (g >> 1) ? <i32>load<u8>(codes + i) & 15 : <i32>load<u8>(codes + i - (g >> 1)) >> 4;
  const q = g >> 2;
  const low = (<i32>load<u8>(codes + i % q) >> ((i / q) << 1)) & 3;
  if (bits == 2) return low;
  const h = <i32>load<u16>(codes + q + ((i >> 4) << 1));
  return low | (((h >> (i & 15)) & 1) << 2);
}

// kind: 0 lowbit, 1 bitmod
@inline function groupsNaive(kind: i32, bits: i32, g: i32, w: usize, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / g;
  const bytes = 8 + ((g * bits) >> 3);
  const grids = bits == 3 ? BITMOD3_GRIDS : BITMOD4_GRIDS;
  for (let r = 0; r < m; r++) {
    for (let t = 0; t < n; t++) {
      const xt = x + <usize>t * <usize>k;
      let acc: f32 = 0;
      for (let b = 0; b < nb; b++) {
        const blk = w + (<usize>r * <usize>nb + <usize>b) * <usize>bytes;
        const xb = xt + <usize>b * <usize>g;
        let iq: i32 = 0, sx: i32 = 0;
        if (kind == 0) {
          for (let i = 0; i < g; i++) {
            const xv = <i32>load<i8>(xb + i);
            iq += codeAt(bits, blk + 8, g, i) * xv;
            sx += xv;
          }
          acc = acc + (load<f32>(blk) * <f32>iq + load<f32>(blk, 4) * <f32>sx);
        } else {
          const grid = grids + (<usize>load<u8>(blk, 4) << 4);
          for (let i = 0; i < g; i++) iq += <i32>load<i8>(grid + codeAt(bits, blk + 8, g, i)) * <i32>load<i8>(xb + i);
          acc = acc + load<f32>(blk) * <f32>iq;
        }
      }
      store<f32>(y + ((<usize>t * <usize>m + <usize>r) << 2), acc * load<f32>(xs + (<usize>t << 2)));
    }
  }
}

function q8Naive(w: usize, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k >> 5;
  for (let r = 0; r < m; r++) {
    for (let t = 0; t < n; t++) {
      const xt = x + <usize>t * <usize>k;
      let acc: f32 = 0;
      for (let b = 0; b < nb; b++) {
        const blk = w + (<usize>r * <usize>nb + <usize>b) * 36;
        let iq: i32 = 0;
        for (let i = 0; i < 32; i++) iq += <i32>load<i8>(blk + 4 + i) * <i32>load<i8>(xt + (b << 5) + i);
        acc = acc + load<f32>(blk) * <f32>iq;
      }
      store<f32>(y + ((<usize>t * <usize>m + <usize>r) << 2), acc * load<f32>(xs + (<usize>t << 2)));
    }
  }
}

// ---- SIMD: 16 codes per vector -----------------------------------------------------------------------

// Codes 16*ch .. 16*ch+15 of a group as u8 lanes.
@inline function codes16(bits: i32, codes: usize, g: i32, ch: i32): v128 {
  if (ASC_FEATURE_SIMD) {
    if (bits == 4) {
      const half = g >> 5; // chunks in the low nibbles
      if (ch < half) return v128.and(v128.load(codes + (<usize>ch << 4)), i8x16.splat(15));
      return v128.and(i16x8.shr_u(v128.load(codes + (<usize>(ch - half) << 4)), 4), i8x16.splat(15));
    }
    const q = g >> 2;
    let low: v128;
    if (q >= 16) {
      const s = (ch << 4) / q;
      low = v128.and(i16x8.shr_u(v128.load(codes + <usize>((ch << 4) % q)), <u32>(s << 1)), i8x16.splat(3));
    } else {
      // q == 8 (G = 32): a chunk holds shifts 2s and 2s+2 of the same 8 bytes
      const v = v128.load64_zero(codes);
      const s = ch << 1;
      const a = v128.and(i16x8.shr_u(v, <u32>(s << 1)), i8x16.splat(3));
      const c = v128.and(i16x8.shr_u(v, <u32>((s + 1) << 1)), i8x16.splat(3));
      low = i8x16.shuffle(a, c, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    }
    if (bits == 2) return low;
    const h = v128.load16_splat(codes + q + (<usize>ch << 1));
    const spread = i8x16.swizzle(h, i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    const bit = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
    const high = v128.and(i8x16.eq(v128.and(spread, bit), bit), i8x16.splat(4));
    return v128.or(low, high);
  }
  return v128.splat<i32>(0);
}

@inline function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

// i16 lanes hold at most 8 chunks of 2 products |c*x| <= 16*127 (c <= 15, or |grid| <= 16): < 32767.
@inline function groupsSimd(kind: i32, bits: i32, g: i32, w: usize, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  if (ASC_FEATURE_SIMD) {
    const nb = k / g;
    const bytes = 8 + ((g * bits) >> 3);
    const grids = bits == 3 ? BITMOD3_GRIDS : BITMOD4_GRIDS;
    // sum of x per token and group, shared by every row
    const sums = scratch(<u32>n * <u32>nb << 2);
    if (kind == 0) {
      for (let t = 0; t < n; t++) {
        for (let b = 0; b < nb; b++) {
          let sx: i32 = 0;
          const xb = x + <usize>t * <usize>k + <usize>b * <usize>g;
          for (let i = 0; i < g; i++) sx += <i32>load<i8>(xb + i);
          store<i32>(sums + ((<usize>t * <usize>nb + <usize>b) << 2), sx);
        }
      }
    }
    for (let r = 0; r < m; r++) {
      for (let t = 0; t < n; t++) {
        const xt = x + <usize>t * <usize>k;
        let acc: f32 = 0;
        for (let b = 0; b < nb; b++) {
          const blk = w + (<usize>r * <usize>nb + <usize>b) * <usize>bytes;
          const xb = xt + <usize>b * <usize>g;
          let s = i16x8.splat(0);
          const grid = v128.load(grids + (<usize>load<u8>(blk, 4) << 4));
          for (let ch = 0; ch < (g >> 4); ch++) {
            let c = codes16(bits, blk + 8, g, ch);
            if (kind == 1) c = i8x16.swizzle(grid, c);
            const xv = v128.load(xb + (<usize>ch << 4));
            s = i16x8.add(s, i16x8.add(i16x8.extmul_low_i8x16_s(c, xv), i16x8.extmul_high_i8x16_s(c, xv)));
          }
          const iq = hsum(i32x4.extadd_pairwise_i16x8_s(s));
          if (kind == 0) {
            const sx = load<i32>(sums + ((<usize>t * <usize>nb + <usize>b) << 2));
            acc = acc + (load<f32>(blk) * <f32>iq + load<f32>(blk, 4) * <f32>sx);
          } else {
            acc = acc + load<f32>(blk) * <f32>iq;
          }
        }
        store<f32>(y + ((<usize>t * <usize>m + <usize>r) << 2), acc * load<f32>(xs + (<usize>t << 2)));
      }
    }
  } else {
    unreachable();
  }
}

function q8Simd(w: usize, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  if (ASC_FEATURE_SIMD) {
    const nb = k >> 5;
    for (let r = 0; r < m; r++) {
      for (let t = 0; t < n; t++) {
        const xt = x + <usize>t * <usize>k;
        let acc: f32 = 0;
        for (let b = 0; b < nb; b++) {
          const blk = w + (<usize>r * <usize>nb + <usize>b) * 36;
          const xb = xt + (<usize>b << 5);
          const w0 = v128.load(blk, 4), w1 = v128.load(blk, 20);
          const x0 = v128.load(xb), x1 = v128.load(xb, 16);
          // products reach 127*127: widen each to i32 pairs at once
          const v = i32x4.add(
            i32x4.add(i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_low_i8x16_s(w0, x0)), i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_high_i8x16_s(w0, x0))),
            i32x4.add(i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_low_i8x16_s(w1, x1)), i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_high_i8x16_s(w1, x1))));
          acc = acc + load<f32>(blk) * <f32>hsum(v);
        }
        store<f32>(y + ((<usize>t * <usize>m + <usize>r) << 2), acc * load<f32>(xs + (<usize>t << 2)));
      }
    }
  } else {
    unreachable();
  }
}

// ---- exports: one line per format and kernel (the format table lists them) ------------------------------
export function gemm_q8_0_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { q8Naive(w, x, xs, y, m, k, n); }
export function gemm_q8_0_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { q8Simd(w, x, xs, y, m, k, n); }
export function gemm_i2g32_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsNaive(0, 2, 32, w, x, xs, y, m, k, n); }
export function gemm_i2g32_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsSimd(0, 2, 32, w, x, xs, y, m, k, n); }
export function gemm_i2g64_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsNaive(0, 2, 64, w, x, xs, y, m, k, n); }
export function gemm_i2g64_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsSimd(0, 2, 64, w, x, xs, y, m, k, n); }
export function gemm_i2g128_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsNaive(0, 2, 128, w, x, xs, y, m, k, n); }
export function gemm_i2g128_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsSimd(0, 2, 128, w, x, xs, y, m, k, n); }
export function gemm_i3g32_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsNaive(0, 3, 32, w, x, xs, y, m, k, n); }
export function gemm_i3g32_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsSimd(0, 3, 32, w, x, xs, y, m, k, n); }
export function gemm_i3g64_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsNaive(0, 3, 64, w, x, xs, y, m, k, n); }
export function gemm_i3g64_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsSimd(0, 3, 64, w, x, xs, y, m, k, n); }
export function gemm_i3g128_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsNaive(0, 3, 128, w, x, xs, y, m, k, n); }
export function gemm_i3g128_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsSimd(0, 3, 128, w, x, xs, y, m, k, n); }
export function gemm_i4g32_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsNaive(0, 4, 32, w, x, xs, y, m, k, n); }
export function gemm_i4g32_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsSimd(0, 4, 32, w, x, xs, y, m, k, n); }
export function gemm_i4g64_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsNaive(0, 4, 64, w, x, xs, y, m, k, n); }
export function gemm_i4g64_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsSimd(0, 4, 64, w, x, xs, y, m, k, n); }
export function gemm_i4g128_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsNaive(0, 4, 128, w, x, xs, y, m, k, n); }
export function gemm_i4g128_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsSimd(0, 4, 128, w, x, xs, y, m, k, n); }
export function gemm_bmd3g128_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsNaive(1, 3, 128, w, x, xs, y, m, k, n); }
export function gemm_bmd3g128_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsSimd(1, 3, 128, w, x, xs, y, m, k, n); }
export function gemm_bmd4g128_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsNaive(1, 4, 128, w, x, xs, y, m, k, n); }
export function gemm_bmd4g128_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { groupsSimd(1, 4, 128, w, x, xs, y, m, k, n); }
