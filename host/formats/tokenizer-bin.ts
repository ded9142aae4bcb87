// llama2.c's tokenizer.bin, one reader and one writer: int32 max_token_length, then for each of
// vocab_size tokens: float32 score, int32 byte length, the bytes (no terminator). The file does not
// store vocab_size; the model's config gives it. BOS is id 1 and EOS id 2 (run.c).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { errnoText, UserError } from '../errors.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { ByteReader, ByteWriter, NeedMore } from './bytes.ts';

// fileSize: the whole file's, when bytes holds only its first part (NeedMore asks for the rest).
export function readTokenizerBin(path: string, bytes: Uint8Array, vocabSize: number, fileSize = bytes.length): Tokenizer {
  const r = new ByteReader(path, bytes, fileSize);
  const maxTokenLength = r.i32('max_token_length');
  if (!(maxTokenLength >= 1 && maxTokenLength <= 65536)) r.fail('max_token_length', 'a length in [1, 65536]', String(maxTokenLength));
  // each token is at most its 8-byte score and length and max_token_length bytes: a larger file is
  // refused before it is read (a shorter one fails at the first token it lacks)
  const most = 4 + (8 + maxTokenLength) * vocabSize;
  if (r.length > most) {
    r.fail('file size', `at most ${most} bytes for ${vocabSize} tokens (the model's vocab_size) of at most ${maxTokenLength} bytes`, `${r.length} (a tokenizer for another model?)`);
  }
  const pieces: Uint8Array[] = [];
  const scores = new Float32Array(vocabSize);
  for (let i = 0; i < vocabSize; i++) {
    scores[i] = r.f32(`token ${i} score`);
    if (!Number.isFinite(scores[i])) r.fail(`token ${i} score`, 'a finite number', String(scores[i]));
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
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const read = (n: number) => {
      const b = new Uint8Array(Math.min(n, size));
      let at = 0;
      for (let got = 1; at < b.length && got > 0; at += got) got = readSync(fd!, b, at, b.length - at, at);
      return b.subarray(0, at);
    };
    // the size is checked from the first 4 bytes before the rest is read
    try {
      return readTokenizerBin(path, read(4), vocabSize, size);
    } catch (e) {
      if (!(e instanceof NeedMore)) throw e;
      return readTokenizerBin(path, read(size), vocabSize);
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot read tokenizer ${path}: ${errnoText(e)}`, 'pass one with -z');
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function writeTokenizerBin(t: Tokenizer): Uint8Array {
  const w = new ByteWriter();
  let most = t.maxTokenLength;
  for (const p of t.pieces) most = Math.max(most, p.length);
  w.i32(most);
  t.pieces.forEach((p, i) => w.f32(t.scores[i]).i32(p.length).bytes(p));
  return w.finish();
}
