// Packing of unsigned b-bit codes (b = 2, 3, 4) inside a group of G weights (G a multiple of 16),
// shared by the low-bit (INT2/3/4) and BitMoD formats. Chosen so that SIMD decodes 16 lanes at once:
//   4-bit: G/2 bytes, byte j = code j | code (j + G/2) << 4
//   2-bit: G/4 bytes, byte j = sum over s of code (j + s*G/4) << 2s
//   3-bit: the low 2 bits as 2-bit (G/4 bytes), then G/16 little-endian u16 high-bit planes:
//          bit i of u16 c = bit 2 of code 16c + i
// The spec of assembly/kernels/codes.ts.

export function packCodes(bits: number, codes: ArrayLike<number>, g: number, out: Uint8Array, at: number): void {
  if (bits === 4) {
    for (let j = 0; j < g / 2; j++) out[at + j] = codes[j] | (codes[j + g / 2] << 4);
  } else {
    const q = g / 4;
    for (let j = 0; j < q; j++) {
      let b = 0;
      for (let s = 0; s < 4; s++) b |= (codes[j + s * q] & 3) << (2 * s);
      out[at + j] = b;
    }
    if (bits === 3) {
      for (let c = 0; c < g / 16; c++) {
        let h = 0;
        for (let i = 0; i < 16; i++) h |= ((codes[16 * c + i] >> 2) & 1) << i;
        out[at + q + 2 * c] = h & 0xff;
        out[at + q + 2 * c + 1] = h >> 8;
      }
    }
  }
}

export function unpackCodes(bits: number, src: Uint8Array, at: number, g: number): Uint8Array {
  const codes = new Uint8Array(g);
  for (let i = 0; i < g; i++) codes[i] = codeAt(bits, src, at, g, i);
  return codes;
}

export function codeAt(bits: number, src: Uint8Array, at: number, g: number, i: number): number {
  if (bits === 4) return i < g / 2 ? src[at + i] & 15 : src[at + i - g / 2] >> 4;
  const q = g / 4;
  const low = (src[at + (i % q)] >> (2 * Math.floor(i / q))) & 3;
  if (bits === 2) return low;
  const c = i >> 4;
  const h = src[at + q + 2 * c] | (src[at + q + 2 * c + 1] << 8);
  return low | (((h >> (i & 15)) & 1) << 2);
}
