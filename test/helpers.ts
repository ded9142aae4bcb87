// Shared test helpers: a seeded generator (failures print the seed), the engines to test on, and the
// CLI as a user runs it.
import { spawnSync } from 'node:child_process';
import { tryEngine, ENGINE_NAMES } from '../host/engine/index.ts';
import type { Engine } from '../host/engine/types.ts';
import { fromRoot } from '../host/paths.ts';

// xorshift32: small, seeded, identical everywhere.
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export function randn(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

export function randomTrits(r: () => number, n: number): Int8Array {
  return Int8Array.from({ length: n }, () => Math.floor(r() * 3) - 1);
}

// Every engine the tests must cover. wasm3 missing is a failure in CI, a warning elsewhere.
export async function testEngines(): Promise<Engine[]> {
  const out: Engine[] = [];
  for (const name of ENGINE_NAMES) {
    const r = await tryEngine(name);
    if (r.engine) out.push(r.engine);
    else if (process.env.CI) throw new Error(`engine ${name} unavailable in CI: ${r.error}`);
    else process.stderr.write(`warning: engine ${name} not tested: ${r.error}\n`);
  }
  return out;
}

export function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

// `edge-flash ...args` in a child process, without SOURCE_DATE_EPOCH (so images carry the time).
export function cli(...args: string[]): { code: number | null; out: string; err: string } {
  const env = { ...process.env };
  delete env.SOURCE_DATE_EPOCH;
  const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), ...args], { encoding: 'utf8', env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
