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
  // Bytes of kernel scratch (assembly/arena.ts scratch()) one call with k inputs and n tokens takes;
  // a memory planner reserves the largest. Absent: not declared here.
  scratch?: (k: number, n: number, act: ActFormatName) => number;
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
const k = (name: string, targets: Target[], acts: ActFormatName[], rowTile = 1, scratch?: KernelVariant['scratch']): KernelVariant =>
  scratch ? { name, targets, acts, rowTile, scratch } : { name, targets, acts, rowTile };
const none = () => 0;

// INT2/3/4 asymmetric groups: RTN min-max per group of G weights along K (host/quant/ref/lowbit.ts).
// Kernels: `naive` decodes one code at a time; `swar` multiplies four codes by four activations with
// one i64 multiply (16-bit lanes; activations pre-arranged per token); `simd` decodes 16 codes per
// shift + mask and multiplies with i16x8.extmul.
function lowbit(id: number, bits: number, group: number): WeightFormat {
  const codes = bits === 4 ? `${group / 2} bytes, byte j = q[j] | q[j+${group / 2}] << 4`
    : bits === 2 ? `${group / 4} bytes, byte j = sum_s q[j+${group / 4}s] << 2s (s = 0..3)`
      : `the low 2 bits as the 2-bit layout (${group / 4} bytes, byte j slot s = q[j+${group / 4}s]), then ${group / 8} bytes of ` +
        `high bits: bit 2s + (j div ${group / 8}) of byte (j mod ${group / 8}) = bit 2 of the code in byte j, slot s`;
  return {
    id, name: `i${bits}g${group}`, family: 'lowbit', block: group, blockBytes: 8 + (group * bits) / 8, tensorScale: false,
    layout: `f32 d, f32 m, then ${group} unsigned ${bits}-bit codes q (w = d*q + m): ${codes}`,
    kernels: [
      k('naive', both, ['i8', 'i4'], 1, none),
      k('swar', both, ['i8', 'i4'], 1, (kk, n) => 2 * n * kk + 4 * n * (kk / group)), // X words (n, k/4) i64, sums of x (n, k/G) i32
      k('simd', simdOnly, ['i8', 'i4'], 1, (kk, n) => 4 * n * (kk / group)), // sums of x (n, k/G) i32
    ],
  };
}

// BitMoD datatypes: sign-magnitude float grids whose redundant negative zero (code 100 / 1000) is
// repurposed as one special value, adding resolution or range. FP3 magnitudes 0, 1, 2, 4 with special
// +-3 (resolution) or +-6 (range); FP4 = E2M1 in half units, magnitudes 0, 1, 2, 3, 4, 6, 8, 12 (0 .. 6),
// with special +-10 or +-16 (+-5, +-8). Indexed by code: grid[code], code = sign << (bits-1) | magnitude
// index. Each group picks the grid (selector 0..3) and scale with the least squared error.
export const BITMOD_SPECIALS: Record<number, readonly number[]> = { 3: [3, -3, 6, -6], 4: [10, -10, 16, -16] };
const BITMOD_MAGS: Record<number, readonly number[]> = { 3: [0, 1, 2, 4], 4: [0, 1, 2, 3, 4, 6, 8, 12] };
export const BITMOD_GRIDS: Record<number, readonly (readonly number[])[]> = Object.fromEntries(
  [3, 4].map((bits) => [bits, BITMOD_SPECIALS[bits].map((sp) => [...BITMOD_MAGS[bits], sp, ...BITMOD_MAGS[bits].slice(1).map((v) => -v)])]),
);

// Kernels: `naive` looks up one code at a time; `simd` looks up 16 codes with one i8x16.swizzle of the
// group's grid; `bitserial` (BitMoD's processing element) turns 64 codes into sign, magnitude and
// special-value bit planes and counts them (popcount) against the activations' bit planes.
function bitmod(id: number, bits: number, group: number): WeightFormat {
  return {
    id, name: `bmd${bits}g${group}`, family: 'bitmod', block: group, blockBytes: 8 + (group * bits) / 8, tensorScale: false,
    layout: `f32 scale, u8 selector (0..3), 3 zero bytes, then ${group} ${bits}-bit codes packed as the i${bits}g${group} codes; ` +
      `w = scale * grid[code], grid = BITMOD_GRIDS[${bits}][selector] (code = sign << ${bits - 1} | magnitude index; -0 is the special value)`,
    kernels: [
      k('naive', both, ['i8', 'i4'], 1, none),
      k('bitserial', both, ['i8', 'i4'], 1, (kk, n, act) => n * (kk / 64) * (act === 'i4' ? 4 : 8) * 8), // activation planes (n, k/64, planes) u64
      ...(bits === 4 ? [k('swar', both, ['i8', 'i4'], 1, (kk, n) => 2 * n * kk + 8192)] : []), // X words (n, k/4) i64, code-byte tables (4, 256) i64
      k('simd', simdOnly, ['i8', 'i4'], 1, none),
    ],
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
    kernels: [k('naive', both, ['i8'], 1, none), k('simd', simdOnly, ['i8'], 1, none)],
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
