// The reference for INT2/INT3/INT4 asymmetric groups: round-to-nearest min-max quantization per group
// of G weights along K. Block: f32 d, f32 m, then the G codes (ref/codes.ts); w = d*q + m, q in
// [0, 2^bits - 1], d = (max - min) / (2^bits - 1), m = min.
// GEMM, per output row, in f32 with this exact order (every kernel matches it bit for bit):
//   per block b: iq = sum_i q_i*x_i, sx = sum_i x_i (exact integers); acc = acc + (d*iq + m*sx);
//   after the last block: y = acc * xs[t].
import { FORMATS, type WeightFormat } from '../formats.ts';
import type { ActTensor, QuantTensor } from '../tensor.ts';
import { codeAt, codesBytes, packCodes } from './codes.ts';
import type { FormatRef } from './types.ts';

const f = Math.fround;

// Bits per code of a grouped format (lowbit and bitmod blocks carry 8 bytes of scales).
export function bitsOf(format: WeightFormat): number {
  return ((format.blockBytes - 8) * 8) / format.block;
}

function lowbitRef(format: WeightFormat): FormatRef {
  const g = format.block;
  const bits = bitsOf(format);
  const levels = (1 << bits) - 1;
  if (format.blockBytes !== 8 + codesBytes(bits, g)) throw new Error(`${format.name}: block bytes disagree with the code layout`);
  return {
    quantize(w, m, k) {
      const nb = k / g;
      const data = new Uint8Array(m * nb * format.blockBytes);
      const view = new DataView(data.buffer);
      const codes = new Uint8Array(g);
      for (let r = 0; r < m; r++) {
        for (let b = 0; b < nb; b++) {
          const grp = w.subarray(r * k + b * g, r * k + (b + 1) * g);
          let lo = Infinity, hi = -Infinity;
          for (const v of grp) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
          }
          const d = f((hi - lo) / levels);
          for (let i = 0; i < g; i++) codes[i] = d > 0 ? Math.max(0, Math.min(levels, Math.round((grp[i] - lo) / d))) : 0;
          const at = (r * nb + b) * format.blockBytes;
          view.setFloat32(at, d, true);
          view.setFloat32(at + 4, lo, true);
          packCodes(bits, codes, g, data, at + 8);
        }
      }
      return { format, m, k, data, scale: 1 };
    },
    dequantize(t) {
      const nb = t.k / g;
      const view = new DataView(t.data.buffer, t.data.byteOffset);
      const out = new Float32Array(t.m * t.k);
      for (let r = 0; r < t.m; r++) {
        for (let b = 0; b < nb; b++) {
          const at = (r * nb + b) * format.blockBytes;
          const d = view.getFloat32(at, true), mn = view.getFloat32(at + 4, true);
          for (let i = 0; i < g; i++) out[r * t.k + b * g + i] = f(f(d * codeAt(bits, t.data, at + 8, g, i)) + mn);
        }
      }
      return out;
    },
    gemm(t: QuantTensor, x: ActTensor) {
      const nb = t.k / g;
      const view = new DataView(t.data.buffer, t.data.byteOffset);
      const y = new Float32Array(x.n * t.m);
      for (let tok = 0; tok < x.n; tok++) {
        for (let r = 0; r < t.m; r++) {
          let acc = 0;
          for (let b = 0; b < nb; b++) {
            const at = (r * nb + b) * format.blockBytes;
            let iq = 0, sx = 0;
            for (let i = 0; i < g; i++) {
              const xv = x.q[tok * t.k + b * g + i];
              iq += codeAt(bits, t.data, at + 8, g, i) * xv;
              sx += xv;
            }
            acc = f(acc + f(f(view.getFloat32(at, true) * iq) + f(view.getFloat32(at + 4, true) * sx)));
          }
          y[tok * t.m + r] = f(acc * x.scales[tok]);
        }
      }
      return y;
    },
  };
}

export const LOWBIT_REFS: Record<string, FormatRef> = Object.fromEntries(
  FORMATS.filter((x) => x.family === 'lowbit' && !x.retired).map((x) => [x.name, lowbitRef(x)]),
);
