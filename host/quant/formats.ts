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
  // a memory planner reserves the largest.
  scratch: (k: number, n: number, act: ActFormatName) => number;
}

export interface WeightFormat {
  id: number;
  name: string;
  family: Family;
  block: number;           // weights per block along K (the group size for grouped formats)
  blockBytes: number;      // bytes per block, scales included
  tensorScale: boolean;    // true: one f32 scale per tensor is passed to the kernels (ternary absmean)
  rowTile?: number;        // rows are interleaved in tiles of this many (M must be a multiple); default 1
  // rows are interleaved in panels of this many, the last M mod rowPanel rows stored row by row (any M,
  // no padding); a streamed chunk of rows starts at a panel (the descriptor's row tile)
  rowPanel?: number;
  layout: string;          // the byte layout of one block, and how to decode it
  fields: BlockField[];    // the block's fields in byte order (a C struct of them is blockBytes long)
  kernels: KernelVariant[];
  prefer: Partial<Record<Target, string>>; // the kernel variant a plan picks on each target that carries one (host/model/plan.ts chooseKernel)
  embedding: boolean;      // the runtime can read an embedding (one row a token) in this format
  ternaryFor?: Target[];   // `--quant ternary` means this format on these targets
  retired?: string;        // tombstone: why the id is no longer produced
}

// One field of a block: `count` values of `type`. The C header declares a struct of them and
// asserts its size is blockBytes and each offset the sum of the fields before it.
export interface BlockField {
  name: string;
  type: 'f32' | 'i8' | 'u8' | 'u64';
  count?: number;          // default 1
}
export const FIELD_BYTES: Record<BlockField['type'], number> = { f32: 4, i8: 1, u8: 1, u64: 8 };

export type ActFormatName = 'f32' | 'i8' | 'i4';
export interface ActFormat {
  name: ActFormatName;
  id: number;              // its code in an image's config (append-only)
  bits: number;
  qmax: number;            // symmetric per-token absmax: q = round(x * qmax / absmax), clamped to [-qmax, qmax]
  doc: string;
}

export const ACT_FORMATS: readonly ActFormat[] = [
  { name: 'f32', id: 0, bits: 32, qmax: 0, doc: 'float32, unquantized' },
  { name: 'i8', id: 1, bits: 8, qmax: 127, doc: 'int8 per-token absmax (BitNet b1.58), one i8 per value' },
  { name: 'i4', id: 2, bits: 4, qmax: 7, doc: 'int4 per-token absmax (BitNet a4.8), one value in [-7,7] per i8' },
];

export function actFormat(name: ActFormatName): ActFormat {
  return ACT_FORMATS.find((a) => a.name === name)!;
}

const both: Target[] = ['device', 'simd'];
const simdOnly: Target[] = ['simd'];
const none = () => 0;
const k = (name: string, targets: Target[], acts: ActFormatName[], rowTile = 1, scratch: KernelVariant['scratch'] = none): KernelVariant =>
  ({ name, targets, acts, rowTile, scratch });
// tb1 bitserial: the activations' bit planes (n, k/64, 8 or 4 planes) u64
const tb1Planes = (kk: number, n: number, act: ActFormatName) => (act === 'i4' ? (n * kk) / 2 : n * kk);

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
    fields: [{ name: 'd', type: 'f32' }, { name: 'm', type: 'f32' }, { name: 'codes', type: 'u8', count: (group * bits) / 8 }],
    kernels: [
      k('naive', both, ['i8', 'i4'], 1, none),
      k('swar', both, ['i8', 'i4'], 1, (kk, n) => 2 * n * kk + 4 * n * (kk / group)), // X words (n, k/4) i64, sums of x (n, k/G) i32
      k('simd', simdOnly, ['i8', 'i4'], 1, (kk, n) => 4 * n * (kk / group)), // sums of x (n, k/G) i32
    ],
    prefer: { device: 'swar', simd: 'simd' }, embedding: false,
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
// special-value bit planes and counts them (popcount) against the activations' bit planes, so it
// needs whole 64-code words: groups of 64 or 128, and FP3 groups of 32 (their 96 code bits fit the
// even bits of one word); FP4 groups of 32 run `swar` on the device build.
function bitmod(id: number, bits: number, group: number): WeightFormat {
  const bitserial = group % 64 === 0 || bits === 3; // FP3 groups of 32 fill the even bits of one word
  const device = bitserial ? 'bitserial' : bits === 4 ? 'swar' : 'naive';
  // Every kernel in the device app costs a board's heap (wasm3 compiles ~2.6 bytes per app byte: about
  // ten positions of the ESP32 demo's context per KiB; the groups of 32 and 64 in the device build took
  // 252 positions down to 148), so those groups run in the simd build only (V8: quantize, eval, run).
  const scalar: Target[] = group === 128 ? both : simdOnly;
  return {
    id, name: `bmd${bits}g${group}`, family: 'bitmod', block: group, blockBytes: 8 + (group * bits) / 8, tensorScale: false,
    layout: `f32 scale, u8 selector (0..3), 3 zero bytes, then ${group} ${bits}-bit codes packed as the i${bits}g${group} codes; ` +
      `w = scale * grid[code], grid = BITMOD_GRIDS[${bits}][selector] (code = sign << ${bits - 1} | magnitude index; -0 is the special value)`,
    fields: [{ name: 'scale', type: 'f32' }, { name: 'selector', type: 'u8' }, { name: 'zero', type: 'u8', count: 3 }, { name: 'codes', type: 'u8', count: (group * bits) / 8 }],
    kernels: [
      k('naive', scalar, ['i8', 'i4'], 1, none),
      ...(bitserial ? [k('bitserial', scalar, ['i8', 'i4'], 1, (kk, n, act) => n * (kk / Math.min(group, 64)) * (act === 'i4' ? 4 : 8) * 8)] : []), // activation planes (n, k/64 or k/32, planes) u64
      ...(bits === 4 ? [k('swar', scalar, ['i8', 'i4'], 1, (kk, n) => 2 * n * kk + 8192)] : []), // X words (n, k/4) i64, code-byte tables (4, 256) i64
      k('simd', simdOnly, ['i8', 'i4'], 1, none),
    ],
    prefer: group === 128 ? { device, simd: 'simd' } : { simd: 'simd' }, embedding: false,
  };
}

export const FORMATS: readonly WeightFormat[] = [
  {
    id: 0, name: 'f32', family: 'float', block: 1, blockBytes: 4, tensorScale: false,
    layout: 'one little-endian float32 per weight',
    fields: [{ name: 'w', type: 'f32' }],
    kernels: [k('naive', both, ['f32']), k('simd', simdOnly, ['f32'])],
    prefer: { device: 'naive', simd: 'simd' }, embedding: true,
  },
  {
    id: 1, name: 'q8_0', family: 'int8', block: 32, blockBytes: 36, tensorScale: false,
    layout: 'f32 d, then 32 x i8 q; w = d*q',
    fields: [{ name: 'd', type: 'f32' }, { name: 'q', type: 'i8', count: 32 }],
    kernels: [k('naive', both, ['i8'], 1, none), k('simd', simdOnly, ['i8'], 1, none)],
    prefer: { device: 'naive', simd: 'simd' }, embedding: true,
  },
  {
    id: 2, name: 'tq2', family: 'ternary', block: 64, blockBytes: 16, tensorScale: true,
    layout: 'ternary, 2 bits a weight: byte b (0..15) holds weights b, 16+b, 32+b, 48+b in bits 0-1, 2-3, 4-5, 6-7 as code c = w+1 (0,1,2)',
    fields: [{ name: 'codes', type: 'u8', count: 16 }],
    kernels: [k('naive', both, ['i8', 'i4']), k('simd', simdOnly, ['i8', 'i4'], 1, (_kk, n) => 4 * n)], // simd: one i32 a token
    prefer: { device: 'naive', simd: 'simd' }, embedding: false,
  },
  {
    id: 3, name: 'tq1', family: 'ternary', block: 64, blockBytes: 13, tensorScale: true,
    layout: 'ternary, 1.625 bits a weight (5 trits a byte): byte i<12 holds weights i+12t (t=0..4), byte 12 holds weights 60..63; ' +
      'a byte is ceil(v*256/243) with v = sum c_t*3^(4-t), c = w+1; digit t = ((byte*3^t mod 256)*3) >> 8',
    fields: [{ name: 'codes', type: 'u8', count: 13 }],
    kernels: [k('naive', both, ['i8', 'i4']), k('simd', simdOnly, ['i8', 'i4'])],
    prefer: { device: 'naive', simd: 'simd' }, embedding: false,
  },
  {
    id: 4, name: 'tb1', family: 'ternary', block: 64, blockBytes: 16, tensorScale: true,
    layout: 'ternary bit planes: u64 plus mask (bit j set: weight j is +1), then u64 minus mask (bit j set: weight j is -1)',
    fields: [{ name: 'plus', type: 'u64' }, { name: 'minus', type: 'u64' }],
    kernels: [k('naive', both, ['i8', 'i4']), k('bitserial', both, ['i8', 'i4'], 1, tb1Planes), k('lut', both, ['i8', 'i4'], 1, (kk) => 16 * kk)],
    prefer: { device: 'bitserial', simd: 'bitserial' }, embedding: false, ternaryFor: ['device'],
  },
  lowbit(5, 2, 32), lowbit(6, 2, 64), lowbit(7, 2, 128),
  lowbit(8, 3, 32), lowbit(9, 3, 64), lowbit(10, 3, 128),
  lowbit(11, 4, 32), lowbit(12, 4, 64), lowbit(13, 4, 128),
  bitmod(14, 3, 128), bitmod(15, 4, 128),
  {
    id: 16, name: 'tt4', family: 'ternary', block: 64, blockBytes: 16, tensorScale: true, rowTile: 16,
    layout: 'ternary for T-MAC table lookups: rows in tiles of 16; for each tile and each group g of 4 weights along K, ' +
      '16 bytes, byte i = row i of the tile: bits 0-3 plus mask of weights 4g..4g+3, bits 4-7 minus mask',
    fields: [{ name: 'masks', type: 'u8', count: 16 }], // one row's block is 16 groups of 4 weights; the bytes of a tile's group lie together
    kernels: [k('naive', both, ['i8', 'i4']), k('lut', simdOnly, ['i8', 'i4'], 1, (kk, n) => 8 * n * kk)],
    prefer: { device: 'naive', simd: 'lut' }, embedding: false, ternaryFor: ['simd'],
  },
  bitmod(17, 3, 32), bitmod(18, 3, 64), bitmod(19, 4, 32), bitmod(20, 4, 64),
  {
    // f32 as the device build's GEMV reads it: per input i, the eight rows it computes at once lie
    // together, so it loads x[i] once and eight consecutive floats (one 256-bit multiply and add after
    // wasm2c and a C compiler; constant offsets from one pointer under wasm3), each row summed in
    // run.c's order. The same values as f32: the host plans it (host/model/plan.ts F32_PANELS).
    id: 21, name: 'f32p8', family: 'float', block: 1, blockBytes: 4, tensorScale: false, rowPanel: 8,
    layout: 'float32 in panels of 8 rows: whole panel p (rows 8p..8p+7, p < floor(M/8)) is K groups of 8 floats, ' +
      'float 8i+j of the panel = w[8p+j][i]; the last M mod 8 rows follow row by row, as f32',
    fields: [{ name: 'w', type: 'f32' }],
    kernels: [k('naive', both, ['f32'])],
    prefer: { device: 'naive', simd: 'naive' }, embedding: true,
  },
];

export function formatByName(name: string): WeightFormat | undefined {
  return FORMATS.find((f) => f.name === name && !f.retired);
}

export function formatById(id: number): WeightFormat | undefined {
  return FORMATS.find((f) => f.id === id);
}

// The formats an embedding can be stored in (the runtime reads one row a token).
// Whether a build carries a kernel of the format (a board runs the device build).
export const runsOn = (f: WeightFormat, target: Target): boolean => f.kernels.some((k) => k.targets.includes(target));

// f32p8 is one too, but the plan chooses it (a shared classifier's panels), not --embed.
export const EMBEDDING_FORMATS: readonly WeightFormat[] = FORMATS.filter((f) => f.embedding && !f.retired && !f.rowPanel);

// What `--quant ternary` means on a target.
export function ternaryFormat(target: Target): WeightFormat {
  return FORMATS.find((f) => !f.retired && f.ternaryFor?.includes(target))!;
}

export function bitsPerWeight(f: WeightFormat): number {
  return (f.blockBytes * 8) / f.block;
}

// Bytes of one (m x k) weight matrix stored row by row in format f (k must be a multiple of f.block).
// Rows a streamed chunk of a matrix in format f is a multiple of (except the last): its row tile or panel.
export function streamTile(f: WeightFormat): number {
  return Math.max(f.rowTile ?? 1, f.rowPanel ?? 1, ...f.kernels.map((kv) => kv.rowTile));
}

export function matrixBytes(f: WeightFormat, m: number, k: number): number {
  return m * (k / f.block) * f.blockBytes;
}

export function kernelExport(f: WeightFormat, act: ActFormatName, variant: string): string {
  return `gemm_${f.name}_${act}_${variant}`;
}

// Every kernel's stable id: its index here. The descriptor names a tensor's kernel by it, so an id
// never changes meaning: append new kernels at the end, and a kernel that goes keeps its line (its
// id is then never dispatched). test/fixtures/kernel-ids.txt freezes the list; test/tables.test.ts
// fails when an id is renumbered, and when a kernel of the table above has no id here.
export const KERNEL_IDS: readonly string[] = [
  'gemm_f32_f32_naive', // 0
  'gemm_f32_f32_simd', // 1
  'gemm_q8_0_i8_naive', // 2
  'gemm_q8_0_i8_simd', // 3
  'gemm_tq2_i8_naive', // 4
  'gemm_tq2_i4_naive', // 5
  'gemm_tq2_i8_simd', // 6
  'gemm_tq2_i4_simd', // 7
  'gemm_tq1_i8_naive', // 8
  'gemm_tq1_i4_naive', // 9
  'gemm_tq1_i8_simd', // 10
  'gemm_tq1_i4_simd', // 11
  'gemm_tb1_i8_naive', // 12
  'gemm_tb1_i4_naive', // 13
  'gemm_tb1_i8_bitserial', // 14
  'gemm_tb1_i4_bitserial', // 15
  'gemm_tb1_i8_lut', // 16
  'gemm_tb1_i4_lut', // 17
  'gemm_i2g32_i8_naive', // 18
  'gemm_i2g32_i4_naive', // 19
  'gemm_i2g32_i8_swar', // 20
  'gemm_i2g32_i4_swar', // 21
  'gemm_i2g32_i8_simd', // 22
  'gemm_i2g32_i4_simd', // 23
  'gemm_i2g64_i8_naive', // 24
  'gemm_i2g64_i4_naive', // 25
  'gemm_i2g64_i8_swar', // 26
  'gemm_i2g64_i4_swar', // 27
  'gemm_i2g64_i8_simd', // 28
  'gemm_i2g64_i4_simd', // 29
  'gemm_i2g128_i8_naive', // 30
  'gemm_i2g128_i4_naive', // 31
  'gemm_i2g128_i8_swar', // 32
  'gemm_i2g128_i4_swar', // 33
  'gemm_i2g128_i8_simd', // 34
  'gemm_i2g128_i4_simd', // 35
  'gemm_i3g32_i8_naive', // 36
  'gemm_i3g32_i4_naive', // 37
  'gemm_i3g32_i8_swar', // 38
  'gemm_i3g32_i4_swar', // 39
  'gemm_i3g32_i8_simd', // 40
  'gemm_i3g32_i4_simd', // 41
  'gemm_i3g64_i8_naive', // 42
  'gemm_i3g64_i4_naive', // 43
  'gemm_i3g64_i8_swar', // 44
  'gemm_i3g64_i4_swar', // 45
  'gemm_i3g64_i8_simd', // 46
  'gemm_i3g64_i4_simd', // 47
  'gemm_i3g128_i8_naive', // 48
  'gemm_i3g128_i4_naive', // 49
  'gemm_i3g128_i8_swar', // 50
  'gemm_i3g128_i4_swar', // 51
  'gemm_i3g128_i8_simd', // 52
  'gemm_i3g128_i4_simd', // 53
  'gemm_i4g32_i8_naive', // 54
  'gemm_i4g32_i4_naive', // 55
  'gemm_i4g32_i8_swar', // 56
  'gemm_i4g32_i4_swar', // 57
  'gemm_i4g32_i8_simd', // 58
  'gemm_i4g32_i4_simd', // 59
  'gemm_i4g64_i8_naive', // 60
  'gemm_i4g64_i4_naive', // 61
  'gemm_i4g64_i8_swar', // 62
  'gemm_i4g64_i4_swar', // 63
  'gemm_i4g64_i8_simd', // 64
  'gemm_i4g64_i4_simd', // 65
  'gemm_i4g128_i8_naive', // 66
  'gemm_i4g128_i4_naive', // 67
  'gemm_i4g128_i8_swar', // 68
  'gemm_i4g128_i4_swar', // 69
  'gemm_i4g128_i8_simd', // 70
  'gemm_i4g128_i4_simd', // 71
  'gemm_bmd3g128_i8_naive', // 72
  'gemm_bmd3g128_i4_naive', // 73
  'gemm_bmd3g128_i8_bitserial', // 74
  'gemm_bmd3g128_i4_bitserial', // 75
  'gemm_bmd3g128_i8_simd', // 76
  'gemm_bmd3g128_i4_simd', // 77
  'gemm_bmd4g128_i8_naive', // 78
  'gemm_bmd4g128_i4_naive', // 79
  'gemm_bmd4g128_i8_bitserial', // 80
  'gemm_bmd4g128_i4_bitserial', // 81
  'gemm_bmd4g128_i8_swar', // 82
  'gemm_bmd4g128_i4_swar', // 83
  'gemm_bmd4g128_i8_simd', // 84
  'gemm_bmd4g128_i4_simd', // 85
  'gemm_tt4_i8_naive', // 86
  'gemm_tt4_i4_naive', // 87
  'gemm_tt4_i8_lut', // 88
  'gemm_tt4_i4_lut', // 89
  'gemm_bmd3g32_i8_naive', // 90
  'gemm_bmd3g32_i4_naive', // 91
  'gemm_bmd3g32_i8_simd', // 92
  'gemm_bmd3g32_i4_simd', // 93
  'gemm_bmd3g64_i8_naive', // 94
  'gemm_bmd3g64_i4_naive', // 95
  'gemm_bmd3g64_i8_bitserial', // 96
  'gemm_bmd3g64_i4_bitserial', // 97
  'gemm_bmd3g64_i8_simd', // 98
  'gemm_bmd3g64_i4_simd', // 99
  'gemm_bmd4g32_i8_naive', // 100
  'gemm_bmd4g32_i4_naive', // 101
  'gemm_bmd4g32_i8_swar', // 102
  'gemm_bmd4g32_i4_swar', // 103
  'gemm_bmd4g32_i8_simd', // 104
  'gemm_bmd4g32_i4_simd', // 105
  'gemm_bmd4g64_i8_naive', // 106
  'gemm_bmd4g64_i4_naive', // 107
  'gemm_bmd4g64_i8_bitserial', // 108
  'gemm_bmd4g64_i4_bitserial', // 109
  'gemm_bmd4g64_i8_swar', // 110
  'gemm_bmd4g64_i4_swar', // 111
  'gemm_bmd4g64_i8_simd', // 112
  'gemm_bmd4g64_i4_simd', // 113
  'gemm_bmd3g32_i8_bitserial', // 114
  'gemm_bmd3g32_i4_bitserial', // 115
  'gemm_f32p8_f32_naive', // 116
];
