// A quantization target as the methods see it: how a group of weights is fitted (its parameters),
// how one weight rounds to a code and what a code decodes to, and how codes and parameters become
// the bytes of a format. The methods (rtn, gptq) choose the codes; the schemes only encode them.
// Every `value` is the exact f32 the format's reader decodes, so reconstruction errors are exact.
import { EF_TYPE_BASE } from '../formats/gguf.ts';
import type { WeightFormat } from './formats.ts';
import { packCodes } from './ref/codes.ts';

export interface GroupParams {
  d: number;    // step / scale
  m: number;    // offset (asymmetric integers)
  sel: number;  // BitMoD grid selector
}

export interface Encoded {
  type: number;         // ggml type, or EF_TYPE_BASE + format id
  bytes: Uint8Array;
  k: number;            // stored row length (cols rounded up to the block)
  format?: WeightFormat; // the table format of an extension type
  scale?: number;       // tensor scale (ternary)
}

export interface Scheme {
  name: string;         // the format written: i4g32, bmd3g128, tq2, q4_0 ...
  group: number;        // columns that share parameters (a whole row for per-tensor scales)
  bitsPerWeight: number;
  // Parameters of one group from its (current) values; a per-tensor scheme ignores them.
  fit(w: ArrayLike<number>): GroupParams;
  code(v: number, p: GroupParams): number;
  value(code: number, p: GroupParams): number;
  // codes (rows, k) row-major and params (rows, k / group); k a multiple of the group (zero-padded).
  encode(codes: Uint8Array, params: GroupParams[], rows: number, k: number): Encoded;
}

// What a method returns for one matrix: codes and parameters, already padded to k.
export interface QuantResult { codes: Uint8Array; params: GroupParams[]; k: number }

// Dequantized (rows, cols) values of a result (the padding cropped).
export function dequantResult(s: Scheme, r: QuantResult, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  const ng = r.k / s.group;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) out[i * cols + j] = s.value(r.codes[i * r.k + j], r.params[i * ng + Math.floor(j / s.group)]);
  }
  return out;
}

// The grouped formats' blocks (lowbit, BitMoD): an 8-byte head that `head` writes from the group's
// params, then the group's codes packed at `bits` bits (host/quant/ref/codes.ts). (rows, k) codes.
export function encodeGroups(format: WeightFormat, bits: number, group: number, codes: Uint8Array, params: GroupParams[], rows: number, k: number,
  head: (dv: DataView, at: number, p: GroupParams, bytes: Uint8Array) => void): Encoded {
  const nb = k / group;
  const bytes = new Uint8Array(rows * nb * format.blockBytes);
  const dv = new DataView(bytes.buffer);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const at = (r * nb + b) * format.blockBytes;
      head(dv, at, params[r * nb + b], bytes);
      packCodes(bits, codes.subarray(r * k + b * group, r * k + (b + 1) * group), group, bytes, at + 8);
    }
  }
  return { type: EF_TYPE_BASE + format.id, bytes, k, format };
}
