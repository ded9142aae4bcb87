// Fuzzing the model file readers: for each parser, 1000 files made from a valid one by truncation or
// by flipping bits (mostly in the headers, where the structure is). Each must parse or fail with a
// UserError (one line, naming the file); nothing may crash, hang or throw anything else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UserError } from '../host/errors.ts';
import { writeGguf } from '../host/formats/gguf.ts';
import { parseModel } from '../host/formats/index.ts';
import { writeLlama2c } from '../host/formats/llama2c.ts';
import { writeSafetensors } from '../host/formats/safetensors.ts';
import { readTokenizerBin, writeTokenizerBin } from '../host/formats/tokenizer-bin.ts';
import type { ModelConfig } from '../host/model/config.ts';
import { randomWeights, trainTokenizer } from '../host/model/synthetic.ts';
import { rng } from './helpers.ts';

const C: ModelConfig = { dim: 32, hiddenDim: 64, nLayers: 1, nHeads: 4, nKvHeads: 2, vocabSize: 48, seqLen: 8, sharedClassifier: false };
const W = randomWeights(C, 9);
const TOK = trainTokenizer(C.vocabSize);
const st = writeSafetensors(W, 'F16');

const PARSERS: Array<[string, Uint8Array, (name: string, b: Uint8Array) => unknown]> = [
  ['llama2.c legacy', writeLlama2c(W, 0), (n, b) => parseModel(n, b)],
  ['llama2.c version 1', writeLlama2c(W, 1), (n, b) => parseModel(n, b)],
  ['llama2.c version 2', writeLlama2c(W, 2, 32), (n, b) => parseModel(n, b)],
  ['GGUF', writeGguf(W, { types: (t) => (t.includes('attn') ? 'Q8_0' : 'F16'), tokenizer: TOK }), (n, b) => parseModel(n, b)],
  ['safetensors', st.bytes, (n, b) => parseModel(n, b, st.config)],
  ['tokenizer.bin', writeTokenizerBin(TOK), (n, b) => readTokenizerBin(n, b, C.vocabSize)],
];

function mutate(base: Uint8Array, r: () => number, i: number): Uint8Array {
  if (i % 2 === 0) return base.slice(0, Math.floor(r() * base.length));
  const b = base.slice();
  const flips = 1 + Math.floor(r() * 8);
  const hot = Math.min(b.length, 1024);
  for (let f = 0; f < flips; f++) {
    const at = r() < 0.8 ? Math.floor(r() * hot) : Math.floor(r() * b.length);
    b[at] ^= 1 << Math.floor(r() * 8);
  }
  return b;
}

for (const [name, base, parse] of PARSERS) {
  test(`${name}: 1000 truncated and bit-flipped files, only clean errors`, () => {
    parse('valid', base); // the unmutated file parses
    const r = rng(name.length * 7919);
    let errors = 0;
    for (let i = 0; i < 1000; i++) {
      const bytes = mutate(base, r, i);
      const t0 = performance.now();
      try {
        parse(`fuzz-${i}`, bytes);
      } catch (e) {
        if (!(e instanceof UserError)) throw new Error(`${name} mutant ${i}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
        assert.ok((e as Error).message.startsWith(`fuzz-${i}`), `${name} mutant ${i}: "${(e as Error).message}" does not name the file`);
        assert.not.match((e as Error).message, /\n/);
        errors++;
      }
      const ms = performance.now() - t0;
      assert.ok(ms < 2000, `${name} mutant ${i} took ${ms} ms`);
    }
    assert.ok(errors >= 500, `${name}: only ${errors} of 1000 mutants were refused`);
  });
}

test.run();
