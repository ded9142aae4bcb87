// Quantized tensors as the host holds them: bytes in a format of the table, plus the tensor scale.
import type { ActFormatName, WeightFormat } from './formats.ts';

// A (m, k) weight matrix, row by row, each row k/format.block blocks of format.blockBytes bytes.
export interface QuantTensor {
  format: WeightFormat;
  m: number;
  k: number;
  data: Uint8Array;
  scale: number; // the f32 tensor scale of tensorScale formats (ternary absmean); 1 otherwise
}

// (n, k) activations: n tokens, quantized per token (i8/i4: one value per Int8Array byte) or f32.
export interface ActTensor {
  format: ActFormatName;
  n: number;
  k: number;
  q: Int8Array | Float32Array;
  scales: Float32Array; // (n) per-token scales; ones for f32
}
