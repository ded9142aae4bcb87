// Synthetic models and tokenizers: seeded random weights of any shape (tests build checkpoints of
// every format from them; the benchmark times them) and a tiny BPE tokenizer trained on a text.
import type { FloatWeights } from '../formats/llama2c.ts';
import { f32Matrix } from '../formats/llama2c.ts';
import type { ModelConfig } from './config.ts';
import { MATRIX_NAMES, matrixShape, type Model } from './model.ts';
import type { Tokenizer } from './tokenizer.ts';
import { maxOf } from '../arrays.ts';

// xorshift32 with Box-Muller normals: small, seeded, identical everywhere.
export function normals(seed: number): (n: number, scale: number) => Float32Array {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
  return (n, scale) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(Math.max(u(), 1e-12))) * Math.cos(2 * Math.PI * u());
    return out;
  };
}

// Random weights scaled like a trained model's (1/sqrt(fan_in)), norms near 1.
export function randomWeights(c: ModelConfig, seed = 1): FloatWeights {
  const rnd = normals(seed);
  const layers = {} as FloatWeights['layers'];
  for (const n of MATRIX_NAMES) {
    const [m, k] = matrixShape(c, n);
    layers[n] = Array.from({ length: c.nLayers }, () => rnd(m * k, 1 / Math.sqrt(k)));
  }
  const norm = () => Float32Array.from(rnd(c.dim, 0.1), (v) => 1 + v);
  return {
    config: c,
    tok: rnd(c.vocabSize * c.dim, 0.2),
    rmsAtt: Array.from({ length: c.nLayers }, norm),
    rmsFfn: Array.from({ length: c.nLayers }, norm),
    layers,
    rmsFinal: norm(),
    cls: c.sharedClassifier ? null : rnd(c.vocabSize * c.dim, 1 / Math.sqrt(c.dim)),
  };
}

// A Model straight from float weights (f32 matrices), as a loader would return it.
export function modelFromWeights(w: FloatWeights, path = '<synthetic>'): Model {
  const c = w.config;
  return {
    path, source: 'synthetic', config: c, ropeTheta: 10000, normEps: 1e-5,
    embedding: f32Matrix(w.tok, c.vocabSize, c.dim),
    layers: Array.from({ length: c.nLayers }, (_, l) => {
      const out: Record<string, unknown> = { rmsAtt: w.rmsAtt[l], rmsFfn: w.rmsFfn[l] };
      for (const n of MATRIX_NAMES) {
        const [m, k] = matrixShape(c, n);
        out[n] = f32Matrix(w.layers[n][l], m, k);
      }
      return out as unknown as Model['layers'][number];
    }),
    rmsFinal: w.rmsFinal,
    classifier: w.cls ? f32Matrix(w.cls, c.vocabSize, c.dim) : null,
  };
}

export const SAMPLE_TEXT = 'In the beginning God created the heaven and the earth. And the earth was without form, and void; ' +
  'and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. ' +
  'And God said, Let there be light: and there was light. And God saw the light, that it was good: ' +
  'and God divided the light from the darkness. Once upon a time there was a little girl named Lily. ' +
  'She liked to play outside in the sun with her friends, 1 2 3 4 5 6 7 8 9 0.';

// A llama-style BPE vocabulary: <unk>, BOS, EOS, the 256 byte-fallback tokens <0xXX>, the characters
// of the text, then merges of the most frequent adjacent pair (score -rank), until `vocab` pieces.
export function trainTokenizer(vocab: number, text = SAMPLE_TEXT): Tokenizer {
  const enc = new TextEncoder();
  const pieces: string[] = ['<unk>', '\n<s>\n', '\n</s>\n'];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < 256 && pieces.length < vocab; b++) {
    pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    scores.push(0);
  }
  const words = text.split(' ').map((w) => [...(' ' + w)]);
  const have = new Set(pieces);
  for (const ch of new Set(words.flat())) {
    if (pieces.length >= vocab) break;
    if (!have.has(ch)) { pieces.push(ch); scores.push(-1e6); have.add(ch); }
  }
  let rank = 0;
  while (pieces.length < vocab) {
    const counts = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) counts.set(w[i] + '\u0000' + w[i + 1], (counts.get(w[i] + '\u0000' + w[i + 1]) ?? 0) + 1);
    let best = '', bc = 0;
    for (const [k, v] of counts) if (v > bc || (v === bc && k < best)) { best = k; bc = v; }
    if (!best) break;
    const [a, b] = best.split('\u0000');
    const merged = a + b;
    for (const w of words) {
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) w.splice(i, 2, merged);
    }
    if (!have.has(merged)) { pieces.push(merged); scores.push(-rank); have.add(merged); }
    rank++;
  }
  while (pieces.length < vocab) { pieces.push(`<extra${pieces.length}>`); scores.push(-1e9); }
  const bytes = pieces.map((p) => enc.encode(p));
  return { pieces: bytes, scores: Float32Array.from(scores), maxTokenLength: maxOf(bytes.map((b) => b.length)), bos: 1, eos: 2 };
}
