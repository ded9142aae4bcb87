// `edge-flash firmware` (host/firmware/project.ts, host/cli/firmware.ts): the ESP-IDF project it writes
// for esp32s3, esp32 and esp32s3-psram8, and that project's C built on this machine against the
// stand-ins for the ESP-IDF calls it uses (test/esp-idf-stubs/), with -Wall -Wextra -Werror, for the
// host and with -m32 (the ESP32 family is 32-bit). The built firmware then runs as the board would:
// app_main on the stand-ins' flash file and console (stdin/stdout), driven by the host's own client
// (host/board/): the shared protocol vectors' to-device streams, every image vector uploaded into a
// slot and verified there, and an image flashed into slot A as `idf.py flash` writes it, booted,
// replaced over the protocol, RESET and booted from slot B. Nothing here ran on a real chip.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { Client } from '../host/board/client.ts';
import { flash, info, upload } from '../host/board/commands.ts';
import { Decoder, type DecodeEvent } from '../host/board/framing.ts';
import { REPLY_BIT } from '../host/board/frames.ts';
import { StreamTransport } from '../host/board/transport.ts';
import { firmwareLayout, SLOT_PARTITIONS, STATE_PARTITION, WASM3_DEFINES, WASM3_PSRAM_DEFINE, wasm3SourceDir } from '../host/firmware/project.ts';
import { fromRoot } from '../host/paths.ts';
import { cli } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'edge-flash-firmware-'));
// generated projects and their host builds are kept between runs (make rebuilds what changed)
const WORK = fromRoot('boards', 'runtime', 'build', 'firmware');
const MODEL = fromRoot('models', 'kjv-esp32-260k');
const PV = JSON.parse(readFileSync(fromRoot('test', 'vectors', 'protocol', 'vectors.json'), 'utf8'));
const IV = JSON.parse(readFileSync(fromRoot('test', 'vectors', 'image', 'vectors.json'), 'utf8'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function pack(board: string, ctx: number, out: string, force = false): string {
  const r = cli('pack', MODEL, '--board', board, '--quant', 'tb1', '--kv', 'int4', '--ctx', String(ctx), ...(force ? ['--force'] : []), '-o', out);
  assert.is(r.code, 0, r.err);
  return out;
}
const s3Image = pack('esp32s3', 128, join(tmp, 's3-ctx128.efimg'));
const s3Other = pack('esp32s3', 64, join(tmp, 's3-ctx64.efimg'));

function generate(board: string, name: string, extra: string[] = []): string {
  const dir = join(WORK, name, 'project');
  const r = cli('firmware', '--board', board, '-o', dir, '--force', ...extra);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, `ESP-IDF project for ${board}`);
  return dir;
}

interface Build { exe: string; project: string; board: string; psram: number }
function build(project: string, board: string, bits: 32 | 64): Build {
  const b = boardByName(board);
  const psram = b.memory.psram ?? 0;
  const out = join(project, '..', `host-${bits}`);
  const r = spawnSync('make', ['-s', '-j2', '-f', fromRoot('test', 'esp-idf-stubs', 'Makefile'), `PROJECT=${project}`, `OUT=${out}`, `BITS=${bits}`,
    `WASM3_DEFS=${WASM3_DEFINES.map((d) => `-D${d}`).join(' ')}`, `ENV_DEFS=${psram ? `-D${WASM3_PSRAM_DEFINE}` : ''}`], { encoding: 'utf8' });
  assert.is(r.status, 0, `the ${board} firmware does not build for ${bits}-bit:\n${r.stdout}${r.stderr}`);
  return { exe: join(out, 'firmware'), project, board, psram };
}

// One run of the firmware: a flash file (fresh unless given), the host's client on its console.
interface Run { proc: ChildProcess; client: Client; stderr: () => string; raw: () => Uint8Array; flashFile: string; done: () => Promise<string> }
function run(fw: Build, flashFile = join(tmp, `flash-${Math.random().toString(36).slice(2)}.bin`)): Run {
  const b = boardByName(fw.board);
  const proc = spawn(fw.exe, [], {
    env: { ...process.env, EF_STUB_PARTITIONS: join(fw.project, 'partitions.csv'), EF_STUB_FLASH: flashFile, EF_STUB_FLASH_SIZE: String(b.flash.size), EF_STUB_PSRAM: String(fw.psram) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  const chunks: Buffer[] = [];
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  proc.stdout!.on('data', (d: Buffer) => chunks.push(d));
  const client = new Client(new StreamTransport(`${fw.board} firmware`, Duplex.from({ readable: proc.stdout!, writable: proc.stdin! })), 115200);
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  return {
    proc, client, flashFile, stderr: () => err, raw: () => Buffer.concat(chunks),
    done: async () => { proc.stdin!.end(); await exited; return err; },
  };
}

// Writes what `idf.py flash` of a project generated with --image writes besides the app: the image at
// slot A's offset, the erased slot record (the offsets from the generator's own layout).
function flashAsIdf(board: string, image: Uint8Array, file: string): void {
  const b = boardByName(board);
  const layout = firmwareLayout(b);
  const flashBytes = new Uint8Array(b.flash.size).fill(0xff);
  const at = (name: string) => layout.partitions.find((p) => p.name === name)!.offset;
  flashBytes.set(image, at(SLOT_PARTITIONS[0]));
  flashBytes.fill(0xff, at(STATE_PARTITION), at(STATE_PARTITION) + 0x2000);
  writeFileSync(file, flashBytes);
}

test('--help names every option and the steps after it', () => {
  const r = cli('firmware', '--help');
  assert.is(r.code, 0);
  for (const o of ['--board', '--out', '--image', '--console', '--force', 'idf.py set-target', 'not been checked on a real board']) assert.match(r.out, o);
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
    assert.match(sdk, `CONFIG_ESP_MAIN_TASK_STACK_SIZE=${b.wasm3.nativeStack + 16384}`);
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
  }
});

// The firmware builds: each board for 64-bit and 32-bit.
const projects = {
  esp32s3: generate('esp32s3', 'esp32s3', ['--image', s3Image]),
  esp32: generate('esp32', 'esp32'),
  psram8: generate('esp32s3-psram8', 'esp32s3-psram8', ['--image', s3Image]),
};
test('the projects\' CMake files, read with stand-ins for the ESP-IDF commands: every source, include directory and flashed file exists', () => {
  for (const [name, dir] of Object.entries(projects)) {
    const r = spawnSync('cmake', [`-DPROJECT=${dir}`, `-DWORK=${join(tmp, 'cmake')}`, '-P', fromRoot('test', 'esp-idf-stubs', 'check-cmake.cmake')], { encoding: 'utf8' });
    assert.is(r.status, 0, `${name}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /component main: \d+ sources/);
    assert.match(r.stdout, /component wasm3: \d+ sources/);
    assert.is(r.stdout.includes('flash model_a <- ') && r.stdout.includes('flash efstate <- '), name !== 'esp32', name);
  }
});

const builds: Build[] = [];
test('the generated C builds for this machine and with -m32 against the ESP-IDF stand-ins, -Wall -Wextra -Werror', () => {
  for (const bits of [64, 32] as const) {
    builds.push(build(projects.esp32s3, 'esp32s3', bits), build(projects.esp32, 'esp32', bits), build(projects.psram8, 'esp32s3-psram8', bits));
  }
  assert.is(builds.length, 6);
});

// The device's receiver takes frames up to EF_MAX_FRAME (4106 bytes); the vectors' decode cases run a
// 256-byte receiver: those that probe that limit are the C framing's (runtime-frames), not the port's.
const streams = PV.decode.filter((d: any) => d.receives === 'to_device' && !d.stream.split('00').some((chunk: string) => chunk.length > 400));

// The device's frames once `want` have come (none expected: what came in 300 ms).
async function deviceFrames(r: Run, want: number): Promise<DecodeEvent[]> {
  const end = Date.now() + (want ? 3000 : 300);
  for (;;) {
    const events = new Decoder('to_host', 65535).push(r.raw()).filter((e) => e.kind === 'frame');
    if (events.length >= want || Date.now() > end) return events;
    await new Promise((res) => setTimeout(res, 20));
  }
}

test('protocol vectors: every to-device stream through the port\'s console gives one answer per frame and one ERROR per defect, in order', async () => {
  assert.ok(streams.length >= 15, `${streams.length} streams`);
  for (const fw of builds.filter((b) => b.board !== 'esp32s3-psram8')) {
    for (const d of streams) {
      const r = run(fw);
      r.proc.stdin!.write(Buffer.from(d.stream, 'hex'));
      const events = d.events.filter((e: any) => !('skip' in e));
      const got = (await deviceFrames(r, events.length)) as Array<Extract<DecodeEvent, { kind: 'frame' }>>;
      await r.done();
      assert.is(got.length, events.length, `${fw.board} ${fw.exe}: ${d.name}: ${got.length} frames for ${events.length} events`);
      events.forEach((e: any, i: number) => {
        const f = got[i];
        if ('error' in e) {
          assert.is(f.type.name, 'ERROR', `${d.name} #${i}`);
          assert.equal([f.seq, f.payload[0], f.payload[1] | (f.payload[2] << 8), new DataView(f.payload.buffer, f.payload.byteOffset + 3, 4).getUint32(0, true)],
            [e.seq, e.req_type, e.code, e.arg], `${d.name} #${i}: ERROR seq, req_type, code, arg`);
        } else {
          assert.is(f.seq, e.seq, `${d.name} #${i}`);
          assert.ok(f.type.code === (e.type | REPLY_BIT) || (f.type.name === 'ERROR' && f.payload[0] === e.type), `${d.name} #${i}: ${f.type.name} answers type ${e.type}`);
        }
      });
    }
  }
});

test('image vectors: each one uploaded into a slot through the port\'s storage, then VERIFY: the good verify, each bad one fails with its code', async () => {
  const key = IV.vectors.filter((v: any) => !v.public_key);
  assert.ok(key.length >= 25);
  for (const fw of builds.filter((b) => b.board === 'esp32')) {
    const r = run(fw);
    await r.client.hello();
    for (const v of key) {
      const bytes = readFileSync(fromRoot('test', 'vectors', 'image', v.file));
      let outcome: string;
      try {
        await upload(r.client, bytes);
        const got = await r.client.request('VERIFY', {}, 10_000, 'verify');
        outcome = `ok ${Buffer.from(got.sha256 as Uint8Array).toString('hex')}`;
      } catch (e) {
        outcome = (e as Error).message;
      }
      if (v.expect.ok) assert.is(outcome, `ok ${sha(bytes)}`, v.file);
      // shorter than a header and its digest: the protocol refuses it at UPLOAD_BEGIN, before any check
      else if (bytes.byteLength < 56) assert.match(outcome, 'image_size is smaller than an image\'s header and digest', v.file);
      else assert.match(outcome, `${v.expect.code}: `, `${v.file}: ${outcome}`);
    }
    const err = await r.done();
    assert.match(err, /console=uart/);
    assert.match(err, /uart0 at 115200 baud/);
  }
});

test('an image flashed into slot A as idf.py flash writes it boots and is confirmed; one uploaded over the protocol replaces it after RESET; linear memory in PSRAM on psram8', async () => {
  const image = readFileSync(s3Image), other = readFileSync(s3Other);
  for (const fw of builds.filter((b) => b.board !== 'esp32')) {
    const file = join(tmp, `idf-${fw.board}-${Math.random().toString(36).slice(2)}.bin`);
    flashAsIdf(fw.board, image, file);
    const r = run(fw, file);
    await r.client.hello();
    const i = await info(r.client);
    assert.is(i.board, fw.board);
    assert.is(i.bootedSha256, sha(image), `${fw.board}: boots the flashed image: ${r.stderr()}`);
    assert.is(i.slotCapacity, firmwareLayout(boardByName(fw.board)).slotBytes);
    assert.is(i.slots.A, 'confirmed');
    assert.ok(i.appLoaded, 'the app loaded (the self-test passed)');
    const f = await flash(r.client, other, { reset: true });
    assert.is(f.slot, 'B');
    assert.is(f.booted!.bootedSha256, sha(other));
    const err = await r.done();
    assert.match(err, /console=usb-serial-jtag/);
    assert.ok(Number(/wdt_feeds=(\d+)/.exec(err)![1]) > 0, 'the task watchdog is fed');
    // the last boot's report: its linear memory, as INFO says it, is the one PSRAM block (header included)
    const held = Number([...err.matchAll(/psram_held=(\d+)/g)].at(-1)![1]);
    if (fw.psram) assert.ok(held >= f.booted!.linearMemory && f.booted!.linearMemory >= 65536, `${fw.board}: linear memory ${f.booted!.linearMemory}, PSRAM held ${held}`);
    else assert.is(held, 0);
  }
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

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
