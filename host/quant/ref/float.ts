// The reference for unquantized f32 weights: y = x w^T accumulated in float64.
import { formatByName } from '../formats.ts';
import type { FormatRef } from './types.ts';

const F32 = formatByName('f32')!;

export const FLOAT_REFS: Record<string, FormatRef> = {
  f32: {
    quantize(w, m, k) {
      const copy = Float32Array.from(w.subarray(0, m * k));
      return { format: F32, m, k, data: new Uint8Array(copy.buffer), scale: 1 };
    },
    dequantize(t) {
      return new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.m * t.k * 4));
    },
    gemm(t, x) {
      const w = new Float32Array(t.data.buffer, t.data.byteOffset, t.m * t.k);
      const y = new Float32Array(x.n * t.m);
      for (let tok = 0; tok < x.n; tok++) {
        for (let r = 0; r < t.m; r++) {
          let acc = 0;
          for (let i = 0; i < t.k; i++) acc += w[r * t.k + i] * x.q[tok * t.k + i];
          y[tok * t.m + r] = acc;
        }
      }
      return y;
    },
  },
};
