// loadModel: one entry for every model file format, chosen by content (magic), not by name:
//   "GGUF"                       -> host/formats/gguf.ts (tokenizer from its metadata)
//   u32 0x616b3432 ("ak42")      -> llama2.c version 1 / 2 (host/formats/llama2c.ts)
//   u64 header length + '{"'     -> safetensors with a Hugging Face config.json beside it
//   a directory                  -> its model.safetensors + config.json, or its model.bin
//   anything else                -> llama2.c legacy version 0 (7-int header; sizes are checked)
// The tokenizer: -z, else the model's own (GGUF), else tokenizer.bin beside the model, else in the
// current directory (run.c's default).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { errnoText, UserError } from '../errors.ts';
import type { Model } from '../model/model.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { isGguf, readGguf } from './gguf.ts';
import { readLlama2c } from './llama2c.ts';
import { isSafetensors, readSafetensorsModel } from './safetensors.ts';
import { loadTokenizerBin } from './tokenizer-bin.ts';

export interface LoadOptions {
  tokenizer?: string;        // path of a llama2.c tokenizer.bin (-z)
  needTokenizer?: boolean;   // fail when none is found (default true)
}

function readBytes(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read ${what} ${path}: ${errnoText(e)}`);
  }
}

// Parse a model from bytes (tests and fuzzing call this; loadModel reads the file first).
export function parseModel(path: string, bytes: Uint8Array, configJson?: string, withTokenizer = true): Model {
  if (isGguf(bytes)) return readGguf(path, bytes, withTokenizer);
  if (isSafetensors(bytes)) {
    if (configJson === undefined) throw new UserError(`${path}: a safetensors file needs the Hugging Face config.json beside it`);
    return readSafetensorsModel(path, bytes, configJson);
  }
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
  const bytes = readBytes(file, 'model');
  if (isSafetensors(bytes)) {
    const cfg = join(dirname(file), 'config.json');
    if (!existsSync(cfg)) throw new UserError(`${file}: a safetensors model needs its Hugging Face config.json beside it (${cfg})`);
    configJson = readFileSync(cfg, 'utf8');
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
