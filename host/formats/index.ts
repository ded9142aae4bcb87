// loadModel: one entry for every model file format, chosen by content (magic), not by name:
//   "GGUF"                       -> host/formats/gguf.ts (tokenizer from its metadata)
//   u32 0x616b3432 ("ak42")      -> llama2.c version 1 / 2 (host/formats/llama2c.ts)
//   u64 header length + '{"'     -> safetensors with a Hugging Face config.json beside it
//   a directory                  -> its model.safetensors + config.json, or its model.bin
//   anything else                -> llama2.c legacy version 0 (7-int header; sizes are checked)
// The tokenizer: -z, else the model's own (GGUF), else tokenizer.bin beside the model, else in the
// current directory (run.c's default).
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { errnoText, UserError } from '../errors.ts';
import type { Model } from '../model/model.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { LIMITS, NeedMore } from './bytes.ts';
import { isGguf, parseGguf, readGguf } from './gguf.ts';
import { LLAMA2C_MAGIC, readLlama2c } from './llama2c.ts';
import { isSafetensors, parseSafetensors, readSafetensorsModel } from './safetensors.ts';
import { loadTokenizerBin } from './tokenizer-bin.ts';

export interface LoadOptions {
  tokenizer?: string;        // path of a llama2.c tokenizer.bin (-z)
  needTokenizer?: boolean;   // fail when none is found (default true)
}

function cannotRead(path: string, what: string, e: unknown): UserError {
  return new UserError(`cannot read ${what} ${path}: ${errnoText(e)}`);
}

// An open file read by ranges, so that what is read is what a header describes, not the whole file.
class RangeFile {
  readonly size: number;
  private constructor(readonly path: string, private fd: number) {
    this.size = fstatSync(fd).size;
  }
  static open(path: string, what: string): RangeFile {
    let fd: number | undefined;
    try {
      fd = openSync(path, 'r');
      if (fstatSync(fd).isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
      return new RangeFile(path, fd);
    } catch (e) {
      if (fd !== undefined) closeSync(fd);
      throw cannotRead(path, what, e);
    }
  }
  // The first n bytes (n at most the file's size).
  head(n: number): Uint8Array {
    const out = new Uint8Array(Math.min(n, this.size));
    let at = 0;
    while (at < out.length) {
      const got = readSync(this.fd, out, at, out.length - at, at);
      if (got === 0) break;
      at += got;
    }
    return at === out.length ? out : out.subarray(0, at);
  }
  close(): void {
    closeSync(this.fd);
  }
}

// Parses from the file's first bytes, reading more (four times as much, or what was asked for) while
// the parser asks for bytes past them.
function fromHead<T>(f: RangeFile, parse: (head: Uint8Array) => T, first: number = LIMITS.firstRead): T {
  let n = Math.min(f.size, first);
  for (;;) {
    try {
      return parse(f.head(n));
    } catch (e) {
      if (!(e instanceof NeedMore) || n >= f.size) throw e;
      n = Math.min(f.size, Math.max(e.upTo, 4 * n));
    }
  }
}

// The model file's bytes, as far as its header describes them (GGUF and safetensors may be followed
// by anything; a llama2.c checkpoint is exactly its size, checked from its header before reading it).
function readModelBytes(file: string): Uint8Array {
  const f = RangeFile.open(file, 'model');
  try {
    const start = f.head(16);
    if (isGguf(start)) return f.head(fromHead(f, (h) => parseGguf(file, h, f.size).dataEnd));
    if (start.length >= 4 && new DataView(start.buffer).getUint32(0, true) === LLAMA2C_MAGIC) return llama2cBytes(f);
    if (isSafetensors(start)) {
      const entries = fromHead(f, (h) => parseSafetensors(file, h, f.size), 1 << 16);
      let end = 8 + Number(new DataView(start.buffer).getBigUint64(0, true)); // the JSON header's end (checked)
      for (const e of entries.values()) end = Math.max(end, e.end);
      return f.head(end);
    }
    notText(file, start);
    return llama2cBytes(f);
  } finally {
    f.close();
  }
}

// A file that starts with 16 bytes of text is no model (a legacy llama2.c header's seven small
// integers hold zero bytes): said so, rather than what its text reads as a header ("dim 1684348963").
function notText(file: string, head: Uint8Array): void {
  const text = (b: number) => b === 9 || b === 10 || b === 13 || (b >= 0x20 && b < 0x7f) || b >= 0x80;
  if (head.length < 16 || !head.subarray(0, 16).every(text)) return;
  const shown = new TextDecoder().decode(head.subarray(0, 16)).replace(/[\r\n\t]/g, ' ').replace(/[^\x20-\x7e]/g, '.');
  throw new UserError(`${file}: not a model file: it starts with text ('${shown}'), expected a GGUF, a llama2.c checkpoint, safetensors or an edge-flash image`);
}

// A llama2.c checkpoint's header is checked (with the file's size) before the file is read.
function llama2cBytes(f: RangeFile): Uint8Array {
  try {
    readLlama2c(f.path, f.head(256), f.size);
  } catch (e) {
    if (!(e instanceof NeedMore)) throw e;
  }
  return f.head(f.size);
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw cannotRead(path, what, e);
  }
}

// Parse a model from bytes (tests and fuzzing call this; loadModel reads the file first).
export function parseModel(path: string, bytes: Uint8Array, configJson?: string, withTokenizer = true): Model {
  if (isGguf(bytes)) return readGguf(path, bytes, withTokenizer);
  if (bytes.length >= 4 && new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true) === LLAMA2C_MAGIC) return readLlama2c(path, bytes);
  if (isSafetensors(bytes)) {
    if (configJson === undefined) throw new UserError(`${path}: a safetensors file needs the Hugging Face config.json beside it`);
    return readSafetensorsModel(path, bytes, configJson);
  }
  notText(path, bytes);
  return readLlama2c(path, bytes);
}

export function loadModel(path: string, opts: LoadOptions = {}): Model {
  let file = path;
  let configJson: string | undefined;
  if (existsSync(path) && statSync(path).isDirectory()) {
    const st = join(path, 'model.safetensors');
    file = existsSync(st) ? st : join(path, 'model.bin');
    if (!existsSync(file)) throw new UserError(`${path}: a model folder needs model.safetensors (with config.json) or model.bin`);
  }
  const bytes = readModelBytes(file);
  if (isSafetensors(bytes)) {
    const cfg = join(dirname(file), 'config.json');
    if (!existsSync(cfg)) throw new UserError(`${file}: a safetensors model needs its Hugging Face config.json beside it (${cfg})`);
    configJson = readText(cfg, 'config.json');
  }
  const model = parseModel(file, bytes, configJson, !opts.tokenizer);
  const tokenizer = findTokenizer(model, file, opts);
  if (tokenizer) model.tokenizer = tokenizer;
  return model;
}

function findTokenizer(model: Model, file: string, opts: LoadOptions): Tokenizer | undefined {
  const vocab = model.config.vocabSize;
  if (opts.tokenizer) return loadTokenizerBin(opts.tokenizer, vocab);
  if (model.tokenizer) return model.tokenizer;
  for (const p of [join(dirname(file), 'tokenizer.bin'), 'tokenizer.bin']) {
    if (existsSync(p)) return loadTokenizerBin(p, vocab);
  }
  if (opts.needTokenizer ?? true) {
    throw new UserError(`no tokenizer for ${file}: none inside the model, no tokenizer.bin beside it or here`, 'pass one with -z tokenizer.bin');
  }
  return undefined;
}
