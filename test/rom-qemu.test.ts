// `edge-flash flash --rom` against the chips' real ROMs: Espressif's QEMU (test/esp-qemu.ts) runs the
// ESP32's and the ESP32-C3's mask ROMs in download mode, UART0 on a pty. Through the CLI as a user runs
// it: firmware files and a model image written with --no-stub, then QEMU's flash file compared byte
// for byte (every region at its offset, everything else still erased); the default path, whose
// flasher stub does not run in this QEMU (it hangs on esp32, stops after the first block on esp32c3),
// ends in one line naming --no-stub within seconds. And the mock's ESP32 FLASH_BEGIN rule checked
// against the real ROM: the same 4- and 5-word requests, the same answers. QEMU missing: one line
// (a failure when CI is set).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { NodeWebSerialPort } from '../host/board/webserial-node.ts';
import { findEspQemu, missingPart, removeFlashFile, ROM_LOADER_ICOUNT, startEspQemu, type EspQemu, type EspQemuChip } from './esp-qemu.ts';
import { cli, fakeFirmware, oneLineError, tinyImage } from './rom-fixtures.ts';
import { MockRomLoaderForTests } from './rom-loader-mock.ts';

const dir = mkdtempSync(join(tmpdir(), 'edge-flash-rom-qemu-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
// The ESP32-C3 through CHANGE_BAUDRATE to 460800; the ESP32 at the ROM's 115200: its ROM in this QEMU
// stops answering after CHANGE_BAUDRATE (tested below: one line, nothing written).
const CHIPS: Array<{ chip: EspQemuChip; bootloaderAt: number; baud: string }> = [
  { chip: 'esp32', bootloaderAt: 0x1000, baud: '115200' },
  { chip: 'esp32c3', bootloaderAt: 0x0, baud: '460800' },
];

async function withQemu<T>(chip: EspQemuChip, f: (q: EspQemu) => Promise<T>): Promise<T> {
  const q = await startEspQemu({ chip, mode: 'download', flashSize: boardByName(chip).flash.size, icount: ROM_LOADER_ICOUNT });
  try {
    await romListening(q.pty);
    return await f(q);
  } finally {
    await q.stop();
    removeFlashFile(q);
  }
}

// Every region at its offset, and every other byte as QEMU's flash started: erased (0xFF). The ROM
// erases whole sectors at FLASH_BEGIN, so a region's last sector reads 0xFF after its end.
function assertFlash(flash: Uint8Array, regions: Array<{ offset: number; data: Uint8Array }>): void {
  const expect = new Uint8Array(flash.length).fill(0xff);
  for (const r of regions) expect.set(r.data, r.offset);
  const bad = flash.findIndex((x, i) => x !== expect[i]);
  assert.is(bad, -1, `flash byte 0x${bad.toString(16)} is 0x${flash[bad]?.toString(16)}, expected 0x${expect[bad]?.toString(16)}`);
}

// Waits (up to about 20 s) until the emulated ROM answers SYNC: on a loaded host QEMU's ROM takes a
// while to reach its download loop, and a chip's boot time is not what the tests measure.
async function romListening(port: string): Promise<void> {
  await withLoader(port, async () => {}, 25);
}

async function withLoader<T>(port: string, f: (loader: InstanceType<typeof import('esptool-js').ESPLoader>, transport: InstanceType<typeof import('esptool-js').Transport>) => Promise<T>, attempts = 10): Promise<T> {
  const { ESPLoader, Transport } = await import('esptool-js');
  const p = new NodeWebSerialPort(port);
  const transport = new Transport(p as unknown as ConstructorParameters<typeof Transport>[0], false);
  transport.trace = () => {};
  const loader = new ESPLoader({ transport, baudrate: 115200, romBaudrate: 115200, terminal: { clean() {}, writeLine() {}, write() {} } });
  try {
    await loader.connect('no_reset', attempts, false); // SYNC only: the ROM's extra SYNC replies then drained
    await transport.drainInput();
    return await f(loader, transport);
  } finally {
    await Promise.race([transport.disconnect().catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
    await p.close();
  }
}

// FLASH_BEGIN as esptool-js 0.7.0 sends it to every ROM (5 words) and as esptool sends it to the ESP32
// ROM (4 words), straight through esptool-js's command layer after SYNC and SPI_ATTACH: the ROM's
// status bytes for each (esptool-js's own error text says "status S,E").
async function flashBeginAnswers(port: string): Promise<{ five: string; four: string }> {
  const w = (ws: number[]) => { const b = new Uint8Array(4 * ws.length); ws.forEach((x, i) => new DataView(b.buffer).setUint32(4 * i, x, true)); return b; };
  return withLoader(port, async (loader, transport) => {
    const answer = async (words: number[]) => {
      try {
        await loader.checkCommand('flash begin', 0x02, w(words), 0, 0, 3000);
        return 'ok';
      } catch (e) {
        return /status (\d+,\d+)/.exec((e as Error).message)?.[1] ?? (e as Error).message;
      }
    };
    await loader.checkCommand('attach', 0x0d, w([0, 0]));
    const five = await answer([0x1000, 4, 0x400, 0x100000, 0]);
    await transport.drainInput();
    const four = await answer([0x1000, 4, 0x400, 0x100000]);
    return { five, four };
  });
}

const s = suite('flash --rom against the real ROMs (QEMU)');
const missing = new Map<EspQemuChip, string>();
for (const { chip } of CHIPS) {
  const q = findEspQemu(chip);
  if (typeof q === 'string') missing.set(chip, q);
}
const ifQemu = (chip: EspQemuChip, f: () => Promise<void>) => async () => {
  const why = missing.get(chip);
  if (why) return missingPart(`${chip}: ${why}`);
  await f();
};

for (const { chip, bootloaderAt, baud } of CHIPS) {
  s(`${chip}: --no-stub writes firmware files and a model image through the real ROM loader, byte for byte in QEMU's flash`, ifQemu(chip, async () => {
    const board = boardByName(chip);
    const fw = fakeFirmware(dir, `fw-${chip}`, { board: chip, bootloaderAt, flashSize: '4MB', appBytes: 64 * 1024 + 5, bootloaderBytes: 20_001 });
    const image = tinyImage(chip);
    const imageFile = join(dir, `${chip}.efimg`);
    writeFileSync(imageFile, image);
    const slot = board.flash.partitions.find((p) => p.name === board.flash.imagePartition)!;
    await withQemu(chip, async (q) => {
      const r = await cli(['flash', '--rom', '--no-stub', '--port', q.pty, '--board', chip, '--firmware', fw.dir, '--image', imageFile, '--baud', baud], 180_000);
      assert.is(r.code, 0, r.err);
      const title = chip === 'esp32' ? 'ESP32' : 'ESP32-C3';
      assert.match(r.out, new RegExp(`: ${title} \\(${chip}\\), 4 regions, .* through the ROM loader in ([\\d.]+) s( \\(\\d+ blocks? resent\\))?, every MD5 matched; not reset \\(.* has no DTR/RTS lines\\)`));
      process.stderr.write(`${chip} ROM loader: ${r.out.trim().split('\n').pop()}\n`);
      await q.stop();
      assertFlash(q.readFlash(), [...fw.files, { offset: slot.offset, data: image }]);
    });
  }));

  s(`${chip}: the default path with esptool's flasher stub: ${chip === 'esp32' ? 'it never starts in this QEMU: one line naming --no-stub' : 'it runs, or stops reading after a block (both seen in this QEMU): byte for byte, or one line naming --no-stub'}, within seconds`, ifQemu(chip, async () => {
    const board = boardByName(chip);
    const slot = board.flash.partitions.find((p) => p.name === board.flash.imagePartition)!;
    const image = tinyImage(chip);
    const imageFile = join(dir, `${chip}-stub.efimg`);
    writeFileSync(imageFile, image);
    await withQemu(chip, async (q) => {
      const r = await cli(['flash', '--rom', '--port', q.pty, '--board', chip, '--image', imageFile], 90_000);
      if (chip === 'esp32c3' && r.code === 0) {
        // the stub ran to the end this time: then the bytes must be right
        assert.match(r.out, /through the stub loader in [\d.]+ s.*, every MD5 matched/);
        await q.stop();
        assertFlash(q.readFlash(), [{ offset: slot.offset, data: image }]);
        process.stderr.write(`${chip}: the stub ran to the end this time\n`);
        return;
      }
      // esp32: the stub never says OHAI; esp32c3: it starts, takes a block, then stops reading
      oneLineError(r, chip === 'esp32'
        ? /the flasher stub did not start \(.*\); the chip left its ROM bootloader for it, and .* has no DTR\/RTS lines to reset it; nothing was written \(.*run again with --no-stub\)/
        : /image \(model slot\) at 0x[0-9a-f]+ \(.*\): block \d+ of \d+.*: the flasher stub stopped answering \(.*\) \(.*run with --no-stub/);
      assert.ok(r.ms < 45_000, `${r.ms} ms`);
      assert.not.match(r.out, /MD5 matched/);
    });
  }));
}

s('esp32: a chip that stops answering after CHANGE_BAUDRATE (its ROM in this QEMU): one line, nothing written, within seconds', ifQemu('esp32', async () => {
  const imageFile = join(dir, 'esp32-baud.efimg');
  writeFileSync(imageFile, tinyImage('esp32'));
  await withQemu('esp32', async (q) => {
    const r = await cli(['flash', '--rom', '--no-stub', '--port', q.pty, '--board', 'esp32', '--image', imageFile, '--baud', '460800'], 60_000);
    oneLineError(r, /the chip stopped answering after the switch to 460800 baud; nothing was written \(try a lower --baud \(115200 always works\)\)/);
    assert.ok(r.ms < 30_000, `${r.ms} ms`);
    await q.stop();
    assert.ok(q.readFlash().every((x) => x === 0xff), 'the flash is as it was');
  });
}));

s('the mock refuses what the real ESP32 ROM refuses: FLASH_BEGIN of 5 words (status 1,5), of 4 words taken', ifQemu('esp32', async () => {
  const real = await withQemu('esp32', (q) => flashBeginAnswers(q.pty));
  assert.equal(real, { five: '1,5', four: 'ok' });
  const m = new MockRomLoaderForTests({ chip: 'esp32', flashSize: 4 << 20, stub: 'refuse' });
  const port = await m.start();
  try {
    assert.equal(await flashBeginAnswers(port), real);
  } finally {
    await m.stop();
  }
}));

s.run();
