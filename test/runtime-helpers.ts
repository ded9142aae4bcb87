// The device runtime's C programs (boards/runtime/) as the runtime tests run them: built once with
// make (the project build does the same step; make finds nothing to do then).
import { spawnSync } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { fromRoot } from '../host/paths.ts';
import { cli } from './helpers.ts';
import type { RuntimeBuild } from './runtime-vectors.ts';

export const RUNTIME_DIR = fromRoot('boards', 'runtime');

export function makeRuntime(target = 'all'): string {
  const r = spawnSync('make', ['-s', '-C', RUNTIME_DIR, '-j2', target], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make -C boards/runtime ${target} failed:\n${r.stdout}${r.stderr}`);
  return join(RUNTIME_DIR, 'build');
}

export function nativeBuild(): RuntimeBuild {
  return { name: 'native', dir: makeRuntime(), wrap: [] };
}

// The Raspberry Pi cross builds (make cross-aarch64, cross-armhf) and the qemu-user that runs each.
export const CROSS = { aarch64: { gcc: 'aarch64-linux-gnu-gcc', qemu: 'qemu-aarch64' }, armhf: { gcc: 'arm-linux-gnueabihf-gcc', qemu: 'qemu-arm' } } as const;
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

// The cross build of `arch` (with aot: the AOT runtime, which needs wasm2c too), or why it cannot be
// made here (no cross compiler, qemu-user or wasm2c: tools/install-system-deps.sh installs them).
export function crossBuild(arch: keyof typeof CROSS, aot = false): RuntimeBuild | string {
  const t = CROSS[arch];
  const missing = [t.gcc, t.qemu, ...(aot ? ['wasm2c'] : [])].filter((c) => !have(c));
  if (missing.length) return `${missing.join(' and ')} not found (tools/install-system-deps.sh installs them)`;
  // as a user builds it: `edge-flash runtime build [--aot] --cross ARCH` prints the binary's path
  const args = ['runtime', 'build', ...(aot ? ['--aot'] : []), '--cross', arch];
  const r = cli(...args);
  if (r.code !== 0) throw new Error(`edge-flash ${args.join(' ')} failed (${r.code}):\n${r.err}`);
  const bin = r.out.trim();
  return { name: `${arch}${aot ? '-aot' : ''}`, dir: dirname(bin), wrap: [t.qemu], runtime: basename(bin) };
}

export function runBin(bin: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  const r = spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: opts.timeout ?? 60_000, maxBuffer: 256 << 20 });
  return { code: r.status, signal: r.signal, out: r.stdout ?? '', err: r.stderr ?? '' };
}
