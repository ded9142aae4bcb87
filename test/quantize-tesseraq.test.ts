// TesseraQ: the hand-derived backward pass of a transformer block against central finite differences,
// and block reconstruction lowering the block output error below its initialisation's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blockForward, type DenseBlock } from '../host/quant/calib.ts';
import { gptq } from '../host/quant/gptq.ts';
import { intScheme, rtn } from '../host/quant/rtn.ts';
import { hessian } from '../host/quant/calib.ts';
import { blockLossGrad, tesseraqBlock, type WName } from '../host/quant/tesseraq.ts';
import { BlockPool } from '../host/quant/block-pool.ts';
import { matmulABt, transpose } from '../host/quant/dense.ts';
import type { Model } from '../host/model/model.ts';
import { randn, rng } from './helpers.ts';

const c = { dim: 16, hiddenDim: 24, nLayers: 1, nHeads: 4, nKvHeads: 2, vocabSize: 8, seqLen: 8, sharedClassifier: true };
const ctx = { c, eps: 1e-5, theta: 10000 };
const NAMES: WName[] = ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'];
const shape = (n: WName): [number, number] => n === 'wk' || n === 'wv' ? [8, 16] : n === 'w1' || n === 'w3' ? [24, 16] : n === 'w2' ? [16, 24] : [16, 16];

function randomBlock(seed: number): DenseBlock {
  const r = rng(seed);
  const B = { rmsAtt: Float64Array.from(randn(r, 16, 0.2), (v) => 1 + v), rmsFfn: Float64Array.from(randn(r, 16, 0.2), (v) => 1 + v) } as DenseBlock;
  for (const n of NAMES) { const [rows, cols] = shape(n); B[n] = Float64Array.from(randn(r, rows * cols, 1 / Math.sqrt(cols))); }
  return B;
}
const windows = (seed: number, n: number, T: number) => { const r = rng(seed); return Array.from({ length: n }, () => Float64Array.from(randn(r, T * 16))); };

test('block backward (SwiGLU, RMSNorm, causal attention, RoPE) matches central finite differences', () => {
  const B = randomBlock(1);
  const xs = windows(2, 2, 6), ys = windows(3, 2, 6);
  const grads = Object.fromEntries(NAMES.map((n) => [n, new Float64Array(B[n].length)])) as Record<WName, Float64Array>;
  blockLossGrad(ctx, B, xs, ys, grads);
  const r = rng(4);
  for (const n of NAMES) {
    for (let probe = 0; probe < 6; probe++) {
      const i = Math.floor(r() * B[n].length), h = 1e-5, keep = B[n][i];
      B[n][i] = keep + h; const lp = blockLossGrad(ctx, B, xs, ys);
      B[n][i] = keep - h; const lm = blockLossGrad(ctx, B, xs, ys);
      B[n][i] = keep;
      const fd = (lp - lm) / (2 * h);
      assert.ok(Math.abs(fd - grads[n][i]) <= 1e-6 * Math.max(1, Math.abs(fd)) + 1e-8, `${n}[${i}]: analytic ${grads[n][i]}, finite difference ${fd}`);
    }
  }
});

test('the loss of blockLossGrad is the block forward of calib.ts', () => {
  const B = randomBlock(5);
  const xs = windows(6, 2, 5), ys = windows(7, 2, 5);
  const hs = xs.map((x) => Float64Array.from(x));
  blockForward({ config: c, normEps: 1e-5, ropeTheta: 10000 } as Model, B, hs);
  let want = 0;
  hs.forEach((h, w) => h.forEach((v, i) => (want += (v - ys[w][i]) ** 2)));
  want /= 2 * 5 * 16;
  assert.ok(Math.abs(blockLossGrad(ctx, B, xs, ys) - want) < 1e-12 * Math.max(1, want));
});

for (const init of ['rtn', 'gptq'] as const) {
  test(`TesseraQ lowers the 2-bit block output error below its ${init} init's`, () => {
    const B = randomBlock(8);
    const fp = { ...B };
    const xs = windows(9, 4, 8);
    const ys = xs.map((x) => Float64Array.from(x));
    blockForward({ config: c, normEps: 1e-5, ropeTheta: 10000 } as Model, fp, ys);
    const s = intScheme(2, 32, false);
    // rows of 16 / 24 are shorter than 32: pad like quantizeModel does
    const W = {} as Record<WName, { w: Float32Array; rows: number; cols: number }>;
    const initMap = new Map<WName, { s: typeof s; r: ReturnType<typeof rtn> }>();
    for (const n of NAMES) {
      const [rows, cols] = shape(n);
      const w = Float32Array.from(B[n]);
      W[n] = { w, rows, cols };
      const padded = new Float32Array(rows * 32);
      for (let r = 0; r < rows; r++) padded.set(w.subarray(r * cols, (r + 1) * cols), r * 32);
      let res;
      if (init === 'rtn') res = rtn(s, padded, rows, 32);
      else {
        const H = new Float64Array(32 * 32);
        const X = xs.map((x) => x); // inputs of the first stage stand in for every matrix's
        const h = hessian(X, 16);
        for (let a = 0; a < Math.min(cols, 16); a++) for (let b = 0; b < Math.min(cols, 16); b++) H[a * 32 + b] = h[a * 16 + b];
        res = gptq(s, padded, rows, 32, H);
      }
      initMap.set(n, { s, r: res });
    }
    const out = tesseraqBlock(ctx, { ...B }, W, initMap, xs, ys, { iters: 15 });
    if (process.env.EF_VERBOSE) console.log(init, out.initLoss, out.loss);
    assert.not.ok(out.kept, `kept the init: loss ${out.loss} vs init ${out.initLoss}`);
    assert.ok(out.loss < 0.9 * out.initLoss, `TesseraQ ${out.loss} vs ${init} ${out.initLoss}`);
  });
}

test('matmulABt and transpose equal the plain loops, odd shapes and accumulation included', () => {
  const r = rng(11);
  for (const [na, nb, K] of [[1, 1, 1], [3, 5, 7], [2, 4, 8], [17, 13, 33], [5, 1, 2]]) {
    const A = Float64Array.from(randn(r, na * K)), B = Float64Array.from(randn(r, nb * K)), C0 = Float64Array.from(randn(r, na * nb));
    const C = matmulABt(A, B, na, nb, K, Float64Array.from(C0), true), P = matmulABt(A, B, na, nb, K, new Float64Array(na * nb));
    for (let a = 0; a < na; a++) for (let b = 0; b < nb; b++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[a * K + k] * B[b * K + k];
      assert.ok(Math.abs(P[a * nb + b] - s) < 1e-12 && Math.abs(C[a * nb + b] - C0[a * nb + b] - s) < 1e-12, `${na}x${nb}x${K} at ${a},${b}`);
    }
    const T = transpose(A, na, K);
    for (let a = 0; a < na; a++) for (let k = 0; k < K; k++) assert.is(T[k * na + a], A[a * K + k]);
  }
});

test('the block loss and gradients are the same bit for bit on 1 and 2 threads', () => {
  const B = randomBlock(12);
  const xs = windows(13, 3, 7), ys = windows(14, 3, 7);
  const zero = () => Object.fromEntries(NAMES.map((n) => [n, new Float64Array(B[n].length)])) as Record<WName, Float64Array>;
  const run = (threads: number) => {
    const pool = new BlockPool(threads), g = zero();
    assert.is(pool.threads, threads, pool.fallback);
    try { return { loss: pool.lossGrad(ctx, B, xs, ys, g), g }; } finally { pool.close(); }
  };
  const one = run(1), two = run(2);
  assert.is(two.loss, one.loss);
  for (const n of NAMES) assert.equal(Array.from(two.g[n]), Array.from(one.g[n]), n);
  // and they are the whole set's loss and gradients
  const g = zero(), loss = blockLossGrad(ctx, B, xs, ys, g);
  assert.ok(Math.abs(loss - one.loss) < 1e-12 * loss);
  for (const n of NAMES) one.g[n].forEach((v, i) => assert.ok(Math.abs(v - g[n][i]) < 1e-10 * (1 + Math.abs(v)), `${n}[${i}]`));
});

test.run();
