// What an image's app is: which build (device, the MVP module wasm3 and boards run; or simd, V8 only),
// told from its code, not from its name or a flag: the scan of what wasm3 runs finds any SIMD
// instruction or v128 local. Any other instruction wasm3 does not run makes the build 'unknown', and
// the engine's own loader has the last word.
import { baseImports } from '../engine/imports.ts';
import { rejectedInstructions, SIMD, type RejectedInstruction } from '../engine/opcodes.ts';
import type { Target } from '../quant/formats.ts';

export type AppBuild = Target | 'unknown';

// The build an app module is: 'simd' when a function uses a SIMD instruction or a v128 local,
// 'device' when every instruction is one wasm3 runs (host/engine/opcodes.ts), 'unknown' otherwise.
export function appBuild(app: Uint8Array): AppBuild {
  let rejected: RejectedInstruction[];
  try {
    rejected = rejectedInstructions(app);
  } catch {
    return 'unknown';
  }
  if (rejected.length === 0) return 'device';
  return rejected.some((x) => x.proposal === SIMD) ? 'simd' : 'unknown';
}

// The exports the model runtime calls (host/model/exports.ts) and the imports a board provides
// (host/engine/imports.ts, docs/abi.md): an app that lacks one, or wants another, cannot run.
export { APP_EXPORTS } from '../model/exports.ts';
import { APP_EXPORTS } from '../model/exports.ts';

// What keeps an app from running, in one line; null when nothing does.
export function appProblem(app: Uint8Array): string | null {
  let mod: WebAssembly.Module;
  try {
    mod = new WebAssembly.Module(app as Uint8Array<ArrayBuffer>);
  } catch (e) {
    return `the app is not a valid WebAssembly module (${(e as Error).message.replace(/^WebAssembly\.Module\(\): /, '')})`;
  }
  const provided = new Set(baseImports()(() => { throw new Error('no instance'); }).map((f) => `${f.module}.${f.name}`));
  const extra = WebAssembly.Module.imports(mod).filter((i) => i.kind !== 'function' || !provided.has(`${i.module}.${i.name}`));
  if (extra.length) return `the app imports ${extra.map((i) => `${i.module}.${i.name}`).join(', ')}, which a board does not provide (only ${[...provided].join(', ')})`;
  const exports = new Set(WebAssembly.Module.exports(mod).map((e) => e.name));
  const missing = APP_EXPORTS.filter((n) => !exports.has(n));
  if (missing.length) return `the app does not export ${missing.join(', ')}: it is not an edge-flash device app (build/device.wasm)`;
  return null;
}
