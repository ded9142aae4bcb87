// BitMoD: per group, the grid of BITMOD_GRIDS (FP3 / FP4 with the redundant -0 turned into a special
// value) and the scale with the least squared error, chosen by the reference's fitGroup
// (host/quant/ref/bitmod.ts); written in the table's bmd<b>g<G> layout (f32 scale, u8 selector, codes).
import { BITMOD_GRIDS, formatByName } from './formats.ts';
import { fitGroup } from './ref/bitmod.ts';
import { encodeGroups, type Scheme } from './scheme.ts';

const f = Math.fround;

export function bitmodScheme(bits: number, group: number): Scheme {
  const format = formatByName(`bmd${bits}g${group}`);
  if (!format) throw new Error(`no format bmd${bits}g${group}`);
  const grids = BITMOD_GRIDS[bits];
  return {
    name: format.name, group, bitsPerWeight: (format.blockBytes * 8) / group,
    fit(w) {
      const g = fitGroup(bits, w);
      return { d: g.scale, m: 0, sel: g.sel };
    },
    code(v, p) {
      const grid = grids[p.sel];
      let bi = 0, be = Infinity;
      for (let c = 0; c < grid.length; c++) {
        const e = Math.abs(v - f(p.d * grid[c]));
        if (e < be) { be = e; bi = c; }
      }
      return bi;
    },
    value: (q, p) => f(p.d * grids[p.sel][q]),
    encode: (codes, params, rows, k) => encodeGroups(format, bits, group, codes, params, rows, k, (dv, at, p, bytes) => {
      dv.setFloat32(at, p.d, true);
      bytes[at + 4] = p.sel;
    }),
  };
}
