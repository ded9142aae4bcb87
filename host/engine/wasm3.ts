// The wasm3 engine: the interpreter the boards run, through the tools/wasm3-node addon.
// (Placeholder until the wasm3 issue lands: it reports the addon as missing.)
import type { Engine } from './types.ts';

export function loadWasm3Engine(): Engine {
  throw new Error('the wasm3-node addon is not built yet');
}
