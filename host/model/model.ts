// The Model every loader returns (host/formats/) and everything downstream consumes: the llama2.c
// configuration, the weights (each matrix in a format of the table, chosen per tensor) and the
// tokenizer when the file carries one.
import { UserError } from '../errors.ts';
import type { QuantTensor } from '../quant/tensor.ts';
import { headDim, kvDim, type ModelConfig } from './config.ts';
import type { Tokenizer } from './tokenizer.ts';

// A weight matrix of logical shape (rows, cols) as the kernels read it: `t.m >= rows` (rows padded to
// the format's row tile with zero rows) and `t.k >= cols` (columns padded to the block with zeros).
export type Matrix = QuantTensor;

export interface LayerWeights {
  rmsAtt: Float32Array; // (dim)
  wq: Matrix;           // (dim, dim)         q = wq x
  wk: Matrix;           // (kv_dim, dim)
  wv: Matrix;           // (kv_dim, dim)
  wo: Matrix;           // (dim, dim)
  rmsFfn: Float32Array; // (dim)
  w1: Matrix;           // (hidden, dim)      gate
  w2: Matrix;           // (dim, hidden)      down
  w3: Matrix;           // (hidden, dim)      up
}

export interface Model {
  path: string;
  source: string;            // e.g. 'llama2.c legacy (version 0)', 'GGUF v3'
  config: ModelConfig;
  ropeTheta: number;         // 10000 in llama2.c
  normEps: number;           // 1e-5 in llama2.c
  embedding: Matrix;         // (vocab, dim) token embedding table
  layers: LayerWeights[];
  rmsFinal: Float32Array;    // (dim)
  classifier: Matrix | null; // (vocab, dim); null: shared with the embedding
  tokenizer?: Tokenizer;     // when the model file carries one (GGUF)
}

export const MATRIX_NAMES = ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'] as const;
export type MatrixName = (typeof MATRIX_NAMES)[number];

// Logical (rows, cols) of each matrix of a layer.
export function matrixShape(c: ModelConfig, name: MatrixName): [number, number] {
  const kv = kvDim(c);
  switch (name) {
    case 'wq': case 'wo': return [c.dim, c.dim];
    case 'wk': case 'wv': return [kv, c.dim];
    case 'w1': case 'w3': return [c.hiddenDim, c.dim];
    case 'w2': return [c.dim, c.hiddenDim];
  }
}

// Checks a config read from a file: positive, divisible, and small enough that a corrupt header
// cannot make a reader allocate gigabytes before it notices the file is too short.
export function checkConfig(c: ModelConfig, file: string): void {
  const fields: Array<[keyof ModelConfig, number]> = [
    ['dim', 1 << 16], ['hiddenDim', 1 << 18], ['nLayers', 1024], ['nHeads', 1024], ['nKvHeads', 1024], ['vocabSize', 1 << 22], ['seqLen', 1 << 20],
  ];
  for (const [k, max] of fields) {
    const v = c[k] as number;
    if (!Number.isInteger(v) || v < 1 || v > max) throw new UserError(`${file}: config ${k}: expected an integer in [1, ${max}], found ${v}`);
  }
  if (c.dim % c.nHeads !== 0) throw new UserError(`${file}: config dim ${c.dim}: expected a multiple of n_heads ${c.nHeads}`);
  if (c.nHeads % c.nKvHeads !== 0) throw new UserError(`${file}: config n_kv_heads ${c.nKvHeads}: expected a divisor of n_heads ${c.nHeads}`);
  if (headDim(c) % 2 !== 0) throw new UserError(`${file}: config head size ${headDim(c)} (dim / n_heads): expected an even number (RoPE rotates pairs)`);
}

// The bounds the image format holds these to (host/image/layout.ts), checked where they are read:
// `where` names the file and field. Both are stored as f32, so they are checked as f32.
export function checkNormEps(where: string, v: number): number {
  if (!(v > 0 && v < 1 && Math.fround(v) > 0)) throw new UserError(`${where}: expected a norm epsilon in (0, 1), found ${v}`);
  return v;
}

export function checkRopeTheta(where: string, v: number): number {
  if (!(v >= 1 && Number.isFinite(Math.fround(v)))) throw new UserError(`${where}: expected a RoPE base that is a finite number >= 1, found ${v}`);
  return v;
}

export function modelMatrices(m: Model): Array<{ name: string; t: Matrix; rows: number; cols: number }> {
  const c = m.config;
  const out: Array<{ name: string; t: Matrix; rows: number; cols: number }> = [];
  out.push({ name: 'embedding', t: m.embedding, rows: c.vocabSize, cols: c.dim });
  m.layers.forEach((l, i) => {
    for (const n of MATRIX_NAMES) {
      const [rows, cols] = matrixShape(c, n);
      out.push({ name: `layers.${i}.${n}`, t: l[n], rows, cols });
    }
  });
  if (m.classifier) out.push({ name: 'classifier', t: m.classifier, rows: c.vocabSize, cols: c.dim });
  return out;
}

// Checks that every tensor has the shape the config says (loaders call it last).
export function checkModel(m: Model): void {
  const c = m.config;
  for (const { name, t, rows, cols } of modelMatrices(m)) {
    if (t.m < rows || t.k < cols || t.k % t.format.block !== 0) {
      throw new UserError(`${m.path}: tensor ${name}: expected shape (${rows}, ${cols}), found (${t.m}, ${t.k})`);
    }
  }
  const vecs: Array<[string, Float32Array]> = [['rms_final', m.rmsFinal], ...m.layers.flatMap((l, i): Array<[string, Float32Array]> => [[`layers.${i}.rms_att`, l.rmsAtt], [`layers.${i}.rms_ffn`, l.rmsFfn]])];
  for (const [name, v] of vecs) {
    if (v.length !== c.dim) throw new UserError(`${m.path}: tensor ${name}: expected ${c.dim} values, found ${v.length}`);
  }
  if (m.layers.length !== c.nLayers) throw new UserError(`${m.path}: expected ${c.nLayers} layers, found ${m.layers.length}`);
  if (m.tokenizer && m.tokenizer.pieces.length !== c.vocabSize) {
    throw new UserError(`${m.path}: tokenizer has ${m.tokenizer.pieces.length} tokens, expected vocab_size ${c.vocabSize}`);
  }
}
