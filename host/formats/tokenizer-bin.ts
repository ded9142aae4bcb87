// llama2.c's tokenizer.bin, one reader and one writer: int32 max_token_length, then for each of
// vocab_size tokens: float32 score, int32 byte length, the bytes (no terminator). The file does not
// store vocab_size; the model's config gives it. BOS is id 1 and EOS id 2 (run.c).
import { readFileSync } from 'node:fs';
import { errnoText, UserError } from '../errors.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { ByteReader, ByteWriter } from './bytes.ts';

export function readTokenizerBin(path: string, bytes: Uint8Array, vocabSize: number): Tokenizer {
  const r = new ByteReader(path, bytes);
  const maxTokenLength = r.i32('max_token_length');
  if (!(maxTokenLength >= 1 && maxTokenLength <= 65536)) r.fail('max_token_length', 'a length in [1, 65536]', String(maxTokenLength));
  const pieces: Uint8Array[] = [];
  const scores = new Float32Array(vocabSize);
  for (let i = 0; i < vocabSize; i++) {
    scores[i] = r.f32(`token ${i} score`);
    const len = r.i32(`token ${i} length`);
    if (!(len >= 0 && len <= maxTokenLength)) r.fail(`token ${i} length`, `a length in [0, max_token_length ${maxTokenLength}]`, String(len));
    pieces.push(r.take(len, `token ${i} bytes`).slice());
  }
  if (r.pos !== r.length) {
    r.fail('end of file', `${vocabSize} tokens (the model's vocab_size) ending at byte ${r.pos}`, `${r.length - r.pos} more bytes (a tokenizer for another model?)`);
  }
  return { pieces, scores, maxTokenLength, bos: 1, eos: 2 };
}

export function loadTokenizerBin(path: string, vocabSize: number): Tokenizer {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read tokenizer ${path}: ${errnoText(e)}`, 'pass one with -z');
  }
  return readTokenizerBin(path, bytes, vocabSize);
}

export function writeTokenizerBin(t: Tokenizer): Uint8Array {
  const w = new ByteWriter();
  w.i32(Math.max(t.maxTokenLength, ...t.pieces.map((p) => p.length)));
  t.pieces.forEach((p, i) => w.f32(t.scores[i]).i32(p.length).bytes(p));
  return w.finish();
}
