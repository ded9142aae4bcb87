// GGUF (llama.cpp), llama architecture.
import { UserError } from '../errors.ts';
import type { Model } from '../model/model.ts';

export function isGguf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x47 && bytes[1] === 0x47 && bytes[2] === 0x55 && bytes[3] === 0x46;
}

export function readGguf(path: string, _bytes: Uint8Array): Model {
  throw new UserError(`${path}: GGUF is not supported yet`);
}
