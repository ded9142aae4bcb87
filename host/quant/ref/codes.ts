// Packing of unsigned b-bit codes (b = 2, 3, 4) inside a group of G weights (G = 32, 64 or 128),
// shared by the low-bit (INT2/3/4) and BitMoD formats. The spec of assembly/kernels/codes.ts.
// Chosen so that a kernel gets many codes from one wide load and one shift + mask: 16 SIMD lanes, or
// four 16-bit lanes of a u64 for the scalar SWAR kernels (bytes 0, 2, 4, 6 or 1, 3, 5, 7 of a word).
//   4-bit: G/2 bytes, byte j = code j | code (j + G/2) << 4
//   2-bit: G/4 bytes, byte j = sum over slots s = 0..3 of code (j + s*G/4) << 2s
//   3-bit: the low 2 bits in the 2-bit layout (G/4 bytes), then G/8 bytes of high bits (bit 2):
//          the code whose low bits are in byte j, slot s has its high bit at bit 2s + (j div G/8)
//          of byte (j mod G/8). So the high bits mirror the low bits: byte j' bit 2s+e goes with
//          byte j' + e*G/8 slot s of the 2-bit part, and a bit-serial kernel gets a 64-code plane of
//          high bits in the same bit order as (W0 & 0x55..) | (W1 & 0x55..) << 1 of two low words.

export function codesBytes(bits: number, g: number): number {
  return (g * bits) / 8;
}

export function packCodes(bits: number, codes: ArrayLike<number>, g: number, out: Uint8Array, at: number): void {
  out.fill(0, at, at + codesBytes(bits, g));
  for (let i = 0; i < g; i++) {
    const c = codes[i];
    if (bits === 4) {
      out[at + (i % (g / 2))] |= c << (4 * Math.floor(i / (g / 2)));
      continue;
    }
    const q = g / 4, j = i % q, s = Math.floor(i / q);
    out[at + j] |= (c & 3) << (2 * s);
    if (bits === 3) out[at + q + (j % (g / 8))] |= ((c >> 2) & 1) << (2 * s + Math.floor(j / (g / 8)));
  }
}

export function codeAt(bits: number, src: Uint8Array, at: number, g: number, i: number): number {
  if (bits === 4) return (src[at + (i % (g / 2))] >> (4 * Math.floor(i / (g / 2)))) & 15;
  const q = g / 4, j = i % q, s = Math.floor(i / q);
  const low = (src[at + j] >> (2 * s)) & 3;
  if (bits === 2) return low;
  return low | (((src[at + q + (j % (g / 8))] >> (2 * s + Math.floor(j / (g / 8)))) & 1) << 2);
}

export function unpackCodes(bits: number, src: Uint8Array, at: number, g: number): Uint8Array {
  const codes = new Uint8Array(g);
  for (let i = 0; i < g; i++) codes[i] = codeAt(bits, src, at, g, i);
  return codes;
}
