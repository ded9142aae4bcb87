// The edge-flash image format, version 3: constants, byte layouts and the error catalogue.
// docs/image-format.md is the spec; host/image/write.ts is the one writer, host/image/read.ts the one
// reader. Everything is little-endian. A layout change bumps IMAGE_VERSION, so an old reader refuses a
// new image with a clear message instead of reading garbage.
import { UserError } from '../errors.ts';

export const IMAGE_MAGIC = 'EFIM';          // bytes 45 46 49 4D
export const IMAGE_VERSION = 3;       // 3: the descriptor section (the runtime's plan); 2: the app's EFTK tokenizer, text_bytes
export const HEADER_BYTES = 24;             // the fixed header, before the section table
export const SECTION_ENTRY_BYTES = 20;
export const MAX_SECTIONS = 16;
export const DIGEST_BYTES = 32;             // SHA-256 of every byte before it
export const SIGNATURE_TRAILER_BYTES = 96;  // Ed25519 public key (32) + signature (64) of the digest
export const FLAG_SIGNED = 1;
export const KNOWN_FLAGS = FLAG_SIGNED;

// Header, bytes [0, 24):
//   0  u8[4] magic "EFIM"        4  u16 version            6  u16 header_size = 24 + 20 * section_count
//   8  u16 board_id              10 u16 flags (bit 0 signed)
//   12 u32 total_size (trailer included)
//   16 u16 section_count (1..16) 18 u16 reserved, 0
//   20 u32 header_crc: CRC-32 of bytes [0, header_size) with these four bytes taken as zero
// Section table entry i, bytes [24 + 20 i, 44 + 20 i):
//   0 u32 kind   4 u32 offset (from the image start)   8 u32 size   12 u32 align (a power of two)   16 u32 crc32
// Trailer at digest_offset = total_size - 32 - (signed ? 96 : 0):
//   u8[32] SHA-256 of bytes [0, digest_offset); if signed: u8[32] Ed25519 public key, u8[64] signature of the digest.
export const H = { magic: 0, version: 4, headerSize: 6, board: 8, flags: 10, totalSize: 12, sectionCount: 16, reserved: 18, crc: 20 } as const;
export const S = { kind: 0, offset: 4, size: 8, align: 12, crc: 16 } as const;

export interface SectionKind {
  kind: number;
  name: string;
  minAlign: number;  // the writer aligns to exactly this; a reader accepts any larger power of two
  required: boolean;
}

// Kinds are append-only, like format ids: a retired kind keeps its number.
export const SECTION_KINDS: readonly SectionKind[] = [
  { kind: 1, name: 'app', minAlign: 16, required: true },        // the device app, a .wasm module
  { kind: 2, name: 'config', minAlign: 16, required: true },     // CONFIG_BYTES, the layout below
  { kind: 3, name: 'tokenizer', minAlign: 16, required: true },  // the app's tokenizer (EFTK, docs/image-format.md)
  { kind: 4, name: 'weights', minAlign: 64, required: true },    // tensor directory + tensors
  { kind: 5, name: 'metadata', minAlign: 16, required: false },  // UTF-8 JSON object, informative only
  { kind: 6, name: 'descriptor', minAlign: 16, required: true }, // the model descriptor model_init reads (docs/model.md), image offsets
];
export const KIND = { app: 1, config: 2, tokenizer: 3, weights: 4, metadata: 5, descriptor: 6 } as const;
export function sectionKind(kind: number): SectionKind | undefined {
  return SECTION_KINDS.find((k) => k.kind === kind);
}
export function sectionName(kind: number): string {
  return sectionKind(kind)?.name ?? `kind ${kind}`;
}

// Config section, exactly 64 bytes:
//   0 u32 dim   4 u32 hidden_dim   8 u32 n_layers   12 u32 n_heads   16 u32 n_kv_heads   20 u32 vocab_size
//   24 u32 seq_len (the model's maximum context)   28 u32 ctx (the KV cache length planned for, 1..seq_len)
//   32 u32 flags: bit 0 shared classifier (no 'output' tensor); other bits 0
//   36 u32 planned_linear: the arena high-water mark of the plan (host/model/plan.ts), 0 when not planned
//   40 u8 kv_format (KV_CODES)   41 u8 act_format (ACT_CODES)   42 u16 batch: the prefill width planned (0: none)
//   44 f32 norm_eps   48 f32 rope_theta   52 u32 linear_limit: the linear memory the plan had to fit (0: none)
//   56 u32 text_bytes: the app's prompt buffer (longest prompt it tokenizes)   60 u8[4] reserved, 0
export const CONFIG_BYTES = 64;
export const C = {
  dim: 0, hiddenDim: 4, nLayers: 8, nHeads: 12, nKvHeads: 16, vocabSize: 20, seqLen: 24, ctx: 28, flags: 32,
  plannedLinear: 36, kv: 40, act: 41, batch: 42, normEps: 44, ropeTheta: 48, linearLimit: 52, textBytes: 56, reservedTail: 60,
} as const;
export const CONFIG_FLAG_SHARED = 1;
export const CONFIG_KNOWN_FLAGS = 1;
export const DEFAULT_TEXT_BYTES = 512; // pack's prompt buffer: run.c's 512-byte prompts fit, the chat template aside

export type { KvFormatName } from '../model/kv.ts';
import { KV_FORMATS, type KvFormatName } from '../model/kv.ts';
import { ACT_FORMATS } from '../quant/formats.ts';
export type ImageActName = 'f32' | 'i8' | 'i4' | 'a4.8';
// The codes are the tables' ids (dense from 0: test/tables.test.ts); act code 3 is BitNet a4.8's
// hybrid (i4 or i8 per matrix as the descriptor's qmax says, top-K in its keep words)
export const KV_CODES: readonly KvFormatName[] = [...KV_FORMATS].sort((a, b) => a.id - b.id).map((f) => f.name);
export const ACT_CODES: readonly ImageActName[] = [...[...ACT_FORMATS].sort((a, b) => a.id - b.id).map((f) => f.name), 'a4.8'];

// Weights section: a 16-byte directory header, 64-byte entries, then the tensors.
//   0 u32 tensor_count   4 u32 tensor_align (a power of two >= 16)   8 u32 data_offset (the first tensor,
//   from the section start)   12 u32 reserved, 0
// Entry: 0 char[32] name (ASCII, NUL-padded, at least one NUL)   32 u16 format id (host/quant/formats.ts)
//   34 u16 flags: bit 0 resident (copied to linear memory at start; otherwise read from flash when used)
//   36 u32 rows   40 u32 cols (the model's shape; stored padded, see layout.ts)   44 f32 tensor scale
//   48 u32 offset (from the section start, a multiple of tensor_align)   52 u32 size   56 u8[8] reserved, 0
export const WEIGHTS_HEADER_BYTES = 16;
export const TENSOR_ENTRY_BYTES = 64;
export const TENSOR_NAME_BYTES = 32;
export const TENSOR_ALIGN = 64;
export const TENSOR_FLAG_RESIDENT = 1;
export const W = { count: 0, align: 4, dataOffset: 8, reserved: 12 } as const;
export const T = { name: 0, format: 32, flags: 34, rows: 36, cols: 40, scale: 44, offset: 48, size: 52, reserved: 56 } as const;

// The closed catalogue of image errors. `code` is stable and shared with the C runtime's vectors
// (test/vectors/image/vectors.json); the message says what was found and what was needed.
export type ImageErrorCode =
  | 'truncated' | 'trailing' | 'magic' | 'version' | 'future_version' | 'header' | 'header_crc'
  | 'wrong_board' | 'oversized' | 'section_kind' | 'section_duplicate' | 'section_missing'
  | 'section_align' | 'misaligned' | 'section_bounds' | 'overlap' | 'section_crc' | 'sha256'
  | 'signature' | 'app' | 'config' | 'tokenizer' | 'tensor' | 'metadata'
  | 'descriptor' | 'descriptor_tokenizer' | 'descriptor_tensor' | 'descriptor_kernel' | 'descriptor_resident';

export class ImageError extends UserError {
  constructor(readonly code: ImageErrorCode, message: string, hint?: string) {
    super(message, hint);
    this.name = 'ImageError';
  }
}

export function fail(code: ImageErrorCode, message: string, hint?: string): never {
  throw new ImageError(code, message, hint);
}

export function isPow2(x: number): boolean {
  return x > 0 && (x & (x - 1)) === 0;
}

export function alignUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
