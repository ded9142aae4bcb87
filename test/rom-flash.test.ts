// `edge-flash flash --rom` against MockRomLoaderForTests (test/rom-loader-mock.ts) on a pty: firmware
// and an image land byte for byte at their offsets through the ROM loader and through the stub loader;
// a FLASH_DATA lost on the wire is resent; a lost reply and a flipped flash byte end with one line
// naming the region; a wrong chip, an image that does not fit or is too large for the slot, and bad
// flags are refused before anything is written.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { fromRoot } from '../host/paths.ts';
import { cli, fakeFirmware, oneLineError, partitionTable } from './rom-fixtures.ts';
import { MockRomLoaderForTests, type MockOptions } from './rom-loader-mock.ts';
const MODEL = fromRoot('models', 'kjv-esp32-260k', 'model.bin');
const VECTORS = fromRoot('test', 'vectors', 'image');
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-rom-'));
const at = (f: string) => join(dir, f);
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const SLOT = 0x110000; // the esp32 profile's model partition
const SMALL = join(VECTORS, 'small.efimg'); // 17.5 KB for esp32: the fault cases stay quick

async function withMock<T>(o: Partial<MockOptions> & { chip: MockOptions['chip'] }, f: (m: MockRomLoaderForTests, port: string) => Promise<T>): Promise<T> {
  const m = new MockRomLoaderForTests({ flashSize: boardByName(o.chip).flash.size, stub: 'refuse', ...o });
  const port = await m.start();
  try {
    return await f(m, port);
  } finally {
    await m.stop();
  }
}

const firmware = (name: string, bootloaderAt: number, flashSize: string, table?: Uint8Array) =>
  fakeFirmware(dir, name, { board: bootloaderAt ? 'esp32' : 'esp32s3', bootloaderAt, flashSize, table });

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
  const p = await cli(['pack', MODEL, '--board', 'esp32', '-o', at('fit.efimg')], 300_000);
  assert.is(p.code, 0, p.err);
  const f = await cli(['pack', MODEL, '--board', 'esp32', '--quant', 'f32', '--kv', 'f32', '--ctx', '512', '--ignore-fit', '-o', at('big.efimg')], 300_000);
  assert.is(f.code, 0, f.err);
});

s('firmware and image through the ROM loader (stub refused): every byte at its offset, every MD5 matched', async () => {
  const fw = firmware('fw-esp32', 0x1000, '4MB');
  const image = new Uint8Array(readFileSync(at('fit.efimg')));
  await withMock({ chip: 'esp32', stub: 'refuse' }, async (m, port) => {
    const r = await cli(['flash', '--rom', '--port', port, '--board', 'esp32', '--firmware', fw.dir, '--image', at('fit.efimg'), '--baud', '460800']);
    assert.is(r.code, 0, r.err);
    assertFlash(m, [...fw.files, { offset: SLOT, data: image }]);
    assert.match(r.err, /the chip refused the flasher stub \(.*\): writing through the ROM loader/);
    for (const name of ['bootloader', 'edge-flash', 'partition table', 'image \\(model slot\\)']) {
      assert.match(r.out, new RegExp(`^${name}: \\d+ bytes at 0x[0-9a-f]+ in [\\d.]+ s, MD5 [0-9a-f]{32} matches the flash$`, 'm'));
    }
    // a pty has no DTR/RTS: nothing was reset, and the line says so instead of "reset"
    assert.match(r.out, /: ESP32 \(esp32\), 4 regions, .* through the ROM loader in [\d.]+ s, every MD5 matched; not reset \(.* has no DTR\/RTS lines\): tap EN \(RST\) to start the firmware\n$/);
    assert.not.match(r.out, /, reset/);
    assert.is(m.baud, 460800, 'CHANGE_BAUDRATE to --baud');
    assert.ok(m.events.some((e) => e.op === 0x13), 'SPI_FLASH_MD5 asked');
  });
});

s('through the stub loader when the chip runs it (esp32s3: chip id from GET_SECURITY_INFO)', async () => {
  const fw = firmware('fw-esp32s3', 0x0, '8MB');
  await withMock({ chip: 'esp32s3', stub: 'accept' }, async (m, port) => {
    const r = await cli(['flash', '--rom', '--port', port, '--board', 'esp32s3', '--firmware', fw.dir]);
    assert.is(r.code, 0, r.err);
    assert.ok(m.stubRunning);
    assertFlash(m, fw.files);
    assert.match(r.out, /ESP32-S3 \(esp32s3\), 3 regions, .* through the stub loader/);
  });
});

s('--no-stub: nothing uploaded to RAM, every block through the ROM loader', async () => {
  const image = new Uint8Array(readFileSync(SMALL));
  await withMock({ chip: 'esp32', stub: 'accept' }, async (m, port) => {
    const r = await cli(['flash', '--rom', '--no-stub', '--port', port, '--board', 'esp32', '--image', SMALL]);
    assert.is(r.code, 0, r.err);
    assert.not.ok(m.stubRunning);
    assert.ok(!m.events.some((e) => e.op === 0x05), 'no MEM_BEGIN');
    assert.match(r.out, /through the ROM loader/);
    assertFlash(m, [{ offset: SLOT, data: image }]);
  });
});

s('the ESP32 ROM loader gets a FLASH_BEGIN of 4 words (a 5-word one is refused, as the real ROM does)', async () => {
  await withMock({ chip: 'esp32' }, async (m, port) => {
    const r = await cli(['flash', '--rom', '--no-stub', '--port', port, '--board', 'esp32', '--image', SMALL]);
    assert.is(r.code, 0, r.err);
    assert.ok(m.events.some((e) => e.op === 0x02 && e.status === 'ok'));
    assert.ok(!m.events.some((e) => e.op === 0x02 && e.status !== 'ok'), 'no FLASH_BEGIN refused');
  });
});

s('a stub that takes the chip and never answers: one line naming --no-stub, in seconds (no DTR/RTS to reset it on a pty)', async () => {
  await withMock({ chip: 'esp32', stub: 'silent' }, async (m, port) => {
    const r = await cli(['flash', '--rom', '--port', port, '--board', 'esp32', '--image', SMALL]);
    oneLineError(r, /the flasher stub did not start \(.*\); the chip left its ROM bootloader for it, and .* has no DTR\/RTS lines to reset it; nothing was written \(.*run again with --no-stub\)/);
    assert.is(m.flashBegins, 0);
    assert.ok(r.ms < 20_000, `${r.ms} ms`);
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

s('a reply lost after the write: the resends are refused (the block is in), the region starts over from FLASH_BEGIN, the flash is right (bounded)', async () => {
  const image = new Uint8Array(readFileSync(SMALL));
  await withMock({ chip: 'esp32', loseReplyTo: 3 }, async (m, port) => {
    const r = await cli(['flash', '--rom', '--port', port, '--board', 'esp32', '--image', SMALL]);
    assert.is(r.code, 0, r.err);
    assert.match(r.err, /image \(model slot\) at 0x110000: block 4 of \d+ \(sent 3 times\): Failed to write to target flash after seq 3 failed with status 1,5; writing the region again from FLASH_BEGIN/);
    assert.match(r.out, /through the ROM loader in [\d.]+ s \(3 blocks resent\), every MD5 matched/);
    assert.is(m.flashBegins, 2);
    assertFlash(m, [{ offset: SLOT, data: image }]);
    assert.ok(r.ms < 30_000, `${r.ms} ms`);
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
  const fw = firmware('fw-bad', 0x1000, '8MB');
  const esp32 = boardByName('esp32').flash.partitions;
  const elsewhere = firmware('fw-elsewhere', 0x1000, '4MB', partitionTable(esp32.map((p) => (p.name === 'model' ? { ...p, offset: 0x200000, size: 0x100000 } : p))));
  const garbage = firmware('fw-garbage', 0x1000, '4MB', Uint8Array.from({ length: 3072 }, (_, i) => i * 13));
  await withMock({ chip: 'esp32' }, async (m, port) => {
    const cases: Array<[string[], RegExp]> = [
      [['--board', 'esp32', '--image', at('big.efimg')], /big\.efimg: does not fit esp32: linear memory [\d.]+ KiB needed, [\d.]+ KiB available: [\d.]+ KiB short; nothing was written/],
      [['--board', 'esp32', '--image', join(VECTORS, 'oversized.efimg')], /oversized\.efimg: .*1536001 bytes, a model slot of board esp32 \(two share partition 'model'\) holds 1536000/],
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
