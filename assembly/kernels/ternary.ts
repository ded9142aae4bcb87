// Ternary (BitNet b1.58) GEMM kernels: y = wscale * xs[t] * sum_k w[r,k] * xq[t,k], w in {-1,0,+1}.
// One signature for every kernel (docs/abi.md):
//   (w: packed (m, k/64) blocks, wscale: f32, x: (n, k) i8, xs: (n) f32, y: (n, m) f32, m, k, n)
// Integer dot products are exact; the epilogue is y = f32(acc) * f32(wscale * xs[t]), the same in
// the reference (host/quant/ref/ternary.ts), so every kernel is bit-exact against it.
// Layouts are in host/quant/formats.ts (tq2, tq1, tb1); K is a multiple of 64, checked by the host.
import { scratch } from '../arena';
import { FMT_TB1_BLOCK, FMT_TB1_BLOCK_BYTES, FMT_TQ1_BLOCK_BYTES, FMT_TQ2_BLOCK_BYTES } from './formats.gen';

const BLOCK: i32 = FMT_TB1_BLOCK; // every ternary format's
const TQ2_BYTES: usize = <usize>FMT_TQ2_BLOCK_BYTES;
const TQ1_BYTES: usize = <usize>FMT_TQ1_BLOCK_BYTES;
const TB1_BYTES: usize = <usize>FMT_TB1_BLOCK_BYTES;

@inline function epilogue(y: usize, xs: usize, wscale: f32, t: i32, m: i32, r: i32, acc: i32): void {
  const s: f32 = wscale * load<f32>(xs + (<usize>t << 2));
  store<f32>(y + ((<usize>t * <usize>m + <usize>r) << 2), <f32>acc * s);
}

// ---- tq2: 2 bits a weight, byte b holds weights b, 16+b, 32+b, 48+b; code c = w + 1 ------------------

// The naive kernel: decode one weight at a time and multiply-accumulate.
export function gemm_tq2_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / BLOCK;
  for (let t = 0; t < n; t++) {
    const xt = x + <usize>t * <usize>k;
    for (let r = 0; r < m; r++) {
      const row = w + <usize>r * <usize>nb * TQ2_BYTES;
      let acc: i32 = 0;
      for (let b = 0; b < nb; b++) {
        const blk = row + <usize>b * TQ2_BYTES;
        const xb = xt + <usize>b * BLOCK;
        for (let i = 0; i < BLOCK; i++) {
          const c = (<i32>load<u8>(blk + (i & 15)) >> ((i >> 4) << 1)) & 3;
          acc += <i32>load<i8>(xb + i) * (c - 1);
        }
      }
      epilogue(y, xs, wscale, t, m, r, acc);
    }
  }
}

// SIMD: 16 codes per shift-and, products by i16x8.extmul, summed in i16 lanes for at most 8 blocks
// (8 blocks * 4 * 2 products of |c*x| <= 2*128 stay below 32767), then widened to i32.
// sum(x * (c - 1)) = sum(x * c) - sum(x): the sum of x is computed once per token.
export function gemm_tq2_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  if (ASC_FEATURE_SIMD) {
    const nb = k / BLOCK;
    const three = i8x16.splat(3);
    // Rows outside, tokens inside: in a prefill GEMM each weight row is read from memory once.
    const sums = scratch(<u32>n << 2);
    for (let t = 0; t < n; t++) {
      const xt = x + <usize>t * <usize>k;
      let sumx: i32 = 0;
      for (let i = 0; i < k; i++) sumx += <i32>load<i8>(xt + i);
      store<i32>(sums + (<usize>t << 2), sumx);
    }
    let r = 0;
    // Four rows at a time share every activation load.
    for (; r + 4 <= m; r += 4) {
      for (let t = 0; t < n; t++) {
        const xt = x + <usize>t * <usize>k;
        const sumx = load<i32>(sums + (<usize>t << 2));
        const row0 = w + <usize>r * <usize>nb * TQ2_BYTES;
        const stride = <usize>nb * TQ2_BYTES;
        let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
        for (let b0 = 0; b0 < nb; b0 += 8) {
          const bend = min(b0 + 8, nb);
          let s0 = i16x8.splat(0), s1 = i16x8.splat(0), s2 = i16x8.splat(0), s3 = i16x8.splat(0);
          for (let b = b0; b < bend; b++) {
            const off = <usize>b * TQ2_BYTES;
            const w0 = v128.load(row0 + off), w1 = v128.load(row0 + stride + off);
            const w2 = v128.load(row0 + 2 * stride + off), w3 = v128.load(row0 + 3 * stride + off);
            const xb = xt + <usize>b * BLOCK;
            for (let j: u32 = 0; j < 4; j++) {
              const xv = v128.load(xb + (<usize>j << 4));
              const sh = j << 1;
              const c0 = v128.and(i16x8.shr_u(w0, sh), three);
              const c1 = v128.and(i16x8.shr_u(w1, sh), three);
              const c2 = v128.and(i16x8.shr_u(w2, sh), three);
              const c3 = v128.and(i16x8.shr_u(w3, sh), three);
              s0 = i16x8.add(s0, i16x8.add(i16x8.extmul_low_i8x16_s(c0, xv), i16x8.extmul_high_i8x16_s(c0, xv)));
              s1 = i16x8.add(s1, i16x8.add(i16x8.extmul_low_i8x16_s(c1, xv), i16x8.extmul_high_i8x16_s(c1, xv)));
              s2 = i16x8.add(s2, i16x8.add(i16x8.extmul_low_i8x16_s(c2, xv), i16x8.extmul_high_i8x16_s(c2, xv)));
              s3 = i16x8.add(s3, i16x8.add(i16x8.extmul_low_i8x16_s(c3, xv), i16x8.extmul_high_i8x16_s(c3, xv)));
            }
          }
          a0 = i32x4.add(a0, i32x4.extadd_pairwise_i16x8_s(s0));
          a1 = i32x4.add(a1, i32x4.extadd_pairwise_i16x8_s(s1));
          a2 = i32x4.add(a2, i32x4.extadd_pairwise_i16x8_s(s2));
          a3 = i32x4.add(a3, i32x4.extadd_pairwise_i16x8_s(s3));
        }
        epilogue(y, xs, wscale, t, m, r, hsum(a0) - sumx);
        epilogue(y, xs, wscale, t, m, r + 1, hsum(a1) - sumx);
        epilogue(y, xs, wscale, t, m, r + 2, hsum(a2) - sumx);
        epilogue(y, xs, wscale, t, m, r + 3, hsum(a3) - sumx);
      }
    }
    for (; r < m; r++) {
      for (let t = 0; t < n; t++) {
        const xt = x + <usize>t * <usize>k;
        const sumx = load<i32>(sums + (<usize>t << 2));
        const row = w + <usize>r * <usize>nb * TQ2_BYTES;
        let a = i32x4.splat(0);
        for (let b0 = 0; b0 < nb; b0 += 8) {
          const bend = min(b0 + 8, nb);
          let s = i16x8.splat(0);
          for (let b = b0; b < bend; b++) {
            const wv = v128.load(row + <usize>b * TQ2_BYTES);
            const xb = xt + <usize>b * BLOCK;
            for (let j: u32 = 0; j < 4; j++) {
              const xv = v128.load(xb + (<usize>j << 4));
              const c = v128.and(i16x8.shr_u(wv, j << 1), three);
              s = i16x8.add(s, i16x8.add(i16x8.extmul_low_i8x16_s(c, xv), i16x8.extmul_high_i8x16_s(c, xv)));
            }
          }
          a = i32x4.add(a, i32x4.extadd_pairwise_i16x8_s(s));
        }
        epilogue(y, xs, wscale, t, m, r, hsum(a) - sumx);
      }
    }
  } else {
    unreachable();
  }
}

@inline function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

// ---- tq1: 5 trits a byte (ceil(v*256/243) encoding), digit t = ((byte*3^t mod 256)*3) >> 8 ----------

export function gemm_tq1_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / BLOCK;
  for (let t = 0; t < n; t++) {
    const xt = x + <usize>t * <usize>k;
    for (let r = 0; r < m; r++) {
      const row = w + <usize>r * <usize>nb * TQ1_BYTES;
      let acc: i32 = 0;
      for (let b = 0; b < nb; b++) {
        const blk = row + <usize>b * TQ1_BYTES;
        const xb = xt + <usize>b * BLOCK;
        for (let i = 0; i < 12; i++) {
          let q = <u32>load<u8>(blk + i);
          for (let d = 0; d < 5; d++) {
            const c = <i32>((q * 3) >> 8);
            acc += <i32>load<i8>(xb + i + 12 * d) * (c - 1);
            q = (q * 3) & 0xff;
          }
        }
        let q = <u32>load<u8>(blk + 12);
        for (let d = 0; d < 4; d++) {
          const c = <i32>((q * 3) >> 8);
          acc += <i32>load<i8>(xb + 60 + d) * (c - 1);
          q = (q * 3) & 0xff;
        }
      }
      epilogue(y, xs, wscale, t, m, r, acc);
    }
  }
}

// SIMD: the 12 five-trit bytes of a block decode 12 lanes at a time with u16 multiplies
// (q*3 keeps the low byte for the next digit, its high byte is the digit).
export function gemm_tq1_i8_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  if (ASC_FEATURE_SIMD) {
    const nb = k / BLOCK;
    const lowByte = i16x8.splat(0xff);
    for (let t = 0; t < n; t++) {
      const xt = x + <usize>t * <usize>k;
      let sumx: i32 = 0;
      for (let i = 0; i < k; i++) sumx += <i32>load<i8>(xt + i);
      for (let r = 0; r < m; r++) {
        const row = w + <usize>r * <usize>nb * TQ1_BYTES;
        let acc = i32x4.splat(0);
        let tail: i32 = 0;
        for (let b = 0; b < nb; b++) {
          const blk = row + <usize>b * TQ1_BYTES;
          const xb = xt + <usize>b * BLOCK;
          // bytes 0..11 as u16 lanes (two vectors of 8; lanes 12..15 are masked out by zero codes)
          const raw = v128.load(blk); // reads 16 bytes: the block is followed by at least 3 more (next block or tail pad)
          let qlo = i16x8.extend_low_i8x16_u(raw);
          let qhi = v128.and(i16x8.extend_high_i8x16_u(raw), i16x8(-1, -1, -1, -1, 0, 0, 0, 0));
          for (let d = 0; d < 5; d++) {
            qlo = i16x8.mul(qlo, i16x8.splat(3));
            qhi = i16x8.mul(qhi, i16x8.splat(3));
            const clo = i16x8.shr_u(qlo, 8), chi = i16x8.shr_u(qhi, 8);
            qlo = v128.and(qlo, lowByte);
            qhi = v128.and(qhi, lowByte);
            // x for weights i + 12d, i = 0..11: load 16 and use lanes 0..11
            const xv = v128.load(xb + 12 * d);
            const xlo = i16x8.extend_low_i8x16_s(xv), xhi = v128.and(i16x8.extend_high_i8x16_s(xv), i16x8(-1, -1, -1, -1, 0, 0, 0, 0));
            acc = i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(clo, xlo), i32x4.dot_i16x8_s(chi, xhi)));
          }
          let q = <u32>load<u8>(blk + 12);
          for (let d = 0; d < 4; d++) {
            tail += <i32>load<i8>(xb + 60 + d) * <i32>((q * 3) >> 8);
            q = (q * 3) & 0xff;
          }
        }
        epilogue(y, xs, wscale, t, m, r, hsum(acc) + tail - sumx);
      }
    }
  } else {
    unreachable();
  }
}

// ---- tb1: bit planes, u64 plus mask then u64 minus mask per 64 weights --------------------------------

export function gemm_tb1_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / BLOCK;
  for (let t = 0; t < n; t++) {
    const xt = x + <usize>t * <usize>k;
    for (let r = 0; r < m; r++) {
      const row = w + <usize>r * <usize>nb * TB1_BYTES;
      let acc: i32 = 0;
      for (let b = 0; b < nb; b++) {
        const p = load<u64>(row + <usize>b * TB1_BYTES);
        const q = load<u64>(row + <usize>b * TB1_BYTES + 8);
        const xb = xt + <usize>b * BLOCK;
        for (let i = 0; i < BLOCK; i++) {
          const wi = <i32>((p >> <u64>i) & 1) - <i32>((q >> <u64>i) & 1);
          acc += <i32>load<i8>(xb + i) * wi;
        }
      }
      epilogue(y, xs, wscale, t, m, r, acc);
    }
  }
}

// Bit-serial (BitMoD's processing element in software): the activations of each 64-weight block are
// transposed once per token into `bits` u64 planes; then dot = sum_j c_j * (popcnt(X_j & P) - popcnt(X_j & M))
// with c_j = 2^j, and c_(bits-1) = -2^(bits-1) for the two's-complement sign plane.
// Per-plane counts are kept in i64 locals across the whole row and weighted once at its end.
// Interpreters (wasm3) pay per instruction, so the kernels count them: see the identity below.
// planes: (nb, bits) u64. Eight activations (one u64) at a time: for plane j, bit j of each byte is
// masked to the byte's low bit and one multiply gathers the eight bits into the top byte (bit i from
// byte i: the multiplier's terms 2^(56-7i) never collide), about six instructions per 8 x 1 bits
// instead of six per bit.
const LOW_BITS: u64 = 0x0101010101010101;
const GATHER: u64 = 0x0102040810204080;
@inline function gather8(word: u64, j: u64, at: u64): u64 {
  return (((word >> j) & LOW_BITS) * GATHER >> 56) << at;
}
function transposePlanes(xt: usize, nb: i32, bits: i32, planes: usize): void {
  for (let b = 0; b < nb; b++) {
    const xb = xt + <usize>b * BLOCK;
    const out = planes + (<usize>(b * bits) << 3);
    let p0: u64 = 0, p1: u64 = 0, p2: u64 = 0, p3: u64 = 0, p4: u64 = 0, p5: u64 = 0, p6: u64 = 0, p7: u64 = 0;
    for (let i = 0; i < 8; i++) {
      const word = load<u64>(xb + (<usize>i << 3));
      const at = <u64>(i << 3);
      p0 |= gather8(word, 0, at); p1 |= gather8(word, 1, at); p2 |= gather8(word, 2, at); p3 |= gather8(word, 3, at);
      if (bits == 8) { p4 |= gather8(word, 4, at); p5 |= gather8(word, 5, at); p6 |= gather8(word, 6, at); p7 |= gather8(word, 7, at); }
    }
    store<u64>(out, p0); store<u64>(out, p1, 8); store<u64>(out, p2, 16); store<u64>(out, p3, 24);
    if (bits == 8) { store<u64>(out, p4, 32); store<u64>(out, p5, 40); store<u64>(out, p6, 48); store<u64>(out, p7, 56); }
  }
}

// GEMV (decode) with the activation planes in locals: wasm3 keeps locals in slots that an operation
// reads directly, while every load is a costly instruction of its own, so the planes of up to
// GEMV_CHUNK blocks are loaded once per call and each row then loads only its own two words a block.
// Measured under wasm3 against the former two-rows-per-plane-load loop: 15-30 % faster at K 320-768,
// as fast at K 64. Blocks are unrolled, each nested under `nb > b`; a longer row takes several calls
// that carry the integer partial sums in y (carry: add the one there; last: store the f32 result).
const GEMV_CHUNK: i32 = 6;
function gemvChunk(w: usize, rowBytes: usize, planes: usize, y: usize, m: i32, nb: i32, s: f32, carry: bool, last: bool): void {
  let x00: i64 = 0, x01: i64 = 0, x02: i64 = 0, x03: i64 = 0, x04: i64 = 0, x05: i64 = 0, x06: i64 = 0, x07: i64 = 0;
  let x10: i64 = 0, x11: i64 = 0, x12: i64 = 0, x13: i64 = 0, x14: i64 = 0, x15: i64 = 0, x16: i64 = 0, x17: i64 = 0;
  let x20: i64 = 0, x21: i64 = 0, x22: i64 = 0, x23: i64 = 0, x24: i64 = 0, x25: i64 = 0, x26: i64 = 0, x27: i64 = 0;
  let x30: i64 = 0, x31: i64 = 0, x32: i64 = 0, x33: i64 = 0, x34: i64 = 0, x35: i64 = 0, x36: i64 = 0, x37: i64 = 0;
  let x40: i64 = 0, x41: i64 = 0, x42: i64 = 0, x43: i64 = 0, x44: i64 = 0, x45: i64 = 0, x46: i64 = 0, x47: i64 = 0;
  let x50: i64 = 0, x51: i64 = 0, x52: i64 = 0, x53: i64 = 0, x54: i64 = 0, x55: i64 = 0, x56: i64 = 0, x57: i64 = 0;
  x00 = load<i64>(planes, 0); x01 = load<i64>(planes, 8); x02 = load<i64>(planes, 16); x03 = load<i64>(planes, 24);
  x04 = load<i64>(planes, 32); x05 = load<i64>(planes, 40); x06 = load<i64>(planes, 48); x07 = load<i64>(planes, 56);
  if (nb > 1) {
    x10 = load<i64>(planes, 64); x11 = load<i64>(planes, 72); x12 = load<i64>(planes, 80); x13 = load<i64>(planes, 88);
    x14 = load<i64>(planes, 96); x15 = load<i64>(planes, 104); x16 = load<i64>(planes, 112); x17 = load<i64>(planes, 120);
    if (nb > 2) {
      x20 = load<i64>(planes, 128); x21 = load<i64>(planes, 136); x22 = load<i64>(planes, 144); x23 = load<i64>(planes, 152);
      x24 = load<i64>(planes, 160); x25 = load<i64>(planes, 168); x26 = load<i64>(planes, 176); x27 = load<i64>(planes, 184);
      if (nb > 3) {
        x30 = load<i64>(planes, 192); x31 = load<i64>(planes, 200); x32 = load<i64>(planes, 208); x33 = load<i64>(planes, 216);
        x34 = load<i64>(planes, 224); x35 = load<i64>(planes, 232); x36 = load<i64>(planes, 240); x37 = load<i64>(planes, 248);
        if (nb > 4) {
          x40 = load<i64>(planes, 256); x41 = load<i64>(planes, 264); x42 = load<i64>(planes, 272); x43 = load<i64>(planes, 280);
          x44 = load<i64>(planes, 288); x45 = load<i64>(planes, 296); x46 = load<i64>(planes, 304); x47 = load<i64>(planes, 312);
          if (nb > 5) {
            x50 = load<i64>(planes, 320); x51 = load<i64>(planes, 328); x52 = load<i64>(planes, 336); x53 = load<i64>(planes, 344);
            x54 = load<i64>(planes, 352); x55 = load<i64>(planes, 360); x56 = load<i64>(planes, 368); x57 = load<i64>(planes, 376);
          }
        }
      }
    }
  }
  const end = y + (<usize>m << 2);
  for (; y < end; y += 4) {
    let nz = load<i64>(w), q = load<i64>(w, 8);
    nz |= q;
    let sm = popcnt(q);
    let s0 = popcnt(q ^ (x00 & nz)), s1 = popcnt(q ^ (x01 & nz)), s2 = popcnt(q ^ (x02 & nz)), s3 = popcnt(q ^ (x03 & nz));
    let s4 = popcnt(q ^ (x04 & nz)), s5 = popcnt(q ^ (x05 & nz)), s6 = popcnt(q ^ (x06 & nz)), s7 = popcnt(q ^ (x07 & nz));
    if (nb > 1) {
      nz = load<i64>(w, 16); q = load<i64>(w, 24); nz |= q; sm += popcnt(q);
      s0 += popcnt(q ^ (x10 & nz)); s1 += popcnt(q ^ (x11 & nz)); s2 += popcnt(q ^ (x12 & nz)); s3 += popcnt(q ^ (x13 & nz));
      s4 += popcnt(q ^ (x14 & nz)); s5 += popcnt(q ^ (x15 & nz)); s6 += popcnt(q ^ (x16 & nz)); s7 += popcnt(q ^ (x17 & nz));
      if (nb > 2) {
        nz = load<i64>(w, 32); q = load<i64>(w, 40); nz |= q; sm += popcnt(q);
        s0 += popcnt(q ^ (x20 & nz)); s1 += popcnt(q ^ (x21 & nz)); s2 += popcnt(q ^ (x22 & nz)); s3 += popcnt(q ^ (x23 & nz));
        s4 += popcnt(q ^ (x24 & nz)); s5 += popcnt(q ^ (x25 & nz)); s6 += popcnt(q ^ (x26 & nz)); s7 += popcnt(q ^ (x27 & nz));
        if (nb > 3) {
          nz = load<i64>(w, 48); q = load<i64>(w, 56); nz |= q; sm += popcnt(q);
          s0 += popcnt(q ^ (x30 & nz)); s1 += popcnt(q ^ (x31 & nz)); s2 += popcnt(q ^ (x32 & nz)); s3 += popcnt(q ^ (x33 & nz));
          s4 += popcnt(q ^ (x34 & nz)); s5 += popcnt(q ^ (x35 & nz)); s6 += popcnt(q ^ (x36 & nz)); s7 += popcnt(q ^ (x37 & nz));
          if (nb > 4) {
            nz = load<i64>(w, 64); q = load<i64>(w, 72); nz |= q; sm += popcnt(q);
            s0 += popcnt(q ^ (x40 & nz)); s1 += popcnt(q ^ (x41 & nz)); s2 += popcnt(q ^ (x42 & nz)); s3 += popcnt(q ^ (x43 & nz));
            s4 += popcnt(q ^ (x44 & nz)); s5 += popcnt(q ^ (x45 & nz)); s6 += popcnt(q ^ (x46 & nz)); s7 += popcnt(q ^ (x47 & nz));
            if (nb > 5) {
              nz = load<i64>(w, 80); q = load<i64>(w, 88); nz |= q; sm += popcnt(q);
              s0 += popcnt(q ^ (x50 & nz)); s1 += popcnt(q ^ (x51 & nz)); s2 += popcnt(q ^ (x52 & nz)); s3 += popcnt(q ^ (x53 & nz));
              s4 += popcnt(q ^ (x54 & nz)); s5 += popcnt(q ^ (x55 & nz)); s6 += popcnt(q ^ (x56 & nz)); s7 += popcnt(q ^ (x57 & nz));
            }
          }
        }
      }
    }
    w += rowBytes;
    let acc = <i32>(s0 + (s1 << 1) + (s2 << 2) + (s3 << 3) + (s4 << 4) + (s5 << 5) + (s6 << 6) - (s7 << 7) + sm);
    if (carry) acc += load<i32>(y);
    if (last) store<f32>(y, <f32>acc * s);
    else store<i32>(y, acc);
  }
}

export function gemm_tb1_i8_bitserial(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / BLOCK;
  const planes = scratch(<u32>n * <u32>nb * 64);
  for (let t = 0; t < n; t++) transposePlanes(x + <usize>t * <usize>k, nb, 8, planes + <usize>t * <usize>nb * 64);
  if (n == 1) {
    // GEMV (decode): the planes of up to GEMV_CHUNK blocks in locals, every row against them
    const s: f32 = wscale * load<f32>(xs);
    const rb = <usize>nb << 4;
    for (let c = 0; c < nb; c += GEMV_CHUNK) {
      gemvChunk(w + (<usize>c << 4), rb, planes + (<usize>c << 6), y, m, min(nb - c, GEMV_CHUNK), s, c > 0, c + GEMV_CHUNK >= nb);
    }
    return;
  }
  // Rows outside, tokens inside: in a prefill GEMM each weight row is read from memory once.
  for (let r = 0; r < m; r++) {
    for (let t = 0; t < n; t++) {
      let row = w + <usize>r * <usize>nb * 16;
      let pl = planes + <usize>t * <usize>nb * 64;
      // With P and M disjoint, popcnt(A&P) - popcnt(A&M) = popcnt(M ^ (A & (P|M))) - popcnt(M): one
      // popcount per plane instead of two. The popcnt(M) terms sum to -popcnt(M) * sum_j c_j = +popcnt(M).
      let s0: i64 = 0, s1: i64 = 0, s2: i64 = 0, s3: i64 = 0, s4: i64 = 0, s5: i64 = 0, s6: i64 = 0, s7: i64 = 0, sm: i64 = 0;
      for (let b = 0; b < nb; b++) {
        const q = load<i64>(row, 8);
        const nz = load<i64>(row) | q;
        sm += popcnt(q);
        s0 += popcnt(q ^ (load<i64>(pl, 0) & nz));
        s1 += popcnt(q ^ (load<i64>(pl, 8) & nz));
        s2 += popcnt(q ^ (load<i64>(pl, 16) & nz));
        s3 += popcnt(q ^ (load<i64>(pl, 24) & nz));
        s4 += popcnt(q ^ (load<i64>(pl, 32) & nz));
        s5 += popcnt(q ^ (load<i64>(pl, 40) & nz));
        s6 += popcnt(q ^ (load<i64>(pl, 48) & nz));
        s7 += popcnt(q ^ (load<i64>(pl, 56) & nz));
        row += 16;
        pl += 64;
      }
      const acc = s0 + (s1 << 1) + (s2 << 2) + (s3 << 3) + (s4 << 4) + (s5 << 5) + (s6 << 6) - (s7 << 7) + sm;
      epilogue(y, xs, wscale, t, m, r, <i32>acc);
    }
  }
}

// int4 activations (values in [-7, 7]) need only 4 planes: half the work of int8.
export function gemm_tb1_i4_bitserial(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / BLOCK;
  const planes = scratch(<u32>n * <u32>nb * 32);
  for (let t = 0; t < n; t++) transposePlanes(x + <usize>t * <usize>k, nb, 4, planes + <usize>t * <usize>nb * 32);
  for (let r = 0; r < m; r++) {
    for (let t = 0; t < n; t++) {
      let row = w + <usize>r * <usize>nb * 16;
      let pl = planes + <usize>t * <usize>nb * 32;
      // The same one-popcount-per-plane identity as the int8 kernel (sum_j c_j = 1+2+4-8 = -1 again).
      let s0: i64 = 0, s1: i64 = 0, s2: i64 = 0, s3: i64 = 0, sm: i64 = 0;
      for (let b = 0; b < nb; b++) {
        const q = load<i64>(row, 8);
        const nz = load<i64>(row) | q;
        sm += popcnt(q);
        s0 += popcnt(q ^ (load<i64>(pl, 0) & nz));
        s1 += popcnt(q ^ (load<i64>(pl, 8) & nz));
        s2 += popcnt(q ^ (load<i64>(pl, 16) & nz));
        s3 += popcnt(q ^ (load<i64>(pl, 24) & nz));
        row += 16;
        pl += 32;
      }
      const acc = s0 + (s1 << 1) + (s2 << 2) - (s3 << 3) + sm;
      epilogue(y, xs, wscale, t, m, r, <i32>acc);
    }
  }
}

// Lookup table (T-MAC): per token, every group of 4 activations gets a 16-entry table of subset sums,
// T[g][idx] = sum of x[4g+i] over the set bits i of idx; a weight nibble of the plus mask and one of the
// minus mask then index it: dot = sum_g T[g][P_g] - T[g][M_g]. Tables are i32: (k/4, 16) = 16*k bytes.
export function gemm_tb1_i8_lut(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / BLOCK;
  const lut = scratch(<u32>k * 16);
  for (let t = 0; t < n; t++) {
    const xt = x + <usize>t * <usize>k;
    for (let g = 0; g < (k >> 2); g++) {
      const x0 = <i32>load<i8>(xt + 4 * g), x1 = <i32>load<i8>(xt + 4 * g + 1);
      const x2 = <i32>load<i8>(xt + 4 * g + 2), x3 = <i32>load<i8>(xt + 4 * g + 3);
      const tg = lut + (<usize>g << 6);
      for (let idx = 0; idx < 16; idx++) {
        const v = (idx & 1 ? x0 : 0) + (idx & 2 ? x1 : 0) + (idx & 4 ? x2 : 0) + (idx & 8 ? x3 : 0);
        store<i32>(tg + (<usize>idx << 2), v);
      }
    }
    for (let r = 0; r < m; r++) {
      let row = w + <usize>r * <usize>nb * 16;
      let tg = lut;
      let acc: i32 = 0;
      for (let b = 0; b < nb; b++) {
        // 32 bits at a time keep the index arithmetic in i32, cheap on every engine
        for (let h = 0; h < 2; h++) {
          let p = load<u32>(row + (h << 2)), q = load<u32>(row + 8 + (h << 2));
          for (let g = 0; g < 8; g++) {
            acc += load<i32>(tg + ((p & 15) << 2)) - load<i32>(tg + ((q & 15) << 2));
            p >>= 4;
            q >>= 4;
            tg += 64;
          }
        }
        row += 16;
      }
      epilogue(y, xs, wscale, t, m, r, acc);
    }
  }
}

// ---- tt4: T-MAC tiles: 16 rows x 4 weights in 16 bytes, byte i = row i's plus nibble | minus nibble << 4 --

export function gemm_tt4_i8_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const groups = k >> 2;
  for (let r = 0; r < m; r++) {
    const base = w + <usize>(r >> 4) * <usize>groups * 16 + <usize>(r & 15);
    for (let t = 0; t < n; t++) {
      const xt = x + <usize>t * <usize>k;
      let acc: i32 = 0;
      for (let g = 0; g < groups; g++) {
        const b = <i32>load<u8>(base + (<usize>g << 4));
        for (let i = 0; i < 4; i++) acc += <i32>load<i8>(xt + (g << 2) + i) * (((b >> i) & 1) - ((b >> (i + 4)) & 1));
      }
      epilogue(y, xs, wscale, t, m, r, acc);
    }
  }
}

// T-MAC with SIMD table lookups: per token, every group g of 4 activations gets a 16-entry table of
// subset sums T_g[idx] (|T| <= 508), split into a low-byte and a high-byte vector. One i8x16.swizzle
// then looks up 16 rows at once: dot += T_g[plus nibble] - T_g[minus nibble], rebuilt as i16 lanes.
// i16 sums are widened every 64 groups (64 * 508 < 32767).
// tables: (n, k/4, 32) bytes
const tt4Out = memory.data(64, 16);

export function gemm_tt4_i8_lut(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  if (ASC_FEATURE_SIMD) {
    const groups = k >> 2;
    const tables = scratch(<u32>n * <u32>groups * 32);
    // T[idx] for idx 0..7 as i16 lanes: x0, x1, x2 masked by bits 0-2 of the lane index; idx 8..15 add x3.
    // Built in vectors: at K = 64 building the tables took as long as the lookups.
    const bit0 = i16x8(0, -1, 0, -1, 0, -1, 0, -1), bit1 = i16x8(0, 0, -1, -1, 0, 0, -1, -1), bit2 = i16x8(0, 0, 0, 0, -1, -1, -1, -1);
    for (let t = 0; t < n; t++) {
      const xt = x + <usize>t * <usize>k;
      let tg = tables + <usize>t * <usize>groups * 32;
      for (let g = 0; g < groups; g++) {
        const xg = xt + (<usize>g << 2);
        const lo = i16x8.add(i16x8.add(v128.and(i16x8.splat(<i16>load<i8>(xg)), bit0), v128.and(i16x8.splat(<i16>load<i8>(xg, 1)), bit1)),
          v128.and(i16x8.splat(<i16>load<i8>(xg, 2)), bit2));
        const hi = i16x8.add(lo, i16x8.splat(<i16>load<i8>(xg, 3)));
        v128.store(tg, i8x16.shuffle(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30));
        v128.store(tg, i8x16.shuffle(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), 16);
        tg += 32;
      }
    }
    const nibble = i8x16.splat(0x0f);
    for (let tile = 0; tile < (m >> 4); tile++) {
      const wt = w + <usize>tile * <usize>groups * 16;
      for (let t = 0; t < n; t++) {
        const tb = tables + <usize>t * <usize>groups * 32;
        let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
        for (let g0 = 0; g0 < groups; g0 += 64) {
          const gend = min(g0 + 64, groups);
          let s0 = i16x8.splat(0), s1 = i16x8.splat(0);
          for (let g = g0; g < gend; g++) {
            const v = v128.load(wt + (<usize>g << 4));
            const tlo = v128.load(tb + (<usize>g << 5)), thi = v128.load(tb + (<usize>g << 5), 16);
            const pi = v128.and(v, nibble);
            const mi = v128.and(i16x8.shr_u(v, 4), nibble);
            const plo = i8x16.swizzle(tlo, pi), phi = i8x16.swizzle(thi, pi);
            const mlo = i8x16.swizzle(tlo, mi), mhi = i8x16.swizzle(thi, mi);
            const p0 = i8x16.shuffle(plo, phi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            const p1 = i8x16.shuffle(plo, phi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            const q0 = i8x16.shuffle(mlo, mhi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            const q1 = i8x16.shuffle(mlo, mhi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            s0 = i16x8.add(s0, i16x8.sub(p0, q0));
            s1 = i16x8.add(s1, i16x8.sub(p1, q1));
          }
          a0 = i32x4.add(a0, i32x4.extend_low_i16x8_s(s0));
          a1 = i32x4.add(a1, i32x4.extend_high_i16x8_s(s0));
          a2 = i32x4.add(a2, i32x4.extend_low_i16x8_s(s1));
          a3 = i32x4.add(a3, i32x4.extend_high_i16x8_s(s1));
        }
        v128.store(tt4Out, a0);
        v128.store(tt4Out, a1, 16);
        v128.store(tt4Out, a2, 32);
        v128.store(tt4Out, a3, 48);
        for (let i = 0; i < 16; i++) epilogue(y, xs, wscale, t, m, (tile << 4) + i, load<i32>(tt4Out + (<usize>i << 2)));
      }
    }
  } else {
    unreachable();
  }
}

// The kernels below read int4 activations exactly as int8 ones (values in [-7, 7] stored one per i8).
export function gemm_tq2_i4_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_tq2_i8_naive(w, wscale, x, xs, y, m, k, n); }
export function gemm_tq2_i4_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_tq2_i8_simd(w, wscale, x, xs, y, m, k, n); }
export function gemm_tq1_i4_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_tq1_i8_naive(w, wscale, x, xs, y, m, k, n); }
export function gemm_tq1_i4_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_tq1_i8_simd(w, wscale, x, xs, y, m, k, n); }
export function gemm_tb1_i4_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_tb1_i8_naive(w, wscale, x, xs, y, m, k, n); }
export function gemm_tb1_i4_lut(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_tb1_i8_lut(w, wscale, x, xs, y, m, k, n); }
export function gemm_tt4_i4_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_tt4_i8_naive(w, wscale, x, xs, y, m, k, n); }
export function gemm_tt4_i4_lut(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { gemm_tt4_i8_lut(w, wscale, x, xs, y, m, k, n); }
