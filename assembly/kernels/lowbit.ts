// INT2/INT3/INT4 asymmetric group kernels: w = d*q + m per group of G weights along K (formats
// i{2,3,4}g{32,64,128}; layouts in host/quant/formats.ts, codes in kernels/codes.ts). The signature and
// f32 epilogue order are the reference's (host/quant/ref/lowbit.ts), so every kernel is bit-exact:
//   per block: iq = sum q*x, sx = sum x (exact i32); acc = acc + (d*iq + m*sx); y = acc * xs[t].
// (|iq| <= 15*127*128 < 2^24, so converting it to f32 is exact, as in the reference.)
// Kernels: naive (one code at a time), swar (four codes per i64 multiply, both builds), simd (16 codes
// per vector). GEMM runs rows outside and tokens inside, so a prefill reads every weight row once.
import { scratch } from '../arena';
import { codeAt, dot4, groupDot16, groupSums, hsum, swarActs } from './codes';
import { LOWBIT_CODES } from './formats.gen';

// the table's block: its head, then the codes (the last field; formats.gen.ts)
@inline function blockBytes(bits: i32, g: i32): i32 {
  return LOWBIT_CODES + ((g * bits) >> 3);
}

@inline function store_y(y: usize, xs: usize, m: i32, t: i32, r: i32, acc: f32): void {
  store<f32>(y + ((<usize>t * <usize>m + <usize>r) << 2), acc * load<f32>(xs + (<usize>t << 2)));
}

// ---- naive: decode one code at a time -------------------------------------------------------------------

@inline function lowbitNaive(bits: i32, g: i32, w: usize, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / g;
  const bytes = blockBytes(bits, g);
  for (let r = 0; r < m; r++) {
    for (let t = 0; t < n; t++) {
      let blk = w + <usize>r * <usize>nb * <usize>bytes;
      let xb = x + <usize>t * <usize>k;
      let acc: f32 = 0;
      for (let b = 0; b < nb; b++) {
        let iq: i32 = 0, sx: i32 = 0;
        for (let i = 0; i < g; i++) {
          const xv = <i32>load<i8>(xb + i);
          iq += codeAt(bits, g, blk + 8, i) * xv;
          sx += xv;
        }
        acc = acc + (load<f32>(blk) * <f32>iq + load<f32>(blk, 4) * <f32>sx);
        blk += bytes;
        xb += g;
      }
      store_y(y, xs, m, t, r, acc);
    }
  }
}

// ---- swar: four codes per i64 multiply (codes.ts dot4) ------------------------------------------------------
// One u64 of codes gives four Q words by one shift and one mask each: 4-bit lanes take the nibbles of
// bytes 0,2,4,6 or 1,3,5,7; 2-bit lanes a slot of those bytes. The activations are rearranged once per
// token (swarActs) in the order the Q words are read, so the inner loop streams them.

const M1: i64 = 0x0001000100010001;
const M2: i64 = 0x0003000300030003;
const M4: i64 = 0x000f000f000f000f;
const B2: i64 = 0x0004000400040004;

// sum q*x over u64 word w of a group's codes;
// X words at xp, 4 a word for 4-bit codes (16 codes), 8 for 2/3-bit (32 codes).
@inline function swarWord(bits: i32, g: i32, codes: usize, xp: usize, w: i32): i64 {
  if (bits == 4) {
    const c = load<i64>(codes + (<usize>w << 3));
    const x = xp + (<usize>w << 5);
    return dot4(c & M4, x) + dot4((c >>> 8) & M4, x + 8) + dot4((c >>> 4) & M4, x + 16) + dot4((c >>> 12) & M4, x + 24);
  }
  const c = load<i64>(codes + (<usize>w << 3));
  const x = xp + (<usize>w << 6);
  if (bits == 2) {
    return dot4(c & M2, x) + dot4((c >>> 8) & M2, x + 8) + dot4((c >>> 2) & M2, x + 16) + dot4((c >>> 10) & M2, x + 24) +
      dot4((c >>> 4) & M2, x + 32) + dot4((c >>> 12) & M2, x + 40) + dot4((c >>> 6) & M2, x + 48) + dot4((c >>> 14) & M2, x + 56);
  }
  // 3-bit: h holds, at byte t bit 2s, the high bit of the code in low byte 8w+t, slot s; it joins the
  // Q word of shift 8p+2s as (h >>> (8p+2s-2)) & 0x0004.. (bit 2 of each lane)
  const hi = codes + (g >> 2);
  let h: i64;
  if (g == 32) {
    const h32 = <i64>load<u32>(hi);
    h = h32 | ((h32 >>> 1) << 32);
  } else {
    h = load<i64>(hi + (<usize>(w << 3) & <usize>((g >> 3) - 1))) >>> <i64>((w << 3) / (g >> 3));
  }
  return dot4((c & M2) | ((h << 2) & B2), x) + dot4(((c >>> 8) & M2) | ((h >>> 6) & B2), x + 8) +
    dot4(((c >>> 2) & M2) | (h & B2), x + 16) + dot4(((c >>> 10) & M2) | ((h >>> 8) & B2), x + 24) +
    dot4(((c >>> 4) & M2) | ((h >>> 2) & B2), x + 32) + dot4(((c >>> 12) & M2) | ((h >>> 10) & B2), x + 40) +
    dot4(((c >>> 6) & M2) | ((h >>> 4) & B2), x + 48) + dot4(((c >>> 14) & M2) | ((h >>> 12) & B2), x + 56);
}

// sum q*x over one group: codes at `codes`, its g/4 X words at `xp`. (A loop: TurboFan runs it 1.5x
// faster than the same words unrolled; wasm3 gains little from unrolling.)
@inline function swarGroup(bits: i32, g: i32, codes: usize, xp: usize): i32 {
  let s: i64 = 0;
  const words = bits == 4 ? g >> 4 : g >> 5; // 2..8
  for (let w = 0; w < words; w++) s += swarWord(bits, g, codes, xp, w);
  return <i32>s;
}

@inline function lowbitSwar(bits: i32, g: i32, w: usize, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / g;
  const bytes = blockBytes(bits, g);
  // scratch: X words (n, k/4) i64, then sums of x (n, nb) i32
  const xwBytes = <usize>n * <usize>k * 2;
  const buf = scratch(<u32>(xwBytes + <usize>n * <usize>nb * 4));
  const sums = buf + xwBytes;
  swarActs(bits, g, x, k, n, buf);
  groupSums(x, k, n, g, sums);
  for (let r = 0; r < m; r++) {
    const row = w + <usize>r * <usize>nb * <usize>bytes;
    for (let t = 0; t < n; t++) {
      let blk = row;
      let xp = buf + <usize>t * <usize>k * 2;
      let sp = sums + <usize>t * <usize>nb * 4;
      let acc: f32 = 0;
      for (let b = 0; b < nb; b++) {
        const iq = swarGroup(bits, g, blk + 8, xp);
        acc = acc + (load<f32>(blk) * <f32>iq + load<f32>(blk, 4) * <f32>load<i32>(sp));
        blk += bytes;
        xp += <usize>g << 1;
        sp += 4;
      }
      store_y(y, xs, m, t, r, acc);
    }
  }
}

// ---- simd: 16 codes per vector ----------------------------------------------------------------------------
// i16 lanes collect two products |q*x| <= 15*127 per chunk; a group has at most 8 chunks: < 32767.

@inline function lowbitSimd(bits: i32, g: i32, w: usize, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  if (ASC_FEATURE_SIMD) {
    const nb = k / g;
    const bytes = blockBytes(bits, g);
    const sums = scratch(<u32>n * <u32>nb * 4);
    groupSums(x, k, n, g, sums);
    for (let r = 0; r < m; r++) {
      const row = w + <usize>r * <usize>nb * <usize>bytes;
      for (let t = 0; t < n; t++) {
        let blk = row;
        let xb = x + <usize>t * <usize>k;
        let sp = sums + <usize>t * <usize>nb * 4;
        let acc: f32 = 0;
        for (let b = 0; b < nb; b++) {
          const iq = hsum(i32x4.extadd_pairwise_i16x8_s(groupDot16(bits, g, blk + 8, xb, i8x16.splat(0), false)));
          acc = acc + (load<f32>(blk) * <f32>iq + load<f32>(blk, 4) * <f32>load<i32>(sp));
          blk += bytes;
          xb += g;
          sp += 4;
        }
        store_y(y, xs, m, t, r, acc);
      }
    }
  } else {
    unreachable();
  }
}

// ---- exports: one line per format and kernel; int4 activations are read as int8 ones -----------------------
export function gemm_i2g32_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitNaive(2, 32, w, x, xs, y, m, k, n); }
export function gemm_i2g32_i8_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSwar(2, 32, w, x, xs, y, m, k, n); }
export function gemm_i2g32_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSimd(2, 32, w, x, xs, y, m, k, n); }
export function gemm_i2g64_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitNaive(2, 64, w, x, xs, y, m, k, n); }
export function gemm_i2g64_i8_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSwar(2, 64, w, x, xs, y, m, k, n); }
export function gemm_i2g64_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSimd(2, 64, w, x, xs, y, m, k, n); }
export function gemm_i2g128_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitNaive(2, 128, w, x, xs, y, m, k, n); }
export function gemm_i2g128_i8_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSwar(2, 128, w, x, xs, y, m, k, n); }
export function gemm_i2g128_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSimd(2, 128, w, x, xs, y, m, k, n); }
export function gemm_i3g32_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitNaive(3, 32, w, x, xs, y, m, k, n); }
export function gemm_i3g32_i8_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSwar(3, 32, w, x, xs, y, m, k, n); }
export function gemm_i3g32_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSimd(3, 32, w, x, xs, y, m, k, n); }
export function gemm_i3g64_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitNaive(3, 64, w, x, xs, y, m, k, n); }
export function gemm_i3g64_i8_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSwar(3, 64, w, x, xs, y, m, k, n); }
export function gemm_i3g64_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSimd(3, 64, w, x, xs, y, m, k, n); }
export function gemm_i3g128_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitNaive(3, 128, w, x, xs, y, m, k, n); }
export function gemm_i3g128_i8_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSwar(3, 128, w, x, xs, y, m, k, n); }
export function gemm_i3g128_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSimd(3, 128, w, x, xs, y, m, k, n); }
export function gemm_i4g32_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitNaive(4, 32, w, x, xs, y, m, k, n); }
export function gemm_i4g32_i8_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSwar(4, 32, w, x, xs, y, m, k, n); }
export function gemm_i4g32_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSimd(4, 32, w, x, xs, y, m, k, n); }
export function gemm_i4g64_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitNaive(4, 64, w, x, xs, y, m, k, n); }
export function gemm_i4g64_i8_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSwar(4, 64, w, x, xs, y, m, k, n); }
export function gemm_i4g64_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSimd(4, 64, w, x, xs, y, m, k, n); }
export function gemm_i4g128_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitNaive(4, 128, w, x, xs, y, m, k, n); }
export function gemm_i4g128_i8_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSwar(4, 128, w, x, xs, y, m, k, n); }
export function gemm_i4g128_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { lowbitSimd(4, 128, w, x, xs, y, m, k, n); }
export function gemm_i2g32_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i2g32_i8_naive(w, ws, x, xs, y, m, k, n); }
export function gemm_i2g32_i4_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i2g32_i8_swar(w, ws, x, xs, y, m, k, n); }
export function gemm_i2g32_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i2g32_i8_simd(w, ws, x, xs, y, m, k, n); }
export function gemm_i2g64_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i2g64_i8_naive(w, ws, x, xs, y, m, k, n); }
export function gemm_i2g64_i4_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i2g64_i8_swar(w, ws, x, xs, y, m, k, n); }
export function gemm_i2g64_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i2g64_i8_simd(w, ws, x, xs, y, m, k, n); }
export function gemm_i2g128_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i2g128_i8_naive(w, ws, x, xs, y, m, k, n); }
export function gemm_i2g128_i4_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i2g128_i8_swar(w, ws, x, xs, y, m, k, n); }
export function gemm_i2g128_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i2g128_i8_simd(w, ws, x, xs, y, m, k, n); }
export function gemm_i3g32_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i3g32_i8_naive(w, ws, x, xs, y, m, k, n); }
export function gemm_i3g32_i4_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i3g32_i8_swar(w, ws, x, xs, y, m, k, n); }
export function gemm_i3g32_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i3g32_i8_simd(w, ws, x, xs, y, m, k, n); }
export function gemm_i3g64_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i3g64_i8_naive(w, ws, x, xs, y, m, k, n); }
export function gemm_i3g64_i4_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i3g64_i8_swar(w, ws, x, xs, y, m, k, n); }
export function gemm_i3g64_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i3g64_i8_simd(w, ws, x, xs, y, m, k, n); }
export function gemm_i3g128_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i3g128_i8_naive(w, ws, x, xs, y, m, k, n); }
export function gemm_i3g128_i4_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i3g128_i8_swar(w, ws, x, xs, y, m, k, n); }
export function gemm_i3g128_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i3g128_i8_simd(w, ws, x, xs, y, m, k, n); }
export function gemm_i4g32_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i4g32_i8_naive(w, ws, x, xs, y, m, k, n); }
export function gemm_i4g32_i4_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i4g32_i8_swar(w, ws, x, xs, y, m, k, n); }
export function gemm_i4g32_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i4g32_i8_simd(w, ws, x, xs, y, m, k, n); }
export function gemm_i4g64_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i4g64_i8_naive(w, ws, x, xs, y, m, k, n); }
export function gemm_i4g64_i4_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i4g64_i8_swar(w, ws, x, xs, y, m, k, n); }
export function gemm_i4g64_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i4g64_i8_simd(w, ws, x, xs, y, m, k, n); }
export function gemm_i4g128_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i4g128_i8_naive(w, ws, x, xs, y, m, k, n); }
export function gemm_i4g128_i4_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i4g128_i8_swar(w, ws, x, xs, y, m, k, n); }
export function gemm_i4g128_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_i4g128_i8_simd(w, ws, x, xs, y, m, k, n); }
