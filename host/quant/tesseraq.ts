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
import type { DenseBlock } from './calib.ts';
import { BlockPool } from './block-pool.ts';
import { matmulABt, transpose } from './dense.ts';
import type { GroupParams, QuantResult, Scheme } from './scheme.ts';
import { maxOf } from '../arrays.ts';

const NAMES = ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'] as const;
export type WName = (typeof NAMES)[number];
export interface BlockCtx { c: ModelConfig; eps: number; theta: number }

// RoPE's (cos, sin) per position and pair of a head, as calib.ts's attention computes them
function ropeTable(T: number, hs: number, theta: number): { cos: Float64Array; sin: Float64Array } {
  const half = hs / 2, cos = new Float64Array(T * half), sin = new Float64Array(T * half);
  for (let t = 0; t < T; t++) for (let p = 0; p < half; p++) {
    const a = t / theta ** ((2 * p) / hs);
    cos[t * half + p] = Math.cos(a);
    sin[t * half + p] = Math.sin(a);
  }
  return { cos, sin };
}
const ropeCache = new Map<string, { cos: Float64Array; sin: Float64Array }>();

// rotate every row of x (rows of `width`, heads of hs) at its position in its window; sign -1: the transpose
function rope(x: Float64Array, Ts: number[], width: number, hs: number, tab: { cos: Float64Array; sin: Float64Array }, sign: number): void {
  const half = hs / 2;
  let row = 0;
  for (const T of Ts) {
    for (let t = 0; t < T; t++, row++) {
      const o = row * width, to = t * half;
      for (let i = 0; i < width; i += 2) {
        const p = to + ((i % hs) >> 1), cr = tab.cos[p], ci = sign * tab.sin[p];
        const v0 = x[o + i], v1 = x[o + i + 1];
        x[o + i] = v0 * cr - v1 * ci;
        x[o + i + 1] = v0 * ci + v1 * cr;
      }
    }
  }
}

// y = g * x * s(x), s = (mean x^2 + eps)^-1/2, per row
function rmsnorm(x: Float64Array, g: Float64Array, N: number, n: number, eps: number): Float64Array {
  const y = new Float64Array(N * n);
  for (let t = 0; t < N; t++) {
    const o = t * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[o + i] ** 2;
    const s = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) y[o + i] = g[i] * s * x[o + i];
  }
  return y;
}

// dx of y = g * x * s(x), per row
function rmsnormBack(x: Float64Array, g: Float64Array, dy: Float64Array, N: number, n: number, eps: number): Float64Array {
  const dx = new Float64Array(N * n);
  for (let t = 0; t < N; t++) {
    const o = t * n;
    let ss = 0, dot = 0;
    for (let i = 0; i < n; i++) { ss += x[o + i] ** 2; dot += g[i] * dy[o + i] * x[o + i]; }
    const s = 1 / Math.sqrt(ss / n + eps), s3 = (s * s * s * dot) / n;
    for (let i = 0; i < n; i++) dx[o + i] = s * g[i] * dy[o + i] - x[o + i] * s3;
  }
  return dx;
}

const concat = (xs: Float64Array[], n: number) => { const out = new Float64Array(n); let o = 0; for (const x of xs) { out.set(x, o); o += x.length; } return out; };
// y (N, rows) = x (N, cols) W^T
const linear = (x: Float64Array, w: Float64Array, N: number, rows: number, cols: number) => matmulABt(x, w, N, rows, cols, new Float64Array(N * rows));
// dW (rows, cols) += dy (N, rows)^T x (N, cols), with xT = x^T given
const gradW = (dy: Float64Array, xT: Float64Array, N: number, rows: number, cols: number, into: Float64Array) => matmulABt(transpose(dy, N, rows), xT, rows, cols, N, into, true);
// dx (N, cols) = dy (N, rows) W, or += with `into`
const backX = (dy: Float64Array, w: Float64Array, N: number, rows: number, cols: number, into?: Float64Array) => matmulABt(dy, transpose(w, rows, cols), N, cols, rows, into ?? new Float64Array(N * cols), !!into);

// Loss sum over windows of sum (out - y)^2 / count, and (when grads) dLoss/dW for the 7 matrices
// (added to grads). The linear layers run over every window's tokens at once (N rows), attention
// per window.
// count: the divisor (default: every element of xs; a share of the windows passes the whole set's).
export function blockLossGrad(ctx: BlockCtx, B: DenseBlock, xs: Float64Array[], ys: Float64Array[], grads?: Record<WName, Float64Array>, count0?: number): number {
  const { c, eps, theta } = ctx;
  const D = c.dim, H = c.hiddenDim, kvd = kvDim(c), hs = headDim(c), kvMul = c.nHeads / c.nKvHeads, nh = c.nHeads;
  const Ts = xs.map((x) => x.length / D), N = Ts.reduce((a, t) => a + t, 0), Tmax = maxOf(Ts);
  const count = count0 ?? N * D, scale = Math.sqrt(hs), nd = N * D;
  const key = `${Tmax} ${hs} ${theta}`;
  let tab = ropeCache.get(key);
  if (!tab) { tab = ropeTable(Tmax, hs, theta); ropeCache.set(key, tab); }
  const X = concat(xs, nd), Y = concat(ys, nd);
  const xb = rmsnorm(X, B.rmsAtt, N, D, eps);
  const q = linear(xb, B.wq, N, D, D), k = linear(xb, B.wk, N, kvd, D), v = linear(xb, B.wv, N, kvd, D);
  rope(q, Ts, D, hs, tab, 1);
  rope(k, Ts, kvd, hs, tab, 1);
  // attention per window and head on contiguous (T, hs) copies, as products over the full T x T
  // (the masked half of P is 0): twice the multiply-adds of a causal loop, in the fast kernel
  const Ps: Float64Array[] = []; // per window and head, softmax probabilities (T, T)
  const att = new Float64Array(N * D);
  const head = (src: Float64Array, width: number, t0: number, T: number, off: number, out = new Float64Array(T * hs)) => {
    for (let t = 0; t < T; t++) for (let i = 0; i < hs; i++) out[t * hs + i] = src[(t0 + t) * width + off + i];
    return out;
  };
  const headAdd = (dst: Float64Array, width: number, t0: number, T: number, off: number, src: Float64Array) => {
    for (let t = 0; t < T; t++) for (let i = 0; i < hs; i++) dst[(t0 + t) * width + off + i] += src[t * hs + i];
  };
  for (let w = 0, t0 = 0; w < Ts.length; t0 += Ts[w], w++) {
    const T = Ts[w];
    for (let h = 0; h < nh; h++) {
      const qo = h * hs, ko = Math.floor(h / kvMul) * hs;
      const P = matmulABt(head(q, D, t0, T, qo), head(k, kvd, t0, T, ko), T, T, hs, new Float64Array(T * T));
      for (let t = 0; t < T; t++) {
        const ro = t * T;
        let mx = -Infinity;
        for (let u = 0; u <= t; u++) { const s = (P[ro + u] /= scale); if (s > mx) mx = s; }
        let sum = 0;
        for (let u = 0; u <= t; u++) sum += P[ro + u] = Math.exp(P[ro + u] - mx);
        for (let u = 0; u <= t; u++) P[ro + u] /= sum;
        for (let u = t + 1; u < T; u++) P[ro + u] = 0;
      }
      Ps.push(P);
      headAdd(att, D, t0, T, qo, matmulABt(P, transpose(head(v, kvd, t0, T, ko), T, hs), T, hs, T, new Float64Array(T * hs)));
    }
  }
  const o = linear(att, B.wo, N, D, D);
  const h2 = new Float64Array(nd);
  for (let i = 0; i < nd; i++) h2[i] = X[i] + o[i];
  const xb2 = rmsnorm(h2, B.rmsFfn, N, D, eps);
  const a = linear(xb2, B.w1, N, H, D), b = linear(xb2, B.w3, N, H, D);
  const sig = new Float64Array(N * H), hb = new Float64Array(N * H);
  for (let i = 0; i < N * H; i++) { const sg = 1 / (1 + Math.exp(-a[i])); sig[i] = sg; hb[i] = a[i] * sg * b[i]; }
  const f = linear(hb, B.w2, N, D, H);
  const dout = new Float64Array(nd);
  let loss = 0;
  for (let i = 0; i < nd; i++) {
    const e = h2[i] + f[i] - Y[i];
    loss += (e * e) / count;
    dout[i] = (2 * e) / count;
  }
  if (!grads) return loss;
  // SwiGLU
  gradW(dout, transpose(hb, N, H), N, D, H, grads.w2);
  const dhb = backX(dout, B.w2, N, D, H);
  const da = new Float64Array(N * H), db = new Float64Array(N * H);
  for (let i = 0; i < N * H; i++) {
    db[i] = dhb[i] * a[i] * sig[i];
    da[i] = dhb[i] * b[i] * sig[i] * (1 + a[i] * (1 - sig[i]));
  }
  const xb2T = transpose(xb2, N, D);
  gradW(da, xb2T, N, H, D, grads.w1);
  gradW(db, xb2T, N, H, D, grads.w3);
  const dxb2 = backX(da, B.w1, N, H, D);
  backX(db, B.w3, N, H, D, dxb2);
  // RMSNorm, residual
  const dh2 = rmsnormBack(h2, B.rmsFfn, dxb2, N, D, eps);
  for (let i = 0; i < nd; i++) dh2[i] += dout[i];
  gradW(dh2, transpose(att, N, D), N, D, D, grads.wo);
  const datt = backX(dh2, B.wo, N, D, D);
  // attention
  const dq = new Float64Array(N * D), dk = new Float64Array(N * kvd), dv = new Float64Array(N * kvd);
  for (let w = 0, t0 = 0, pi = 0; w < Ts.length; t0 += Ts[w], w++) {
    const T = Ts[w];
    for (let h = 0; h < nh; h++, pi++) {
      const qo = h * hs, ko = Math.floor(h / kvMul) * hs, P = Ps[pi];
      const dO = head(datt, D, t0, T, qo), vh = head(v, kvd, t0, T, ko);
      const dS = matmulABt(dO, vh, T, T, hs, new Float64Array(T * T)); // dP, then dS in place
      for (let t = 0; t < T; t++) {
        const ro = t * T;
        let dot = 0;
        for (let u = 0; u <= t; u++) dot += dS[ro + u] * P[ro + u];
        for (let u = 0; u <= t; u++) dS[ro + u] = (P[ro + u] * (dS[ro + u] - dot)) / scale;
        for (let u = t + 1; u < T; u++) dS[ro + u] = 0;
      }
      headAdd(dv, kvd, t0, T, ko, matmulABt(transpose(P, T, T), transpose(dO, T, hs), T, hs, T, new Float64Array(T * hs)));
      headAdd(dq, D, t0, T, qo, matmulABt(dS, transpose(head(k, kvd, t0, T, ko), T, hs), T, hs, T, new Float64Array(T * hs)));
      headAdd(dk, kvd, t0, T, ko, matmulABt(transpose(dS, T, T), transpose(head(q, D, t0, T, qo), T, hs), T, hs, T, new Float64Array(T * hs)));
    }
  }
  rope(dq, Ts, D, hs, tab, -1); // the rotation's transpose
  rope(dk, Ts, kvd, hs, tab, -1);
  const xbT = transpose(xb, N, D);
  gradW(dq, xbT, N, D, D, grads.wq);
  gradW(dk, xbT, N, kvd, D, grads.wk);
  gradW(dv, xbT, N, kvd, D, grads.wv);
  return loss;
}

// pool: where the block's loss and gradients are computed (default: this thread only; the result is the same);
// onProgress: the fraction of the block's hardening steps done
export interface TesseraqOptions { steps?: number[]; iters?: number; lr?: number; lrScale?: number; pool?: BlockPool; onProgress?: (frac: number) => void }
const rsig = (v: number) => Math.min(1, Math.max(0, 1.2 / (1 + Math.exp(-v)) - 0.1));

interface Var { s: Scheme; rows: number; cols: number; k: number; base: Float64Array; z: Float64Array; d0: Float64Array; v: Float64Array; hard: Int8Array; sc: Float64Array }

// Reconstruct one block. init: the init's result per matrix (schemes must be integer: value = d q + m).
export function tesseraqBlock(ctx: BlockCtx, B: DenseBlock, W: Record<WName, { w: Float32Array; rows: number; cols: number }>, init: Map<WName, { s: Scheme; r: QuantResult }>,
  xs: Float64Array[], ys: Float64Array[], o: TesseraqOptions = {}): { results: Map<WName, { s: Scheme; r: QuantResult }>; initLoss: number; loss: number; kept: boolean } {
  const steps = o.steps ?? [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1];
  const iters = o.iters ?? 4, lr = o.lr ?? 0.05, lrS = o.lrScale ?? 0.005;
  const pool = o.pool ?? new BlockPool(1);
  const lossGrad = (Bx: DenseBlock, grads?: Record<WName, Float64Array>) => pool.lossGrad(ctx, Bx, xs, ys, grads);
  const vars = new Map<WName, Var>();
  // W' = d (base + h - z), d = d0 2 sigmoid(sc) per group
  const dense = (n: WName, x: Var) => {
    const out = new Float64Array(x.rows * x.cols);
    const ng = x.k / x.s.group, G = x.s.group;
    for (let r = 0; r < x.rows; r++) for (let gi = 0; gi < ng; gi++) {
      const g = r * ng + gi, d = (x.d0[g] * 2) / (1 + Math.exp(-x.sc[g])), z = x.z[g];
      const j1 = Math.min(x.cols, (gi + 1) * G);
      for (let j = gi * G; j < j1; j++) {
        const i = r * x.k + j, hd = x.hard[i];
        out[r * x.cols + j] = d * (x.base[i] + (hd >= 0 ? hd : rsig(x.v[i])) - z);
      }
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
  const initLoss = lossGrad(initB);
  // Adam state
  const adam = new Map<WName, { mv: Float64Array; vv: Float64Array; ms: Float64Array; vs: Float64Array }>();
  for (const [n, x] of vars) adam.set(n, { mv: new Float64Array(x.v.length), vv: new Float64Array(x.v.length), ms: new Float64Array(x.sc.length), vs: new Float64Array(x.sc.length) });
  let t = 0;
  for (const [stepNo, frac] of steps.entries()) {
    // PAR: harden the most confident soft variables up to `frac` of all
    for (const x of vars.values()) {
      const soft: number[] = [];
      const conf = new Float64Array(x.v.length); // |h - 0.5|, computed once per index rather than per comparison
      let hardCount = 0;
      for (let i = 0; i < x.v.length; i++) if (x.hard[i] >= 0) hardCount++; else { soft.push(i); conf[i] = Math.abs(rsig(x.v[i]) - 0.5); }
      const want = Math.ceil(frac * x.v.length) - hardCount;
      soft.sort((a, b) => conf[b] - conf[a]);
      for (let j = 0; j < Math.min(want, soft.length); j++) x.hard[soft[j]] = rsig(x.v[soft[j]]) >= 0.5 ? 1 : 0;
    }
    for (const [n, x] of vars) dense(n, x);
    for (let it = 0; it < iters; it++) {
      const grads = Object.fromEntries(NAMES.map((n) => [n, new Float64Array(B[n].length)])) as Record<WName, Float64Array>;
      lossGrad(B, grads);
      t++;
      const c1 = 1 / (1 - 0.9 ** t), c2 = 1 / (1 - 0.999 ** t); // Adam's bias corrections
      for (const [n, x] of vars) {
        const gW = grads[n], st = adam.get(n)!, ng = x.k / x.s.group, G = x.s.group;
        for (let r = 0; r < x.rows; r++) for (let gi = 0; gi < ng; gi++) {
          const g = r * ng + gi, sg = 1 / (1 + Math.exp(-x.sc[g])), d = x.d0[g] * 2 * sg, z = x.z[g];
          const j1 = Math.min(x.cols, (gi + 1) * G);
          let gs = 0;
          for (let j = gi * G; j < j1; j++) {
            const i = r * x.k + j, gw = gW[r * x.cols + j], hd = x.hard[i];
            if (hd >= 0) { gs += gw * (x.base[i] + hd - z); continue; }
            const s1 = 1 / (1 + Math.exp(-x.v[i])), hv = 1.2 * s1 - 0.1;
            gs += gw * (x.base[i] + Math.min(1, Math.max(0, hv)) - z);
            if (hv > 0 && hv < 1) adamStep(x.v, st.mv, st.vv, i, gw * d * 1.2 * s1 * (1 - s1), lr, c1, c2);
            else adamStep(x.v, st.mv, st.vv, i, 0, lr, c1, c2);
          }
          adamStep(x.sc, st.ms, st.vs, g, gs * x.d0[g] * 2 * sg * (1 - sg), lrS, c1, c2);
        }
        dense(n, x);
      }
    }
    o.onProgress?.((stepNo + 1) / steps.length);
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
  const loss = lossGrad(finB);
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

// c1, c2: 1 / (1 - beta^t) for beta 0.9, 0.999
function adamStep(p: Float64Array, m: Float64Array, v: Float64Array, i: number, g: number, lr: number, c1: number, c2: number): void {
  m[i] = 0.9 * m[i] + 0.1 * g;
  v[i] = 0.999 * v[i] + 0.001 * g * g;
  p[i] -= (lr * m[i] * c1) / (Math.sqrt(v[i] * c2) + 1e-12);
}
