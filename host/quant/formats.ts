// The weight-format table: the single source of every weight format's id, block size and byte layout.
// Quantizers, packers, kernels, the image planner and docs read this table; tools/gen-formats.ts
// generates assembly/kernels/formats.gen.ts, boards/runtime/core/formats.gen.h and docs/formats.md from it.
// Ids are append-only: a retired format keeps its row with `retired` set, and its id is never reused.

export type Family = 'float' | 'int8' | 'ternary' | 'lowbit' | 'bitmod';
export type Target = 'device' | 'simd';

export interface KernelVariant {
  name: string;            // export suffix: gemm_<format>_<act>_<name>
  targets: Target[];       // build targets that carry it (SIMD kernels only exist in `simd`)
  acts: ActFormatName[];   // activation formats it accepts
  rowTile: number;         // M must be a multiple of this
}

export interface WeightFormat {
  id: number;
  name: string;
  family: Family;
  block: number;           // weights per block along K (the group size for grouped formats)
  blockBytes: number;      // bytes per block, scales included
  tensorScale: boolean;    // true: one f32 scale per tensor is passed to the kernels (ternary absmean)
  rowTile?: number;        // rows are interleaved in tiles of this many (M must be a multiple); default 1
  layout: string;          // the byte layout of one block, and how to decode it
  kernels: KernelVariant[];
  retired?: string;        // tombstone: why the id is no longer produced
}

export type ActFormatName = 'f32' | 'i8' | 'i4';
export interface ActFormat {
  name: ActFormatName;
  bits: number;
  qmax: number;            // symmetric per-token absmax: q = round(x * qmax / absmax), clamped to [-qmax, qmax]
  doc: string;
}

export const ACT_FORMATS: readonly ActFormat[] = [
  { name: 'f32', bits: 32, qmax: 0, doc: 'float32, unquantized' },
  { name: 'i8', bits: 8, qmax: 127, doc: 'int8 per-token absmax (BitNet b1.58), one i8 per value' },
  { name: 'i4', bits: 4, qmax: 7, doc: 'int4 per-token absmax (BitNet a4.8), one value in [-7,7] per i8' },
];

const both: Target[] = ['device', 'simd'];
const simdOnly: Target[] = ['simd'];
const k = (name: string, targets: Target[], acts: ActFormatName[], rowTile = 1): KernelVariant => ({ name, targets, acts, rowTile });

function lowbit(id: number, bits: number, group: number): WeightFormat {
  return {
    id, name: `i${bits}g${group}`, family: 'lowbit', block: group, blockBytes: 8 + (group * bits) / 8, tensorScale: false,
    layout: `f32 d, f32 m, then ${group} unsigned ${bits}-bit codes q; w = d*q + m. ` +
      (bits === 4 ? 'Codes: byte j = q[j] | q[j+G/2] << 4' : bits === 2 ? 'Codes: byte j = sum_s q[j+s*G/4] << 2s'
        : 'Codes: low 2 bits as the 2-bit layout (G/4 bytes), then G/16 u16 planes: bit i of u16 c = bit 2 of q[16c+i]'),
    kernels: [k('naive', both, ['i8']), k('simd', simdOnly, ['i8'])],
  };
}

// BitMoD datatypes: a sign-magnitude float grid (FP3: 0, 1, 2, 4; FP4 = E2M1 in half units: 0, 1, 2, 3,
// 4, 6, 8, 12) whose redundant negative zero is repurposed as one special value, either adding
// resolution (FP3 +-3, FP4 +-10) or range (FP3 +-6, FP4 +-16). Each group picks the grid (selector
// 0..3) and scale with the least squared error. A code indexes the sorted grid: w = scale * grid[code].
export const BITMOD_GRIDS: Record<number, readonly (readonly number[])[]> = {
  3: [3, -3, 6, -6].map((sp) => [-4, -2, -1, 0, 1, 2, 4, sp].sort((a, b) => a - b)),
  4: [10, -10, 16, -16].map((sp) => [-12, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 12, sp].sort((a, b) => a - b)),
};

function bitmod(id: number, bits: number, group: number): WeightFormat {
  return {
    id, name: `bmd${bits}g${group}`, family: 'bitmod', block: group, blockBytes: 8 + (group * bits) / 8, tensorScale: false,
    layout: `f32 scale, u8 datatype selector (0..3), 3 bytes zero, then ${group} ${bits}-bit codes (packed as the i${bits} formats) ` +
      `indexing the selected FP${bits}+special-value grid (BITMOD_GRIDS); w = scale * grid[code]`,
    kernels: [k('naive', both, ['i8']), k('simd', simdOnly, ['i8'])],
  };
}

export const FORMATS: readonly WeightFormat[] = [
  {
    id: 0, name: 'f32', family: 'float', block: 1, blockBytes: 4, tensorScale: false,
    layout: 'one little-endian float32 per weight',
    kernels: [k('naive', both, ['f32']), k('simd', simdOnly, ['f32'])],
  },
  {
    id: 1, name: 'q8_0', family: 'int8', block: 32, blockBytes: 36, tensorScale: false,
    layout: 'f32 d, then 32 x i8 q; w = d*q',
    kernels: [k('naive', both, ['i8']), k('simd', simdOnly, ['i8'])],
  },
  {
    id: 2, name: 'tq2', family: 'ternary', block: 64, blockBytes: 16, tensorScale: true,
    layout: 'ternary, 2 bits a weight: byte b (0..15) holds weights b, 16+b, 32+b, 48+b in bits 0-1, 2-3, 4-5, 6-7 as code c = w+1 (0,1,2)',
    kernels: [k('naive', both, ['i8', 'i4']), k('simd', simdOnly, ['i8', 'i4'])],
  },
  {
    id: 3, name: 'tq1', family: 'ternary', block: 64, blockBytes: 13, tensorScale: true,
    layout: 'ternary, 1.625 bits a weight (5 trits a byte): byte i<12 holds weights i+12t (t=0..4), byte 12 holds weights 60..63; ' +
      'a byte is ceil(v*256/243) with v = sum c_t*3^(4-t), c = w+1; digit t = ((byte*3^t mod 256)*3) >> 8',
    kernels: [k('naive', both, ['i8', 'i4']), k('simd', simdOnly, ['i8', 'i4'])],
  },
  {
    id: 4, name: 'tb1', family: 'ternary', block: 64, blockBytes: 16, tensorScale: true,
    layout: 'ternary bit planes: u64 plus mask (bit j set: weight j is +1), then u64 minus mask (bit j set: weight j is -1)',
    kernels: [k('naive', both, ['i8', 'i4']), k('bitserial', both, ['i8', 'i4']), k('lut', both, ['i8', 'i4'])],
  },
  lowbit(5, 2, 32), lowbit(6, 2, 64), lowbit(7, 2, 128),
  lowbit(8, 3, 32), lowbit(9, 3, 64), lowbit(10, 3, 128),
  lowbit(11, 4, 32), lowbit(12, 4, 64), lowbit(13, 4, 128),
  bitmod(14, 3, 128), bitmod(15, 4, 128),
  {
    id: 16, name: 'tt4', family: 'ternary', block: 64, blockBytes: 16, tensorScale: true, rowTile: 16,
    layout: 'ternary for T-MAC table lookups: rows in tiles of 16; for each tile and each group g of 4 weights along K, ' +
      '16 bytes, byte i = row i of the tile: bits 0-3 plus mask of weights 4g..4g+3, bits 4-7 minus mask',
    kernels: [k('naive', both, ['i8', 'i4']), k('lut', simdOnly, ['i8', 'i4'])],
  },
];

export function formatByName(name: string): WeightFormat | undefined {
  return FORMATS.find((f) => f.name === name && !f.retired);
}

export function formatById(id: number): WeightFormat | undefined {
  return FORMATS.find((f) => f.id === id);
}

export function bitsPerWeight(f: WeightFormat): number {
  return (f.blockBytes * 8) / f.block;
}

// Bytes of one (m x k) weight matrix stored row by row in format f (k must be a multiple of f.block).
export function matrixBytes(f: WeightFormat, m: number, k: number): number {
  return m * (k / f.block) * f.blockBytes;
}

export function kernelExport(f: WeightFormat, act: ActFormatName, variant: string): string {
  return `gemm_${f.name}_${act}_${variant}`;
}
