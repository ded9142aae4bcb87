// GPTQ (Frantar et al. 2023): quantize W (rows, k) column by column, each column's rounding error
// spread over the columns not yet quantized through the inverse Hessian of the layer's inputs,
// H = X^T X (X: calibration inputs of the layer, one row per token).
//   - dampening: H + damp * mean(diag H) * I; dead inputs (H_ii = 0) get H_ii = 1 and W_:i = 0;
//   - U = the upper Cholesky factor of H^-1 (H^-1 = U^T U), so column i's error e = (w - q) / U_ii
//     updates columns j > i by -e U_ij;
//   - lazy batch updates: inside a block of B columns the updates are immediate, columns after the
//     block get them once per block as one (rows, B) x (B, rest) product;
//   - groups: a group's parameters are fitted when its first column comes up, on the columns as
//     updated so far (B is a multiple of the group, so a group lies inside one block);
//   - activation order: columns by decreasing H_ii; with groups the parameters are then fitted on the
//     original W first ("static groups"), since the formats store contiguous groups.
// Works for any scheme (integers, BitMoD, ternary, ggml blocks): the scheme rounds, GPTQ compensates.
import type { GroupParams, QuantResult, Scheme } from './scheme.ts';

export interface GptqOptions { damp?: number; blockSize?: number; actOrder?: boolean }

// In-place Cholesky A = L L^T of an (n, n) SPD matrix; returns false if not positive definite.
export function cholesky(a: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    let s = a[j * n + j];
    for (let p = 0; p < j; p++) s -= a[j * n + p] * a[j * n + p];
    if (!(s > 0)) return false;
    const d = Math.sqrt(s);
    a[j * n + j] = d;
    for (let i = j + 1; i < n; i++) {
      let t = a[i * n + j];
      for (let p = 0; p < j; p++) t -= a[i * n + p] * a[j * n + p];
      a[i * n + j] = t / d;
    }
    for (let i = 0; i < j; i++) a[i * n + j] = 0;
  }
  return true;
}

// U with H^-1 = U^T U (upper), from H: L L^T = H, H^-1 = L^-T L^-1, then the Cholesky factor of that.
export function inverseCholeskyUpper(h: Float64Array, n: number): Float64Array | null {
  const l = Float64Array.from(h);
  if (!cholesky(l, n)) return null;
  // Linv = L^-1 (lower), by forward substitution column by column
  const li = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    for (let i = c; i < n; i++) {
      let s = i === c ? 1 : 0;
      for (let p = c; p < i; p++) s -= l[i * n + p] * li[p * n + c];
      li[i * n + c] = s / l[i * n + i];
    }
  }
  // Hinv = Linv^T Linv
  const hinv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let p = Math.max(i, j); p < n; p++) s += li[p * n + i] * li[p * n + j];
      hinv[i * n + j] = hinv[j * n + i] = s;
    }
  }
  if (!cholesky(hinv, n)) return null;
  // upper factor U = L'^T
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) u[j * n + i] = hinv[i * n + j];
  return u;
}

// w: (rows, k) zero-padded; hIn: (k, k) X^T X (not modified).
export function gptq(s: Scheme, w: ArrayLike<number>, rows: number, k: number, hIn: Float64Array, opts: GptqOptions = {}): QuantResult {
  const damp = opts.damp ?? 0.01;
  const G = s.group;
  const B = G >= k ? k : G * Math.max(1, Math.round((opts.blockSize ?? 128) / G));
  const W = Float64Array.from(w as ArrayLike<number>);
  const H = Float64Array.from(hIn);
  let mean = 0;
  for (let i = 0; i < k; i++) mean += H[i * k + i];
  mean /= k;
  for (let i = 0; i < k; i++) {
    if (H[i * k + i] === 0) {
      H[i * k + i] = 1;
      for (let r = 0; r < rows; r++) W[r * k + i] = 0;
    }
  }
  const ng = k / G;
  const params: GroupParams[] = new Array(rows * ng);
  const grp = new Float64Array(G);
  const fitGroup = (src: Float64Array, r: number, g: number, col: (i: number) => number) => {
    for (let i = 0; i < G; i++) grp[i] = src[r * k + col(g * G + i)];
    params[r * ng + g] = s.fit(grp);
  };
  let perm: number[] | null = null;
  if (opts.actOrder) {
    perm = Array.from({ length: k }, (_, i) => i).sort((a, b) => H[b * k + b] - H[a * k + a] || a - b);
    for (let r = 0; r < rows; r++) for (let g = 0; g < ng; g++) fitGroup(W, r, g, (i) => i);
  }
  // permuted copies: column j of Wp is column perm[j] of W
  const P = perm ?? Array.from({ length: k }, (_, i) => i);
  const Wp = new Float64Array(rows * k), Hp = new Float64Array(k * k);
  for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) Wp[r * k + j] = W[r * k + P[j]];
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) Hp[i * k + j] = H[P[i] * k + P[j]];
  let d = damp * mean || damp;
  let U: Float64Array | null = null;
  for (let tries = 0; tries < 8 && !U; tries++, d *= 10) {
    const Hd = Float64Array.from(Hp);
    for (let i = 0; i < k; i++) Hd[i * k + i] += d;
    U = inverseCholeskyUpper(Hd, k);
  }
  if (!U) throw new Error('GPTQ: the Hessian stays singular after dampening');
  const codes = new Uint8Array(rows * k);
  const err = new Float64Array(rows * B);
  for (let i1 = 0; i1 < k; i1 += B) {
    const i2 = Math.min(i1 + B, k), nb = i2 - i1;
    for (let i = i1; i < i2; i++) {
      const orig = P[i];
      if (!perm && i % G === 0) for (let r = 0; r < rows; r++) fitGroup(Wp, r, i / G, (c) => c);
      const uii = U[i * k + i];
      for (let r = 0; r < rows; r++) {
        const v = Wp[r * k + i];
        const p = params[r * ng + Math.floor(orig / G)];
        const q = s.code(v, p);
        codes[r * k + orig] = q;
        const e = (v - s.value(q, p)) / uii;
        err[r * B + (i - i1)] = e;
        for (let j = i + 1; j < i2; j++) Wp[r * k + j] -= e * U[i * k + j];
      }
    }
    // lazy update of the columns after the block
    for (let r = 0; r < rows; r++) {
      for (let j = i2; j < k; j++) {
        let acc = 0;
        for (let t = 0; t < nb; t++) acc += err[r * B + t] * U[(i1 + t) * k + j];
        Wp[r * k + j] -= acc;
      }
    }
  }
  return { codes, params, k };
}
