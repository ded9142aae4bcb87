// `npm run build` (also run by `npm ci` through `prepare`): generated tables, both WASM targets, the
// CLI bundle. Each step prints one line on stderr; any failure stops the build with its message.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const only = new Set(process.argv.slice(2).filter((a) => !a.startsWith('--'))); // e.g. `node tools/build.mjs wasm cli`
const want = (step) => only.size === 0 || only.has(step);

function step(name, fn) {
  const t0 = Date.now();
  try {
    fn();
  } catch (e) {
    process.stderr.write(`build: ${name} FAILED: ${String(e.message).split('\n')[0]}\n`);
    process.exit(1);
  }
  process.stderr.write(`build: ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
}

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...opts });

mkdirSync(join(root, 'build'), { recursive: true });
// The generators, in the order their outputs feed each other. In CI they only compare (--check): a
// generated file that disagrees with its table fails the build instead of being rewritten.
// `node tools/build.mjs gen --check` is that comparison alone (test/run.mjs runs it before building).
const GENERATORS = ['tools/gen-formats.ts', 'tools/gen-desc.ts', 'tools/gen-dispatch.ts', 'tools/gen-esp32c3-layout.ts'];
const genArgs = process.argv.includes('--check') || process.env.CI === 'true' ? ['--check'] : [];
if (want('gen')) for (const g of GENERATORS) step(`${g}${genArgs.length ? ' --check' : ''}`, () => run(bin('tsx'), [g, ...genArgs]));
if (want('wasm')) {
  for (const target of ['device', 'simd']) {
    step(`assembly -> build/${target}.wasm`, () => run(bin('asc'), [target === 'device' ? 'assembly/device.ts' : 'assembly/index.ts', '--config', 'asconfig.json', '--target', target]));
  }
  // The engine tests' probe module: MVP features only, like the device build. Its own config, so that
  // asc does not pick up asconfig.json's entries (the whole device app) along with it.
  step('assembly/test/probe.ts -> build/probe.wasm', () => run(bin('asc'), ['--config', 'assembly/test/probe.asconfig.json']));
}
// CI tests every part: one that cannot be built (the wasm3 addon, the bare-metal firmware) fails the build
// there; but never a user's install of the package (its `install` script), which goes on without it
// after one line, nor `npm ci`'s `prepare` on a fresh machine: `npm test`'s set-up installs the system
// packages first and its build then makes the part.
function failInCi() {
  if (process.env.CI === 'true' && !['install', 'prepare'].includes(process.env.npm_lifecycle_event ?? '')) process.exit(1);
}
// The wasm3 addon needs Rust and libclang. This step is also the package's install script: an installed
// package builds the addon from its sources on the machine that runs it (never a binary built here). Where they are missing the build goes on without it, saying
// why in one line (cargo's own output goes to build/wasm3-node.log), and the CLI falls back to V8;
// in CI (CI=true) the build fails instead.
if (want('addon')) {
  const crate = join(root, 'tools', 'wasm3-node');
  const out = join(root, 'build', 'wasm3-node.node');
  const log = join(root, 'build', 'wasm3-node.log');
  // CARGO_TARGET_DIR (cargo's own) is honoured: a test installing the packed package reuses a built
  // target folder there instead of compiling wasm3 and napi from nothing
  const lib = join(process.env.CARGO_TARGET_DIR || join(crate, 'target'), 'release', process.platform === 'darwin' ? 'libwasm3_node.dylib' : 'libwasm3_node.so');
  const t0 = Date.now();
  // wasm3's own release flags (its CMakeLists with BUILD_NATIVE, the default): the addon is built on
  // the machine that runs it, so native code generation is safe and gives i64.popcnt one instruction
  const native = process.arch === 'x64' ? '-march=native' : process.arch === 'arm64' ? '-mcpu=native' : '';
  const cflags = `-O3 ${native} -fomit-frame-pointer -fno-stack-check -fno-stack-protector`.replace(/ +/g, ' ');
  const env = { ...process.env, CFLAGS: `${process.env.CFLAGS ?? ''} ${cflags}`.trim() };
  // clang compiles wasm3's interpreter into faster code than gcc 12 (measured here: 10-25 % on the
  // decode benchmark, 5-30 % on the kernels); cc where clang is missing
  if (!process.env.CC && spawnSync('clang', ['--version'], { stdio: 'ignore' }).status === 0) env.CC = 'clang';
  const r = spawnSync('cargo', ['build', '--release', '--locked'], { cwd: crate, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) {
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    writeFileSync(log, output);
    rmSync(out, { force: true }); // never leave an addon older than its sources
    const lines = output.split('\n').map((l) => l.trim());
    const why = r.error?.code === 'ENOENT' ? 'no cargo on PATH: install Rust with rustup'
      : /libclang/i.test(output) ? 'libclang not found: install libclang-dev (Debian) or LLVM'
      : `${lines.find((l) => /^error\b/.test(l)) ?? `cargo exited ${r.status}`} (see build/wasm3-node.log)`;
    process.stderr.write(`build: wasm3-node addon NOT built (${why}): edge-flash runs on V8 only; see the README's prerequisites\n`);
    failInCi();
  } else {
    // a new file renamed over the old one: a process that has the addon loaded keeps its mapping of
    // the old file (copying over it in place crashes such processes with SIGBUS)
    copyFileSync(lib, `${out}.tmp`);
    renameSync(`${out}.tmp`, out);
    process.stderr.write(`build: tools/wasm3-node -> build/wasm3-node.node (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  }
}
// The device runtime's POSIX build (the virtual board), from the same wasm3 sources as the addon:
// boards/runtime/Makefile. Skipped with one line where there is no C compiler, make or wasm3 source.
if (want('runtime')) {
  const cc = ['clang', 'cc'].find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
  const make = spawnSync('make', ['--version'], { stdio: 'ignore' }).status === 0;
  // the wasm3 sources come from cargo's registry (the addon's crate): without them, skip too
  const wasm3 = spawnSync('sh', [join(root, 'boards', 'runtime', 'wasm3-dir.sh')], { stdio: 'ignore' }).status === 0;
  if (!cc || !make || !wasm3) {
    const why = !cc ? 'no C compiler on PATH' : !make ? 'no make on PATH' : "the wasm3x-sys sources are not in cargo's registry: run 'cargo fetch' in tools/wasm3-node";
    process.stderr.write(`build: boards/runtime NOT built (${why}): the virtual board is unavailable\n`);
  } else {
    step('boards/runtime -> boards/runtime/build/edge-flash-runtime', () =>
      run('make', ['-s', '-C', 'boards/runtime', `-j${Math.min(4, availableParallelism())}`], { stdio: ['ignore', 'ignore', 'inherit'] }));
    // the AOT runtime (build/device.wasm through wasm2c): skipped with one line without wabt
    if (spawnSync('wasm2c', ['--version'], { stdio: 'ignore' }).status !== 0) {
      process.stderr.write('build: boards/runtime AOT build NOT built (no wasm2c: install wabt, tools/install-system-deps.sh): bench has no aot rows\n');
    } else {
      step('boards/runtime -> boards/runtime/build/edge-flash-runtime-aot', () =>
        run('make', ['-s', '-C', 'boards/runtime', `-j${Math.min(4, availableParallelism())}`, 'aot'], { stdio: ['ignore', 'ignore', 'inherit'] }));
    }
  }
}
// The bare-metal ESP32-C3 firmware (boards/runtime/baremetal/esp32c3/), wasm3 and AOT, as the flashable
// files the package carries (build/esp32c3/*.bin): built where Debian's riscv64-unknown-elf-gcc and
// picolibc are (the AOT one also needs wasm2c); else skipped with one line (a package built so has no
// bare-metal firmware: `firmware --bare-metal` says so), and a failure in CI.
if (want('esp32c3')) {
  const gcc = spawnSync('riscv64-unknown-elf-gcc', ['--version'], { stdio: 'ignore' }).status === 0;
  const wasm3 = spawnSync('sh', [join(root, 'boards', 'runtime', 'wasm3-dir.sh')], { stdio: 'ignore' }).status === 0;
  const wasm2c = spawnSync('wasm2c', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!gcc || !wasm3) {
    process.stderr.write(`build: ESP32-C3 bare-metal firmware NOT built (${!gcc ? 'no riscv64-unknown-elf-gcc: install gcc-riscv64-unknown-elf and picolibc-riscv64-unknown-elf (tools/install-system-deps.sh)' : "no wasm3x-sys sources in cargo's registry"})\n`);
    failInCi();
  } else {
    step('boards/runtime/baremetal/esp32c3 -> build/esp32c3/*.bin', () => {
      run('make', ['-s', '-C', 'boards/runtime', `-j${Math.min(4, availableParallelism())}`, 'esp32c3', ...(wasm2c ? ['esp32c3-aot'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] });
      run(bin('tsx'), ['tools/esp32c3-firmware.ts'], { stdio: ['ignore', 'ignore', 'inherit'] });
    });
  }
}
if (want('cli')) {
  step('host -> dist/cli.js', () =>
    run(bin('esbuild'), [
      'host/cli/main.ts', '--bundle', '--platform=node', '--format=esm', '--target=node20',
      '--outfile=dist/cli.js', '--log-level=warning', '--external:serialport', '--external:esptool-js',
      '--banner:js=import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);',
    ]));
  // TesseraQ's worker threads (host/quant/block-pool.ts) load this beside cli.js
  step('host -> dist/block-worker.js', () =>
    run(bin('esbuild'), [
      'host/quant/block-worker.ts', '--bundle', '--platform=node', '--format=esm', '--target=node20',
      '--outfile=dist/block-worker.js', '--log-level=warning',
    ]));
}
