// edge-flash eval (host/quant/eval.ts, host/cli/eval.ts): perplexity on the WASM runtime against a
// float64 reference forward pass, the window scheme, KL divergence against itself and a perturbed
// model, and the CLI's errors.
//
// Tolerance: |ppl_runtime - ppl_reference| / ppl_reference <= 1e-5 for f32 weights and KV (the
// logits agree to 1e-5 of the largest logit, test/model.test.ts; the mean NLL averages the errors).
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ModelConfig } from '../host/model/config.ts';
import { ReferenceModel } from '../host/model/reference.ts';
import { ModelRuntime } from '../host/model/runtime.ts';
import { modelFromWeights, randomWeights } from '../host/model/synthetic.ts';
import { evaluate, runtimeSource, scoredFrom, windowCount, type LogitSource } from '../host/quant/eval.ts';
import { cli, rng, testEngines } from './helpers.ts';

const engines = await testEngines();
const TINY: ModelConfig = { dim: 64, hiddenDim: 172, nLayers: 2, nHeads: 8, nKvHeads: 4, vocabSize: 300, seqLen: 24, sharedClassifier: true };
const PPL_TOL = 1e-5;
const r = rng(15);
const TOKENS = Array.from({ length: 90 }, () => 3 + Math.floor(r() * 297));
const BOS = 1;

// The float64 reference, a fresh one each window (positions from 0).
function referenceSource(m: ReturnType<typeof modelFromWeights>): LogitSource {
  return (window, first, each) => {
    const ref = new ReferenceModel(m);
    for (let j = 0; j < window.length - 1; j++) {
      const l = ref.forward(window[j], j);
      if (j >= first) each(j, l);
    }
  };
}

const win = suite('eval windows');
win('stride = ctx scores the second half of each window (llama.cpp); a small stride scores consecutive tokens', () => {
  assert.is(scoredFrom({ ctx: 16, stride: 16 }), 8);
  assert.is(windowCount(90, { ctx: 16, stride: 16 }), 5);
  assert.is(windowCount(15, { ctx: 16, stride: 16 }), 0);
  for (const w of [{ ctx: 16, stride: 16 }, { ctx: 16, stride: 5 }, { ctx: 16, stride: 7 }, { ctx: 16, stride: 11 }]) {
    const targets: number[] = [];
    let k = 0;
    const src: LogitSource = (window, first, each) => {
      assert.is(window.length, w.ctx);
      assert.is(window[0], BOS);
      for (let j = first; j < window.length - 1; j++) {
        targets.push(k * w.stride + j + 1);
        const l = new Float64Array(300);
        l[window[j + 1]] = 0; // uniform logits: ppl = vocab
        each(j, l);
      }
      k++;
    };
    const res = evaluate(TOKENS, BOS, w, src);
    assert.ok(Math.abs(res.ppl - 300) < 1e-9, `${res.ppl}`);
    assert.is(res.tokens, targets.length);
    assert.is(res.windows, windowCount(TOKENS.length, w));
    if (w.stride === w.ctx) assert.is(res.scoredPerWindow, w.ctx / 2 - 1);
    else for (let i = 1; i < targets.length; i++) assert.is(targets[i], targets[i - 1] + 1, `stride ${w.stride}: scored tokens are consecutive`);
  }
});
win.run();

for (const engine of engines) {
  const s = suite(`eval on ${engine.name}`);
  const m = modelFromWeights(randomWeights(TINY, 3));
  s('perplexity on the runtime equals the float64 reference', () => {
    for (const w of [{ ctx: 16, stride: 16 }, { ctx: 20, stride: 6 }]) {
      const rt = ModelRuntime.create(m, engine, { batch: 4 });
      try {
        const got = evaluate(TOKENS, BOS, w, runtimeSource(rt));
        const want = evaluate(TOKENS, BOS, w, referenceSource(m));
        assert.is(got.tokens, want.tokens);
        assert.ok(got.tokens > 20);
        const rel = Math.abs(got.ppl - want.ppl) / want.ppl;
        assert.ok(rel <= PPL_TOL, `ppl ${got.ppl} vs reference ${want.ppl} (rel ${rel})`);
      } finally {
        rt.close();
      }
    }
  });
  s('KL divergence of a model against itself is 0, top-1 1; against a perturbed model > 0', () => {
    const w = { ctx: 16, stride: 16 };
    const a = ModelRuntime.create(m, engine, { batch: 4 }), b = ModelRuntime.create(m, engine, { batch: 4 });
    const pw = randomWeights(TINY, 3);
    const nr = rng(99);
    for (const x of pw.layers.w2) for (let i = 0; i < x.length; i++) x[i] += 0.05 * (nr() - 0.5);
    const c = ModelRuntime.create(modelFromWeights(pw), engine, { batch: 4 });
    try {
      const self = evaluate(TOKENS, BOS, w, runtimeSource(a), runtimeSource(b)).ref!;
      assert.ok(Math.abs(self.kld.mean) < 1e-12 && Math.abs(self.kld.p99) < 1e-12, `${self.kld.mean}`);
      assert.is(self.top1, 1);
      assert.ok(Math.abs(self.dpMean) < 1e-12);
      assert.ok(Math.abs(self.lnPplRatio) < 1e-12);
      const res = evaluate(TOKENS, BOS, w, runtimeSource(c), runtimeSource(a));
      const p = res.ref!;
      assert.ok(p.kld.mean > 1e-4, `perturbed kld ${p.kld.mean}`);
      assert.ok(p.kld.p99 >= p.kld.median && p.kld.max >= p.kld.p99);
      assert.ok(p.top1 <= 1 && p.top1 > 0);
      // the reference's own perplexity is what evaluating it alone gives
      const alone = evaluate(TOKENS, BOS, w, runtimeSource(a));
      assert.ok(Math.abs(alone.ppl - p.ppl) / alone.ppl < 1e-12);
    } finally {
      a.close();
      b.close();
      c.close();
    }
  });
  s.run();
}

const c = suite('eval cli');
const dir = mkdtempSync(join(tmpdir(), 'eval-test-'));
const MODEL = 'models/kjv-esp32-260k/model.bin';
const text = (name: string, s: string) => {
  const p = join(dir, name);
  writeFileSync(p, s);
  return p;
};
const LONG = text('long.txt', 'In the beginning God created the heaven and the earth.\nAnd the earth was without form, and void.\n'.repeat(12));
c('bad input: one line, exit 2', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--text', text('empty.txt', '\n\n')], /empty/],
    [['--text', text('short.txt', 'In the beginning\n'), '--ctx', '64'], /shorter than one window/],
    [['--text', LONG, '--ctx', '4096'], /larger than the model's context/],
    [['--text', LONG, '--ctx', '64', '--stride', '65'], /--stride/],
    [['--text', LONG, '--kv', 'int9'], /--kv/],
    [['--text', LONG, '--act', 'a4.8', '--topk', '2'], /--topk must be a number in 0\.\.1/],
    [['--text', join(dir, 'missing.txt')], /cannot read/],
    [['--text', LONG, '--ctx', '64', '--ref', 'models/kjv-rpi-15m/model.bin'], /vocabulary/],
  ];
  for (const [args, re] of cases) {
    const res = cli('eval', MODEL, ...args);
    assert.is(res.code, 2, `${args.join(' ')}: ${res.err}`);
    const lines = res.err.trim().split('\n');
    assert.is(lines.length, 1, res.err);
    assert.match(lines[0], /^edge-flash: /);
    assert.match(lines[0], re);
  }
});
c('--json prints ppl, kld, top1, tokens', () => {
  const res = cli('eval', MODEL, '--text', LONG, '--ctx', '64', '--ref', MODEL, '--json');
  assert.is(res.code, 0, res.err);
  const j = JSON.parse(res.out);
  assert.ok(j.ppl > 1 && j.ppl < 512, `${j.ppl}`);
  assert.is(j.kld, 0);
  assert.is(j.top1, 1);
  assert.is(j.tokens, j.windows * 31);
  assert.is(j.ctx, 64);
});
c('--act a4.8: int3 KV by default, half of the wo and w2 inputs kept, a perplexity above b1.58\'s; --topk 1 keeps all', () => {
  const run = (...flags: string[]) => {
    const res = cli('eval', MODEL, '--text', LONG, '--ctx', '64', '--quant', 'tb1', '--json', ...flags);
    assert.is(res.code, 0, res.err);
    return JSON.parse(res.out);
  };
  const b158 = run('--act', 'i8', '--kv', 'int3'), a48 = run('--act', 'a4.8'), dense = run('--act', 'a4.8', '--topk', '1');
  assert.is(a48.kv, 'int3');
  assert.equal([a48.keep_wo, a48.keep_w2, dense.keep_wo, dense.keep_w2, b158.keep_wo], [32, 86, 0, 0, 0]);
  assert.ok(a48.ppl !== dense.ppl && a48.ppl > b158.ppl, `a4.8 ${a48.ppl}, without top-K ${dense.ppl}, b1.58 ${b158.ppl}`);
});
c.run();
