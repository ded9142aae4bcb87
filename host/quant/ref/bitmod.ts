// The reference for BitMoD (per-group mixture of datatypes): each group of G weights picks the grid of
// BITMOD_GRIDS (FP3/FP4 with one special value) and scale with the least squared error.
// Block: f32 scale, u8 selector, 3 zero bytes, codes (ref/codes.ts). w = scale * grid[code].
// GEMM per row in f32: per block iq = sum grid[q]*x (exact i32); acc = acc + scale*iq; y = acc * xs[t].
import { BITMOD_GRIDS, FORMATS, type WeightFormat } from '../formats.ts';
import type { QuantTensor } from '../tensor.ts';
import { codeAt, packCodes } from './codes.ts';
import { bitsOf } from './lowbit.ts';
import type { FormatRef } from './types.ts';

const f = Math.fround;

// The best (selector, scale, codes) for one group, and its squared error.
export function fitGroup(bits: number, w: ArrayLike<number>): { sel: number; scale: number; codes: Uint8Array; err: number } {
  let best = { sel: 0, scale: 0, codes: new Uint8Array(w.length), err: Infinity };
  let wmax = 0, wmin = 0;
  for (let i = 0; i < w.length; i++) {
    wmax = Math.max(wmax, w[i]);
    wmin = Math.min(wmin, w[i]);
  }
  BITMOD_GRIDS[bits].forEach((grid, sel) => {
    const gmax = grid[grid.length - 1], gmin = grid[0];
    // the smallest scale that keeps both extremes of the group inside the grid
    const scale = f(Math.max(wmax / gmax, wmin / gmin, 1e-12));
    const codes = new Uint8Array(w.length);
    let err = 0;
    for (let i = 0; i < w.length; i++) {
      let bi = 0, be = Infinity;
      for (let c = 0; c < grid.length; c++) {
        const e = Math.abs(w[i] - scale * grid[c]);
        if (e < be) {
          be = e;
          bi = c;
        }
      }
      codes[i] = bi;
      err += be * be;
    }
    if (err < best.err) best = { sel, scale, codes, err };
  });
  return best;
}

function bitmodRef(format: WeightFormat): FormatRef {
  const g = format.block;
  const bits = bitsOf(format);
  const grids = BITMOD_GRIDS[bits];
  return {
    quantize(w, m, k) {
      const nb = k / g;
      const data = new Uint8Array(m * nb * format.blockBytes);
      const view = new DataView(data.buffer);
      for (let r = 0; r < m; r++) {
        for (let b = 0; b < nb; b++) {
          const fit = fitGroup(bits, w.subarray(r * k + b * g, r * k + (b + 1) * g));
          const at = (r * nb + b) * format.blockBytes;
          view.setFloat32(at, fit.scale, true);
          data[at + 4] = fit.sel;
          packCodes(bits, fit.codes, g, data, at + 8);
        }
      }
      return { format, m, k, data, scale: 1 };
    },
    dequantize(t: QuantTensor) {
      const nb = t.k / g;
      const view = new DataView(t.data.buffer, t.data.byteOffset);
      const out = new Float32Array(t.m * t.k);
      for (let r = 0; r < t.m; r++) {
        for (let b = 0; b < nb; b++) {
          const at = (r * nb + b) * format.blockBytes;
          const grid = grids[t.data[at + 4]];
          for (let i = 0; i < g; i++) out[r * t.k + b * g + i] = f(view.getFloat32(at, true) * grid[codeAt(bits, t.data, at + 8, g, i)]);
        }
      }
      return out;
    },
    gemm(t, x) {
      const nb = t.k / g;
      const view = new DataView(t.data.buffer, t.data.byteOffset);
      const y = new Float32Array(x.n * t.m);
      for (let tok = 0; tok < x.n; tok++) {
        for (let r = 0; r < t.m; r++) {
          let acc = 0;
          for (let b = 0; b < nb; b++) {
            const at = (r * nb + b) * format.blockBytes;
            const grid = grids[t.data[at + 4]];
            let iq = 0;
            for (let i = 0; i < g; i++) iq += grid[codeAt(bits, t.data, at + 8, g, i)] * x.q[tok * t.k + b * g + i];
            acc = f(acc + f(view.getFloat32(at, true) * iq));
          }
          y[tok * t.m + r] = f(acc * x.scales[tok]);
        }
      }
      return y;
    },
  };
}

export const BITMOD_REFS: Record<string, FormatRef> = Object.fromEntries(
  FORMATS.filter((x) => x.family === 'bitmod' && !x.retired).map((x) => [x.name, bitmodRef(x)]),
);
