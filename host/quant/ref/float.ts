// The references for unquantized weights. f32: y = x w^T accumulated in float64. f32p8 (the same
// values in panels of 8 rows, docs/formats.md): its layout, and each row summed in float32 in run.c's
// order (acc += w[i] * x[i], i ascending), which the kernels match bit for bit.
import { formatByName } from '../formats.ts';
import type { FormatRef } from './types.ts';

const F32 = formatByName('f32')!;
const F32P8 = formatByName('f32p8')!;
const PANEL = F32P8.rowPanel!;

// Where weight (r, i) of an (m, k) f32p8 matrix lies, in floats from its start.
export function panelIndex(r: number, i: number, m: number, k: number): number {
  const whole = m - (m % PANEL);
  return r < whole ? (r - (r % PANEL)) * k + i * PANEL + (r % PANEL) : r * k + i;
}

// (m, k) row-major float32 values -> f32p8 bytes, and back.
export function toPanels(w: Float32Array, m: number, k: number): Uint8Array {
  const out = new Float32Array(m * k);
  for (let r = 0; r < m; r++) for (let i = 0; i < k; i++) out[panelIndex(r, i, m, k)] = w[r * k + i];
  return new Uint8Array(out.buffer);
}

export function fromPanels(data: Uint8Array, m: number, k: number): Float32Array {
  const p = new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + m * k * 4));
  const out = new Float32Array(m * k);
  for (let r = 0; r < m; r++) for (let i = 0; i < k; i++) out[r * k + i] = p[panelIndex(r, i, m, k)];
  return out;
}

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
  f32p8: {
    quantize(w, m, k) {
      return { format: F32P8, m, k, data: toPanels(w, m, k), scale: 1 };
    },
    dequantize(t) {
      return fromPanels(t.data, t.m, t.k);
    },
    gemm(t, x) {
      const w = fromPanels(t.data, t.m, t.k);
      const f = Math.fround;
      const y = new Float32Array(x.n * t.m);
      for (let tok = 0; tok < x.n; tok++) {
        for (let r = 0; r < t.m; r++) {
          let acc = 0; // float32: a double product of two floats is exact, and so rounds once
          for (let i = 0; i < t.k; i++) acc = f(acc + f(w[r * t.k + i] * x.q[tok * t.k + i]));
          y[tok * t.m + r] = acc;
        }
      }
      return y;
    },
  },
};
