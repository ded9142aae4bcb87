// `edge-flash flash --rom` against MockRomLoaderForTests (test/rom-loader-mock.ts) on a pty: firmware
// and an image land byte for byte at their offsets through the ROM loader and through the stub loader;
// a FLASH_DATA lost on the wire is resent; a lost reply and a flipped flash byte end with one line
// naming the region; a wrong chip, an image that does not fit or is too large for the slot, and bad
// flags are refused before anything is written.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { fromRoot } from '../host/paths.ts';
import { rng } from './helpers.ts';
import { MockRomLoaderForTests, type MockOptions } from './rom-loader-mock.ts';

const BIN = fromRoot('bin', 'edge-flash.js');
const MODEL = fromRoot('models', 'kjv-esp32-260k', 'model.bin');
const VECTORS = fromRoot('test', 'vectors', 'image');
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-rom-'));
const at = (f: string) => join(dir, f);
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const SLOT = 0x110000; // the esp32 profile's model partition
const SMALL = join(VECTORS, 'small.efimg'); // 17.5 KB for esp32: the fault cases stay quick

// The CLI in a child process, asynchronously: the mock answers from this process's event loop.
function cli(args: string[], limitMs = 60_000): Promise<{ code: number | null; out: string; err: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    const timer = setTimeout(() => p.kill('SIGKILL'), limitMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      if (process.env.ROM_FLASH_TIMES) process.stderr.write(`${args.slice(0, 6).join(' ')}: ${(performance.now() - t0).toFixed(0)} ms\n${err}`);
      resolve({ code, out, err, ms: performance.now() - t0 });
    });
  });
}

function oneLineError(r: { code: number | null; err: string }, re: RegExp): void {
  assert.is(r.code, 2, r.err);
  const lines = r.err.trim().split('\n').filter((l) => l.startsWith('edge-flash: '));
  assert.is(lines.length, 1, r.err);
  assert.match(lines[0], re);
  assert.not.match(r.err, /\n\s+at /);
}

async function withMock<T>(o: Partial<MockOptions> & { chip: MockOptions['chip'] }, f: (m: MockRomLoaderForTests, port: string) => Promise<T>): Promise<T> {
  const m = new MockRomLoaderForTests({ flashSize: boardByName(o.chip).flash.size, stub: 'refuse', ...o });
  const port = await m.start();
  try {
    return await f(m, port);
  } finally {
    await m.stop();
  }
}

// A binary partition table as idf.py writes it (host/board/esp-partitions.ts reads it): the board
// profile's partitions, or others, then the MD5 entry, then 0xFF to 0xC00 bytes.
function partitionTable(parts: Array<{ name: string; type: string; subtype: string; offset: number; size: number }>): Uint8Array {
  const b = new Uint8Array(0xc00).fill(0xff);
  const v = new DataView(b.buffer);
  parts.forEach((p, i) => {
    const at = 32 * i;
    v.setUint16(at, 0x50aa, true);
    b[at + 2] = p.type === 'app' ? 0 : 1;
    b[at + 3] = /^0x/.test(p.subtype) ? parseInt(p.subtype, 16) : 0;
    v.setUint32(at + 4, p.offset, true);
    v.setUint32(at + 8, p.size, true);
    b.fill(0, at + 12, at + 28);
    b.set(new TextEncoder().encode(p.name), at + 12);
    v.setUint32(at + 28, 0, true);
  });
  const md5At = 32 * parts.length;
  v.setUint16(md5At, 0xebeb, true);
  b.set(createHash('md5').update(b.subarray(0, md5At)).digest(), md5At + 16);
  return b;
}

// An ESP-IDF build folder as idf.py leaves it: flash_args, the bootloader and app (random bytes after
// the app's 0xE9 magic) and the board profile's partition table (or the one given).
function fakeFirmware(name: string, bootloaderAt: number, flashSize: string, table?: Uint8Array): { dir: string; files: Array<{ offset: number; data: Uint8Array }> } {
  const d = at(name);
  mkdirSync(join(d, 'bootloader'), { recursive: true });
  mkdirSync(join(d, 'partition_table'), { recursive: true });
  const r = rng(name.length);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
  const app = bytes(150_002);
  app[0] = 0xe9;
  const board = boardByName(bootloaderAt ? 'esp32' : 'esp32s3');
  const files = [
    { rel: 'bootloader/bootloader.bin', offset: bootloaderAt, data: bytes(26_385) },
    { rel: 'edge-flash.bin', offset: 0x10000, data: app },
    { rel: 'partition_table/partition-table.bin', offset: 0x8000, data: table ?? partitionTable(board.flash.partitions) },
  ];
  for (const f of files) writeFileSync(join(d, f.rel), f.data);
  writeFileSync(join(d, 'flash_args'), `--flash_mode dio --flash_freq 40m --flash_size ${flashSize}\n${files.map((f) => `0x${f.offset.toString(16)} ${f.rel}`).join('\n')}\n`);
  return { dir: d, files };
}

// Each region's bytes at its offset, 0xFF to the end of its last sector (erased, padding), and every
// byte outside those sectors as the mock's flash was before.
function assertFlash(m: MockRomLoaderForTests, regions: Array<{ offset: number; data: Uint8Array }>): void {
  const before = new MockRomLoaderForTests({ ...m.o }).flash;
  const touched = new Uint8Array(m.flash.length);
  for (const r of regions) {
    const got = m.flash.subarray(r.offset, r.offset + r.data.length);
    const bad = got.findIndex((x, i) => x !== r.data[i]);
    assert.is(bad, -1, `byte 0x${(r.offset + bad).toString(16)} differs`);
    const end = Math.ceil((r.offset + r.data.length) / 0x1000) * 0x1000;
    assert.ok(m.flash.subarray(r.offset + r.data.length, end).every((x) => x === 0xff), 'sector tail erased');
    touched.fill(1, r.offset, end);
  }
  const stray = m.flash.findIndex((x, i) => !touched[i] && x !== before[i]);
  assert.is(stray, -1, `byte 0x${stray.toString(16)} outside the regions changed`);
}

const s = suite('flash --rom');

s.before(async () => {
  const p = await cli(['pack', MODEL, '--board', 'esp32', '-o', at('fit.efimg')]);
  assert.is(p.code, 0, p.err);
  const f = await cli(['pack', MODEL, '--board', 'esp32', '--quant', 'f32', '--kv', 'f32', '--ctx', '512', '--ignore-fit', '-o', at('big.efimg')]);
  assert.is(f.code, 0, f.err);
});

s('firmware and image through the ROM loader (stub refused): every byte at its offset, every MD5 matched', async () => {
  const fw = fakeFirmware('fw-esp32', 0x1000, '4MB');
  const image = new Uint8Array(readFileSync(at('fit.efimg')));
  await withMock({ chip: 'esp32', stub: 'refuse' }, async (m, port) => {
    const r = await cli(['flash', '--rom', '--port', port, '--board', 'esp32', '--firmware', fw.dir, '--image', at('fit.efimg'), '--baud', '460800']);
    assert.is(r.code, 0, r.err);
    assertFlash(m, [...fw.files, { offset: SLOT, data: image }]);
    assert.match(r.err, /stub loader not started .*: writing through the ROM loader/);
    for (const name of ['bootloader', 'edge-flash', 'partition table', 'image \\(model slot\\)']) {
      assert.match(r.out, new RegExp(`^${name}: \\d+ bytes at 0x[0-9a-f]+ in [\\d.]+ s, MD5 [0-9a-f]{32} matches the flash$`, 'm'));
    }
    assert.match(r.out, /: ESP32 \(esp32\), 4 regions, .* through the ROM loader in [\d.]+ s, every MD5 matched, reset\n$/);
    assert.is(m.baud, 460800, 'CHANGE_BAUDRATE to --baud');
    assert.ok(m.events.some((e) => e.op === 0x13), 'SPI_FLASH_MD5 asked');
  });
});

s('through the stub loader when the chip runs it (esp32s3: chip id from GET_SECURITY_INFO)', async () => {
  const fw = fakeFirmware('fw-esp32s3', 0x0, '8MB');
  await withMock({ chip: 'esp32s3', stub: 'accept' }, async (m, port) => {
    const r = await cli(['flash', '--rom', '--port', port, '--board', 'esp32s3', '--firmware', fw.dir]);
    assert.is(r.code, 0, r.err);
    assert.ok(m.stubRunning);
    assertFlash(m, fw.files);
    assert.match(r.out, /ESP32-S3 \(esp32s3\), 3 regions, .* through the stub loader/);
  });
});

s('a FLASH_DATA lost on the wire: the block is sent again and the flash is right', async () => {
  const image = new Uint8Array(readFileSync(SMALL));
  await withMock({ chip: 'esp32', dropFlashData: 5 }, async (m, port) => {
    const r = await cli(['flash', '--rom', '--port', port, '--board', 'esp32', '--image', SMALL]);
    assert.is(r.code, 0, r.err);
    assert.ok(m.events.some((e) => e.status === 'dropped'));
    assert.match(r.err, /small\.efimg\); fit not checked: the app does not export/, 'a test image without the device app: said so');
    assertFlash(m, [{ offset: SLOT, data: image }]);
  });
});

s('a reply lost after the write: the resend is refused by the chip, one line names the region (bounded)', async () => {
  await withMock({ chip: 'esp32', loseReplyTo: 3 }, async (_m, port) => {
    const r = await cli(['flash', '--rom', '--port', port, '--board', 'esp32', '--image', SMALL]);
    oneLineError(r, /^edge-flash: error: .*: image \(model slot\) at 0x110000 \(.*small\.efimg\): Failed to write to target Flash after seq 3 failed with status 1,5/);
    assert.ok(r.ms < 20_000, `${r.ms} ms`);
  });
});

s('a flash byte that does not hold: exit 2, the region and both MD5s named', async () => {
  await withMock({ chip: 'esp32', corruptAt: SLOT + 1000 }, async (_m, port) => {
    const r = await cli(['flash', '--rom', '--port', port, '--board', 'esp32', '--image', SMALL]);
    oneLineError(r, /^edge-flash: error: image \(model slot\) at 0x110000: MD5 of the flash \([0-9a-f]{32}\) differs from .*small\.efimg's \([0-9a-f]{32}\): the write did not take/);
    assert.not.match(r.out, /every MD5 matched/);
  });
});

s('a chip that is not the board: refused with both names, nothing written', async () => {
  await withMock({ chip: 'esp32c3' }, async (m, port) => {
    const r = await cli(['flash', '--rom', '--port', port, '--board', 'esp32', '--image', at('fit.efimg')]);
    oneLineError(r, /the chip is an ESP32-C3, but --board esp32 is an ESP32; nothing was written/);
    assert.is(m.flashBegins, 0);
  });
});

s('a chip that never answers (not in its bootloader): one line with what to do, in bounded time', async () => {
  await withMock({ chip: 'esp32', silent: true }, async (m, port) => {
    const r = await cli(['flash', '--rom', '--port', port, '--board', 'esp32', '--image', SMALL]);
    oneLineError(r, /no answer from a ROM bootloader: Failed to connect with the device \(put the chip in its bootloader: hold BOOT/);
    assert.ok(m.events.some((e) => e.op === 0x08), 'SYNC was sent');
    assert.is(m.flashBegins, 0);
    assert.ok(r.ms < 30_000, `${r.ms} ms`);
  });
});

s('refused before the port is touched: does not fit, too large for the slot, another board\'s image, bad flags', async () => {
  const fw = fakeFirmware('fw-bad', 0x1000, '8MB');
  const esp32 = boardByName('esp32').flash.partitions;
  const elsewhere = fakeFirmware('fw-elsewhere', 0x1000, '4MB', partitionTable(esp32.map((p) => (p.name === 'model' ? { ...p, offset: 0x200000, size: 0x100000 } : p))));
  const garbage = fakeFirmware('fw-garbage', 0x1000, '4MB', Uint8Array.from({ length: 3072 }, (_, i) => i * 13));
  await withMock({ chip: 'esp32' }, async (m, port) => {
    const cases: Array<[string[], RegExp]> = [
      [['--board', 'esp32', '--image', at('big.efimg')], /big\.efimg: does not fit esp32: linear memory [\d.]+ KiB needed, [\d.]+ KiB available: [\d.]+ KiB short; nothing was written/],
      [['--board', 'esp32', '--image', join(VECTORS, 'oversized.efimg')], /oversized\.efimg: .*3080193 bytes, .*'model' holds 3080192/],
      [['--board', 'esp32s3', '--image', at('fit.efimg')], /fit\.efimg: .*esp32/],
      [['--board', 'esp32', '--firmware', fw.dir], /built for 8MB of flash, but esp32 has 4(\.00)? MiB/],
      [['--board', 'esp32', '--firmware', at('nowhere')], /--firmware .*nowhere: not a folder/],
      [['--board', 'esp32', '--firmware', elsewhere.dir, '--image', at('fit.efimg')], /partition-table\.bin: no data partition at 0x110000, where the board profile puts the model slot \(the table has .*model 0x200000\+0x100000\)/],
      [['--board', 'esp32', '--firmware', garbage.dir], /partition-table\.bin: not an ESP-IDF partition table \(entry 0 starts with 0x0d00, expected 0x50aa\)/],
      [['--board', 'rpi4', '--image', at('fit.efimg')], /--rom writes through an ESP32-family ROM bootloader; rpi4 is/],
      [['--board', 'esp32'], /nothing to write/],
      [['--image', at('fit.efimg')], /flash --rom needs --board/],
    ];
    for (const [args, re] of cases) oneLineError(await cli(['flash', '--rom', '--port', port, ...args]), re);
    assert.is(m.events.length, 0, 'the mock heard nothing');
  });
  oneLineError(await cli(['flash', at('fit.efimg'), '--port', at('no-port'), '--board', 'esp32']), /--board goes with --rom/);
});

s.run();
