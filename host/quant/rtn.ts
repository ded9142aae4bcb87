// Round-to-nearest integers: INT2/3/4 per group of G weights along K, asymmetric (min-max, the
// reference of host/quant/ref/lowbit.ts) or symmetric (ggml Q4_0's rule generalised: the signed value
// of largest magnitude maps to code 0, d = max / -2^(b-1), codes 0 .. 2^b - 1 around 2^(b-1)), written
// in the table's i<b>g<G> layout (w = d*q + m; symmetric: m = -2^(b-1) d); plus ggml's Q4_0 and Q8_0
// blocks (f16 d) for `--format q4_0 | q8_0`. The `rtn` method: every group fitted on its own values.
import { f16ToF32, f32ToF16 } from '../formats/bytes.ts';
import { GGML } from '../formats/gguf.ts';
import { formatByName } from './formats.ts';
import { encodeGroups, type GroupParams, type QuantResult, type Scheme } from './scheme.ts';

const f = Math.fround;
const h = (v: number) => f16ToF32(f32ToF16(v));

function signedMax(w: ArrayLike<number>): number {
  let amax = 0, mx = 0;
  for (let i = 0; i < w.length; i++) if (Math.abs(w[i]) > amax) { amax = Math.abs(w[i]); mx = w[i]; }
  return mx;
}

export function intScheme(bits: number, group: number, sym: boolean): Scheme {
  const format = formatByName(`i${bits}g${group}`);
  if (!format) throw new Error(`no format i${bits}g${group}`);
  const levels = (1 << bits) - 1, half = 1 << (bits - 1);
  return {
    name: format.name, group, bitsPerWeight: (format.blockBytes * 8) / group,
    fit(w) {
      if (sym) {
        const d = f(signedMax(w) / -half);
        return { d, m: f(-half * d), sel: 0 };
      }
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < w.length; i++) { lo = Math.min(lo, w[i]); hi = Math.max(hi, w[i]); }
      return { d: f((hi - lo) / levels), m: f(lo), sel: 0 };
    },
    code: (v, p) => (p.d !== 0 ? Math.max(0, Math.min(levels, Math.round((v - p.m) / p.d))) : 0),
    value: (q, p) => f(f(p.d * q) + p.m),
    encode: (codes, params, rows, k) => encodeGroups(format, bits, group, codes, params, rows, k, (dv, at, p) => {
      dv.setFloat32(at, p.d, true);
      dv.setFloat32(at + 4, p.m, true);
    }),
  };
}

// ggml Q4_0: f16 d = max / -8, 16 bytes q[j] | q[j+16] << 4, w = d (q - 8).
export function q4_0Scheme(): Scheme {
  return {
    name: 'q4_0', group: 32, bitsPerWeight: 4.5,
    fit: (w) => ({ d: h(signedMax(w) / -8), m: 0, sel: 0 }),
    code: (v, p) => (p.d !== 0 ? Math.max(0, Math.min(15, Math.round(v / p.d) + 8)) : 8),
    value: (q, p) => f(p.d * (q - 8)),
    encode(codes, params, rows, k) {
      const nb = k / 32;
      const bytes = new Uint8Array(rows * nb * 18);
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < rows * nb; i++) {
        dv.setUint16(18 * i, f32ToF16(params[i].d), true);
        for (let j = 0; j < 16; j++) bytes[18 * i + 2 + j] = codes[32 * i + j] | (codes[32 * i + j + 16] << 4);
      }
      return { type: GGML.Q4_0, bytes, k };
    },
  };
}

// ggml Q8_0: f16 d = amax / 127, 32 x i8 (codes held as q + 128), w = d q.
export function q8_0Scheme(): Scheme {
  return {
    name: 'q8_0', group: 32, bitsPerWeight: 8.5,
    fit: (w) => { let a = 0; for (let i = 0; i < w.length; i++) a = Math.max(a, Math.abs(w[i])); return { d: h(a / 127), m: 0, sel: 0 }; },
    code: (v, p) => 128 + (p.d !== 0 ? Math.max(-127, Math.min(127, Math.round(v / p.d))) : 0),
    value: (q, p) => f(p.d * (q - 128)),
    encode(codes, params, rows, k) {
      const nb = k / 32;
      const bytes = new Uint8Array(rows * nb * 34);
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < rows * nb; i++) {
        dv.setUint16(34 * i, f32ToF16(params[i].d), true);
        for (let j = 0; j < 32; j++) dv.setInt8(34 * i + 2 + j, codes[32 * i + j] - 128);
      }
      return { type: GGML.Q8_0, bytes, k };
    },
  };
}

// Round to nearest: each group's parameters from its own values. w is (rows, k), zero-padded.
export function rtn(s: Scheme, w: ArrayLike<number>, rows: number, k: number): QuantResult {
  const ng = k / s.group;
  const codes = new Uint8Array(rows * k);
  const params: GroupParams[] = [];
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < ng; g++) {
      const grp = Array.prototype.slice.call(w, r * k + g * s.group, r * k + (g + 1) * s.group) as number[];
      const p = s.fit(grp);
      params.push(p);
      for (let i = 0; i < s.group; i++) codes[r * k + g * s.group + i] = s.code(grp[i], p);
    }
  }
  return { codes, params, k };
}
