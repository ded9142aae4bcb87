// The ESP app image writer and reader (host/firmware/app-image.ts, docs/esp-app-image.md), and the
// bare-metal ESP32-C3 firmware file made from the Makefile's ELF (host/firmware/baremetal.ts): byte
// positions, the checksum and hash, every refusal, and what `flash --rom --firmware bare-metal` plans.
// The emulator run of the same files is test/esp32c3-qemu.test.ts.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { planRegions } from '../host/board/rom-flash.ts';
import { UserError } from '../host/errors.ts';
import { CHIP_IDS, readAppImage, writeAppImage } from '../host/firmware/app-image.ts';
import { baremetalBinPath, baremetalFirmware, baremetalLayout } from '../host/firmware/baremetal.ts';
import { fromRoot } from '../host/paths.ts';
import { cli } from './helpers.ts';
import { missingPart } from './esp-qemu.ts';

const s = suite('ESP app image');
const c3 = boardByName('esp32c3');
const seg = (addr: number, n: number, seed: number) => ({ addr, data: Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff) });
const refuses = (f: () => unknown, re: RegExp) => {
  try {
    f();
  } catch (e) {
    assert.instance(e, UserError);
    assert.match((e as Error).message, re);
    assert.not.match((e as Error).message, /\n/);
    return;
  }
  assert.unreachable(`no refusal matching ${re}`);
};

s('header, segments, checksum on a 16-byte line, SHA-256 of all before it', () => {
  const segments = [seg(0x3fc80000, 20, 1), seg(0x40380000, 1000, 7)];
  const img = writeAppImage({ chip: 'esp32c3', entry: 0x40380000, segments, flashSize: 4 << 20 });
  const v = new DataView(img.buffer);
  assert.is(img[0], 0xe9);
  assert.is(img[1], 2);
  assert.is(img[2], 2, 'DIO');
  assert.is(img[3], 0x20, '4 MiB, 40 MHz');
  assert.is(v.getUint32(4, true), 0x40380000);
  assert.is(img[8], 0xee);
  assert.is(v.getUint16(12, true), 5, 'chip id of the ESP32-C3');
  assert.is(v.getUint16(17, true), 0xffff);
  assert.is(img[23], 1);
  assert.is(v.getUint32(24, true), 0x3fc80000);
  assert.is(v.getUint32(28, true), 20);
  const body = 24 + 8 + 20 + 8 + 1000;
  const total = (Math.floor(body / 16) + 1) * 16;
  assert.is(img.byteLength, total + 32);
  let sum = 0xef;
  for (const x of segments) for (const b of x.data) sum ^= b;
  assert.is(img[total - 1], sum);
  for (let i = body; i < total - 1; i++) assert.is(img[i], 0, 'padding is zero');
  assert.is(Buffer.from(img.subarray(total)).toString('hex'), createHash('sha256').update(img.subarray(0, total)).digest('hex'));
  const r = readAppImage(img);
  assert.equal(r.segments, [{ addr: 0x3fc80000, offset: 32, size: 20 }, { addr: 0x40380000, offset: 60, size: 1000 }]);
  assert.is(r.chipId, CHIP_IDS.esp32c3);
  assert.is(r.flashSize, 4 << 20);
});

s('the reader refuses what the ROM refuses, and a wrong hash; the writer refuses what it cannot write', () => {
  const img = writeAppImage({ chip: 'esp32c3', entry: 0x40380000, segments: [seg(0x40380000, 64, 3)], flashSize: 4 << 20 });
  const bad = (f: (b: Uint8Array) => void) => { const b = img.slice(); f(b); return b; };
  refuses(() => readAppImage(bad((b) => { b[0] = 0xe8; })), /first byte 0xe8, expected 0xe9/);
  refuses(() => readAppImage(bad((b) => { b[40] ^= 1; })), /checksum 0x[0-9a-f]+, the segments give 0x[0-9a-f]+/);
  refuses(() => readAppImage(bad((b) => { b[b.length - 1] ^= 1; })), /appended SHA-256 is not that of the image/);
  refuses(() => readAppImage(bad((b) => { new DataView(b.buffer).setUint32(28, 1 << 20, true); })), /segment 0 .* runs past the end/);
  refuses(() => readAppImage(img.subarray(0, 30)), /too short/);
  refuses(() => writeAppImage({ chip: 'esp32c3', entry: 0, segments: [seg(0, 6, 0)], flashSize: 4 << 20 }), /6 bytes, not a multiple of 4/);
  refuses(() => writeAppImage({ chip: 'esp32c3', entry: 0, segments: [], flashSize: 4 << 20 }), /0 segments/);
  refuses(() => writeAppImage({ chip: 'esp8266', entry: 0, segments: [seg(0, 4, 0)], flashSize: 4 << 20 }), /unknown chip 'esp8266'/);
  refuses(() => writeAppImage({ chip: 'esp32c3', entry: 0, segments: [seg(0, 4, 0)], flashSize: 3 << 20 }), /not 1, 2, 4, 8 or 16 MiB/);
});

const elf = fromRoot('boards', 'runtime', 'build', 'esp32c3', 'edge-flash-esp32c3.elf');
s('the firmware file: the RAM part an app image at 0, the flash part at the offsets its sections are linked to; the packaged file is it', () => {
  if (!existsSync(elf)) return missingPart(`no ${elf} (make -C boards/runtime esp32c3 needs riscv64-unknown-elf-gcc)`);
  const layout = baremetalLayout(c3);
  const fw = baremetalFirmware(new Uint8Array(readFileSync(elf)), c3);
  const r = readAppImage(fw.bytes.subarray(0, fw.ramImage));
  assert.ok(r.segments.every((x) => x.addr >= 0x3fc80000 && x.addr < 0x3fcdc710 || x.addr >= 0x40380000 && x.addr < 0x403dc710), 'RAM segments only');
  assert.ok(fw.ramImage <= layout.xip);
  assert.ok(fw.bytes.byteLength <= layout.region, 'ends before the slot record');
  for (let i = fw.ramImage; i < layout.xip; i++) if (fw.bytes[i] !== 0xff) assert.unreachable(`byte 0x${i.toString(16)} between the parts is not 0xFF`);
  assert.ok(existsSync(baremetalBinPath('wasm3')), 'build/esp32c3/edge-flash-esp32c3.bin (tools/build.mjs)');
  assert.ok(Buffer.from(readFileSync(baremetalBinPath('wasm3'))).equals(Buffer.from(fw.bytes)), 'the packaged file is the ELF\'s');
});

s('flash --rom --firmware bare-metal: firmware at 0x0, the image in slot A, the slot record erased; refusals in one line', () => {
  if (!existsSync(baremetalBinPath('wasm3'))) return missingPart('no build/esp32c3/edge-flash-esp32c3.bin (node tools/build.mjs esp32c3)');
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-appimg-'));
  const image = join(dir, 'kjv.efimg');
  const p = cli('pack', fromRoot('models', 'kjv-esp32-260k', 'model.bin'), '--board', 'esp32c3', '--quant', 'tb1', '--kv', 'int4', '--ctx', '128', '-o', image);
  assert.is(p.code, 0, p.err);
  const layout = baremetalLayout(c3);
  const regions = planRegions(c3, { firmware: 'bare-metal', image });
  assert.equal(regions.map((r) => [r.name, r.offset]), [['firmware (bare metal, wasm3)', 0], ['image (slot A)', layout.slotA], ['slot record (erased)', layout.region]]);
  assert.ok(regions[2].data.every((b) => b === 0xff) && regions[2].data.byteLength === 8192);
  // a firmware file that is not an ESP32-C3 app image; the bare-metal firmware on another board
  const junk = join(dir, 'junk.bin');
  writeFileSync(junk, new Uint8Array(4096).fill(0x11));
  refuses(() => planRegions(c3, { firmware: junk, image }), /--firmware .*junk\.bin: first byte 0x11, expected 0xe9/);
  refuses(() => planRegions(boardByName('esp32'), { firmware: 'bare-metal' }), /--bare-metal firmware exists for esp32c3 only, not esp32/);
  // an image planned for the AOT firmware's linear memory does not fit beside wasm3
  const big = join(dir, 'big.efimg');
  assert.is(cli('pack', fromRoot('models', 'kjv-esp32-260k', 'model.bin'), '--board', 'esp32c3', '--quant', 'tb1', '--kv', 'int4', '--engine', 'aot', '-o', big).code, 0);
  refuses(() => planRegions(c3, { firmware: 'bare-metal', image: big }), /big\.efimg: does not fit esp32c3: .*; nothing was written/);
  const r = cli('firmware', '--board', 'esp32', '--bare-metal', '-o', join(dir, 'x.bin'));
  assert.is(r.code, 2);
  assert.match(r.err, /^edge-flash: error: --bare-metal firmware exists for esp32c3 only, not esp32/);
});

s.run();
