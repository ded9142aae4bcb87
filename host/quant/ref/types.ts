import type { ActTensor, QuantTensor } from '../tensor.ts';

// What every row of the format table has on the host: the scalar reference, which is the spec.
export interface FormatRef {
  // Quantize an (m, k) f32 matrix (row-major) into the format.
  quantize(w: Float32Array, m: number, k: number): QuantTensor;
  dequantize(t: QuantTensor): Float32Array;
  // y (n, m) = x (n, k) times the transpose of t (m, k), exactly as every kernel must compute it.
  gemm(t: QuantTensor, x: ActTensor): Float32Array;
}
