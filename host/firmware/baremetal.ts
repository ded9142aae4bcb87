// The bare-metal ESP32-C3 firmware (boards/runtime/baremetal/esp32c3/) as one flashable file, and its flash
// layout: the one place that says where each part lies (tools/gen-esp32c3-layout.ts writes the C side,
// layout.gen.h, from it). The slot region is the ESP-IDF firmware's (firmwareLayout: the profile's model
// partition split into the slot record and two slots), so both firmwares keep a model in the same place.
//
//   0x0        the RAM part: an ESP app image the ROM's flash boot copies into SRAM (app-image.ts)
//   0x2000     the flash part: code and read-only data run in place through the flash cache, raw bytes at
//              the flash offsets the ELF links them to (0x3C000000 + X, 0x42000000 + X: flash byte X)
//   REGION     [slot record: 2 sectors][slot A][slot B] (core/slots.h), REGION = the model partition
import { existsSync, readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { fromRoot } from '../paths.ts';
import type { BoardProfile } from '../board/boards.ts';
import { CHIP_IDS, elfSegments, readAppImage, writeAppImage, type AppSegment } from './app-image.ts';
import { SECTOR, firmwareLayout } from './project.ts';

export const DROM_BASE = 0x3c000000;
export const IROM_BASE = 0x42000000;
const MAP_SPAN = 0x800000;                  // the C3's flash-mapped windows: 8 MiB each
export const XIP_OFFSET = 0x2000;           // the flash part's first byte (esp32c3.ld: FLASH_XIP): the RAM part is < 1 KiB

export interface BaremetalLayout {
  flashSize: number;
  firmware: number;           // the RAM part (the ROM boots the app image at 0)
  xip: number;                // the flash part
  region: number;             // the slot record, then slot A, slot B
  slotA: number;
  slotBytes: number;
  boardId: number;
  wasmStack: number;
}

export function baremetalLayout(board: BoardProfile): BaremetalLayout {
  if (board.name !== 'esp32c3') throw new UserError(`--bare-metal firmware exists for esp32c3 only, not ${board.name}`, 'use `edge-flash firmware` (ESP-IDF) for other boards');
  const l = firmwareLayout(board);
  const region = l.imagePartition.offset;
  return { flashSize: board.flash.size, firmware: 0, xip: XIP_OFFSET, region, slotA: region + 2 * SECTOR, slotBytes: l.slotBytes, boardId: board.id, wasmStack: board.wasm3.stack };
}

export type BaremetalEngine = 'wasm3' | 'aot';
// The flashable file of each build: made by tools/build.mjs (make -C boards/runtime esp32c3 esp32c3-aot,
// then tools/esp32c3-firmware.ts) where riscv64-unknown-elf-gcc is installed, and carried by the package.
export function baremetalBinPath(engine: BaremetalEngine): string {
  return fromRoot('build', 'esp32c3', `edge-flash-esp32c3${engine === 'aot' ? '-aot' : ''}.bin`);
}

const inFlash = (a: number) => (a >= DROM_BASE && a < DROM_BASE + MAP_SPAN) || (a >= IROM_BASE && a < IROM_BASE + MAP_SPAN);
const flashOffset = (a: number) => (a >= IROM_BASE ? a - IROM_BASE : a - DROM_BASE);

// The ELF as the file `flash --rom` writes at 0x0: the RAM part's app image, 0xFF up to the flash part,
// the flash part. Refused: a flash part outside [xip, region), a RAM part that reaches it.
export function baremetalFirmware(elf: Uint8Array, board: BoardProfile, what = 'firmware ELF'): { bytes: Uint8Array; ramImage: number; xipBytes: number } {
  const layout = baremetalLayout(board);
  const { entry, segments } = elfSegments(elf, what);
  const ram: AppSegment[] = [], flash: AppSegment[] = [];
  for (const s of segments) (inFlash(s.addr) ? flash : ram).push(s);
  const image = writeAppImage({ chip: 'esp32c3', entry, segments: ram, flashSize: layout.flashSize });
  let end = image.byteLength;
  for (const s of flash) {
    const at = flashOffset(s.addr);
    if (at < layout.xip || at + s.data.byteLength > layout.region) {
      throw new UserError(`${what}: a flash segment at 0x${s.addr.toString(16)} (flash 0x${at.toString(16)}, ${s.data.byteLength} bytes) lies outside the firmware's flash part 0x${layout.xip.toString(16)}..0x${layout.region.toString(16)}`);
    }
    end = Math.max(end, at + s.data.byteLength);
  }
  if (image.byteLength > layout.xip) throw new UserError(`${what}: the RAM part's app image is ${image.byteLength} bytes, past the flash part at 0x${layout.xip.toString(16)}`);
  const out = new Uint8Array(end).fill(0xff);
  out.set(image, 0);
  for (const s of flash) out.set(s.data, flashOffset(s.addr));
  return { bytes: out, ramImage: image.byteLength, xipBytes: end - layout.xip };
}

// The prebuilt firmware file, checked: the RAM part an ESP32-C3 app image, the whole within the firmware's
// part of the flash.
export function readBaremetalFirmware(engine: BaremetalEngine, board: BoardProfile): { path: string; bytes: Uint8Array } {
  const path = baremetalBinPath(engine);
  if (!existsSync(path)) {
    throw new UserError(`no prebuilt ESP32-C3 ${engine} firmware (${path})`, `build it: node tools/build.mjs esp32c3 (needs Debian's gcc-riscv64-unknown-elf and picolibc-riscv64-unknown-elf${engine === 'aot' ? ', and wabt' : ''})`);
  }
  const bytes = new Uint8Array(readFileSync(path));
  checkBaremetalFirmware(bytes, board, path);
  return { path, bytes };
}

// A bare-metal firmware file as `flash --rom` takes it: an ESP32-C3 app image at its start (every check
// the ROM makes), and nothing past the slot region's start.
export function checkBaremetalFirmware(bytes: Uint8Array, board: BoardProfile, what: string): void {
  const layout = baremetalLayout(board);
  const info = readAppImage(bytes, what);
  if (info.chipId !== CHIP_IDS.esp32c3) throw new UserError(`${what}: an app image for chip id ${info.chipId}, not the ESP32-C3 (${CHIP_IDS.esp32c3})`);
  if (bytes.byteLength > layout.region) throw new UserError(`${what}: ${bytes.byteLength} bytes, past the slot record at 0x${layout.region.toString(16)}`);
}
