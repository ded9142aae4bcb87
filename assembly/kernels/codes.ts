// Decoding of the grouped b-bit codes (b = 2, 3, 4; G = 32, 64, 128 codes a group) shared by the
// low-bit (lowbit.ts) and BitMoD (bitmod.ts) kernels. The spec is host/quant/ref/codes.ts:
//   4-bit: G/2 bytes, byte j = code j | code (j + G/2) << 4
//   2-bit: G/4 bytes, byte j = sum over slots s = 0..3 of code (j + s*G/4) << 2s
//   3-bit: the 2-bit layout of the low bits, then G/8 bytes of high bits: the code in byte j, slot s
//          has its high bit at bit 2s + (j div G/8) of byte (j mod G/8).
// Every function takes bits and G as compile-time constants (the kernels call them with literals and
// they are inlined), so the branches on them fold away.

// ---- scalar: one code at a time (the naive kernels) ---------------------------------------------------

@inline export function codeAt(bits: i32, g: i32, codes: usize, i: i32): i32 {
  if (bits == 4) return (<i32>load<u8>(codes + (i & ((g >> 1) - 1))) >> ((i / (g >> 1)) << 2)) & 15;
  const q = g >> 2;
  const j = i & (q - 1), s = i / q;
  const low = (<i32>load<u8>(codes + j) >> (s << 1)) & 3;
  if (bits == 2) return low;
  const hi = <i32>load<u8>(codes + q + (j & ((g >> 3) - 1)));
  return low | (((hi >> ((s << 1) + j / (g >> 3))) & 1) << 2);
}

// ---- per-token sums of activations ---------------------------------------------------------------------

// sums: (n, k/g) i32, sums[t, b] = sum of x[t, b*g .. b*g+g-1]; shared by every row of a GEMM.
export function groupSums(x: usize, k: i32, n: i32, g: i32, sums: usize): void {
  const nb = k / g;
  for (let t = 0; t < n; t++) {
    let xp = x + <usize>t * <usize>k;
    for (let b = 0; b < nb; b++) {
      let s: i32 = 0;
      for (let i = 0; i < g; i += 4) {
        const v = load<u32>(xp + i);
        s += (<i32>(v << 24) >> 24) + (<i32>(v << 16) >> 24) + (<i32>(v << 8) >> 24) + (<i32>v >> 24);
      }
      store<i32>(sums + ((<usize>t * <usize>nb + <usize>b) << 2), s);
      xp += g;
    }
  }
}

// ---- SWAR: four 16-bit lanes of one i64 multiply --------------------------------------------------------
// Q holds four small codes or grid values in 16-bit lanes (Q = sum_l q_l 2^16l), X four activations in
// reverse order (X = sum_l x_l 2^(16(3-l)), a signed sum). In X*Q mod 2^64 the lane at 2^48 is
// L3 = sum_l q_l*x_l (|L3| <= 4*16*127 < 2^15); the lower lanes add R with |R| < 3*16*127*2^32 < 2^47,
// so (X*Q + 2^47) >> 48 (arithmetic) is L3 exactly.
@inline export function dot4(q: i64, xw: usize): i64 {
  return (q * load<i64>(xw) + 0x800000000000) >> 48;
}

// The X word of four activations: lanes l = 0..3 hold x[i0], x[i1], x[i2], x[i3], reversed.
@inline export function xword(xb: usize, i0: i32, i1: i32, i2: i32, i3: i32): i64 {
  return (<i64>load<i8>(xb + i0) << 48) + (<i64>load<i8>(xb + i1) << 32) + (<i64>load<i8>(xb + i2) << 16) + <i64>load<i8>(xb + i3);
}

// Per token, the activations rearranged into X words in the order the SWAR kernels read the codes
// (lowbit.ts): per group, per u64 word w of the (low) codes, then per lane selection:
//   4-bit: shifts 0, 8, 4, 12  -> codes 8w+2l, 8w+2l+1, G/2+8w+2l, G/2+8w+2l+1
//   2/3-bit: slot s = 0..3, then byte parity p = 0, 1 -> codes (8w+2l+p) + s*G/4
// xw: (n, k/4) i64
export function swarActs(bits: i32, g: i32, x: usize, k: i32, n: i32, xw: usize): void {
  const nb = k / g;
  for (let t = 0; t < n; t++) {
    for (let b = 0; b < nb; b++) {
      const xb = x + <usize>t * <usize>k + <usize>b * <usize>g;
      if (bits == 4) {
        const h = g >> 1;
        for (let w = 0; w < (g >> 4); w++) {
          const j = w << 3;
          store<i64>(xw, xword(xb, j, j + 2, j + 4, j + 6));
          store<i64>(xw, xword(xb, j + 1, j + 3, j + 5, j + 7), 8);
          store<i64>(xw, xword(xb, h + j, h + j + 2, h + j + 4, h + j + 6), 16);
          store<i64>(xw, xword(xb, h + j + 1, h + j + 3, h + j + 5, h + j + 7), 24);
          xw += 32;
        }
      } else {
        const q = g >> 2;
        for (let w = 0; w < (g >> 5); w++) {
          for (let s = 0; s < 4; s++) {
            const j = (w << 3) + s * q;
            store<i64>(xw, xword(xb, j, j + 2, j + 4, j + 6));
            store<i64>(xw, xword(xb, j + 1, j + 3, j + 5, j + 7), 8);
            xw += 16;
          }
        }
      }
    }
  }
}

// ---- SIMD: 16 codes per vector --------------------------------------------------------------------------

// The 2-bit low parts of codes 16ch .. 16ch+15 as u8 lanes.
@inline export function low16(g: i32, codes: usize, ch: i32): v128 {
  if (ASC_FEATURE_SIMD) {
    if (g >= 64) {
      // G/4 >= 16 bytes: 16 consecutive codes are 16 bytes of one slot
      const q = g >> 2;
      return v128.and(i16x8.shr_u(v128.load(codes + <usize>((ch << 4) & (q - 1))), <u32>((ch << 4) / q) << 1), i8x16.splat(3));
    }
    // G = 32: 8 bytes; lanes 0-7 are slot 2ch, lanes 8-15 slot 2ch+1 (shifted 2 more)
    const v = v128.load64_splat(codes);
    const both = v128.bitselect(i16x8.shr_u(v, 2), v, i64x2(0, -1));
    return v128.and(i16x8.shr_u(both, <u32>ch << 2), i8x16.splat(3));
  }
  return v128.splat<i32>(0);
}

// The high bits (as 0 or 4) of codes 16ch .. 16ch+15 of a 3-bit group.
@inline export function high16(g: i32, hi: usize, ch: i32): v128 {
  if (ASC_FEATURE_SIMD) {
    let v: v128;
    let bit: i32;
    if (g == 128) {
      v = v128.load(hi); // byte l holds codes l + 16e + 32s at bit 2s+e: chunk ch is bit ch
      bit = ch;
    } else if (g == 64) {
      // 8 bytes; lanes 0-7 use bit 2ch, lanes 8-15 bit 2ch+1: shift the upper half by one first
      const s = v128.load64_splat(hi);
      v = v128.bitselect(i16x8.shr_u(s, 1), s, i64x2(0, -1));
      bit = ch << 1;
    } else {
      // G = 32: 4 bytes; lane quarters use bits 4ch, 4ch+1, 4ch+2, 4ch+3
      const s = v128.load32_splat(hi);
      const mask = ch == 0 ? i8x16(1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8) : i8x16(16, 16, 16, 16, 32, 32, 32, 32, 64, 64, 64, 64, -128, -128, -128, -128);
      return v128.and(i8x16.eq(v128.and(s, mask), mask), i8x16.splat(4));
    }
    // bit `bit` of every byte to bit 2 (16-bit shifts: bit 2 and bit 10 read only their own byte)
    const moved = bit >= 2 ? i16x8.shr_u(v, <u32>(bit - 2)) : i16x8.shl(v, <u32>(2 - bit));
    return v128.and(moved, i8x16.splat(4));
  }
  return v128.splat<i32>(0);
}

// Codes 16ch .. 16ch+15 of a group as u8 lanes.
@inline export function codes16(bits: i32, g: i32, codes: usize, ch: i32): v128 {
  if (ASC_FEATURE_SIMD) {
    if (bits == 4) {
      const half = g >> 5; // chunks in the low nibbles
      if (ch < half) return v128.and(v128.load(codes + (<usize>ch << 4)), i8x16.splat(15));
      return v128.and(i16x8.shr_u(v128.load(codes + (<usize>(ch - half) << 4)), 4), i8x16.splat(15));
    }
    const low = low16(g, codes, ch);
    if (bits == 2) return low;
    return v128.or(low, high16(g, codes + (g >> 2), ch));
  }
  return v128.splat<i32>(0);
}

@inline export function hsum(v: v128): i32 {
  if (ASC_FEATURE_SIMD) {
    return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
  }
  return 0;
}

// sum of 16 products c*x of u8/i8 codes (or grid values) and i8 activations, added to i16 lanes.
@inline export function mac16(acc: v128, c: v128, xv: v128): v128 {
  if (ASC_FEATURE_SIMD) {
    return i16x8.add(acc, i16x8.add(i16x8.extmul_low_i8x16_s(c, xv), i16x8.extmul_high_i8x16_s(c, xv)));
  }
  return acc;
}

// Chunk ch of a group times its 16 activations, added to i16 lanes; with a grid (BitMoD) the codes
// are looked up first. ch is a literal at every call, so shifts and offsets fold to constants.
@inline function chunk(bits: i32, g: i32, codes: usize, xb: usize, grid: v128, lookup: bool, ch: i32, acc: v128): v128 {
  if (ASC_FEATURE_SIMD) {
    let c = codes16(bits, g, codes, ch);
    if (lookup) c = i8x16.swizzle(grid, c);
    return mac16(acc, c, v128.load(xb + (<usize>ch << 4)));
  }
  return acc;
}

// sum over a group of code (or grid[code]) times activation, in i16 lanes (the caller keeps them in
// range: at most 8 chunks of two products of at most 16*127 each).
@inline export function groupDot16(bits: i32, g: i32, codes: usize, xb: usize, grid: v128, lookup: bool): v128 {
  if (ASC_FEATURE_SIMD) {
    let s = i16x8.splat(0);
    s = chunk(bits, g, codes, xb, grid, lookup, 0, s);
    s = chunk(bits, g, codes, xb, grid, lookup, 1, s);
    if (g >= 64) {
      s = chunk(bits, g, codes, xb, grid, lookup, 2, s);
      s = chunk(bits, g, codes, xb, grid, lookup, 3, s);
    }
    if (g >= 128) {
      s = chunk(bits, g, codes, xb, grid, lookup, 4, s);
      s = chunk(bits, g, codes, xb, grid, lookup, 5, s);
      s = chunk(bits, g, codes, xb, grid, lookup, 6, s);
      s = chunk(bits, g, codes, xb, grid, lookup, 7, s);
    }
    return s;
  }
  return v128.splat<i32>(0);
}
