// The device runtime's C programs (boards/runtime/) as the runtime tests run them: built once with
// make (the project build does the same step; make finds nothing to do then).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fromRoot } from '../host/paths.ts';

export const RUNTIME_DIR = fromRoot('boards', 'runtime');

export function makeRuntime(target = 'all'): string {
  const r = spawnSync('make', ['-s', '-C', RUNTIME_DIR, '-j2', target], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make -C boards/runtime ${target} failed:\n${r.stdout}${r.stderr}`);
  return join(RUNTIME_DIR, 'build');
}

export function runBin(bin: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  const r = spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: opts.timeout ?? 60_000, maxBuffer: 256 << 20 });
  return { code: r.status, signal: r.signal, out: r.stdout ?? '', err: r.stderr ?? '' };
}
