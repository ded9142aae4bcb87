// TesseraQ (block reconstruction with Progressive Adaptive Rounding and dequantization-scale tuning),
// for the integer group formats (i<b>g<G>, sym or asym). Per block, in order: the init's codes (rtn or
// gptq) give each weight two candidate codes, base and base + 1, and a soft rounding variable
// h = clamp(1.2 sigmoid(v) - 0.1, 0, 1) (AdaRound's rectified sigmoid) initialised from the weight's
// fractional position; each group's step is d0 * 2 sigmoid(s) (s from 0) with the zero point fixed,
// W' = d (base + h - z). Adam minimises the mean squared difference between the block's output with W'
// and the float block's output on the same inputs (the inputs come from the quantized blocks before),
// while PAR hardens the most confident variables (|h - 0.5| largest) to 0 or 1 in a schedule of
// fractions; at the end every variable is hard. If the hard result is not better than the init on the
// calibration windows, the init is kept (and the summary says so).
// Gradients: hand-derived backward passes through SwiGLU, RMSNorm, causal attention and RoPE
// (blockLossGrad), checked against central finite differences in test/quantize.test.ts. Chosen over
// an autodiff library: the block is six fixed operations, float64 closed forms are short, exact and
// dependency-free, and no CPU autodiff package for Node is both maintained and float64.
import { headDim, kvDim, type ModelConfig } from '../model/config.ts';
import { matmulRows, rmsnormRows, type DenseBlock } from './calib.ts';
import type { GroupParams, QuantResult, Scheme } from './scheme.ts';

const NAMES = ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'] as const;
export type WName = (typeof NAMES)[number];
export interface BlockCtx { c: ModelConfig; eps: number; theta: number }

function rope(c: ModelConfig, theta: number, x: Float64Array, T: number, width: number, sign: number): void {
  const hs = headDim(c);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < width; i += 2) {
      const a = t / theta ** ((i % hs) / hs), cr = Math.cos(a), ci = sign * Math.sin(a);
      const v0 = x[t * width + i], v1 = x[t * width + i + 1];
      x[t * width + i] = v0 * cr - v1 * ci;
      x[t * width + i + 1] = v0 * ci + v1 * cr;
    }
  }
}

// dx of y = g * x * s(x), s = (mean x^2 + eps)^-1/2, per row
function rmsnormBack(x: Float64Array, g: Float64Array, dy: Float64Array, T: number, n: number, eps: number): Float64Array {
  const dx = new Float64Array(T * n);
  for (let t = 0; t < T; t++) {
    let ss = 0, dot = 0;
    for (let i = 0; i < n; i++) { ss += x[t * n + i] ** 2; dot += g[i] * dy[t * n + i] * x[t * n + i]; }
    const s = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) dx[t * n + i] = s * g[i] * dy[t * n + i] - (x[t * n + i] * s * s * s * dot) / n;
  }
  return dx;
}

// dW (rows, cols) = dy^T x
function gradW(dy: Float64Array, x: Float64Array, T: number, rows: number, cols: number, into: Float64Array): void {
  for (let t = 0; t < T; t++) for (let r = 0; r < rows; r++) {
    const g = dy[t * rows + r];
    if (g === 0) continue;
    for (let i = 0; i < cols; i++) into[r * cols + i] += g * x[t * cols + i];
  }
}
// dx (T, cols) = dy (T, rows) W
function backX(dy: Float64Array, w: Float64Array, T: number, rows: number, cols: number): Float64Array {
  const dx = new Float64Array(T * cols);
  for (let t = 0; t < T; t++) for (let r = 0; r < rows; r++) {
    const g = dy[t * rows + r];
    for (let i = 0; i < cols; i++) dx[t * cols + i] += g * w[r * cols + i];
  }
  return dx;
}

// Loss sum over windows of sum (out - y)^2 / count, and (when grads) dLoss/dW for the 7 matrices.
export function blockLossGrad(ctx: BlockCtx, B: DenseBlock, xs: Float64Array[], ys: Float64Array[], grads?: Record<WName, Float64Array>): number {
  const { c, eps, theta } = ctx;
  const D = c.dim, H = c.hiddenDim, kvd = kvDim(c), hs = headDim(c), kvMul = c.nHeads / c.nKvHeads;
  let loss = 0;
  const count = xs.reduce((a, x) => a + x.length, 0);
  for (let w = 0; w < xs.length; w++) {
    const x = xs[w], T = x.length / D;
    const xb = rmsnormRows(x, B.rmsAtt, T, D, eps);
    const q = matmulRows(xb, B.wq, T, D, D), k = matmulRows(xb, B.wk, T, kvd, D), v = matmulRows(xb, B.wv, T, kvd, D);
    rope(c, theta, q, T, D, 1);
    rope(c, theta, k, T, kvd, 1);
    const P = new Float64Array(c.nHeads * T * T); // softmax probabilities [head][t][u]
    const att = new Float64Array(T * D);
    for (let h = 0; h < c.nHeads; h++) {
      const g = Math.floor(h / kvMul);
      for (let t = 0; t < T; t++) {
        let mx = -Infinity;
        const row = P.subarray((h * T + t) * T, (h * T + t + 1) * T);
        for (let u = 0; u <= t; u++) {
          let s = 0;
          for (let i = 0; i < hs; i++) s += q[t * D + h * hs + i] * k[u * kvd + g * hs + i];
          row[u] = s / Math.sqrt(hs);
          mx = Math.max(mx, row[u]);
        }
        let sum = 0;
        for (let u = 0; u <= t; u++) sum += row[u] = Math.exp(row[u] - mx);
        for (let u = 0; u <= t; u++) {
          row[u] /= sum;
          for (let i = 0; i < hs; i++) att[t * D + h * hs + i] += row[u] * v[u * kvd + g * hs + i];
        }
      }
    }
    const o = matmulRows(att, B.wo, T, D, D);
    const h2 = Float64Array.from(x, (xv, i) => xv + o[i]);
    const xb2 = rmsnormRows(h2, B.rmsFfn, T, D, eps);
    const a = matmulRows(xb2, B.w1, T, H, D), b = matmulRows(xb2, B.w3, T, H, D);
    const sig = a.map((av) => 1 / (1 + Math.exp(-av)));
    const hb = a.map((av, i) => av * sig[i] * b[i]);
    const f = matmulRows(hb, B.w2, T, D, H);
    const dout = new Float64Array(T * D);
    for (let i = 0; i < T * D; i++) {
      const e = h2[i] + f[i] - ys[w][i];
      loss += (e * e) / count;
      dout[i] = (2 * e) / count;
    }
    if (!grads) continue;
    // SwiGLU
    gradW(dout, hb, T, D, H, grads.w2);
    const dhb = backX(dout, B.w2, T, D, H);
    const da = new Float64Array(T * H), db = new Float64Array(T * H);
    for (let i = 0; i < T * H; i++) {
      db[i] = dhb[i] * a[i] * sig[i];
      da[i] = dhb[i] * b[i] * sig[i] * (1 + a[i] * (1 - sig[i]));
    }
    gradW(da, xb2, T, H, D, grads.w1);
    gradW(db, xb2, T, H, D, grads.w3);
    const dxb2 = backX(da, B.w1, T, H, D), d3 = backX(db, B.w3, T, H, D);
    for (let i = 0; i < dxb2.length; i++) dxb2[i] += d3[i];
    // RMSNorm, residual
    const dh2 = rmsnormBack(h2, B.rmsFfn, dxb2, T, D, eps);
    for (let i = 0; i < dh2.length; i++) dh2[i] += dout[i];
    gradW(dh2, att, T, D, D, grads.wo);
    const datt = backX(dh2, B.wo, T, D, D);
    // attention
    const dq = new Float64Array(T * D), dk = new Float64Array(T * kvd), dv = new Float64Array(T * kvd);
    const dp = new Float64Array(T);
    for (let h = 0; h < c.nHeads; h++) {
      const g = Math.floor(h / kvMul);
      for (let t = 0; t < T; t++) {
        const row = P.subarray((h * T + t) * T, (h * T + t + 1) * T);
        let dot = 0;
        for (let u = 0; u <= t; u++) {
          let s = 0;
          for (let i = 0; i < hs; i++) {
            s += datt[t * D + h * hs + i] * v[u * kvd + g * hs + i];
            dv[u * kvd + g * hs + i] += row[u] * datt[t * D + h * hs + i];
          }
          dp[u] = s;
          dot += s * row[u];
        }
        for (let u = 0; u <= t; u++) {
          const ds = (row[u] * (dp[u] - dot)) / Math.sqrt(hs);
          for (let i = 0; i < hs; i++) {
            dq[t * D + h * hs + i] += ds * k[u * kvd + g * hs + i];
            dk[u * kvd + g * hs + i] += ds * q[t * D + h * hs + i];
          }
        }
      }
    }
    rope(c, theta, dq, T, D, -1); // the rotation's transpose
    rope(c, theta, dk, T, kvd, -1);
    gradW(dq, xb, T, D, D, grads.wq);
    gradW(dk, xb, T, kvd, D, grads.wk);
    gradW(dv, xb, T, kvd, D, grads.wv);
  }
  return loss;
}

export interface TesseraqOptions { steps?: number[]; iters?: number; lr?: number; lrScale?: number }
const rsig = (v: number) => Math.min(1, Math.max(0, 1.2 / (1 + Math.exp(-v)) - 0.1));

interface Var { s: Scheme; rows: number; cols: number; k: number; base: Float64Array; z: Float64Array; d0: Float64Array; v: Float64Array; hard: Int8Array; sc: Float64Array }

// Reconstruct one block. init: the init's result per matrix (schemes must be integer: value = d q + m).
export function tesseraqBlock(ctx: BlockCtx, B: DenseBlock, W: Record<WName, { w: Float32Array; rows: number; cols: number }>, init: Map<WName, { s: Scheme; r: QuantResult }>,
  xs: Float64Array[], ys: Float64Array[], o: TesseraqOptions = {}): { results: Map<WName, { s: Scheme; r: QuantResult }>; initLoss: number; loss: number; kept: boolean } {
  const steps = o.steps ?? [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1];
  const iters = o.iters ?? 10, lr = o.lr ?? 0.05, lrS = o.lrScale ?? 0.005;
  const vars = new Map<WName, Var>();
  const dense = (n: WName, x: Var) => {
    const out = new Float64Array(x.rows * x.cols);
    const ng = x.k / x.s.group;
    for (let r = 0; r < x.rows; r++) for (let j = 0; j < x.cols; j++) {
      const i = r * x.k + j, g = r * ng + Math.floor(j / x.s.group);
      const h = x.hard[i] >= 0 ? x.hard[i] : rsig(x.v[i]);
      out[r * x.cols + j] = x.d0[g] * 2 / (1 + Math.exp(-x.sc[g])) * (x.base[i] + h - x.z[g]);
    }
    B[n] = out;
  };
  for (const [n, { s, r }] of init) {
    const { w, rows, cols } = W[n];
    const ng = r.k / s.group, levels = s.code(Infinity, { d: 1, m: 0, sel: 0 });
    const x: Var = { s, rows, cols, k: r.k, base: new Float64Array(rows * r.k), z: new Float64Array(rows * ng), d0: new Float64Array(rows * ng), v: new Float64Array(rows * r.k), hard: new Int8Array(rows * r.k).fill(-1), sc: new Float64Array(rows * ng) };
    for (let g = 0; g < rows * ng; g++) { const p = r.params[g]; x.d0[g] = p.d; x.z[g] = p.d ? -p.m / p.d : 0; }
    for (let row = 0; row < rows; row++) for (let j = 0; j < r.k; j++) {
      const i = row * r.k + j, g = row * ng + Math.floor(j / s.group), p = r.params[g];
      const code = r.codes[i], pos = j < cols && p.d ? w[row * cols + j] / p.d + x.z[g] : code;
      let base = pos >= code ? code : code - 1;
      base = Math.max(0, Math.min(levels - 1, base));
      x.base[i] = base;
      if (j >= cols || !p.d) { x.hard[i] = code - base; continue; }
      const frac = Math.min(0.99, Math.max(0.01, pos - base));
      x.v[i] = -Math.log(1.2 / (frac + 0.1) - 1); // rsig(v) = frac
    }
    vars.set(n, x);
    dense(n, x);
  }
  const initB = { ...B };
  for (const [n, { s, r }] of init) initB[n] = dequant(s, r, W[n].rows, W[n].cols);
  const initLoss = blockLossGrad(ctx, initB, xs, ys);
  // Adam state
  const adam = new Map<WName, { mv: Float64Array; vv: Float64Array; ms: Float64Array; vs: Float64Array }>();
  for (const [n, x] of vars) adam.set(n, { mv: new Float64Array(x.v.length), vv: new Float64Array(x.v.length), ms: new Float64Array(x.sc.length), vs: new Float64Array(x.sc.length) });
  let t = 0;
  for (const frac of steps) {
    // PAR: harden the most confident soft variables up to `frac` of all
    for (const x of vars.values()) {
      const soft: number[] = [];
      let hardCount = 0;
      for (let i = 0; i < x.v.length; i++) if (x.hard[i] >= 0) hardCount++; else soft.push(i);
      const want = Math.ceil(frac * x.v.length) - hardCount;
      soft.sort((a, b) => Math.abs(rsig(x.v[b]) - 0.5) - Math.abs(rsig(x.v[a]) - 0.5));
      for (let j = 0; j < Math.min(want, soft.length); j++) x.hard[soft[j]] = rsig(x.v[soft[j]]) >= 0.5 ? 1 : 0;
    }
    for (const [n, x] of vars) dense(n, x);
    for (let it = 0; it < iters; it++) {
      const grads = Object.fromEntries(NAMES.map((n) => [n, new Float64Array(B[n].length)])) as Record<WName, Float64Array>;
      blockLossGrad(ctx, B, xs, ys, grads);
      t++;
      for (const [n, x] of vars) {
        const gW = grads[n], st = adam.get(n)!, ng = x.k / x.s.group;
        const gs = new Float64Array(x.sc.length);
        for (let r = 0; r < x.rows; r++) for (let j = 0; j < x.cols; j++) {
          const i = r * x.k + j, g = r * ng + Math.floor(j / x.s.group), gw = gW[r * x.cols + j];
          const sg = 1 / (1 + Math.exp(-x.sc[g])), d = x.d0[g] * 2 * sg;
          const h = x.hard[i] >= 0 ? x.hard[i] : rsig(x.v[i]);
          gs[g] += gw * x.d0[g] * 2 * sg * (1 - sg) * (x.base[i] + h - x.z[g]);
          if (x.hard[i] >= 0) continue;
          const s1 = 1 / (1 + Math.exp(-x.v[i])), hv = 1.2 * s1 - 0.1;
          const dh = hv > 0 && hv < 1 ? 1.2 * s1 * (1 - s1) : 0;
          adamStep(x.v, st.mv, st.vv, i, gw * d * dh, lr, t);
        }
        for (let g = 0; g < gs.length; g++) adamStep(x.sc, st.ms, st.vs, g, gs[g], lrS, t);
        dense(n, x);
      }
    }
  }
  // final hard codes and tuned steps, through the scheme's own encoding
  const results = new Map<WName, { s: Scheme; r: QuantResult }>();
  for (const [n, x] of vars) {
    const ng = x.k / x.s.group;
    const params: GroupParams[] = [];
    for (let g = 0; g < x.sc.length; g++) {
      const d = Math.fround(x.d0[g] * 2 / (1 + Math.exp(-x.sc[g])));
      params.push({ d, m: Math.fround(-x.z[g] * d), sel: 0 });
    }
    const codes = new Uint8Array(x.rows * x.k);
    for (let i = 0; i < codes.length; i++) codes[i] = x.base[i] + (x.hard[i] >= 0 ? x.hard[i] : rsig(x.v[i]) >= 0.5 ? 1 : 0);
    void ng;
    results.set(n, { s: x.s, r: { codes, params, k: x.k } });
  }
  const finB = { ...B };
  for (const [n, { s, r }] of results) finB[n] = dequant(s, r, W[n].rows, W[n].cols);
  const loss = blockLossGrad(ctx, finB, xs, ys);
  if (!(loss < initLoss)) return { results: init, initLoss, loss: initLoss, kept: true };
  for (const n of results.keys()) B[n] = finB[n];
  return { results, initLoss, loss, kept: false };
}

function dequant(s: Scheme, r: QuantResult, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  const ng = r.k / s.group;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[i * cols + j] = s.value(r.codes[i * r.k + j], r.params[i * ng + Math.floor(j / s.group)]);
  return out;
}

function adamStep(p: Float64Array, m: Float64Array, v: Float64Array, i: number, g: number, lr: number, t: number): void {
  m[i] = 0.9 * m[i] + 0.1 * g;
  v[i] = 0.999 * v[i] + 0.001 * g * g;
  p[i] -= (lr * (m[i] / (1 - 0.9 ** t))) / (Math.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-12);
}
