// The scalar reference for ternary weights (BitNet b1.58): absmean quantization, the three layouts
// of the format table (tq2, tq1, tb1), and the GEMM every ternary kernel must match bit for bit.
import { FORMATS, formatByName, type WeightFormat } from '../formats.ts';
import type { ActTensor, QuantTensor } from '../tensor.ts';
import type { FormatRef } from './types.ts';

const f = Math.fround;
const BLOCK = 64;

// absmean: scale = mean|W| over the tensor, w = clamp(round(W / scale), -1, 1). Returns trits (m, k).
export function absmeanTernary(w: Float32Array): { trits: Int8Array; scale: number } {
  let sum = 0;
  for (let i = 0; i < w.length; i++) sum += Math.abs(w[i]);
  const scale = f(Math.max(sum / w.length, 1e-8));
  const trits = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) trits[i] = Math.max(-1, Math.min(1, Math.round(w[i] / scale)));
  return { trits, scale };
}

// tq2: byte b of a block holds weights b, 16+b, 32+b, 48+b in bits 0-1, 2-3, 4-5, 6-7 as w+1.
function packTq2Block(t: Int8Array, src: number, dst: Uint8Array, at: number): void {
  for (let i = 0; i < BLOCK; i++) dst[at + (i & 15)] |= (t[src + i] + 1) << ((i >> 4) * 2);
}
function unpackTq2Block(src: Uint8Array, at: number, t: Int8Array, dst: number): void {
  for (let i = 0; i < BLOCK; i++) t[dst + i] = ((src[at + (i & 15)] >> ((i >> 4) * 2)) & 3) - 1;
}

// tq1: byte i < 12 holds weights i + 12d (d = 0..4), byte 12 holds weights 60..63; a byte is
// ceil(v * 256 / 243) with v = sum c_d * 3^(4-d), so digit d = ((byte * 3^d mod 256) * 3) >> 8.
function packTrits5(c: number[]): number {
  let v = 0;
  for (let d = 0; d < 5; d++) v = v * 3 + (c[d] ?? 0);
  return Math.ceil((v * 256) / 243);
}
function unpackTrits5(byte: number, count: number): number[] {
  const out: number[] = [];
  let q = byte;
  for (let d = 0; d < count; d++) {
    out.push((q * 3) >> 8);
    q = (q * 3) & 0xff;
  }
  return out;
}
function packTq1Block(t: Int8Array, src: number, dst: Uint8Array, at: number): void {
  for (let i = 0; i < 12; i++) dst[at + i] = packTrits5([0, 1, 2, 3, 4].map((d) => t[src + i + 12 * d] + 1));
  dst[at + 12] = packTrits5([0, 1, 2, 3].map((d) => t[src + 60 + d] + 1));
}
function unpackTq1Block(src: Uint8Array, at: number, t: Int8Array, dst: number): void {
  for (let i = 0; i < 12; i++) unpackTrits5(src[at + i], 5).forEach((c, d) => (t[dst + i + 12 * d] = c - 1));
  unpackTrits5(src[at + 12], 4).forEach((c, d) => (t[dst + 60 + d] = c - 1));
}

// tb1: u64 plus mask then u64 minus mask, bit j for weight j.
function packTb1Block(t: Int8Array, src: number, dst: Uint8Array, at: number): void {
  for (let i = 0; i < BLOCK; i++) {
    if (t[src + i] === 1) dst[at + (i >> 3)] |= 1 << (i & 7);
    if (t[src + i] === -1) dst[at + 8 + (i >> 3)] |= 1 << (i & 7);
  }
}
function unpackTb1Block(src: Uint8Array, at: number, t: Int8Array, dst: number): void {
  for (let i = 0; i < BLOCK; i++) {
    t[dst + i] = ((src[at + (i >> 3)] >> (i & 7)) & 1) - ((src[at + 8 + (i >> 3)] >> (i & 7)) & 1);
  }
}

const LAYOUTS: Record<string, { pack: typeof packTq2Block; unpack: typeof unpackTq2Block }> = {
  tq2: { pack: packTq2Block, unpack: unpackTq2Block },
  tq1: { pack: packTq1Block, unpack: unpackTq1Block },
  tb1: { pack: packTb1Block, unpack: unpackTb1Block },
};

// tt4: rows in tiles of 16; per tile and group g of 4 weights, 16 bytes: byte i = row i's plus nibble
// (bits 0-3) and minus nibble (bits 4-7) of weights 4g..4g+3. Byte offset of (row r, group g):
function tt4Offset(r: number, g: number, k: number): number {
  return ((r >> 4) * (k >> 2) + g) * 16 + (r & 15);
}

function packTt4(trits: Int8Array, m: number, k: number): Uint8Array {
  const data = new Uint8Array((m * k) / 4);
  for (let r = 0; r < m; r++) {
    for (let i = 0; i < k; i++) {
      const v = trits[r * k + i];
      if (v !== 0) data[tt4Offset(r, i >> 2, k)] |= 1 << ((i & 3) + (v < 0 ? 4 : 0));
    }
  }
  return data;
}

function unpackTt4(data: Uint8Array, m: number, k: number): Int8Array {
  const trits = new Int8Array(m * k);
  for (let r = 0; r < m; r++) {
    for (let i = 0; i < k; i++) {
      const b = data[tt4Offset(r, i >> 2, k)];
      trits[r * k + i] = ((b >> (i & 3)) & 1) - ((b >> ((i & 3) + 4)) & 1);
    }
  }
  return trits;
}

export function packTrits(format: WeightFormat, trits: Int8Array, m: number, k: number, scale: number): QuantTensor {
  if (format.name === 'tt4') return { format, m, k, data: packTt4(trits, m, k), scale };
  const layout = LAYOUTS[format.name];
  const nb = k / BLOCK;
  const data = new Uint8Array(m * nb * format.blockBytes);
  for (let r = 0; r < m; r++) {
    for (let b = 0; b < nb; b++) layout.pack(trits, r * k + b * BLOCK, data, (r * nb + b) * format.blockBytes);
  }
  return { format, m, k, data, scale };
}

export function unpackTrits(t: QuantTensor): Int8Array {
  if (t.format.name === 'tt4') return unpackTt4(t.data, t.m, t.k);
  const layout = LAYOUTS[t.format.name];
  const nb = t.k / BLOCK;
  const trits = new Int8Array(t.m * t.k);
  for (let r = 0; r < t.m; r++) {
    for (let b = 0; b < nb; b++) layout.unpack(t.data, (r * nb + b) * t.format.blockBytes, trits, r * t.k + b * BLOCK);
  }
  return trits;
}

// The GEMM every ternary kernel matches: exact integer dot, then y = f32(acc) * f32(scale * xs[t]).
export function ternaryGemm(t: QuantTensor, x: ActTensor): Float32Array {
  const trits = unpackTrits(t);
  const y = new Float32Array(x.n * t.m);
  for (let tok = 0; tok < x.n; tok++) {
    const s = f(t.scale * x.scales[tok]);
    for (let r = 0; r < t.m; r++) {
      let acc = 0;
      for (let i = 0; i < t.k; i++) acc += trits[r * t.k + i] * x.q[tok * t.k + i];
      y[tok * t.m + r] = f(acc * s);
    }
  }
  return y;
}

function ternaryRef(name: string): FormatRef {
  const format = formatByName(name)!;
  return {
    quantize(w, m, k) {
      const { trits, scale } = absmeanTernary(w);
      return packTrits(format, trits, m, k, scale);
    },
    dequantize(t) {
      const trits = unpackTrits(t);
      return Float32Array.from(trits, (v) => f(v * t.scale));
    },
    gemm: ternaryGemm,
  };
}

// One reference per ternary row of the format table (the row's family names its reference).
export const TERNARY_REFS: Record<string, FormatRef> = Object.fromEntries(
  FORMATS.filter((x) => x.family === 'ternary' && !x.retired).map((x) => [x.name, ternaryRef(x.name)]),
);
