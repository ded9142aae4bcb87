// safetensors with a Hugging Face llama config.json.
import { UserError } from '../errors.ts';
import type { Model } from '../model/model.ts';

export function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const n = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true);
  return n > 1n && n < BigInt(bytes.length) && bytes[8] === 0x7b;
}

export function readSafetensorsModel(path: string, _bytes: Uint8Array, _config: string): Model {
  throw new UserError(`${path}: safetensors is not supported yet`);
}
