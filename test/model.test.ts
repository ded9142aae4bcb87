// The model runtime (assembly/model/, host/model/) on every engine and build: logits against the
// float64 reference for random-weight models in every weight format and KV format, batched prefill
// against token-by-token decode, the memory plan against model_init, the sampler against run.c's
// (host mirror), streaming under a memory limit.
//
// Tolerances (max |logit - reference| over max |reference logit|): f32 weights 1e-5; int4 KV 1e-5
// (the integer attention is exact integer arithmetic on both sides; measured 6e-7); quantized
// weights 1e-2 (the reference quantizes activations and K/V with the same quantizers, from float64
// values, so a value on a rounding boundary may land one step apart); prefill vs decode: bit-identical.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Engine } from '../host/engine/types.ts';
import type { ModelConfig } from '../host/model/config.ts';
import * as DESC from '../host/model/desc.ts';
import { KV_FORMATS, kvFormat, kvRoundTrip } from '../host/model/kv.ts';
import type { Model } from '../host/model/model.ts';
import { quantizeModel } from '../host/model/quantize.ts';
import { ReferenceModel } from '../host/model/reference.ts';
import type { ActMode } from '../host/model/plan.ts';
import { ModelRuntime } from '../host/model/runtime.ts';
import { SamplerRef } from '../host/model/sampler.ts';
import { modelFromWeights, randomWeights, trainTokenizer } from '../host/model/synthetic.ts';
import { TokenizerRef, tokenizerImage } from '../host/model/tokenizer.ts';
import { fromRoot } from '../host/paths.ts';
import { FORMATS, formatByName, runsOn, type Target } from '../host/quant/formats.ts';
import { REFS } from '../host/quant/ref/index.ts';
import { randn, rng, testEngines } from './helpers.ts';

const engines = await testEngines();
const TINY: ModelConfig = { dim: 64, hiddenDim: 172, nLayers: 2, nHeads: 8, nKvHeads: 4, vocabSize: 300, seqLen: 24, sharedClassifier: true };
const UNSHARED: ModelConfig = { dim: 48, hiddenDim: 100, nLayers: 2, nHeads: 4, nKvHeads: 4, vocabSize: 97, seqLen: 16, sharedClassifier: false };
// three query heads a KV head at head size 8 (the int4 attention's pair of heads, then one alone) and
// a context that is not a multiple of 4 (its last block of positions is partial), all TOKENS long
const GQA3: ModelConfig = { dim: 96, hiddenDim: 64, nLayers: 1, nHeads: 12, nKvHeads: 4, vocabSize: 97, seqLen: 11, sharedClassifier: true };
const TOKENS = [1, 5, 77, 200, 3, 9, 250, 31, 64, 2, 17];

function relErr(got: Float32Array, want: Float64Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want[i]));
    m = Math.max(m, Math.abs(want[i]));
  }
  return d / m;
}

function targetsOf(e: Engine): Target[] {
  return e.name === 'v8' ? ['device', 'simd'] : ['device'];
}

const desc = suite('model descriptor');
desc('every constant of assembly/model/desc.ts has the same value in host/model/desc.ts', () => {
  const src = readFileSync(fromRoot('assembly', 'model', 'desc.ts'), 'utf8');
  const found = [...src.matchAll(/export const (\w+): i32 = (0x[0-9a-f]+|-?\d+);/gi)];
  assert.ok(found.length > 30);
  for (const [, name, value] of found) assert.is((DESC as Record<string, number>)[name], Number(value), name);
  assert.is(Object.keys(DESC).length, found.length);
});
desc.run();

const kv = suite('kv quantization');
kv('int8/int4/int3 round trips stay within half a step of the bf16 scale', () => {
  const r = rng(7);
  for (const f of KV_FORMATS.filter((k) => k.qmax > 0)) {
    for (let i = 0; i < 50; i++) {
      const v = randn(r, 8, 3);
      const back = kvRoundTrip(v, f);
      const amax = Math.max(...Array.from(v, Math.abs));
      for (let j = 0; j < 8; j++) assert.ok(Math.abs(back[j] - v[j]) <= (amax / f.qmax) * 0.51 + 1e-6, `${f.name}`);
    }
  }
});
kv('the reference\'s kvTransform hook: the format\'s own round trip gives its logits (int8); on int4 it is float64 attention over the same dequantized K/V, close to the integer attention', () => {
  const model = modelFromWeights(randomWeights(TINY, 11));
  const run = (opts: ConstructorParameters<typeof ReferenceModel>[1]) => {
    const ref = new ReferenceModel(model, opts);
    return TOKENS.map((t, pos) => ref.forward(t, pos));
  };
  const f32 = run({});
  for (const name of ['int8', 'int4'] as const) {
    const f = kvFormat(name)!;
    const hooked = run({ kvTransform: (v) => kvRoundTrip(v, f) }), own = run({ kv: f });
    hooked.forEach((l, pos) => {
      if (name === 'int8') return assert.equal(Array.from(l), Array.from(own[pos]), `int8 pos ${pos}`);
      // the integer attention (int8 query, fixed-point softmax) adds less than the int4 round trip costs
      const integer = relErr(Float32Array.from(own[pos]), l), format = relErr(Float32Array.from(l), f32[pos]);
      assert.ok(integer < format, `int4 pos ${pos}: integer vs float attention ${integer}, int4 vs f32 ${format}`);
    });
  }
  // the identity hook is f32 KV
  const id = run({ kvTransform: (v) => v });
  id.forEach((l, pos) => assert.equal(Array.from(l), Array.from(f32[pos])));
});
kv.run();

function check(s: ReturnType<typeof suite>, label: string, model: Model, engine: Engine, target: Target, kvName: string, tol: number, act: ActMode = 'i8', topk?: number) {
  s(label, () => {
    const kvf = kvFormat(kvName)!;
    const rt = ModelRuntime.create(model, engine, { target, kv: kvf, batch: 4, act, topk });
    const keep = { wo: rt.plan.keepWo, w2: rt.plan.keepW2 };
    const ref = new ReferenceModel(model, { act: (t) => rt.plan.tensors.find((p) => p.data === t.data)?.act ?? 'f32', kv: kvf, keep });
    try {
      let worst = 0;
      for (let p = 0; p < TOKENS.length; p++) {
        const got = rt.forward([TOKENS[p] % model.config.vocabSize], p)!;
        worst = Math.max(worst, relErr(got, ref.forward(TOKENS[p] % model.config.vocabSize, p)));
      }
      assert.ok(worst <= tol, `${label}: relative logit error ${worst.toExponential(2)} > ${tol}`);
      // the same tokens as one batched prefill (GEMM) give the same last logits, bit for bit
      const rt2 = ModelRuntime.create(model, engine, { target, kv: kvf, batch: 4, act, topk });
      const batched = rt2.forward(TOKENS.map((t) => t % model.config.vocabSize), 0)!;
      const stepped = rt.logits();
      rt2.close();
      assert.equal(Array.from(batched), Array.from(stepped), 'prefill == decode');
    } finally {
      rt.close();
    }
  });
}

const base = modelFromWeights(randomWeights(TINY, 3));
const unshared = modelFromWeights(randomWeights(UNSHARED, 4));
const gqa3 = modelFromWeights(randomWeights(GQA3, 5));
for (const engine of engines) {
  for (const target of targetsOf(engine)) {
    const s = suite(`model on ${engine.name}/${target}`);
    check(s, 'f32 weights, f32 KV', base, engine, target, 'f32', 1e-5);
    check(s, 'f32 weights, unshared classifier', unshared, engine, target, 'f32', 1e-5);
    for (const kvn of ['int8', 'int3']) check(s, `f32 weights, ${kvn} KV`, base, engine, target, kvn, 1e-5);
    check(s, 'f32 weights, int4 KV (integer attention)', base, engine, target, 'int4', 1e-5);
    check(s, 'f32 weights, int4 KV, three query heads a KV head, context 11', gqa3, engine, target, 'int4', 1e-5);
    for (const fmt of FORMATS.filter((f) => !f.retired && f.name !== 'f32' && REFS[f.name] && runsOn(f, target))) {
      const q = quantizeModel(base, { layers: fmt, classifier: fmt.family === 'ternary' ? null : fmt });
      check(s, `${fmt.name} weights, int4 KV`, q, engine, target, 'int4', 1e-2);
    }
    for (const fmt of ['tq2', 'tb1']) {
      check(s, `${fmt} weights, int4 activations (a4.8), int3 KV`, quantizeModel(base, { layers: formatByName(fmt)!, classifier: null }), engine, target, 'int3', 1e-2, 'i4');
    }
    const tb1 = quantizeModel(base, { layers: formatByName('tb1')!, classifier: null });
    check(s, 'tb1 weights, a4.8 (i4 into wq, wk, wv, w1, w3; top-K 50 % of the wo and w2 inputs, i8), int3 KV', tb1, engine, target, 'int3', 1e-2, 'a4.8');
    check(s, 'tb1 weights, a4.8 hybrid without sparsification (--topk 1), int3 KV', tb1, engine, target, 'int3', 1e-2, 'a4.8', 1);
    check(s, 'f32 weights, top-K 30 % of the wo and w2 inputs, f32 KV', base, engine, target, 'f32', 1e-5, 'i8', 0.3);
    s('a4.8 plan: i4 into the block inputs\' projections, i8 into wo and w2, half of their inputs kept', () => {
      const rt = ModelRuntime.create(tb1, engine, { target, act: 'a4.8', batch: 1 });
      const dense = ModelRuntime.create(tb1, engine, { target, act: 'a4.8', topk: 1, batch: 1 });
      try {
        for (const t of rt.plan.tensors.filter((p) => p.kind === 'matrix' && p.name.startsWith('layers.'))) {
          assert.is(t.act, /\.(wo|w2)$/.test(t.name) ? 'i8' : 'i4', t.name);
        }
        assert.equal([rt.plan.keepWo, rt.plan.keepW2], [TINY.dim / 2, TINY.hiddenDim / 2]);
        assert.equal([dense.plan.keepWo, dense.plan.keepW2], [0, 0]);
        // the sparsification is live: the logits move
        const a = rt.forward([TOKENS[0]], 0)!, b = dense.forward([TOKENS[0]], 0)!;
        assert.ok(a.some((v, i) => v !== b[i]), 'top-K changes the logits');
      } finally {
        rt.close();
        dense.close();
      }
    });

    s('streaming under a memory limit gives the same logits as all-resident, within the predicted memory', () => {
      const q = quantizeModel(base, { layers: formatByName('tq2')!, classifier: null });
      const all = ModelRuntime.create(q, engine, { target, kv: kvFormat('int4'), batch: 1 });
      const limit = all.plan.memory.total - all.plan.memory.residentWeights + 3000;
      const tight = ModelRuntime.create(q, engine, { target, kv: kvFormat('int4'), batch: 1, memoryLimit: limit, capMemory: true });
      try {
        assert.ok(tight.plan.tensors.some((t) => !t.resident), 'some tensors stream');
        assert.ok(tight.memoryBytes() <= limit, `${tight.memoryBytes()} <= ${limit}`);
        for (let p = 0; p < 6; p++) {
          const a = all.forward([TOKENS[p]], p)!, b = tight.forward([TOKENS[p]], p)!;
          assert.equal(Array.from(a), Array.from(b));
        }
      } finally {
        all.close();
        tight.close();
      }
    });

    s('the WASM sampler picks the tokens of run.c\'s sampler (host mirror) for the same seed', () => {
      for (const [temperature, topp] of [[0, 0.9], [1, 0.9], [0.8, 0.5], [1.2, 1], [1, 0]] as const) {
        const settings = { temperature: Math.fround(temperature), topp: Math.fround(topp), seed: 12345n + BigInt(Math.round(temperature * 10)) };
        const rt = ModelRuntime.create(base, engine, { target, batch: 1 });
        try {
          rt.setSampler(settings);
          const ref = new SamplerRef(settings);
          for (let p = 0; p < 10; p++) {
            const want = ref.sample(rt.forward([TOKENS[p]], p)!);
            assert.is(rt.sample(), want, `t=${temperature} p=${topp} pos ${p}`);
          }
        } finally {
          rt.close();
        }
      }
    });
    s.run();
  }
}

// The device tokenizer against the host reference (run.c's encode and decode).
const TEXTS = ['', 'In the beginning God created', 'Once upon a time, 123 4567!', 'héllo wörld ☃ 𝄞 \u0001\u007f', 'a'.repeat(200), '  leading  spaces  ',
  Buffer.from([0xff, 0x80, 0x80, 0xc3, 0x28, 0xe2, 0x82]).toString('latin1')];
for (const engine of engines) {
  const s = suite(`device tokenizer on ${engine.name}`);
  s('encodes and decodes like run.c (host reference), with and without BOS/EOS', () => {
    for (const vocab of [300, 512]) {
      const t = trainTokenizer(vocab);
      const ref = new TokenizerRef(t);
      const m = modelFromWeights(randomWeights({ ...TINY, vocabSize: vocab }, 5));
      const rt = ModelRuntime.create(m, engine, { tokenizerImage: tokenizerImage(t), textBytes: 400, batch: 1 });
      const dev = rt.codec();
      try {
        const r = rng(vocab);
        const texts = [...TEXTS.map((x) => Buffer.from(x, x.startsWith('\u00ff') ? 'latin1' : 'utf8')), ...Array.from({ length: 20 }, () => Buffer.from(Array.from({ length: 30 }, () => Math.floor(r() * 256))))];
        for (const text of texts) {
          for (const [b, e] of [[true, false], [false, true]]) assert.equal(dev.encode(text, b, e), ref.encode(text, b, e), `${JSON.stringify(text.toString('latin1'))}`);
        }
        for (let prev = 0; prev < vocab; prev += 37) {
          for (let tok = 0; tok < vocab; tok++) assert.equal(Array.from(dev.decode(prev, tok)), Array.from(ref.decode(prev, tok)), `decode ${prev} ${tok}`);
        }
      } finally {
        rt.close();
      }
    }
  });
  s.run();
}
