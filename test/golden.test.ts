// Golden outputs: llama2.c's run.c (built beside the project, see README) generated these texts from
// random-weight models that tools/random-model.ts writes with this project's writers; the runtime
// must print the same bytes on every engine and build, greedy and sampled (same seed).
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseModel } from '../host/formats/index.ts';
import { writeLlama2c } from '../host/formats/llama2c.ts';
import { generate, generateInApp } from '../host/model/generate.ts';
import { ModelRuntime } from '../host/model/runtime.ts';
import { samplerFromCli } from '../host/model/sampler.ts';
import { randomWeights, trainTokenizer } from '../host/model/synthetic.ts';
import { TokenizerRef, tokenizerImage } from '../host/model/tokenizer.ts';
import { fromRoot } from '../host/paths.ts';
import type { Target } from '../host/quant/formats.ts';
import { testEngines } from './helpers.ts';

const engines = await testEngines();
// tools/random-model.ts r1 64 172 5 8 4 512 512 1   and   r3 48 100 3 6 2 300 128 3
const r1 = parseModel('r1', writeLlama2c(randomWeights({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true }, 1), 0));
const r3 = parseModel('r3', writeLlama2c(randomWeights({ dim: 48, hiddenDim: 100, nLayers: 3, nHeads: 6, nKvHeads: 2, vocabSize: 300, seqLen: 128, sharedClassifier: true }, 3), 0));
const CASES: Array<[string, typeof r1, string, number, number, number, number]> = [
  // vector, model, prompt, temperature, topp, seed, steps (run.c's -n)
  ['runc-random-260k-greedy.txt', r1, 'In the beginning God', 0, 0.9, 0, 200],
  ['runc-random-r3-topp.txt', r3, 'Once upon', 1, 0.9, 5, 128],
  ['runc-random-r3-mult.txt', r3, '', 0.7, 0, 11, 100],
];

for (const [file, model, prompt, t, p, seed, steps] of CASES) {
  const want = readFileSync(fromRoot('test', 'vectors', file));
  const tok = new TokenizerRef(trainTokenizer(model.config.vocabSize));
  for (const engine of engines) {
    for (const target of (engine.name === 'v8' ? ['simd', 'device'] : ['device']) as Target[]) {
      test(`${file} on ${engine.name}/${target}`, () => {
        const rt = ModelRuntime.create(model, engine, { target });
        try {
          rt.setSampler(samplerFromCli(t, p, seed));
          const out: Uint8Array[] = [];
          generate(rt, tok, prompt, steps, (b) => out.push(b));
          out.push(Buffer.from('\n'));
          assert.is(Buffer.concat(out).toString('latin1'), want.toString('latin1'));
        } finally {
          rt.close();
        }
      });
      test(`${file} on ${engine.name}/${target}: the app's own generate (its tokenizer, gen_begin/gen_next)`, () => {
        const rt = ModelRuntime.create(model, engine, { target, tokenizerImage: tokenizerImage(tok.t), textBytes: 256 });
        try {
          rt.setSampler(samplerFromCli(t, p, seed));
          const out: Uint8Array[] = [];
          const r = generateInApp(rt, prompt, steps, (b) => out.push(b));
          out.push(Buffer.from('\n'));
          assert.is(Buffer.concat(out).toString('latin1'), want.toString('latin1'));
          assert.ok(r.tokens.length >= 1 && r.positions <= steps);
        } finally {
          rt.close();
        }
      });
    }
  }
}

test.run();
