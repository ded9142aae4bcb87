// The package as a user installs it: `npm pack`, the tarball installed into an empty folder (offline:
// a lockfile made from ours, so npm takes the dependencies from its cache), then `npx edge-flash`
// there. It must carry the addon's sources, not a binary built for this CPU, and build the addon at
// install: without cargo on PATH edge-flash runs on V8 and says why in one line; with cargo it runs
// wasm3. The cargo build reuses a copy of our tools/wasm3-node/target through CARGO_TARGET_DIR
// (honoured by tools/build.mjs): about 40 s here instead of a build from nothing.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { baremetalLayout } from '../host/firmware/baremetal.ts';
import { fromRoot } from '../host/paths.ts';
import { findEspQemu, missingPart, removeFlashFile, startEspQemu } from './esp-qemu.ts';

const dir = mkdtempSync(join(tmpdir(), 'edge-flash-package-'));
const pkg = JSON.parse(readFileSync(fromRoot('package.json'), 'utf8'));
const tgz = `edge-flash-${pkg.version}.tgz`;
const sh = (cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) => {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const cargoDir = (() => {
  const r = spawnSync('sh', ['-c', 'command -v cargo'], { encoding: 'utf8' });
  return r.status === 0 ? dirname(r.stdout.trim()) : null;
})();
// PATH without the folder cargo is in (node stays reachable)
const noCargoPath = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== cargoDir && !existsSync(join(d, 'cargo'))).join(delimiter);

// An empty project that depends on the tarball, with a lockfile: the package's own dependencies as
// our lockfile pins them.
function project(name: string): string {
  const p = join(dir, name);
  mkdirSync(p);
  const lock = JSON.parse(readFileSync(fromRoot('package-lock.json'), 'utf8'));
  const spec = `file:../${tgz}`;
  const packages: Record<string, unknown> = {
    '': { name, version: '1.0.0', dependencies: { 'edge-flash': spec } },
    'node_modules/edge-flash': { version: pkg.version, resolved: spec, hasInstallScript: true, license: pkg.license, dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines },
  };
  for (const [k, v] of Object.entries(lock.packages as Record<string, { dev?: boolean }>)) if (k && !v.dev) packages[k] = v;
  writeFileSync(join(p, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, dependencies: { 'edge-flash': spec } }));
  writeFileSync(join(p, 'package-lock.json'), JSON.stringify({ name, version: '1.0.0', lockfileVersion: 3, requires: true, packages }));
  return p;
}

const s = suite('package');

s('npm pack carries the addon and runtime sources and the wasm apps, no native binary, no cargo target, no runtime build', () => {
  const r = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], fromRoot());
  assert.is(r.code, 0, r.err);
  const files: string[] = JSON.parse(r.out)[0].files.map((f: { path: string }) => f.path);
  for (const f of ['dist/cli.js', 'bin/edge-flash.js', 'build/device.wasm', 'build/simd.wasm', 'tools/build.mjs', 'tools/wasm3-node/Cargo.toml', 'tools/wasm3-node/Cargo.lock', 'tools/wasm3-node/build.rs', 'tools/wasm3-node/src/lib.rs']) {
    assert.ok(files.includes(f), `${f} is not in the package`);
  }
  assert.not.ok(files.some((f) => f.endsWith('.node') || f.includes('wasm3-node/target/') || f.endsWith('.log')), files.filter((f) => /\.node$|target\/|\.log$/.test(f)).join(', '));
  // the device runtime as sources (`edge-flash runtime build` and sim build it where it runs), with the
  // Raspberry Pi's service files; never this machine's binaries (native, sanitizer and cross builds)
  for (const f of ['boards/runtime/Makefile', 'boards/runtime/sources.mk', 'boards/runtime/aot-gen.sh', 'boards/runtime/aot/app_aot.c', 'boards/runtime/wasm3-dir.sh', 'boards/runtime/posix/main.c', 'boards/rpi/edge-flash-runtime.service', 'boards/rpi/rpi4.env', 'boards/rpi/README.md']) {
    assert.ok(files.includes(f), `${f} is not in the package`);
  }
  assert.not.ok(files.some((f) => f.startsWith('boards/runtime/build/')), files.filter((f) => f.startsWith('boards/runtime/build/')).slice(0, 5).join(', '));
  // the bare-metal ESP32-C3 firmware, prebuilt (tools/build.mjs where riscv64-unknown-elf-gcc is): a user
  // flashes it with no compiler
  for (const f of ['build/esp32c3/edge-flash-esp32c3.bin', 'build/esp32c3/edge-flash-esp32c3-aot.bin']) {
    if (!existsSync(fromRoot(f))) missingPart(`${f} is not built (node tools/build.mjs esp32c3 needs riscv64-unknown-elf-gcc)`);
    else assert.ok(files.includes(f), `${f} is not in the package`);
  }
  assert.ok(existsSync(join(dir, tgz)));
  assert.is(pkg.scripts.install, 'node tools/build.mjs addon');
});

s('installed without cargo: the addon is not built, edge-flash runs on V8 and says why in one line', () => {
  const p = project('no-cargo');
  const env = { ...process.env, PATH: noCargoPath, CARGO_TARGET_DIR: '' };
  assert.is.not(sh('sh', ['-c', 'command -v cargo'], p, env).code, 0, 'cargo still on PATH');
  const i = sh('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--foreground-scripts'], p, env);
  assert.is(i.code, 0, i.err);
  assert.match(i.out + i.err, /build: wasm3-node addon NOT built \(no cargo on PATH: install Rust with rustup\): edge-flash runs on V8 only/);
  assert.not.ok(existsSync(join(p, 'node_modules', 'edge-flash', 'build', 'wasm3-node.node')));
  const v = sh('npx', ['--no', '--', 'edge-flash', '--version'], p, env);
  assert.is(v.code, 0, v.err);
  assert.match(v.out, /wasm3 addon not built: V8 only/);
  const model = join('node_modules', 'edge-flash', 'models', 'kjv-esp32-260k', 'model.bin');
  const run = sh('npx', ['--no', '--', 'edge-flash', 'run', model, '-t', '0', '-n', '16', '-i', 'In the beginning'], p, env);
  assert.is(run.code, 0, run.err);
  assert.match(run.out, /^In the beginning/);
  const plan = sh('npx', ['--no', '--', 'edge-flash', 'plan', model, '--board', 'rpi5', '--quant', 'tb1'], p, env);
  assert.is(plan.code, 0, plan.err);
  assert.is(plan.err.trim().split('\n').filter((l) => /wasm3/.test(l)).length, 1, plan.err);
  assert.match(plan.err, /^warning: no tok\/s estimate: wasm3 is not available \(the wasm3-node addon was not built/m);
  const w = sh('npx', ['--no', '--', 'edge-flash', 'run', model, '--engine', 'wasm3', '-n', '4'], p, env);
  assert.is(w.code, 2, w.err);
  installedC3 = p;
});

// The installed package on a bare ESP32-C3 (Espressif's QEMU, its real ROM), with nothing on PATH but
// node: the prebuilt bare-metal firmware and a model image written through the ROM loader, byte for byte.
let installedC3 = '';
s('installed: flash --rom --firmware bare-metal writes the prebuilt ESP32-C3 firmware and an image with no compiler on PATH', async () => {
  const fwFile = fromRoot('build', 'esp32c3', 'edge-flash-esp32c3.bin');
  const q = findEspQemu('esp32c3');
  if (typeof q === 'string' || !existsSync(fwFile)) return missingPart(typeof q === 'string' ? q : `${fwFile} is not built`);
  assert.ok(installedC3, 'the installed project of the test before');
  const bin = join(installedC3, 'node_modules', '.bin', 'edge-flash');
  // PATH: a folder with node alone (node's own folder may be /usr/bin, with the compilers)
  const nodeOnly = join(dir, 'node-only');
  mkdirSync(nodeOnly, { recursive: true });
  if (!existsSync(join(nodeOnly, 'node'))) symlinkSync(process.execPath, join(nodeOnly, 'node'));
  const env = { ...process.env, PATH: nodeOnly };
  assert.is.not(sh('/bin/sh', ['-c', 'command -v riscv64-unknown-elf-gcc || command -v cc || command -v gcc || command -v clang'], installedC3, env).code, 0, 'a compiler is on PATH');
  const fw = join(installedC3, 'fw.bin');
  const f = sh(process.execPath, [bin, 'firmware', '--board', 'esp32c3', '--bare-metal', '-o', fw], installedC3, env);
  assert.is(f.code, 0, f.err);
  assert.ok(readFileSync(fw).equals(readFileSync(fwFile)), 'the installed firmware is the one built here');
  const image = join(installedC3, 'kjv.efimg');
  const model = join(installedC3, 'node_modules', 'edge-flash', 'models', 'kjv-esp32-260k', 'model.bin');
  const pk = sh(process.execPath, [bin, 'pack', model, '--board', 'esp32c3', '--quant', 'tb1', '--kv', 'int4', '--ctx', '128', '-o', image], installedC3, env);
  assert.is(pk.code, 0, pk.err);
  const layout = baremetalLayout(boardByName('esp32c3'));
  // the ROM loader in this QEMU on a busy machine sometimes stops answering mid-write: run again on a
  // blank chip, at most three times, as a user would after putting the chip in its bootloader again
  let said = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const emu = await startEspQemu({ chip: 'esp32c3', mode: 'download', flash: new Uint8Array(layout.flashSize).fill(0xff) });
    try {
      const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
        const c = spawn(process.execPath, [bin, 'flash', '--rom', '--no-stub', '--board', 'esp32c3', '--port', emu.pty, '--firmware', 'bare-metal', image], { cwd: installedC3, env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
        let err = '';
        c.stderr.on('data', (d) => { err += d; });
        c.on('close', (code) => resolve({ code, err }));
      });
      if (r.code !== 0) {
        said += `${r.err.trim().split('\n').pop()} | `;
        if (/stopped answering/.test(r.err) && attempt < 3) continue;
        assert.unreachable(`flash --rom: ${said}`);
      }
      await emu.stop();
      const flash = emu.readFlash();
      assert.ok(Buffer.from(flash.subarray(0, readFileSync(fw).byteLength)).equals(readFileSync(fw)), 'the firmware at 0x0');
      const img = readFileSync(image);
      assert.ok(Buffer.from(flash.subarray(layout.slotA, layout.slotA + img.byteLength)).equals(img), 'the image in slot A');
      assert.ok(flash.subarray(layout.region, layout.region + 8192).every((b) => b === 0xff), 'the slot record erased');
      return;
    } finally {
      await emu.stop();
      removeFlashFile(emu);
    }
  }
});

s('installed with cargo: the addon is built at install, and runs', () => {
  if (!cargoDir) {
    if (process.env.CI) throw new Error('cargo is not on PATH in CI');
    process.stderr.write('warning: cargo is not on PATH: the install-with-cargo half of the package test did not run\n');
    return;
  }
  const p = project('with-cargo');
  const target = join(dir, 'cargo-target');
  const built = fromRoot('tools', 'wasm3-node', 'target');
  if (existsSync(built)) cpSync(built, target, { recursive: true });
  const env = { ...process.env, CARGO_TARGET_DIR: target };
  const i = sh('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--foreground-scripts'], p, env);
  assert.is(i.code, 0, i.err);
  assert.match(i.out + i.err, /build: tools\/wasm3-node -> build\/wasm3-node\.node/);
  const v = sh('npx', ['--no', '--', 'edge-flash', '--version'], p, env);
  assert.match(v.out, /\(wasm3 \d+\.\d+\.\d+,/);
  const model = join('node_modules', 'edge-flash', 'models', 'kjv-esp32-260k', 'model.bin');
  const run = sh('npx', ['--no', '--', 'edge-flash', 'run', model, '--engine', 'wasm3', '-t', '0', '-n', '16', '-i', 'In the beginning'], p, env);
  assert.is(run.code, 0, run.err);
  assert.match(run.out, /^In the beginning/);
});

s('npm ci of our own lockfile prints no install-scripts warning (esbuild runs without its postinstall)', () => {
  const p = join(dir, 'self');
  mkdirSync(p);
  const { scripts: _scripts, ...bare } = pkg; // our own prepare/install would build this folder
  writeFileSync(join(p, 'package.json'), JSON.stringify(bare));
  cpSync(fromRoot('package-lock.json'), join(p, 'package-lock.json'));
  const i = sh('npm', ['ci', '--offline', '--no-audit', '--no-fund'], p);
  assert.is(i.code, 0, i.err);
  assert.not.match(i.out + i.err, /install-scripts|allowScripts/);
  writeFileSync(join(p, 'a.ts'), 'export const x: number = 1;\n');
  const e = sh(join(p, 'node_modules', '.bin', 'esbuild'), ['a.ts', '--log-level=warning'], p);
  assert.is(e.code, 0, e.err);
  assert.match(e.out, /x = 1/);
});

s.run();
