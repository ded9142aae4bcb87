// Calibration data for the methods that look at activations (gptq): token windows from a text file
// (tokenized with the model's tokenizer, windows of `window` tokens at seeded random offsets), or,
// when no file is given and the repository bundles no corpus text, windows sampled from the
// full-precision model itself (temperature 1, seeded; data-free calibration). And the float64
// forward of one transformer block over whole windows, in stages, so a method sees each stage's
// inputs (the inputs of its linear layers) before the stage runs, and may replace the weights.
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { headDim, kvDim, type ModelConfig } from '../model/config.ts';
import type { Model } from '../model/model.ts';
import { ReferenceModel } from '../model/reference.ts';
import { SamplerRef } from '../model/sampler.ts';
import { matmulABt } from './dense.ts';
import { tokenizeText } from './eval.ts';

export interface CalibOptions { file?: string; tokens: number; window: number; seed: number }

export function calibWindows(model: Model, o: CalibOptions): { windows: number[][]; source: string } {
  const nWin = Math.max(1, Math.ceil(o.tokens / o.window));
  const rng = new SamplerRef({ temperature: 1, topp: 0, seed: BigInt(o.seed) });
  if (o.file) {
    if (!model.tokenizer) throw new UserError(`--calib needs the model's tokenizer`, 'pass one with -z tokenizer.bin');
    let text: string;
    try { text = readFileSync(o.file, 'utf8'); } catch (e) { throw new UserError(`cannot read calibration file ${o.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
    if (text.trim() === '') throw new UserError(`calibration file ${o.file} is empty`);
    // line by line, each line after BOS, as eval and the demo corpus's tokenizer do; one encode of the
    // whole text was quadratic in its length (40 KB took minutes)
    const ids = tokenizeText(text, model.tokenizer);
    if (ids.length < o.window) throw new UserError(`calibration file ${o.file} has ${ids.length} tokens, fewer than one window of ${o.window}`);
    const windows: number[][] = [];
    for (let i = 0; i < nWin; i++) {
      const at = ids.length === o.window ? 0 : rng.randomU32() % (ids.length - o.window + 1);
      windows.push([model.tokenizer.bos, ...ids.slice(at, at + o.window - 1)]);
    }
    return { windows, source: `${o.file} (${ids.length} tokens)` };
  }
  const bos = model.tokenizer?.bos ?? 1;
  const windows: number[][] = [];
  for (let i = 0; i < nWin; i++) {
    const ref = new ReferenceModel(model);
    const win = [bos];
    while (win.length < o.window) {
      const logits = Float32Array.from(ref.forward(win[win.length - 1], win.length - 1));
      win.push(rng.sample(logits));
    }
    windows.push(win);
  }
  return { windows, source: `sampled from the model (seed ${o.seed})` };
}

// A block's weights as float64 (rows, cols) row-major.
export interface DenseBlock {
  rmsAtt: Float64Array; rmsFfn: Float64Array;
  wq: Float64Array; wk: Float64Array; wv: Float64Array; wo: Float64Array; w1: Float64Array; w2: Float64Array; w3: Float64Array;
}
export type Stage = 'qkv' | 'wo' | 'w13' | 'w2';

// y (T, rows) = x (T, cols) W^T
export function matmulRows(x: Float64Array, w: Float64Array, T: number, rows: number, cols: number): Float64Array {
  return matmulABt(x, w, T, rows, cols, new Float64Array(T * rows));
}

export function rmsnormRows(x: Float64Array, w: Float64Array, T: number, dim: number, eps: number): Float64Array {
  const y = new Float64Array(T * dim);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[t * dim + i] ** 2;
    const s = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[t * dim + i] = w[i] * s * x[t * dim + i];
  }
  return y;
}

// Causal multi-head attention with RoPE over one window: q (T, dim), k, v (T, kv_dim) -> (T, dim).
export function attention(c: ModelConfig, theta: number, q: Float64Array, k: Float64Array, v: Float64Array, T: number): Float64Array {
  const hs = headDim(c), kvd = kvDim(c), kvMul = c.nHeads / c.nKvHeads;
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < c.dim; i += 2) {
      const a = t / theta ** ((i % hs) / hs), cr = Math.cos(a), ci = Math.sin(a);
      const rot = (vec: Float64Array, at: number) => {
        const v0 = vec[at], v1 = vec[at + 1];
        vec[at] = v0 * cr - v1 * ci;
        vec[at + 1] = v0 * ci + v1 * cr;
      };
      rot(q, t * c.dim + i);
      if (i < kvd) rot(k, t * kvd + i);
    }
  }
  const out = new Float64Array(T * c.dim);
  const sc = new Float64Array(T);
  for (let h = 0; h < c.nHeads; h++) {
    const g = Math.floor(h / kvMul);
    for (let t = 0; t < T; t++) {
      let mx = -Infinity;
      for (let u = 0; u <= t; u++) {
        let s = 0;
        for (let i = 0; i < hs; i++) s += q[t * c.dim + h * hs + i] * k[u * kvd + g * hs + i];
        sc[u] = s / Math.sqrt(hs);
        mx = Math.max(mx, sc[u]);
      }
      let sum = 0;
      for (let u = 0; u <= t; u++) sum += sc[u] = Math.exp(sc[u] - mx);
      for (let u = 0; u <= t; u++) {
        const a = sc[u] / sum;
        for (let i = 0; i < hs; i++) out[t * c.dim + h * hs + i] += a * v[u * kvd + g * hs + i];
      }
    }
  }
  return out;
}

// One block over every window's hidden states hs[w] (T, dim), in place. Before each stage, `before`
// gets that stage's inputs of every window and may replace the block's weights.
export function blockForward(model: Model, B: DenseBlock, hs: Float64Array[], before?: (stage: Stage, xs: Float64Array[]) => void): void {
  const c = model.config, kvd = kvDim(c), eps = model.normEps;
  const Ts = hs.map((h) => h.length / c.dim);
  const xb = hs.map((h, i) => rmsnormRows(h, B.rmsAtt, Ts[i], c.dim, eps));
  before?.('qkv', xb);
  const att = xb.map((x, i) => attention(c, model.ropeTheta, matmulRows(x, B.wq, Ts[i], c.dim, c.dim), matmulRows(x, B.wk, Ts[i], kvd, c.dim), matmulRows(x, B.wv, Ts[i], kvd, c.dim), Ts[i]));
  before?.('wo', att);
  hs.forEach((h, i) => { const o = matmulRows(att[i], B.wo, Ts[i], c.dim, c.dim); for (let j = 0; j < h.length; j++) h[j] += o[j]; });
  const xb2 = hs.map((h, i) => rmsnormRows(h, B.rmsFfn, Ts[i], c.dim, eps));
  before?.('w13', xb2);
  const hb = xb2.map((x, i) => {
    const a = matmulRows(x, B.w1, Ts[i], c.hiddenDim, c.dim), b = matmulRows(x, B.w3, Ts[i], c.hiddenDim, c.dim);
    for (let j = 0; j < a.length; j++) a[j] = (a[j] / (1 + Math.exp(-a[j]))) * b[j];
    return a;
  });
  before?.('w2', hb);
  hs.forEach((h, i) => { const o = matmulRows(hb[i], B.w2, Ts[i], c.dim, c.hiddenDim); for (let j = 0; j < h.length; j++) h[j] += o[j]; });
}

// X^T X over every window's inputs (T, n).
export function hessian(xs: Float64Array[], n: number): Float64Array {
  const H = new Float64Array(n * n);
  for (const x of xs) {
    const T = x.length / n;
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < n; i++) {
        const xi = x[t * n + i];
        if (xi === 0) continue;
        for (let j = i; j < n; j++) H[i * n + j] += xi * x[t * n + j];
      }
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) H[i * n + j] = H[j * n + i];
  return H;
}
