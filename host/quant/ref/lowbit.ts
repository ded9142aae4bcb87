// The reference for INT2/INT3/INT4 asymmetric groups (RTN min-max) and Q8_0.
// Group block: f32 d, f32 m, codes (ref/codes.ts); w = d*q + m.
// GEMM per row, in f32 with this exact order (every kernel matches it bit for bit):
//   per block: iq = sum q*x, sx = sum x (exact i32); acc = acc + (d*iq + m*sx); then y = acc * xs[t].
// Q8_0 block: f32 d, 32 x i8 q; w = d*q; per block acc = acc + d*iq.
import { FORMATS, type WeightFormat } from '../formats.ts';
import type { ActTensor, QuantTensor } from '../tensor.ts';
import { codeAt, packCodes } from './codes.ts';
import type { FormatRef } from './types.ts';

const f = Math.fround;

export function bitsOf(format: WeightFormat): number {
  return ((format.blockBytes - 8) * 8) / format.block;
}

function quantizeGroups(format: WeightFormat, w: Float32Array, m: number, k: number): QuantTensor {
  const g = format.block;
  const bits = bitsOf(format);
  const levels = (1 << bits) - 1;
  const nb = k / g;
  const data = new Uint8Array(m * nb * format.blockBytes);
  const view = new DataView(data.buffer);
  const codes = new Uint8Array(g);
  for (let r = 0; r < m; r++) {
    for (let b = 0; b < nb; b++) {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < g; i++) {
        const v = w[r * k + b * g + i];
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      const d = f((hi - lo) / levels);
      for (let i = 0; i < g; i++) codes[i] = d > 0 ? Math.max(0, Math.min(levels, Math.round((w[r * k + b * g + i] - lo) / d))) : 0;
      const at = (r * nb + b) * format.blockBytes;
      view.setFloat32(at, d, true);
      view.setFloat32(at + 4, lo, true);
      packCodes(bits, codes, g, data, at + 8);
    }
  }
  return { format, m, k, data, scale: 1 };
}

function groupsRef(format: WeightFormat): FormatRef {
  const g = format.block;
  const bits = bitsOf(format);
  return {
    quantize: (w, m, k) => quantizeGroups(format, w, m, k),
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

const Q8 = FORMATS.find((x) => x.name === 'q8_0')!;

const q8Ref: FormatRef = {
  quantize(w, m, k) {
    const nb = k / 32;
    const data = new Uint8Array(m * nb * 36);
    const view = new DataView(data.buffer);
    for (let r = 0; r < m; r++) {
      for (let b = 0; b < nb; b++) {
        let amax = 0;
        for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(w[r * k + b * 32 + i]));
        const d = f(amax / 127);
        const at = (r * nb + b) * 36;
        view.setFloat32(at, d, true);
        for (let i = 0; i < 32; i++) view.setInt8(at + 4 + i, d > 0 ? Math.max(-127, Math.min(127, Math.round(w[r * k + b * 32 + i] / d))) : 0);
      }
    }
    return { format: Q8, m, k, data, scale: 1 };
  },
  dequantize(t) {
    const nb = t.k / 32;
    const view = new DataView(t.data.buffer, t.data.byteOffset);
    const out = new Float32Array(t.m * t.k);
    for (let r = 0; r < t.m; r++) {
      for (let b = 0; b < nb; b++) {
        const at = (r * nb + b) * 36;
        for (let i = 0; i < 32; i++) out[r * t.k + b * 32 + i] = f(view.getFloat32(at, true) * view.getInt8(at + 4 + i));
      }
    }
    return out;
  },
  gemm(t, x) {
    const nb = t.k / 32;
    const view = new DataView(t.data.buffer, t.data.byteOffset);
    const y = new Float32Array(x.n * t.m);
    for (let tok = 0; tok < x.n; tok++) {
      for (let r = 0; r < t.m; r++) {
        let acc = 0;
        for (let b = 0; b < nb; b++) {
          const at = (r * nb + b) * 36;
          let iq = 0;
          for (let i = 0; i < 32; i++) iq += view.getInt8(at + 4 + i) * x.q[tok * t.k + b * 32 + i];
          acc = f(acc + f(view.getFloat32(at, true) * iq));
        }
        y[tok * t.m + r] = f(acc * x.scales[tok]);
      }
    }
    return y;
  },
};

export const LOWBIT_REFS: Record<string, FormatRef> = {
  q8_0: q8Ref,
  ...Object.fromEntries(FORMATS.filter((x) => x.family === 'lowbit' && !x.retired).map((x) => [x.name, groupsRef(x)])),
};
