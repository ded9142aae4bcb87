// The reference for BitMoD (per-group mixture of datatypes, Chen et al., HPCA 2025): each group of G
// weights picks one of the grids of BITMOD_GRIDS (FP3/FP4 with the negative zero repurposed as a
// special value) and a scale, whichever gives the least squared error.
// Block: f32 scale, u8 selector, 3 zero bytes, codes (ref/codes.ts); w = scale * grid[code].
// GEMM per output row in f32 (every kernel matches it bit for bit):
//   per block: iq = sum grid[q]*x (exact integer); acc = acc + scale*iq; after the last block y = acc * xs[t].
import { BITMOD_GRIDS, FORMATS, type WeightFormat } from '../formats.ts';
import type { QuantTensor } from '../tensor.ts';
import { codeAt, codesBytes, packCodes } from './codes.ts';
import { bitsOf } from './lowbit.ts';
import type { FormatRef } from './types.ts';

const f = Math.fround;
// Scales tried per grid: the one that just fits the group's extremes, then tighter ones that clip
// the extremes to the grid's ends (a clipped outlier can cost less than coarse steps for the rest).
// Ten steps of 0.05 down to half: on Gaussian groups they lower the squared error 2-5 % below the
// three steps 1, 0.9, 0.8 (the 4-bit groups of 32 gain the most).
const CLIP = Array.from({ length: 11 }, (_, i) => 1 - 0.05 * i);

export interface GroupFit {
  sel: number; // the grid's selector
  scale: number; // f32
  codes: Uint8Array;
  err: number; // sum of squared errors
}

// Nearest-code quantization of w onto scale * grid, and its squared error.
export function fitGrid(grid: readonly number[], scale: number, w: ArrayLike<number>): { codes: Uint8Array; err: number } {
  const codes = new Uint8Array(w.length);
  let err = 0;
  for (let i = 0; i < w.length; i++) {
    let bi = 0, be = Infinity;
    for (let c = 0; c < grid.length; c++) {
      const e = Math.abs(w[i] - f(scale * grid[c]));
      if (e < be) {
        be = e;
        bi = c;
      }
    }
    codes[i] = bi;
    err += be * be;
  }
  return { codes, err };
}

// The best (selector, scale, codes) for one group.
export function fitGroup(bits: number, w: ArrayLike<number>, grids: readonly (readonly number[])[] = BITMOD_GRIDS[bits]): GroupFit {
  let best: GroupFit = { sel: 0, scale: 0, codes: new Uint8Array(w.length), err: Infinity };
  let wmax = 0, wmin = 0;
  for (let i = 0; i < w.length; i++) {
    wmax = Math.max(wmax, w[i]);
    wmin = Math.min(wmin, w[i]);
  }
  grids.forEach((grid, sel) => {
    const gmax = Math.max(...grid), gmin = Math.min(...grid);
    const fits = Math.max(wmax / gmax, wmin / gmin, 1e-30);
    for (const clip of CLIP) {
      const scale = f(fits * clip);
      const { codes, err } = fitGrid(grid, scale, w);
      if (err < best.err) best = { sel, scale, codes, err };
    }
  });
  return best;
}

function bitmodRef(format: WeightFormat): FormatRef {
  const g = format.block;
  const bits = bitsOf(format);
  const grids = BITMOD_GRIDS[bits];
  if (format.blockBytes !== 8 + codesBytes(bits, g)) throw new Error(`${format.name}: block bytes disagree with the code layout`);
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
