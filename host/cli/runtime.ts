// `edge-flash runtime build [--aot] [--cross aarch64|armhf] [--out DIR] [--jobs N]`: builds the C device
// runtime (boards/runtime/, make) for this machine, which on a Raspberry Pi is the Pi's own runtime,
// or cross-builds it for a Pi with Debian's cross compilers (linked static: copy the one file over).
// --aot builds edge-flash-runtime-aot: the device app translated by wasm2c instead of wasm3.
// Prints the binary's path on stdout; make's output goes to stderr. What is missing (make, a compiler,
// the wasm3 sources) is named with the command that installs it, before make runs.
import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { fromRoot } from '../paths.ts';
import { intFlag } from './flags.ts';

// --cross: the target, the cross compiler's prefix and the Debian package that has it
export const CROSS_TARGETS = {
  aarch64: { prefix: 'aarch64-linux-gnu-', pkg: 'gcc-aarch64-linux-gnu', os: '64-bit Raspberry Pi OS' },
  armhf: { prefix: 'arm-linux-gnueabihf-', pkg: 'gcc-arm-linux-gnueabihf', os: '32-bit Raspberry Pi OS (ARMv7 and later: Zero 2 W, 2, 3, 4, 5)' },
} as const;

const onPath = (cmd: string) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' }).status === 0;

// wasm3 at -O3 takes a few hundred MB a compile: a Zero 2 W (512 MB) builds one file at a time
function defaultJobs(): number {
  return Math.max(1, Math.min(availableParallelism(), 4, Math.floor(totalmem() / (384 << 20))));
}

export function registerRuntime(program: Command): void {
  const runtime = program.command('runtime').description('the C device runtime a Raspberry Pi runs (boards/runtime/)');
  runtime
    .command('build')
    .description('build the device runtime for this machine (on a Raspberry Pi: its runtime), or for a Pi with --cross; prints the binary\'s path')
    .option('--cross <arch>', `cross-build for a Pi: aarch64 (${CROSS_TARGETS.aarch64.os}) or armhf (${CROSS_TARGETS.armhf.os}), static`)
    .option('--aot', 'the runtime with the app compiled ahead of time (edge-flash-runtime-aot: build/device.wasm through wasm2c, bounds-checked; needs wabt) instead of wasm3')
    .option('--out <dir>', 'build folder (default: boards/runtime/build in the package; --cross builds go to its cross-ARCH/)')
    .option('-j, --jobs <n>', 'compiles at once (default: the cores, at most 4, one per 384 MiB of memory)', intFlag('--jobs', { min: 1, max: 256 }))
    .addHelpText('after', `
The wasm3 sources are the wasm3x-sys 0.2.1 crate's (cargo fetches them once); our sources build with
-Wall -Wextra -Werror. Which --cross: \`uname -m\` on the Pi says aarch64 or armv7l (armhf). The Pi's
service, serial setup and slot file: boards/rpi/README.md in the package.

Examples:
  edge-flash runtime build                      on the Pi: its own runtime
  edge-flash runtime build --cross aarch64      on a Debian laptop: a static binary to copy to the Pi
  edge-flash runtime build --aot --cross armhf  the AOT runtime for 32-bit Raspberry Pi OS: it runs only
                                                images of this edge-flash's app (its boot refuses others)
  scp "$(edge-flash runtime build --cross aarch64)" pi@raspberrypi.local:`)
    .action((o: { cross?: string; out?: string; jobs?: number; aot?: boolean }) => {
      const src = fromRoot('boards', 'runtime');
      const cross = o.cross === undefined ? undefined : CROSS_TARGETS[o.cross as keyof typeof CROSS_TARGETS];
      if (o.cross !== undefined && (!cross || !Object.hasOwn(CROSS_TARGETS, o.cross))) {
        throw new UserError(`--cross must be ${Object.keys(CROSS_TARGETS).join(' or ')}, got '${o.cross}'`);
      }
      if (!onPath('make')) throw new UserError('make not found', 'on Debian or Raspberry Pi OS: sudo apt install build-essential');
      if (cross && !onPath(`${cross.prefix}gcc`)) throw new UserError(`${cross.prefix}gcc not found`, `on Debian: sudo apt install ${cross.pkg}`);
      if (!cross && !onPath('cc') && !onPath('clang')) throw new UserError('no C compiler (cc or clang) found', 'on Debian or Raspberry Pi OS: sudo apt install build-essential');
      if (o.aot && !onPath('wasm2c')) throw new UserError('--aot needs wasm2c, which is not on PATH: it is in the wabt package', 'on Debian or Raspberry Pi OS: sudo apt install wabt');
      if (o.aot && !existsSync(fromRoot('build', 'device.wasm'))) throw new UserError(`missing ${fromRoot('build', 'device.wasm')}: --aot translates the device app`, 'run `npm run build` first');
      const wasm3 = spawnSync('sh', [join(src, 'wasm3-dir.sh')], { encoding: 'utf8' });
      if (wasm3.status !== 0) {
        throw new UserError('the wasm3 sources (the wasm3x-sys 0.2.1 crate) are not on this machine',
          `install Rust (rustup) and run: cargo fetch --manifest-path ${fromRoot('tools', 'wasm3-node', 'Cargo.toml')}; or cross-build on a laptop that has them`);
      }
      const out = resolve(o.out ?? join(src, 'build'));
      const target = `${o.cross ? `cross-${o.cross}` : 'runtime'}${o.aot ? '-aot' : ''}`;
      // make's stdout is progress to a user: stderr, so that stdout carries only the path
      const r = spawnSync('make', ['--no-print-directory', '-C', src, `-j${o.jobs ?? defaultJobs()}`, `OUT=${out}`, `WASM3=${wasm3.stdout.trim()}`, target], { stdio: ['ignore', 2, 2] });
      if (r.status !== 0) throw new UserError(`make ${target} failed (exit ${r.status ?? r.signal}): its output is above`);
      process.stdout.write(`${join(out, o.cross ? `cross-${o.cross}` : '', o.aot ? 'edge-flash-runtime-aot' : 'edge-flash-runtime')}\n`);
    });
}
