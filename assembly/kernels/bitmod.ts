// BitMoD kernels (bmd3g32/64/128, bmd4g32/64/128): per group of G weights, w = scale * grid[code] with the grid
// chosen by the group's selector byte from BITMOD_GRIDS (formats.gen.ts): sign-magnitude FP3/FP4 whose
// negative zero is one special value. The epilogue is the reference's (host/quant/ref/bitmod.ts):
//   per block: iq = sum grid[q]*x (exact integer); acc = acc + scale*iq; y = acc * xs[t].
// Kernels: naive (one code at a time through the grid), simd (16 codes per i8x16.swizzle of the grid),
// bitserial (BitMoD's processing element in software: sign and magnitude bit planes of the weights
// against bit planes of the activations, with popcount).
import { scratch } from '../arena';
import { codeAt, dot4, groupDot16, hsum, xword } from './codes';
import { BITMOD3_GRIDS, BITMOD4_GRIDS, BITMOD_CODES } from './formats.gen';

// the table's block: its head, then the codes (the last field; formats.gen.ts)
@inline function blockBytes(bits: i32, g: i32): i32 {
  return BITMOD_CODES + ((g * bits) >> 3);
}

@inline function gridsOf(bits: i32): usize {
  return bits == 3 ? BITMOD3_GRIDS : BITMOD4_GRIDS; // 16 i8 a selector
}

@inline function store_y(y: usize, xs: usize, m: i32, t: i32, r: i32, acc: f32): void {
  store<f32>(y + ((<usize>t * <usize>m + <usize>r) << 2), acc * load<f32>(xs + (<usize>t << 2)));
}

// ---- naive: one code at a time ----------------------------------------------------------------------------

@inline function bitmodNaive(bits: i32, g: i32, w: usize, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / g;
  const bytes = blockBytes(bits, g);
  for (let r = 0; r < m; r++) {
    for (let t = 0; t < n; t++) {
      let blk = w + <usize>r * <usize>nb * <usize>bytes;
      let xb = x + <usize>t * <usize>k;
      let acc: f32 = 0;
      for (let b = 0; b < nb; b++) {
        const grid = gridsOf(bits) + (<usize>load<u8>(blk, 4) << 4);
        let iq: i32 = 0;
        for (let i = 0; i < g; i++) iq += <i32>load<i8>(grid + codeAt(bits, g, blk + 8, i)) * <i32>load<i8>(xb + i);
        acc = acc + load<f32>(blk) * <f32>iq;
        blk += bytes;
        xb += g;
      }
      store_y(y, xs, m, t, r, acc);
    }
  }
}

// ---- simd: the group's grid is one vector; i8x16.swizzle turns 16 codes into 16 weights ------------------
// i16 lanes collect two products |grid*x| <= 16*127 per chunk, 8 chunks a group: 32512 < 32767.

@inline function bitmodSimd(bits: i32, g: i32, w: usize, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  if (ASC_FEATURE_SIMD) {
    const nb = k / g;
    const bytes = blockBytes(bits, g);
    for (let r = 0; r < m; r++) {
      const row = w + <usize>r * <usize>nb * <usize>bytes;
      for (let t = 0; t < n; t++) {
        let blk = row;
        let xb = x + <usize>t * <usize>k;
        let acc: f32 = 0;
        for (let b = 0; b < nb; b++) {
          const grid = v128.load(gridsOf(bits) + (<usize>load<u8>(blk, 4) << 4));
          acc = acc + load<f32>(blk) * <f32>hsum(i32x4.extadd_pairwise_i16x8_s(groupDot16(bits, g, blk + 8, xb, grid, true)));
          blk += bytes;
          xb += g;
        }
        store_y(y, xs, m, t, r, acc);
      }
    }
  } else {
    unreachable();
  }
}

// ---- swar (FP4): two codes per table lookup, four weights per i64 multiply (codes.ts dot4) --------------------
// Per call, every grid gets a 256-entry table over code bytes: T[b] = grid[b & 15] + grid[b >> 4] * 2^32
// (a signed sum). Bytes 2i and 2i+1 of a group's codes then give Q = T[b0] + T[b1] << 16, the weights of
// codes 2i, 2i+1, 2i+G/2, 2i+1+G/2 in 16-bit lanes; the activations are arranged per token to match.

// tables: (4 grids, 256) i64
function swar4Tables(tables: usize): void {
  for (let sel = 0; sel < 4; sel++) {
    const grid = BITMOD4_GRIDS + (<usize>sel << 4);
    for (let b = 0; b < 256; b++) {
      store<i64>(tables + (<usize>((sel << 8) + b) << 3), <i64>load<i8>(grid + (b & 15)) + (<i64>load<i8>(grid + (b >> 4)) << 32));
    }
  }
}

// xw: (n, k/4) i64, per group and code byte pair i: the activations of codes 2i, 2i+1, 2i+G/2, 2i+1+G/2
function swar4Acts(g: i32, x: usize, k: i32, n: i32, xw: usize): void {
  const h = g >> 1;
  for (let t = 0; t < n; t++) {
    for (let b = 0; b < k / g; b++) {
      const xb = x + <usize>t * <usize>k + <usize>b * <usize>g;
      for (let j = 0; j < h; j += 2) {
        store<i64>(xw, xword(xb, j, j + 1, h + j, h + j + 1));
        xw += 8;
      }
    }
  }
}

const BYTE8: i64 = 0x7f8; // a code byte times 8: the offset of its table entry

@inline function bitmodSwar4(g: i32, w: usize, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / g;
  const bytes = blockBytes(4, g);
  const xwBytes = <usize>n * <usize>k * 2;
  const buf = scratch(<u32>(xwBytes + 8192));
  const tables = buf + xwBytes;
  swar4Acts(g, x, k, n, buf);
  swar4Tables(tables);
  for (let r = 0; r < m; r++) {
    const row = w + <usize>r * <usize>nb * <usize>bytes;
    for (let t = 0; t < n; t++) {
      let blk = row;
      let xp = buf + <usize>t * <usize>k * 2;
      let acc: f32 = 0;
      for (let b = 0; b < nb; b++) {
        const tab = tables + (<usize>load<u8>(blk, 4) << 11);
        let cp = blk + 8;
        const end = cp + (g >> 1);
        let iq: i64 = 0;
        do {
          const c = load<i64>(cp);
          iq += dot4(load<i64>(tab + <usize>((c << 3) & BYTE8)) + (load<i64>(tab + <usize>((c >>> 5) & BYTE8)) << 16), xp);
          iq += dot4(load<i64>(tab + <usize>((c >>> 13) & BYTE8)) + (load<i64>(tab + <usize>((c >>> 21) & BYTE8)) << 16), xp + 8);
          iq += dot4(load<i64>(tab + <usize>((c >>> 29) & BYTE8)) + (load<i64>(tab + <usize>((c >>> 37) & BYTE8)) << 16), xp + 16);
          iq += dot4(load<i64>(tab + <usize>((c >>> 45) & BYTE8)) + (load<i64>(tab + <usize>((c >>> 53) & BYTE8)) << 16), xp + 24);
          cp += 8;
          xp += 32;
        } while (cp < end);
        acc = acc + load<f32>(blk) * <f32>(<i32>iq);
        blk += bytes;
      }
      store_y(y, xs, m, t, r, acc);
    }
  }
}

// ---- bitserial: BitMoD's bit-serial processing element, 64 weights a word ------------------------------------
// A code is sign << (bits-1) | magnitude index; the magnitudes (in the grid's integer units) are
//   FP3: index 0..3 -> 0, 1, 2, 4            FP4 (E2M1): index 0..7 -> 0, 1, 2, 3, 4, 6, 8, 12
// and the code with sign set and index 0 (negative zero) is the group's special value. Per 64 codes the
// kernel builds bit planes: beta_p (bit p of the magnitude), the sign plane S and the special plane Z,
// then, with the activations' two's-complement bit planes X_j (c_j = 2^j, the top plane negative):
//   sum w*x = sum_p 2^p sum_j c_j (popcnt(X_j & beta_p & ~S) - popcnt(X_j & beta_p & S))
//           + special * sum_j c_j popcnt(X_j & Z)
// One popcount per (p, j): with N = beta_p & S, popcnt(X&P) - popcnt(X&N) = popcnt(N ^ (X & beta_p)) - popcnt(N),
// and sum_j c_j = -1, so the popcnt(N) terms add up to + sum_p 2^p popcnt(N_p) once per word.
// Planes come from the packed codes with few instructions, in a bit order of their own; the activation
// planes are built once per token in the same order (bitmodActPlanes):
//   3-bit: low words W_u, W_(u+G/64): plane bit 8t + 2s + e = the code in low byte 8u + t + e*G/8, slot s
//          (L0 = (W_u & 0x55..) | (W_(u+G/64) & 0x55..) << 1), whose sign is the same bit of high word u.
//   3-bit, G = 32: the one low word and the 4 high bytes, on the even bits: plane bit 8j + 2s = code j + 8s.
//   4-bit: words W_4u .. W_4u+3 transposed as 4x4 bit matrices per nibble (two delta swaps): plane bit
//          8t + 4h + v = the code in nibble h of byte t of word 4u+v.

// Index (within a group) of the activation at bit `pos` of superword u's planes.
// -1: no code (FP3 groups of 32 use the even bits only: bit 8j + 2s = code j + 8s).
@inline function planeIndex(bits: i32, g: i32, u: i32, pos: i32): i32 {
  const t = pos >> 3;
  if (bits == 3 && g == 32) return pos & 1 ? -1 : t + (((pos >> 1) & 3) << 3);
  if (bits == 3) {
    const s = (pos >> 1) & 3, e = pos & 1;
    return (u << 3) + t + e * (g >> 3) + s * (g >> 2);
  }
  const h = (pos >> 2) & 1, v = pos & 3;
  return (((u << 2) + v) << 3) + t + h * (g >> 1);
}

// 64-code words of plane bits per group (a group of 32 fills half of one)
@inline function superwords(g: i32): i32 {
  return g < 64 ? 1 : g >> 6;
}

// planes: (n, k/64, nplanes) u64 (groups of 32: (n, k/32, nplanes)), plane j = bit j of the activations (two's complement; i4 needs 4)
function bitmodActPlanes(bits: i32, g: i32, nplanes: i32, x: usize, k: i32, n: i32, planes: usize): void {
  const nb = k / g;
  for (let t = 0; t < n; t++) {
    for (let b = 0; b < nb; b++) {
      const xb = x + <usize>t * <usize>k + <usize>b * <usize>g;
      for (let u = 0; u < superwords(g); u++) {
        let p0: u64 = 0, p1: u64 = 0, p2: u64 = 0, p3: u64 = 0, p4: u64 = 0, p5: u64 = 0, p6: u64 = 0, p7: u64 = 0;
        for (let pos = 63; pos >= 0; pos--) {
          const at = planeIndex(bits, g, u, pos);
          const v = at < 0 ? <u64>0 : <u64>load<u8>(xb + at);
          p0 = (p0 << 1) | (v & 1);
          p1 = (p1 << 1) | ((v >> 1) & 1);
          p2 = (p2 << 1) | ((v >> 2) & 1);
          p3 = (p3 << 1) | ((v >> 3) & 1);
          p4 = (p4 << 1) | ((v >> 4) & 1);
          p5 = (p5 << 1) | ((v >> 5) & 1);
          p6 = (p6 << 1) | ((v >> 6) & 1);
          p7 = (p7 << 1) | (v >> 7);
        }
        store<u64>(planes, p0);
        store<u64>(planes, p1, 8);
        store<u64>(planes, p2, 16);
        store<u64>(planes, p3, 24);
        if (nplanes == 8) {
          store<u64>(planes, p4, 32);
          store<u64>(planes, p5, 40);
          store<u64>(planes, p6, 48);
          store<u64>(planes, p7, 56);
        }
        planes += <usize>nplanes << 3;
      }
    }
  }
}

const L55: i64 = 0x5555555555555555;
const LAA: i64 = 0xaaaaaaaaaaaaaaaa;
const L33: i64 = 0x3333333333333333;

// sum of the activations at the set bits of z (planes of superword u), one at a time.
@inline function zsum(bits: i32, g: i32, z: i64, u: i32, xg: usize): i64 {
  let s: i64 = 0;
  while (z != 0) {
    s += <i64>load<i8>(xg + planeIndex(bits, g, u, <i32>ctz(z)));
    z &= z - 1;
  }
  return s;
}

// The dot product of one group, per (bits, activation planes), the planes unrolled. Sums of the same
// weight 2^(p+j) share an accumulator a_(p+j) (t_p: the negative top plane), weighted once per group.
// The special value folds into the magnitude planes where its magnitude has bits there (FP3 3, 6; FP4
// 10); FP4's 16 is added code by code (zsum). Written out by a script; keep the four in step.
@inline function bitserialGroup3x8(g: i32, codes: usize, xp: usize, xg: usize, special: i64): i64 {
  let a0: i64 = 0, a1: i64 = 0, a2: i64 = 0, a3: i64 = 0, a4: i64 = 0, a5: i64 = 0, a6: i64 = 0, a7: i64 = 0, a8: i64 = 0;
  let t0: i64 = 0, t1: i64 = 0, t2: i64 = 0;
  const fold = special < 0 ? -special : special; // the bits of |special| join the magnitude planes
  const f0 = -((fold >> 0) & 1), f1 = -((fold >> 1) & 1), f2 = -((fold >> 2) & 1);
  const pos = special > 0 ? <i64>-1 : 0; // a positive special value clears the sign of its code
  for (let u = 0; u < superwords(g); u++) {
    let l0: i64, l1: i64, s: i64;
    if (g == 32) {
      // one low word (bit 8j + 2s + b: bit b of code j + 8s) and 4 high bytes (code j + 8s's high bit at
      // bit 2s + (j >> 2) of byte j & 3), moved to the even bits 8j + 2s
      const w0 = load<i64>(codes), h = <i64>load<u32>(codes, 8);
      l0 = w0 & L55;
      l1 = (w0 >>> 1) & L55;
      s = (h & 0x55555555) | (((h >>> 1) & 0x55555555) << 32);
    } else {
      // FP3: low words u and u + G/64 interleave into the index planes l0, l1; the high word is the sign
      const w0 = load<i64>(codes + (<usize>u << 3)), w1 = load<i64>(codes + (<usize>(u + (g >> 6)) << 3));
      l0 = (w0 & L55) | ((w1 & L55) << 1);
      l1 = ((w0 >>> 1) & L55) | (w1 & LAA);
      s = load<i64>(codes + (g >> 2) + (<usize>u << 3));
    }
    const z = s & ~(l0 | l1); // negative zero: the special value
    // magnitudes 1, 2, 4 are index 1, 2, 3
    const b0 = (l0 & ~l1) | (z & f0), b1 = (l1 & ~l0) | (z & f1), b2 = (l0 & l1) | (z & f2);
    const sg = s ^ (z & pos);
    const n0 = b0 & sg, n1 = b1 & sg, n2 = b2 & sg;
    a0 += popcnt(n0); a1 += popcnt(n1); a2 += popcnt(n2); // the -popcnt(N) terms times sum_j c_j = -1
    { const x = load<i64>(xp, 0); a0 += popcnt(n0 ^ (x & b0)); a1 += popcnt(n1 ^ (x & b1)); a2 += popcnt(n2 ^ (x & b2)); }
    { const x = load<i64>(xp, 8); a1 += popcnt(n0 ^ (x & b0)); a2 += popcnt(n1 ^ (x & b1)); a3 += popcnt(n2 ^ (x & b2)); }
    { const x = load<i64>(xp, 16); a2 += popcnt(n0 ^ (x & b0)); a3 += popcnt(n1 ^ (x & b1)); a4 += popcnt(n2 ^ (x & b2)); }
    { const x = load<i64>(xp, 24); a3 += popcnt(n0 ^ (x & b0)); a4 += popcnt(n1 ^ (x & b1)); a5 += popcnt(n2 ^ (x & b2)); }
    { const x = load<i64>(xp, 32); a4 += popcnt(n0 ^ (x & b0)); a5 += popcnt(n1 ^ (x & b1)); a6 += popcnt(n2 ^ (x & b2)); }
    { const x = load<i64>(xp, 40); a5 += popcnt(n0 ^ (x & b0)); a6 += popcnt(n1 ^ (x & b1)); a7 += popcnt(n2 ^ (x & b2)); }
    { const x = load<i64>(xp, 48); a6 += popcnt(n0 ^ (x & b0)); a7 += popcnt(n1 ^ (x & b1)); a8 += popcnt(n2 ^ (x & b2)); }
    { const x = load<i64>(xp, 56); t0 += popcnt(n0 ^ (x & b0)); t1 += popcnt(n1 ^ (x & b1)); t2 += popcnt(n2 ^ (x & b2)); }
    xp += 64;
  }
  return a0 + (a1 << 1) + (a2 << 2) + (a3 << 3) + (a4 << 4) + (a5 << 5) + (a6 << 6) + (a7 << 7) + (a8 << 8) - ((t0 << 7) + (t1 << 8) + (t2 << 9));
}

@inline function bitserialGroup3x4(g: i32, codes: usize, xp: usize, xg: usize, special: i64): i64 {
  let a0: i64 = 0, a1: i64 = 0, a2: i64 = 0, a3: i64 = 0, a4: i64 = 0;
  let t0: i64 = 0, t1: i64 = 0, t2: i64 = 0;
  const fold = special < 0 ? -special : special; // the bits of |special| join the magnitude planes
  const f0 = -((fold >> 0) & 1), f1 = -((fold >> 1) & 1), f2 = -((fold >> 2) & 1);
  const pos = special > 0 ? <i64>-1 : 0; // a positive special value clears the sign of its code
  for (let u = 0; u < superwords(g); u++) {
    let l0: i64, l1: i64, s: i64;
    if (g == 32) {
      // one low word (bit 8j + 2s + b: bit b of code j + 8s) and 4 high bytes (code j + 8s's high bit at
      // bit 2s + (j >> 2) of byte j & 3), moved to the even bits 8j + 2s
      const w0 = load<i64>(codes), h = <i64>load<u32>(codes, 8);
      l0 = w0 & L55;
      l1 = (w0 >>> 1) & L55;
      s = (h & 0x55555555) | (((h >>> 1) & 0x55555555) << 32);
    } else {
      // FP3: low words u and u + G/64 interleave into the index planes l0, l1; the high word is the sign
      const w0 = load<i64>(codes + (<usize>u << 3)), w1 = load<i64>(codes + (<usize>(u + (g >> 6)) << 3));
      l0 = (w0 & L55) | ((w1 & L55) << 1);
      l1 = ((w0 >>> 1) & L55) | (w1 & LAA);
      s = load<i64>(codes + (g >> 2) + (<usize>u << 3));
    }
    const z = s & ~(l0 | l1); // negative zero: the special value
    // magnitudes 1, 2, 4 are index 1, 2, 3
    const b0 = (l0 & ~l1) | (z & f0), b1 = (l1 & ~l0) | (z & f1), b2 = (l0 & l1) | (z & f2);
    const sg = s ^ (z & pos);
    const n0 = b0 & sg, n1 = b1 & sg, n2 = b2 & sg;
    a0 += popcnt(n0); a1 += popcnt(n1); a2 += popcnt(n2); // the -popcnt(N) terms times sum_j c_j = -1
    { const x = load<i64>(xp, 0); a0 += popcnt(n0 ^ (x & b0)); a1 += popcnt(n1 ^ (x & b1)); a2 += popcnt(n2 ^ (x & b2)); }
    { const x = load<i64>(xp, 8); a1 += popcnt(n0 ^ (x & b0)); a2 += popcnt(n1 ^ (x & b1)); a3 += popcnt(n2 ^ (x & b2)); }
    { const x = load<i64>(xp, 16); a2 += popcnt(n0 ^ (x & b0)); a3 += popcnt(n1 ^ (x & b1)); a4 += popcnt(n2 ^ (x & b2)); }
    { const x = load<i64>(xp, 24); t0 += popcnt(n0 ^ (x & b0)); t1 += popcnt(n1 ^ (x & b1)); t2 += popcnt(n2 ^ (x & b2)); }
    xp += 32;
  }
  return a0 + (a1 << 1) + (a2 << 2) + (a3 << 3) + (a4 << 4) - ((t0 << 3) + (t1 << 4) + (t2 << 5));
}

@inline function bitserialGroup4x8(g: i32, codes: usize, xp: usize, xg: usize, special: i64): i64 {
  let a0: i64 = 0, a1: i64 = 0, a2: i64 = 0, a3: i64 = 0, a4: i64 = 0, a5: i64 = 0, a6: i64 = 0, a7: i64 = 0, a8: i64 = 0, a9: i64 = 0;
  let t0: i64 = 0, t1: i64 = 0, t2: i64 = 0, t3: i64 = 0;
  let extra: i64 = 0;
  const fold = special < 0 ? -special : special; // the bits of |special| join the magnitude planes
  const f0 = -((fold >> 0) & 1), f1 = -((fold >> 1) & 1), f2 = -((fold >> 2) & 1), f3 = -((fold >> 3) & 1);
  const pos = special > 0 ? <i64>-1 : 0; // a positive special value clears the sign of its code
  for (let u = 0; u < (g >> 6); u++) {
    // FP4: transpose the 4x4 bit matrix of every nibble position of words 4u .. 4u+3 (two delta swaps),
    // so that w_b holds code bit b: w0 mantissa, w1 and w2 exponent, w3 sign
    const cw = codes + (<usize>u << 5);
    let w0 = load<i64>(cw), w1 = load<i64>(cw, 8), w2 = load<i64>(cw, 16), w3 = load<i64>(cw, 24);
    let d = ((w0 >>> 2) ^ w2) & L33; w2 ^= d; w0 ^= d << 2;
    d = ((w1 >>> 2) ^ w3) & L33; w3 ^= d; w1 ^= d << 2;
    d = ((w0 >>> 1) ^ w1) & L55; w1 ^= d; w0 ^= d << 1;
    d = ((w2 >>> 1) ^ w3) & L55; w3 ^= d; w2 ^= d << 1;
    const z = w3 & ~(w0 | w1 | w2); // negative zero: the special value
    // magnitude bits of E2M1 in half units (index e1 e0 m -> 0, 1, 2, 3, 4, 6, 8, 12)
    const ne0 = ~w1, ne1 = ~w2;
    const b0 = (ne1 & w0) | (z & f0), b1 = (ne1 & w1) | (w2 & ne0 & w0) | (z & f1);
    const b2 = (w2 & (ne0 | w0)) | (z & f2), b3 = (w2 & w1) | (z & f3);
    const sg = w3 ^ (z & pos);
    const n0 = b0 & sg, n1 = b1 & sg, n2 = b2 & sg, n3 = b3 & sg;
    a0 += popcnt(n0); a1 += popcnt(n1); a2 += popcnt(n2); a3 += popcnt(n3); // the -popcnt(N) terms times sum_j c_j = -1
    if (fold >= 16) extra += zsum(4, g, z, u, xg); // +-16 has no magnitude plane: its few codes one by one
    { const x = load<i64>(xp, 0); a0 += popcnt(n0 ^ (x & b0)); a1 += popcnt(n1 ^ (x & b1)); a2 += popcnt(n2 ^ (x & b2)); a3 += popcnt(n3 ^ (x & b3)); }
    { const x = load<i64>(xp, 8); a1 += popcnt(n0 ^ (x & b0)); a2 += popcnt(n1 ^ (x & b1)); a3 += popcnt(n2 ^ (x & b2)); a4 += popcnt(n3 ^ (x & b3)); }
    { const x = load<i64>(xp, 16); a2 += popcnt(n0 ^ (x & b0)); a3 += popcnt(n1 ^ (x & b1)); a4 += popcnt(n2 ^ (x & b2)); a5 += popcnt(n3 ^ (x & b3)); }
    { const x = load<i64>(xp, 24); a3 += popcnt(n0 ^ (x & b0)); a4 += popcnt(n1 ^ (x & b1)); a5 += popcnt(n2 ^ (x & b2)); a6 += popcnt(n3 ^ (x & b3)); }
    { const x = load<i64>(xp, 32); a4 += popcnt(n0 ^ (x & b0)); a5 += popcnt(n1 ^ (x & b1)); a6 += popcnt(n2 ^ (x & b2)); a7 += popcnt(n3 ^ (x & b3)); }
    { const x = load<i64>(xp, 40); a5 += popcnt(n0 ^ (x & b0)); a6 += popcnt(n1 ^ (x & b1)); a7 += popcnt(n2 ^ (x & b2)); a8 += popcnt(n3 ^ (x & b3)); }
    { const x = load<i64>(xp, 48); a6 += popcnt(n0 ^ (x & b0)); a7 += popcnt(n1 ^ (x & b1)); a8 += popcnt(n2 ^ (x & b2)); a9 += popcnt(n3 ^ (x & b3)); }
    { const x = load<i64>(xp, 56); t0 += popcnt(n0 ^ (x & b0)); t1 += popcnt(n1 ^ (x & b1)); t2 += popcnt(n2 ^ (x & b2)); t3 += popcnt(n3 ^ (x & b3)); }
    xp += 64;
  }
  return a0 + (a1 << 1) + (a2 << 2) + (a3 << 3) + (a4 << 4) + (a5 << 5) + (a6 << 6) + (a7 << 7) + (a8 << 8) + (a9 << 9) - ((t0 << 7) + (t1 << 8) + (t2 << 9) + (t3 << 10)) + special * extra;
}

@inline function bitserialGroup4x4(g: i32, codes: usize, xp: usize, xg: usize, special: i64): i64 {
  let a0: i64 = 0, a1: i64 = 0, a2: i64 = 0, a3: i64 = 0, a4: i64 = 0, a5: i64 = 0;
  let t0: i64 = 0, t1: i64 = 0, t2: i64 = 0, t3: i64 = 0;
  let extra: i64 = 0;
  const fold = special < 0 ? -special : special; // the bits of |special| join the magnitude planes
  const f0 = -((fold >> 0) & 1), f1 = -((fold >> 1) & 1), f2 = -((fold >> 2) & 1), f3 = -((fold >> 3) & 1);
  const pos = special > 0 ? <i64>-1 : 0; // a positive special value clears the sign of its code
  for (let u = 0; u < (g >> 6); u++) {
    // FP4: transpose the 4x4 bit matrix of every nibble position of words 4u .. 4u+3 (two delta swaps),
    // so that w_b holds code bit b: w0 mantissa, w1 and w2 exponent, w3 sign
    const cw = codes + (<usize>u << 5);
    let w0 = load<i64>(cw), w1 = load<i64>(cw, 8), w2 = load<i64>(cw, 16), w3 = load<i64>(cw, 24);
    let d = ((w0 >>> 2) ^ w2) & L33; w2 ^= d; w0 ^= d << 2;
    d = ((w1 >>> 2) ^ w3) & L33; w3 ^= d; w1 ^= d << 2;
    d = ((w0 >>> 1) ^ w1) & L55; w1 ^= d; w0 ^= d << 1;
    d = ((w2 >>> 1) ^ w3) & L55; w3 ^= d; w2 ^= d << 1;
    const z = w3 & ~(w0 | w1 | w2); // negative zero: the special value
    // magnitude bits of E2M1 in half units (index e1 e0 m -> 0, 1, 2, 3, 4, 6, 8, 12)
    const ne0 = ~w1, ne1 = ~w2;
    const b0 = (ne1 & w0) | (z & f0), b1 = (ne1 & w1) | (w2 & ne0 & w0) | (z & f1);
    const b2 = (w2 & (ne0 | w0)) | (z & f2), b3 = (w2 & w1) | (z & f3);
    const sg = w3 ^ (z & pos);
    const n0 = b0 & sg, n1 = b1 & sg, n2 = b2 & sg, n3 = b3 & sg;
    a0 += popcnt(n0); a1 += popcnt(n1); a2 += popcnt(n2); a3 += popcnt(n3); // the -popcnt(N) terms times sum_j c_j = -1
    if (fold >= 16) extra += zsum(4, g, z, u, xg); // +-16 has no magnitude plane: its few codes one by one
    { const x = load<i64>(xp, 0); a0 += popcnt(n0 ^ (x & b0)); a1 += popcnt(n1 ^ (x & b1)); a2 += popcnt(n2 ^ (x & b2)); a3 += popcnt(n3 ^ (x & b3)); }
    { const x = load<i64>(xp, 8); a1 += popcnt(n0 ^ (x & b0)); a2 += popcnt(n1 ^ (x & b1)); a3 += popcnt(n2 ^ (x & b2)); a4 += popcnt(n3 ^ (x & b3)); }
    { const x = load<i64>(xp, 16); a2 += popcnt(n0 ^ (x & b0)); a3 += popcnt(n1 ^ (x & b1)); a4 += popcnt(n2 ^ (x & b2)); a5 += popcnt(n3 ^ (x & b3)); }
    { const x = load<i64>(xp, 24); t0 += popcnt(n0 ^ (x & b0)); t1 += popcnt(n1 ^ (x & b1)); t2 += popcnt(n2 ^ (x & b2)); t3 += popcnt(n3 ^ (x & b3)); }
    xp += 32;
  }
  return a0 + (a1 << 1) + (a2 << 2) + (a3 << 3) + (a4 << 4) + (a5 << 5) - ((t0 << 3) + (t1 << 4) + (t2 << 5) + (t3 << 6)) + special * extra;
}

@inline function bitmodBitserial(bits: i32, g: i32, nplanes: i32, w: usize, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / g;
  const bytes = blockBytes(bits, g);
  const perToken = <usize>(k / g) * <usize>superwords(g) * <usize>nplanes * 8;
  const planes = scratch(<u32>(<usize>n * perToken));
  bitmodActPlanes(bits, g, nplanes, x, k, n, planes);
  const specialAt = gridsOf(bits) + (1 << (bits - 1)); // grid[-0] of selector 0
  for (let r = 0; r < m; r++) {
    const row = w + <usize>r * <usize>nb * <usize>bytes;
    for (let t = 0; t < n; t++) {
      let blk = row;
      let xp = planes + <usize>t * perToken;
      let xg = x + <usize>t * <usize>k;
      let acc: f32 = 0;
      for (let b = 0; b < nb; b++) {
        const special = <i64>load<i8>(specialAt + (<usize>load<u8>(blk, 4) << 4));
        let iq: i64;
        if (bits == 3) iq = nplanes == 8 ? bitserialGroup3x8(g, blk + 8, xp, xg, special) : bitserialGroup3x4(g, blk + 8, xp, xg, special);
        else iq = nplanes == 8 ? bitserialGroup4x8(g, blk + 8, xp, xg, special) : bitserialGroup4x4(g, blk + 8, xp, xg, special);
        acc = acc + load<f32>(blk) * <f32>(<i32>iq);
        blk += bytes;
        xp += <usize>superwords(g) * <usize>nplanes * 8;
        xg += g;
      }
      store_y(y, xs, m, t, r, acc);
    }
  }
}

// ---- exports: one line per format and kernel; int4 activations are read as int8 ones (bitserial: 4 planes) --
export function gemm_bmd3g128_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodNaive(3, 128, w, x, xs, y, m, k, n); }
export function gemm_bmd3g128_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSimd(3, 128, w, x, xs, y, m, k, n); }
export function gemm_bmd3g128_i8_bitserial(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodBitserial(3, 128, 8, w, x, xs, y, m, k, n); }
export function gemm_bmd4g128_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodNaive(4, 128, w, x, xs, y, m, k, n); }
export function gemm_bmd4g128_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSimd(4, 128, w, x, xs, y, m, k, n); }
export function gemm_bmd4g128_i8_bitserial(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodBitserial(4, 128, 8, w, x, xs, y, m, k, n); }
export function gemm_bmd3g128_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodNaive(3, 128, w, x, xs, y, m, k, n); }
export function gemm_bmd3g128_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSimd(3, 128, w, x, xs, y, m, k, n); }
export function gemm_bmd3g128_i4_bitserial(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodBitserial(3, 128, 4, w, x, xs, y, m, k, n); }
export function gemm_bmd4g128_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodNaive(4, 128, w, x, xs, y, m, k, n); }
export function gemm_bmd4g128_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSimd(4, 128, w, x, xs, y, m, k, n); }
export function gemm_bmd4g128_i4_bitserial(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodBitserial(4, 128, 4, w, x, xs, y, m, k, n); }
export function gemm_bmd4g128_i8_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSwar4(128, w, x, xs, y, m, k, n); }
export function gemm_bmd4g128_i4_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSwar4(128, w, x, xs, y, m, k, n); }
// groups of 32 and 64 (the 64-wide rows of the demo models); bitserial needs whole 64-code words
export function gemm_bmd3g32_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodNaive(3, 32, w, x, xs, y, m, k, n); }
export function gemm_bmd3g32_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSimd(3, 32, w, x, xs, y, m, k, n); }
export function gemm_bmd3g32_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodNaive(3, 32, w, x, xs, y, m, k, n); }
export function gemm_bmd3g32_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSimd(3, 32, w, x, xs, y, m, k, n); }
export function gemm_bmd3g64_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodNaive(3, 64, w, x, xs, y, m, k, n); }
export function gemm_bmd3g64_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSimd(3, 64, w, x, xs, y, m, k, n); }
export function gemm_bmd3g64_i8_bitserial(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodBitserial(3, 64, 8, w, x, xs, y, m, k, n); }
export function gemm_bmd3g64_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodNaive(3, 64, w, x, xs, y, m, k, n); }
export function gemm_bmd3g64_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSimd(3, 64, w, x, xs, y, m, k, n); }
export function gemm_bmd3g64_i4_bitserial(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodBitserial(3, 64, 4, w, x, xs, y, m, k, n); }
export function gemm_bmd4g32_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodNaive(4, 32, w, x, xs, y, m, k, n); }
export function gemm_bmd4g32_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSimd(4, 32, w, x, xs, y, m, k, n); }
export function gemm_bmd4g32_i8_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSwar4(32, w, x, xs, y, m, k, n); }
export function gemm_bmd4g32_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodNaive(4, 32, w, x, xs, y, m, k, n); }
export function gemm_bmd4g32_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSimd(4, 32, w, x, xs, y, m, k, n); }
export function gemm_bmd4g32_i4_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSwar4(32, w, x, xs, y, m, k, n); }
export function gemm_bmd4g64_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodNaive(4, 64, w, x, xs, y, m, k, n); }
export function gemm_bmd4g64_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSimd(4, 64, w, x, xs, y, m, k, n); }
export function gemm_bmd4g64_i8_bitserial(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodBitserial(4, 64, 8, w, x, xs, y, m, k, n); }
export function gemm_bmd4g64_i8_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSwar4(64, w, x, xs, y, m, k, n); }
export function gemm_bmd4g64_i4_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodNaive(4, 64, w, x, xs, y, m, k, n); }
export function gemm_bmd4g64_i4_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSimd(4, 64, w, x, xs, y, m, k, n); }
export function gemm_bmd4g64_i4_bitserial(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodBitserial(4, 64, 4, w, x, xs, y, m, k, n); }
export function gemm_bmd4g64_i4_swar(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodSwar4(64, w, x, xs, y, m, k, n); }
export function gemm_bmd3g32_i8_bitserial(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodBitserial(3, 32, 8, w, x, xs, y, m, k, n); }
export function gemm_bmd3g32_i4_bitserial(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void { bitmodBitserial(3, 32, 4, w, x, xs, y, m, k, n); }
