// `edge-flash firmware` (host/firmware/project.ts, host/cli/firmware.ts): the ESP-IDF project it writes
// for esp32s3, esp32 and esp32s3-psram8, and that project's C built on this machine against the
// stand-ins for the ESP-IDF calls it uses (test/esp-idf-stubs/), with -Wall -Wextra -Werror, for the
// host and with -m32 (the ESP32 family is 32-bit). The built firmware then runs as the board would
// (test/firmware-helpers.ts): the shared protocol vectors' to-device streams, every image vector
// uploaded into a slot and verified there, an image flashed into slot A as `idf.py flash` writes it,
// booted, replaced over the protocol, RESET and booted from slot B, and a short chat whose tokens are
// `run --engine wasm3`'s. The --aot variant: test/firmware-aot.test.ts. Nothing here ran on a real chip.
// The stand-ins run what the real ESP-IDF trees cannot run here (the firmware on x86, driven by the host);
// ESP-IDF's own CMake, Kconfig and compile command lines check the same projects in test/esp-idf.test.ts.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { info, upload } from '../host/board/commands.ts';
import { firmwareHeapBeforeApp, firmwareLayout, IDF_CHECKED, mainTaskStack, WASM3_PSRAM_DEFINE, wasm3SourceDir } from '../host/firmware/project.ts';
import { fromRoot } from '../host/paths.ts';
import { cli } from './helpers.ts';
import { build, chatTokens, cleanup, flashAsIdf, flashedThenReplaced, generate, imageVectors, pack, protocolVectors, psramHeld, run, runTokens, sha, tmp, type Build } from './firmware-helpers.ts';

const s3Image = pack('esp32s3', 128, join(tmp, 's3-ctx128.efimg'));
const s3Other = pack('esp32s3', 64, join(tmp, 's3-ctx64.efimg'));

test('--help names every option and the steps after it', () => {
  const r = cli('firmware', '--help');
  assert.is(r.code, 0);
  for (const o of ['--board', '--out', '--image', '--console', '--force', 'idf.py set-target', 'not yet on a real board', `Checked against ESP-IDF ${IDF_CHECKED.join(', ')}`]) assert.match(r.out, o);
});

test('errors: one line each, exit 2, nothing written', () => {
  const out = join(tmp, 'refused');
  const big = join(tmp, 'big.efimg');
  writeFileSync(big, new Uint8Array(firmwareLayout(boardByName('esp32')).slotBytes + 1));
  const tooBig = pack('esp32', 512, join(tmp, 'esp32-ctx512.efimg'), true);
  const cases: Array<[string[], RegExp]> = [
    [['--board', 'esp64', '-o', out], /unknown board 'esp64'/],
    [['--board', 'rpi4', '-o', out], /board rpi4 is not an ESP32-family board/],
    [['--board', 'esp32', '-o', out, '--console', 'usb-cdc'], /has no USB-Serial-JTAG controller/],
    [['--board', 'esp32s3', '-o', out, '--console', 'spi'], /--console must be uart or usb-cdc, got 'spi'/],
    [['--board', 'esp32', '-o', out, '--image', s3Image], /the image is for esp32s3 \(id 3\)/],
    [['--board', 'esp32', '-o', out, '--image', tooBig], /does not fit esp32: linear memory .* needed, .* available: .* short/],
    [['--board', 'esp32', '-o', out, '--image', big], /the image is 1536001 bytes .*; a model slot of the esp32 firmware holds 1536000/],
    [['--board', 'esp32', '-o', out, '--image', join(tmp, 'missing.efimg')], /cannot read .*missing.efimg: no such file/],
  ];
  for (const [args, want] of cases) {
    const r = cli('firmware', ...args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, want, args.join(' '));
    assert.is(r.err.trim().split('\n').filter((l) => l.startsWith('edge-flash')).length, 1, r.err);
    assert.not.match(r.err, /at .*\.ts:\d+/, 'no stack trace');
    assert.not.ok(existsSync(out), `${args.join(' ')} wrote ${out}`);
  }
  mkdirSync(out);
  writeFileSync(join(out, 'mine.txt'), 'a file of the user');
  const r = cli('firmware', '--board', 'esp32', '-o', out);
  assert.is(r.code, 2);
  assert.match(r.err, /exists and is not empty: pass --force/);
  assert.equal(readdirSync(out), ['mine.txt']);
  const f = cli('firmware', '--board', 'esp32', '-o', out, '--force');
  assert.is(f.code, 0, f.err);
  assert.is(readFileSync(join(out, 'mine.txt'), 'utf8'), 'a file of the user');
});

test('the project: partitions from the profile, sdkconfig, the port and core as in the repo, wasm3 as the crate ships it', () => {
  const w3 = wasm3SourceDir();
  for (const [board, con] of [['esp32s3', 'usb-cdc'], ['esp32', 'uart'], ['esp32s3-psram8', 'usb-cdc']] as const) {
    const b = boardByName(board);
    const dir = generate(board, `${board}-layout`, board === 'esp32' ? [] : ['--image', s3Image]);
    const csv = readFileSync(join(dir, 'partitions.csv'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').map((x) => x.trim()));
    const rows = new Map(csv.map((r) => [r[0], { offset: parseInt(r[3], 16), size: parseInt(r[4], 16) }]));
    const model = b.flash.partitions.find((p) => p.name === b.flash.imagePartition)!;
    const st = rows.get('efstate')!, a = rows.get('model_a')!, bb = rows.get('model_b')!;
    assert.is(st.offset, model.offset);
    assert.is(st.size, 0x2000);
    assert.is(a.offset, st.offset + st.size);
    assert.is(bb.offset, a.offset + a.size);
    assert.is(a.size, bb.size);
    assert.ok(bb.offset + bb.size <= model.offset + model.size && model.offset + model.size - (bb.offset + bb.size) < 0x2000, `${board}: the slots use the partition`);
    assert.is(rows.get('factory')!.offset, 0x10000);
    const sdk = readFileSync(join(dir, 'sdkconfig.defaults'), 'utf8');
    assert.match(sdk, `CONFIG_IDF_TARGET="${firmwareLayout(b).target}"`);
    assert.match(sdk, `CONFIG_ESPTOOLPY_FLASHSIZE_${b.flash.size >> 20}MB=y`);
    assert.match(sdk, `CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_${b.cpu.clockMHz}=y`);
    // the main task's stack: the one figure the planner reads too (firmwareHeapBeforeApp)
    assert.match(sdk, `CONFIG_ESP_MAIN_TASK_STACK_SIZE=${mainTaskStack(b)}\n`);
    assert.is(mainTaskStack(b), b.wasm3.nativeStack + 16384);
    assert.ok(firmwareHeapBeforeApp(b) > mainTaskStack(b));
    assert.match(sdk, board === 'esp32s3-psram8' ? /CONFIG_SPIRAM=y\nCONFIG_SPIRAM_MODE_OCT=y/ : /# CONFIG_SPIRAM is not set/);
    const cfg = readFileSync(join(dir, 'main', 'board_config.h'), 'utf8');
    assert.match(cfg, `#define EF_BOARD_ID ${b.id}\n`);
    assert.match(cfg, `#define EF_CONSOLE_USB_SERIAL_JTAG ${con === 'usb-cdc' ? 1 : 0}`);
    // the port and the core are the repo's files; only frame.h's include of the frame table is repointed
    for (const f of readdirSync(fromRoot('boards', 'runtime', 'core'))) {
      const ours = readFileSync(fromRoot('boards', 'runtime', 'core', f), 'utf8');
      assert.is(readFileSync(join(dir, 'main', 'core', f), 'utf8'), ours.replace('#include "../../../test/vectors/protocol/protocol.gen.h"', '#include "protocol.gen.h"'), f);
    }
    for (const f of ['main.c', 'console.c', 'partition_storage.c']) assert.is(readFileSync(join(dir, 'main', f), 'utf8'), readFileSync(fromRoot('boards', 'runtime', 'esp-idf', f), 'utf8'));
    const copied = readdirSync(join(dir, 'components', 'wasm3', 'source'));
    assert.ok(copied.includes('m3_compile.c') && copied.includes('wasm3.h'));
    for (const f of copied) assert.ok(Buffer.compare(readFileSync(join(dir, 'components', 'wasm3', 'source', f)), readFileSync(join(w3, f))) === 0, `${f} differs from the crate's`);
    const w3cmake = readFileSync(join(dir, 'components', 'wasm3', 'CMakeLists.txt'), 'utf8');
    assert.match(w3cmake, /wasm3 0\.9\.0/);
    assert.is(w3cmake.includes(WASM3_PSRAM_DEFINE), board === 'esp32s3-psram8');
    // the interpreter in IRAM, as wasm3's own ESP-IDF port has it
    assert.match(w3cmake, 'LDFRAGMENTS "iram.lf"');
    assert.match(w3cmake, / M3_IN_IRAM\)/);
    assert.match(readFileSync(join(dir, 'components', 'wasm3', 'iram.lf'), 'utf8'), /\[mapping:wasm3_iram\]\narchive: libwasm3\.a\nentries:\n  m3_exec \(noflash\)\n  m3_core \(noflash\)\n  m3_compile \(noflash\)\n$/);
    const mainCmake = readFileSync(join(dir, 'main', 'CMakeLists.txt'), 'utf8');
    if (board === 'esp32') {
      assert.not.match(mainCmake, 'esptool_py_flash_to_partition');
    } else {
      assert.match(mainCmake, 'esptool_py_flash_to_partition(flash "efstate" "${CMAKE_CURRENT_LIST_DIR}/../model/erased-slot-record.bin")');
      assert.match(mainCmake, 'esptool_py_flash_to_partition(flash "model_a" "${CMAKE_CURRENT_LIST_DIR}/../model/s3-ctx128.efimg")');
      assert.ok(Buffer.compare(readFileSync(join(dir, 'model', 's3-ctx128.efimg')), readFileSync(s3Image)) === 0);
      assert.ok(readFileSync(join(dir, 'model', 'erased-slot-record.bin')).every((x) => x === 0xff));
    }
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    for (const step of ['idf.py set-target', 'idf.py build', 'flash', 'monitor', 'edge-flash chat --port']) assert.match(readme, step);
    assert.match(readme, `Checked against ESP-IDF ${IDF_CHECKED.join(', ')}`);
  }
});

// The firmware builds: each board for 64-bit and 32-bit.
const projects = {
  esp32s3: generate('esp32s3', 'esp32s3', ['--image', s3Image]),
  esp32: generate('esp32', 'esp32'),
  psram8: generate('esp32s3-psram8', 'esp32s3-psram8', ['--image', s3Image]),
};

const builds: Build[] = [];
test('the generated C builds for this machine and with -m32 against the ESP-IDF stand-ins, -Wall -Wextra -Werror', () => {
  for (const bits of [64, 32] as const) {
    builds.push(build(projects.esp32s3, 'esp32s3', bits), build(projects.esp32, 'esp32', bits), build(projects.psram8, 'esp32s3-psram8', bits));
  }
  assert.is(builds.length, 6);
});

test('protocol vectors: every to-device stream through the port\'s console gives one answer per frame and one ERROR per defect, in order', async () => {
  for (const fw of builds.filter((b) => b.board !== 'esp32s3-psram8')) await protocolVectors(fw);
});

test('image vectors: each one uploaded into a slot through the port\'s storage, then VERIFY: the good verify, each bad one fails with its code', async () => {
  for (const fw of builds.filter((b) => b.board === 'esp32')) {
    const err = await imageVectors(fw);
    assert.match(err, /console=uart/);
    assert.match(err, /uart0 at 921600 baud/);
  }
});

test('an image flashed into slot A as idf.py flash writes it boots and is confirmed; one uploaded over the protocol replaces it after RESET; linear memory in PSRAM on psram8', async () => {
  const image = readFileSync(s3Image), other = readFileSync(s3Other);
  for (const fw of builds.filter((b) => b.board !== 'esp32')) {
    const { linearMemory, err } = await flashedThenReplaced(fw, image, other);
    assert.match(err, /console=usb-serial-jtag/);
    assert.ok(Number(/wdt_feeds=(\d+)/.exec(err)![1]) > 0, 'the task watchdog is fed');
    // the last boot's report: its linear memory, as INFO says it, is the one PSRAM block (header included)
    const held = psramHeld(err);
    if (fw.psram) assert.ok(held >= linearMemory && linearMemory >= 65536, `${fw.board}: linear memory ${linearMemory}, PSRAM held ${held}`);
    else assert.is(held, 0);
  }
});

test('a short chat with the flashed image: the 32-bit esp32s3 firmware\'s tokens are `run --engine wasm3`\'s', async () => {
  const fw = builds.find((b) => b.board === 'esp32s3' && b.exe.includes('host-32'))!;
  assert.equal(await chatTokens(fw, s3Image), runTokens(s3Image));
});

test('a slot A that does not hold a good image is not adopted: nothing boots, the slot stays empty, an upload still works', async () => {
  const fw = builds.find((b) => b.board === 'esp32' && b.exe.includes('host-32'))!;
  const file = join(tmp, 'idf-esp32-bad.bin');
  flashAsIdf('esp32', readFileSync(fromRoot('test', 'vectors', 'image', 'bit-flipped.efimg')), file);
  const r = run(fw, file);
  await r.client.hello();
  const i = await info(r.client);
  assert.is(i.bootedSha256, null);
  assert.equal(i.slots, { A: 'empty', B: 'empty' });
  const good = readFileSync(fromRoot('test', 'vectors', 'image', 'small.efimg'));
  await upload(r.client, good);
  const v = await r.client.request('VERIFY', {}, 10_000, 'verify');
  assert.is(Buffer.from(v.sha256 as Uint8Array).toString('hex'), sha(good));
  await r.done();
});

test.after(cleanup);
test.run();
