// `edge-flash firmware --aot`: the ESP-IDF project with the device app compiled ahead of time
// (build/device.wasm through boards/runtime/aot-gen.sh's wasm2c, our boards/runtime/aot/ in main/aot/,
// no wasm3), the files boards/runtime/sources.mk names for the Makefile's AOT build. Its C built against
// the ESP-IDF stand-ins with -Wall -Wextra -Werror for x86-64 and -m32, and run as the wasm3 firmware
// is in test/firmware.test.ts (test/firmware-helpers.ts): the protocol vectors, the image vectors, an
// image flashed as `idf.py flash` writes it booted and replaced over the protocol, linear memory in
// PSRAM on psram8, and a chat whose tokens are `run IMAGE --engine wasm3`'s. The images are packed with
// the AOT plan (`pack --engine aot`): on a plain ESP32 the 260K demo at ctx 256 (268 fit beside ESP-IDF's main task), which the
// wasm3 firmware refuses. Nothing here ran on a real chip.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeImage } from '../host/image/write.ts';
import { boardByName } from '../host/board/boards.ts';
import { AOT_PSRAM_DEFINE, runtimeSources } from '../host/firmware/project.ts';
import { fromRoot } from '../host/paths.ts';
import { TINY, imageParts } from './fixtures/image.ts';
import { cli } from './helpers.ts';
import { build, chatTokens, cleanup, flashedThenReplaced, generate, imageVectors, protocolVectors, psramHeld, runTokens, tmp, type Build } from './firmware-helpers.ts';
import { makeRuntime } from './runtime-helpers.ts';

const MODEL = fromRoot('models', 'kjv-esp32-260k');
function packAot(board: string, ctx: number, kv: string, out: string, force = false): string {
  const r = cli('pack', MODEL, '--board', board, '--quant', 'tb1', '--kv', kv, '--ctx', String(ctx), '--engine', 'aot', ...(force ? ['--ignore-fit', '--force'] : []), '-o', out);
  assert.is(r.code, 0, r.err);
  return out;
}
const e32Image = packAot('esp32', 256, 'int4', join(tmp, 'esp32-aot-ctx256.efimg'));
const s3Image = packAot('esp32s3', 256, 'int4', join(tmp, 's3-aot-ctx256.efimg'));
const s3Other = packAot('esp32s3', 64, 'int4', join(tmp, 's3-aot-ctx64.efimg'));

// `edge-flash firmware` with PATH holding only the named tools (node's own directory aside)
function firmwareWith(tools: string[], ...args: string[]) {
  const bin = join(tmp, `path-${tools.join('-')}`);
  if (!existsSync(bin)) mkdirSync(bin);
  for (const t of tools.filter((x) => !existsSync(join(bin, x)))) symlinkSync(spawnSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).stdout.trim(), join(bin, t));
  const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'firmware', ...args], { encoding: 'utf8', env: { ...process.env, PATH: bin } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--help names --aot; the summary line says the AOT code\'s size in the app partition (the planner\'s figure)', () => {
  const r = cli('firmware', '--help');
  assert.is(r.code, 0);
  for (const o of ['--aot', 'wasm2c', 'plan --engine aot']) assert.match(r.out, o);
  const g = cli('firmware', '--board', 'esp32', '--aot', '-o', join(tmp, 'summary'));
  assert.is(g.code, 0, g.err);
  assert.match(g.out, /ESP-IDF project for esp32 \(UART0 at 921600 baud; the app compiled ahead of time, ~\d+\.\d KiB of code in 'factory' \(1\.00 MiB\); 2 model slots of 1\.46 MiB\)/);
});

test('errors under --aot: no wasm2c, an image the AOT plan refuses, an image of another app: one line each, exit 2, nothing written', () => {
  const out = join(tmp, 'refused');
  const f32kv = packAot('esp32', 512, 'f32', join(tmp, 'esp32-aot-f32kv.efimg'), true);
  const otherApp = join(tmp, 'other-app.efimg');
  writeFileSync(otherApp, writeImage(imageParts(TINY, boardByName('esp32').id, { app: new Uint8Array(readFileSync(fromRoot('build', 'probe.wasm'))) })).bytes);
  const cases: Array<[ReturnType<typeof cli>, RegExp]> = [
    [firmwareWith(['sh', 'sed', 'grep'], '--board', 'esp32', '-o', out, '--aot'), /^edge-flash: error: --aot needs wasm2c, which is not on PATH: it is in the wabt package \(on Debian or Ubuntu: sudo apt install wabt\)\n$/],
    [cli('firmware', '--board', 'esp32', '-o', out, '--aot', '--image', f32kv), /does not fit esp32 \(AOT build\): linear memory .* needed, 95\.5 KiB available: .* short \(see `edge-flash plan .* --board esp32 --engine aot`\)/],
    [cli('firmware', '--board', 'esp32', '-o', out, '--aot', '--image', otherApp), /other-app\.efimg: its app \(sha256 [0-9a-f]{16}\.\.\.\) is not build\/device\.wasm \([0-9a-f]{16}\.\.\.\), the app --aot compiles into the firmware: the board would refuse the image at boot/],
    // the wasm3 firmware refuses the AOT plan's image: beside wasm3's heap it does not fit
    [cli('firmware', '--board', 'esp32', '-o', out, '--image', e32Image), /does not fit esp32: linear memory .* needed, .* available/],
  ];
  for (const [r, want] of cases) {
    assert.is(r.code, 2, r.err);
    assert.match(r.err, want);
    assert.is(r.err.trim().split('\n').filter((l) => l.startsWith('edge-flash')).length, 1, r.err);
    assert.not.match(r.err, /at .*\.ts:\d+/, 'no stack trace');
    assert.not.ok(existsSync(out), `wrote ${out}`);
  }
});

const projects = {
  esp32: generate('esp32', 'esp32-aot', ['--aot', '--image', e32Image]),
  psram8: generate('esp32s3-psram8', 'esp32s3-psram8-aot', ['--aot', '--image', s3Image]),
};

test('the project: the translated app is aot-gen.sh\'s output for build/device.wasm (as the Makefile\'s AOT build has it), the AOT sources sources.mk names, no wasm3', () => {
  const made = join(makeRuntime('aot'), 'aot');
  const src = runtimeSources();
  for (const [name, dir] of Object.entries(projects)) {
    assert.not.ok(existsSync(join(dir, 'components', 'wasm3')), `${name}: no wasm3 component`);
    for (const f of ['app_module.c', 'app_module.h', 'app_aot.gen.h', 'wasm-rt.h']) {
      assert.ok(Buffer.compare(readFileSync(join(dir, 'main', 'aot', f)), readFileSync(join(made, f))) === 0, `${name}: main/aot/${f} is the Makefile's build/aot/${f}`);
    }
    for (const f of [...src.APP_AOT, ...src.APP_AOT_HEADERS, ...src.CORE, ...src.SERVE_CORE]) {
      assert.is(readFileSync(join(dir, 'main', f), 'utf8').replace('#include "protocol.gen.h"', ''), readFileSync(fromRoot('boards', 'runtime', f), 'utf8').replace('#include "../../../test/vectors/protocol/protocol.gen.h"', ''), `${name}: main/${f}`);
    }
    assert.not.ok(existsSync(join(dir, 'main', 'core', 'app.c')), `${name}: no wasm3 app layer`);
    const cmake = readFileSync(join(dir, 'main', 'CMakeLists.txt'), 'utf8');
    const srcs = /SRCS (.*)\n/.exec(cmake)![1].split(' ').map((x) => x.replace(/"/g, ''));
    for (const f of src.APP_AOT) assert.ok(srcs.includes(f), `${name}: ${f} in SRCS`);
    assert.ok(srcs.includes('aot/app_module.c'));
    assert.not.match(cmake, /REQUIRES[^\n]*wasm3/);
    assert.match(cmake, `target_compile_definitions(\${COMPONENT_LIB} PRIVATE ${src.AOT_DEFS.map((d) => d.slice(2)).join(' ')})`);
    assert.match(cmake, `set_source_files_properties(aot/app_module.c PROPERTIES COMPILE_OPTIONS "${src.AOT_FP.join(';')};-w")`);
    assert.is(cmake.includes(AOT_PSRAM_DEFINE), name === 'psram8');
    assert.match(readFileSync(join(dir, 'README.md'), 'utf8'), 'translated to C by wabt\'s\nwasm2c');
    assert.match(cmake, 'esptool_py_flash_to_partition(flash "model_a" ');
    assert.not.ok(existsSync(join(dir, 'components', 'wasm3')), `${name}: no wasm3 component under --aot`);
  }
  // the project files from the generator's own layout, unchanged by --aot
  const w = generate('esp32', 'esp32-wasm3-ref');
  for (const f of ['partitions.csv']) assert.is(readFileSync(join(projects.esp32, f), 'utf8').replace(/ --aot/g, ''), readFileSync(join(w, f), 'utf8'));
  assert.equal(readdirSync(join(projects.esp32, 'model')).sort(), ['erased-slot-record.bin', 'esp32-aot-ctx256.efimg']);
});

const builds: Build[] = [];
test('the generated C builds for this machine and with -m32 against the ESP-IDF stand-ins, -Wall -Wextra -Werror', () => {
  for (const bits of [64, 32] as const) builds.push(build(projects.esp32, 'esp32', bits, true), build(projects.psram8, 'esp32s3-psram8', bits, true));
  assert.is(builds.length, 4);
});

test('protocol vectors through the AOT firmware\'s console: one answer per frame, one ERROR per defect, in order', async () => {
  for (const fw of builds.filter((b) => b.board === 'esp32')) await protocolVectors(fw);
});

test('image vectors uploaded into a slot of the AOT firmware, then VERIFY: the good verify, each bad one fails with its code', async () => {
  const err = await imageVectors(builds.find((b) => b.board === 'esp32' && b.exe.includes('host-32'))!);
  assert.match(err, /console=uart/);
});

test('psram8: the flashed image boots (the AOT app\'s self-test), another replaces it over the protocol after RESET; linear memory in PSRAM', async () => {
  for (const fw of builds.filter((b) => b.board === 'esp32s3-psram8')) {
    const { linearMemory, err } = await flashedThenReplaced(fw, readFileSync(s3Image), readFileSync(s3Other));
    assert.match(err, /console=usb-serial-jtag/);
    const held = psramHeld(err);
    assert.ok(held >= linearMemory && linearMemory >= 65536, `${fw.board}: linear memory ${linearMemory}, PSRAM held ${held}`);
  }
});

test('a short chat on every AOT build: the tokens of `run IMAGE --engine wasm3` (esp32: ctx 256 in the 95.5 KiB left beside the ESP-IDF main task)', async () => {
  const want = { esp32: runTokens(e32Image), 'esp32s3-psram8': runTokens(s3Image) };
  for (const t of Object.values(want)) assert.ok(t.length >= 8, `${t.length} tokens`);
  for (const fw of builds) assert.equal(await chatTokens(fw, fw.board === 'esp32' ? e32Image : s3Image), want[fw.board as keyof typeof want], fw.exe);
});

test.after(cleanup);
test.run();
