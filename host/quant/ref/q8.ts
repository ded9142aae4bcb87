// The reference for Q8_0 (as ggml's): blocks of 32 weights, f32 d then 32 x i8 q; w = d*q,
// d = max|w| / 127, q = round(w / d) (round-to-nearest).
// GEMM per output row in f32 (every kernel matches it bit for bit):
//   per block: iq = sum q*x (exact i32); acc = acc + d*iq; after the last block y = acc * xs[t].
import { formatByName } from '../formats.ts';
import type { FormatRef } from './types.ts';

const f = Math.fround;
const Q8 = formatByName('q8_0')!;
const QK = Q8.block; // 32
const BYTES = Q8.blockBytes; // 4 + 32

export const Q8_REFS: Record<string, FormatRef> = {
  q8_0: {
    quantize(w, m, k) {
      const nb = k / QK;
      const data = new Uint8Array(m * nb * BYTES);
      const view = new DataView(data.buffer);
      for (let r = 0; r < m; r++) {
        for (let b = 0; b < nb; b++) {
          let amax = 0;
          for (let i = 0; i < QK; i++) amax = Math.max(amax, Math.abs(w[r * k + b * QK + i]));
          const d = f(amax / 127);
          const at = (r * nb + b) * BYTES;
          view.setFloat32(at, d, true);
          for (let i = 0; i < QK; i++) view.setInt8(at + 4 + i, d > 0 ? Math.max(-127, Math.min(127, Math.round(w[r * k + b * QK + i] / d))) : 0);
        }
      }
      return { format: Q8, m, k, data, scale: 1 };
    },
    dequantize(t) {
      const nb = t.k / QK;
      const view = new DataView(t.data.buffer, t.data.byteOffset);
      const out = new Float32Array(t.m * t.k);
      for (let r = 0; r < t.m; r++) {
        for (let b = 0; b < nb; b++) {
          const at = (r * nb + b) * BYTES;
          for (let i = 0; i < QK; i++) out[r * t.k + b * QK + i] = f(view.getFloat32(at, true) * view.getInt8(at + 4 + i));
        }
      }
      return out;
    },
    gemm(t, x) {
      const nb = t.k / QK;
      const view = new DataView(t.data.buffer, t.data.byteOffset);
      const y = new Float32Array(x.n * t.m);
      for (let tok = 0; tok < x.n; tok++) {
        for (let r = 0; r < t.m; r++) {
          let acc = 0;
          for (let b = 0; b < nb; b++) {
            const at = (r * nb + b) * BYTES;
            let iq = 0;
            for (let i = 0; i < QK; i++) iq += view.getInt8(at + 4 + i) * x.q[tok * t.k + b * QK + i];
            acc = f(acc + f(view.getFloat32(at, true) * iq));
          }
          y[tok * t.m + r] = f(acc * x.scales[tok]);
        }
      }
      return y;
    },
  },
};
