// Engine selection. wasm3 comes from the tools/wasm3-node addon; when it cannot be loaded the CLI
// says why in one line and falls back to V8 (tests treat its absence as a failure).
import { readFileSync, existsSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { fromRoot } from '../paths.ts';
import type { Target } from '../quant/formats.ts';
import type { Engine, EngineName } from './types.ts';
import { v8Engine } from './v8.ts';

export const ENGINE_NAMES: readonly EngineName[] = ['v8', 'wasm3'];

export interface EngineLoad {
  engine?: Engine;
  error?: string; // why it is not available
}

let wasm3Load: EngineLoad | undefined;

export async function tryEngine(name: EngineName): Promise<EngineLoad> {
  if (name === 'v8') return { engine: v8Engine };
  if (!wasm3Load) {
    try {
      const mod = await import('./wasm3.ts');
      wasm3Load = { engine: mod.loadWasm3Engine() };
    } catch (e) {
      wasm3Load = { error: (e as Error).message.split('\n')[0] };
    }
  }
  return wasm3Load;
}

export async function getEngine(name: string): Promise<Engine> {
  if (!ENGINE_NAMES.includes(name as EngineName)) {
    throw new UserError(`unknown engine '${name}': expected one of ${ENGINE_NAMES.join(', ')}`);
  }
  const r = await tryEngine(name as EngineName);
  if (!r.engine) throw new UserError(`engine '${name}' is not available: ${r.error}`, 'build the addon with `npm run build`');
  return r.engine;
}

// The engine a command runs on: wasm3 when asked for and loadable; otherwise V8, saying why in one line.
// A user who named wasm3 (`explicit`) gets an error instead: a V8 run is not what they asked for.
export async function engineOrFallback(name: string, warn: (msg: string) => void, explicit = false): Promise<Engine> {
  if (name !== 'wasm3' || explicit) return getEngine(name);
  const r = await tryEngine('wasm3');
  if (r.engine) return r.engine;
  warn(`wasm3 is not available (${r.error}); running on V8 instead`);
  return v8Engine;
}

// The build target each engine runs: wasm3 executes only the MVP `device` build (no SIMD).
export function targetFor(engine: EngineName, preferSimd = true): Target {
  return engine === 'v8' && preferSimd ? 'simd' : 'device';
}

const wasmCache = new Map<Target, Uint8Array>();
export function wasmBytes(target: Target): Uint8Array {
  let b = wasmCache.get(target);
  if (!b) {
    const p = fromRoot('build', `${target}.wasm`);
    if (!existsSync(p)) throw new UserError(`missing ${p}`, 'run `npm run build` first');
    b = new Uint8Array(readFileSync(p));
    wasmCache.set(target, b);
  }
  return b;
}
